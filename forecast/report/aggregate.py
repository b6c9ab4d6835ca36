"""The national total as a distribution: the units' predictive distributions combined, not their quantiles summed.

Adding up the units' medians is not the median of the national total (the medians of skewed
counts add up to much less than the total usually is), and adding up their 5% and 95%
quantiles is right only when every unit rises and falls with every other. Instead:

1. each unit's 7 forecast quantiles are read as a quantile function
   (:func:`quantile_function`: linear between them, exponential tails, a point mass at 0: the
   inverse of :func:`forecast.evaluation.escalation.predictive_cdf`);
2. the units are drawn together through a Gaussian copula (:func:`draw_totals`): standard
   normal draws with a correlation between units, turned into uniform ranks and read through
   each unit's quantile function;
3. the correlation is estimated from the backtest (:func:`copula_correlation`): the
   normal scores of the probability integral transform (PIT) of every backtest forecast, i.e.
   where each recorded count fell in its own forecast distribution, correlated between units
   over the same target months. Without a backtest the units are drawn independently, and
   the report says so.

The draws use a fixed seed, so the same forecast gives the same national figures.
The expected total is the sum of the units' forecast means (true whatever the dependence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from forecast.evaluation import escalation
from forecast.schema import QUANTILE_COLUMNS, QUANTILES, check_levels

__all__ = ["DRAWS", "FULL_COPULA_UNITS", "LARGE_DRAWS", "NationalTotal", "SEED", "average_correlation",
           "copula_correlation",
           "draw_totals", "escalation_probability", "mid_pit", "national_total", "pit_scores", "quantile_function"]

#: Joint draws of all units per forecast month.
DRAWS = 10_000
#: Seed of the draws: the same forecast always gives the same national figures.
SEED = 20170101
#: Fewest common target months two units need for their correlation to be estimated (else 0).
MIN_PAIRS = 12
#: Above this many units the copula has one factor (every pair the average correlation): the
#: full correlation matrix costs memory in the square and time in the cube of the units.
FULL_COPULA_UNITS = 300
#: Units drawn at a time by the one-factor copula.
CHUNK = 500
#: Joint draws per month above FULL_COPULA_UNITS units: the work is draws x units, and 2,000
#: draws put the 5% and 95% quantiles of the total within about 0.05 of its standard deviation.
LARGE_DRAWS = 2_000


def _tail_scales(q: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scales of the exponential tails below the first and above the last quantile (continuous density)."""
    theta_lo = tau[0] * (q[:, 1] - q[:, 0]) / (tau[1] - tau[0])
    theta_hi = (1 - tau[-1]) * (q[:, -1] - q[:, -2]) / (tau[-1] - tau[-2])
    return theta_lo, theta_hi


def _by_unit(q: np.ndarray, u: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Values at levels ``u`` of shape (n, S), one row per unit (rows contiguous, so each is one np.interp)."""
    out = np.empty_like(u)
    for i in range(q.shape[0]):
        out[i] = np.interp(u[i], tau, q[i])
    # The tails only where a level falls in them (10% of the draws), not over the whole array.
    theta_lo, theta_hi = _tail_scales(q, tau)
    rows, cols = np.nonzero(u < tau[0])
    out[rows, cols] = np.maximum(q[rows, 0] + theta_lo[rows] * np.log(np.clip(u[rows, cols], 1e-300, None) / tau[0]),
                                 0.0)
    rows, cols = np.nonzero(u > tau[-1])
    out[rows, cols] = q[rows, -1] - theta_hi[rows] * np.log(np.clip(1 - u[rows, cols], 1e-300, None) / (1 - tau[-1]))
    return out


def quantile_function(quantiles, u, levels=QUANTILES) -> np.ndarray:
    """Values at probability levels ``u`` of the distributions the quantiles describe.

    The inverse of :func:`~forecast.evaluation.escalation.predictive_cdf`: linear between the
    quantile points, exponential tails beyond the outer ones with the scale that keeps the
    density continuous, and the lower tail's mass below 0 at 0 (counts are never negative).

    Parameters
    ----------
    quantiles : array_like, shape (n, K)
        Monotone quantiles of n units at ``levels``.
    u : array_like, shape (S, n)
        Probability levels in (0, 1), one column per unit.

    Returns
    -------
    numpy.ndarray, shape (S, n)
    """
    q = np.atleast_2d(np.asarray(quantiles, dtype=float))
    tau = check_levels(levels, q.shape[1])
    u = np.asarray(u, dtype=float)
    return _by_unit(q, np.ascontiguousarray(u.T), tau).T


def escalation_probability(quantiles, threshold, levels=QUANTILES) -> np.ndarray:
    """P(count > threshold) for whole counts, read with a continuity correction.

    A count exceeds a threshold t when it is at least ``floor(t) + 1``; the forecast's
    quantiles describe a continuous curve through whole counts, so the probability is read
    half-way, at ``floor(t) + 0.5``. (Read exactly at a whole count, a forecast whose
    quantiles are whole counts gives only the quantile levels themselves: 5%, 10%, 25%, ...)
    """
    t = np.floor(np.asarray(threshold, dtype=float)) + 0.5
    return 1.0 - escalation.predictive_cdf(quantiles, t, levels)


def mid_pit(quantiles, y, levels=QUANTILES) -> np.ndarray:
    """Where a recorded whole count fell in its forecast distribution: ``(F(y - 1) + F(y)) / 2``.

    The mid-point of the probability the count has (a deterministic PIT for counts), strictly
    inside (0, 1) whenever the forecast gives the count any probability.
    """
    y = np.asarray(y, dtype=float)
    upper = escalation.predictive_cdf(quantiles, y, levels)
    lower = escalation.predictive_cdf(quantiles, y - 1, levels)
    return (lower + upper) / 2


def pit_scores(backtest: pd.DataFrame, model: str, units: list) -> pd.DataFrame:
    """Normal scores ``Phi^-1(mid-PIT)`` of ``model``'s scored backtest forecasts: (origin, month) x units."""
    bt = backtest[(backtest["model"] == model) & backtest["y"].notna()]
    pit = mid_pit(bt[list(QUANTILE_COLUMNS)].to_numpy(float), bt["y"].to_numpy(float))
    z = stats.norm.ppf(np.clip(pit, 1e-4, 1 - 1e-4))
    return (bt.assign(z=z).pivot_table(index=["origin", "month"], columns="unit", values="z", aggfunc="first")
            .reindex(columns=units))


def copula_correlation(backtest: pd.DataFrame, model: str, units) -> tuple[np.ndarray, int]:
    """Correlation of the units' PIT normal scores in the backtest of ``model``.

    Every backtest forecast with a recorded count gives one PIT value (:func:`mid_pit`); its
    normal score is ``Phi^-1(PIT)``. Two units' scores are paired when they are forecasts
    for the same target month from the same origin, and their correlation (Pearson's, over
    the pairs) is the copula's. A pair with fewer than :data:`MIN_PAIRS` common months or a
    constant score is taken as uncorrelated; the matrix is then made positive
    semi-definite (negative eigenvalues set to 0, the diagonal rescaled to 1).

    Returns
    -------
    (numpy.ndarray of shape (n, n) in the order of ``units``, number of target months used)
    """
    units = list(units)
    wide = pit_scores(backtest, model, units)
    corr = wide.corr(min_periods=MIN_PAIRS).to_numpy(float)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return nearest_correlation(corr), int(len(wide))


def nearest_correlation(corr: np.ndarray) -> np.ndarray:
    """A symmetric matrix made a correlation matrix: eigenvalues clipped at 0, unit diagonal."""
    corr = (corr + corr.T) / 2
    values, vectors = np.linalg.eigh(corr)
    fixed = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    scale = np.sqrt(np.clip(np.diag(fixed), 1e-12, None))
    fixed = fixed / np.outer(scale, scale)
    np.fill_diagonal(fixed, 1.0)
    return fixed


def draw_totals(quantiles, corr: np.ndarray | float | None, *, draws: int = DRAWS, seed: int = SEED,
                levels=QUANTILES) -> np.ndarray:
    """Draws of the sum over units, the units joined by a Gaussian copula.

    Parameters
    ----------
    quantiles : array_like, shape (n, K)
    corr : array_like of shape (n, n), a float, or None
        The copula's correlation matrix; a float ``rho`` for a one-factor copula in which every
        two units have correlation ``rho`` (``z_i = sqrt(rho) F + sqrt(1 - rho) e_i``); None for
        independent units. With a float or None the units are drawn :data:`CHUNK` at a time, so
        memory does not grow with their number and time grows linearly.

    Returns
    -------
    numpy.ndarray, shape (draws,)
    """
    q = np.atleast_2d(np.asarray(quantiles, dtype=float))
    tau = check_levels(levels, q.shape[1])
    n = q.shape[0]
    rng = np.random.default_rng(seed)
    if corr is not None and np.ndim(corr) == 2:
        normal = rng.standard_normal((draws, n))
        # A square root through the eigen-decomposition works for singular matrices too
        # (e.g. perfectly correlated units), where Cholesky fails.
        values, vectors = np.linalg.eigh(np.asarray(corr, dtype=float))
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
        normal = np.ascontiguousarray((normal @ root.T).T)  # (n, draws)
        return _by_unit(q, special.ndtr(normal), tau).sum(axis=0)
    rho = float(np.clip(corr or 0.0, 0.0, 1.0))
    factor = rng.standard_normal(draws) if rho > 0 else None
    total = np.zeros(draws)
    for start in range(0, n, CHUNK):
        part = q[start:start + CHUNK]
        normal = rng.standard_normal((len(part), draws))
        if factor is not None:
            normal = np.sqrt(rho) * factor + np.sqrt(1 - rho) * normal
        total += _by_unit(part, special.ndtr(normal), tau).sum(axis=0)
    return total


def average_correlation(backtest: pd.DataFrame, model: str, units) -> tuple[float, int]:
    """The average correlation between two units' PIT normal scores, without the n x n matrix.

    For standardised scores over the same target months, the variance of their sum is
    ``n + n (n - 1) rho``: so ``rho`` comes from the sum alone, in time and memory linear in
    the units. Months where a unit has no score count as 0 for it. Returns (rho >= 0, months).
    """
    units = list(units)
    wide = pit_scores(backtest, model, units)
    n, months = len(units), len(wide)
    if n < 2 or months < MIN_PAIRS:
        return 0.0, months
    std = wide.std(ddof=0).replace(0.0, np.nan)
    scores = ((wide - wide.mean()) / std).fillna(0.0)
    live = int(std.notna().sum())
    if live < 2:
        return 0.0, months
    var_sum = float(scores.sum(axis=1).var(ddof=0))
    return float(np.clip((var_sum - live) / (live * (live - 1)), 0.0, 1.0)), months


@dataclass(frozen=True)
class NationalTotal:
    """The national total per forecast month, and how the units were combined.

    ``table`` is indexed by month with ``mean`` (the sum of the units' forecast means, the
    expected total) and ``q05 .. q95`` (quantiles of the simulated total).
    """

    table: pd.DataFrame
    dependence: str          # "backtest" or "independent"
    months_used: int         # target months of the backtest the correlation came from
    mean_correlation: float  # average correlation between two distinct units
    draws: int
    seed: int
    one_factor: bool = False         # every pair of units given the average correlation

    def describe(self, unit_word: str) -> str:
        """How the national figures were made, in plain words."""
        common = (f"National figures combine the {unit_word}s' forecast distributions: {self.draws:,} joint "
                  f"draws per month (fixed seed {self.seed}), each {unit_word}'s drawn from its forecast "
                  f"quantiles, added up; the median and interval are those of the added-up draws, and the "
                  f"expected total is the sum of the {unit_word}s' expected counts. ")
        if self.dependence == "backtest" and self.one_factor:
            return common + (f"The {unit_word}s are drawn together through a one-factor Gaussian copula: with more "
                             f"than {FULL_COPULA_UNITS} {unit_word}s every two of them get the same correlation, the "
                             f"average estimated from the backtest (where each recorded count fell within its own "
                             f"forecast, compared over {self.months_used} forecast months): "
                             f"{self.mean_correlation:.2f}.")
        if self.dependence == "backtest":
            return common + (f"The {unit_word}s are drawn together through a Gaussian copula whose correlation "
                             f"was estimated from the backtest: where each recorded count fell within its own "
                             f"forecast (its rank), compared between {unit_word}s over {self.months_used} "
                             f"forecast months. The average correlation between two {unit_word}s is "
                             f"{self.mean_correlation:.2f}.")
        return common + (f"No backtest was run, so the dependence between {unit_word}s could not be estimated: "
                         f"they are drawn independently, which makes the national interval narrower than it "
                         f"is if {unit_word}s tend to rise and fall together.")


def national_total(forecast: pd.DataFrame, *, backtest: pd.DataFrame | None = None, model: str | None = None,
                   draws: int | None = None, seed: int = SEED) -> NationalTotal:
    """The national total of a forecast (one origin, every unit) per month.

    Up to :data:`FULL_COPULA_UNITS` units the copula's correlation is estimated pair by pair
    (:func:`copula_correlation`) and :data:`DRAWS` joint draws are made per month; above, every
    pair gets the average correlation (:func:`average_correlation`, a one-factor copula) and
    :data:`LARGE_DRAWS` draws are made, in time and memory linear in the units.
    """
    units = sorted(forecast["unit"].unique())
    if draws is None:
        draws = DRAWS if len(units) <= FULL_COPULA_UNITS else LARGE_DRAWS
    corr, used, dependence, mean_corr = None, 0, "independent", 0.0
    if backtest is not None and model is not None and len(backtest):
        dependence = "backtest"
        if len(units) <= FULL_COPULA_UNITS:
            corr, used = copula_correlation(backtest, model, units)
            off = corr[~np.eye(len(units), dtype=bool)] if len(units) > 1 else np.array([0.0])
            mean_corr = float(off.mean())
        else:
            mean_corr, used = average_correlation(backtest, model, units)
            corr = mean_corr
    rows = {}
    for month, block in forecast.groupby("month", sort=True):
        block = block.set_index("unit").reindex(units)
        total = draw_totals(block[list(QUANTILE_COLUMNS)].to_numpy(float), corr, draws=draws, seed=seed)
        rows[month] = {"mean": float(block["mean"].sum()),
                       **dict(zip(QUANTILE_COLUMNS, np.quantile(total, QUANTILES)))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "month"
    return NationalTotal(table=table, dependence=dependence, months_used=used, mean_correlation=mean_corr,
                         draws=draws, seed=seed, one_factor=np.ndim(corr) == 0 and dependence == "backtest")
