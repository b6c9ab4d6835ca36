"""Simple exponential smoothing of the counts, with negative binomial intervals (``ses_negbin``).

The level of every unit follows ``l_t = l_{t-1} + a (y_t - l_{t-1})``, started at the mean
of the first (up to) 12 months. One smoothing constant ``a`` serves all units: the value of
:data:`SMOOTHING_GRID` with the smallest one-step squared error summed over units and over
the last ``fit_months`` months (leaving out the 12 that start the level, in a history of 24 months
or more). Pooling it lets the panel say how persistent its counts are
(a constant near 1, the last value, for large persistent counts such as IBC's; a small one,
a long mean, for small noisy ones such as UCDP's governorates), which no single benchmark
does for both. The forecast mean is the level at the origin at every horizon, on the count
scale (no back-transform, so no bias from one).

The distribution at horizon h is negative binomial with that mean and a per-unit dispersion
from the unit's own h-step errors over the same months: by default (``dispersion="ml"``) the
maximum-likelihood dispersion of ``y_{t+h}`` given the means ``l_t``, on a log grid
(:func:`negbin_ml_alpha`); ``dispersion="moments"`` takes Cameron and Trivedi's moment estimate
(:func:`~forecast.models.baselines.cameron_trivedi_alpha`) instead, which one month of hundreds
of deaths inflates for every month, so the middle of the distribution comes out too wide. So
the interval widens with the horizon as far as the unit's history says it should.

Vectorised over units and over the grid: a fit is a few array passes over the (months x
units) count matrix, linear in units. Short histories work from 2 months (the first month
starts the level); a horizon longer than the history has steps for takes the longest
horizon that has them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from forecast.models.base import Forecaster, ModelError, negbin_quantiles, register
from forecast.models.baselines import cameron_trivedi_alpha, count_matrix, grid_frame
from forecast.models.params import check_int, is_real

#: Smoothing constants tried (1.0 is the last value carried forward).
SMOOTHING_GRID = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Months whose mean starts the level.
INIT_MONTHS = 12
#: Ways to estimate the negative binomial dispersion.
DISPERSIONS = ("ml", "moments")
#: Points of the log grid the maximum-likelihood dispersion is chosen on, and its top.
ML_GRID_POINTS = 40
ML_GRID_MAX = 20.0


def negbin_ml_alpha(y: np.ndarray, mu: np.ndarray, min_alpha: float) -> np.ndarray:
    """Maximum-likelihood NB2 dispersion per column, given the means, on a log grid.

    ``Var y = mu + alpha * mu**2``; for each column the value of a grid of
    :data:`ML_GRID_POINTS` from ``min_alpha`` to :data:`ML_GRID_MAX` (log-spaced) with the
    largest summed log-likelihood of the rows. A grid rather than Newton steps: the
    likelihood is flat in ``alpha`` for columns that are nearly all zeros, where Newton
    wanders, and a grid costs a fixed number of vectorised passes.

    Parameters
    ----------
    y, mu
        Arrays of shape (n_obs, n_units); NaN rows of ``y`` are ignored. Means are floored
        at 1e-6 (a count seen where the mean was 0 then asks for a wide distribution).
    min_alpha
        The bottom of the grid.

    Returns
    -------
    numpy.ndarray
        Shape (n_units,).
    """
    y = np.asarray(y, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-6)
    seen = ~np.isnan(y)
    y0 = np.where(seen, y, 0.0)
    grid = np.geomspace(float(min_alpha), max(ML_GRID_MAX, float(min_alpha)), ML_GRID_POINTS)
    best = np.full(y.shape[1], grid[0])
    best_ll = np.full(y.shape[1], -np.inf)
    constant = gammaln(y0 + 1)
    for alpha in grid:
        r = 1.0 / alpha
        ll = gammaln(y0 + r) - gammaln(r) - constant + r * np.log(r / (r + mu)) + y0 * np.log(mu / (r + mu))
        ll = np.where(seen, ll, 0.0).sum(axis=0)
        better = ll > best_ll
        best = np.where(better, alpha, best)
        best_ll = np.where(better, ll, best_ll)
    return best


def smoothed_levels(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Filtered levels after each month (n_months, n_units) with smoothing constant ``alpha``."""
    counts = np.asarray(counts, dtype=float)
    level = counts[:INIT_MONTHS].mean(axis=0)
    out = np.empty(counts.shape)
    for t in range(len(counts)):
        level = level + alpha * (counts[t] - level)
        out[t] = level
    return out


def one_step_errors(counts: np.ndarray, alphas: np.ndarray, first: int) -> np.ndarray:
    """Sum over units of the squared one-step errors of months ``first``.. for each constant.

    The levels of all constants are run together, one month at a time, so memory stays at
    (n_alphas x n_units) whatever the length of the history.
    """
    counts = np.asarray(counts, dtype=float)
    alphas = np.asarray(alphas, dtype=float)[:, None]
    level = np.repeat(counts[:INIT_MONTHS].mean(axis=0)[None, :], len(alphas), axis=0)
    total = np.zeros(len(alphas))
    for t in range(len(counts)):
        if t >= first:
            total += ((counts[t] - level) ** 2).sum(axis=1)
        level = level + alphas * (counts[t] - level)
    return total


@register
class SesNegbin(Forecaster):
    """Exponential smoothing with one pooled constant; negative binomial per unit and horizon.

    Parameters
    ----------
    fit_months : int
        Months of one-step errors the smoothing constant is chosen on, and of h-step errors
        the dispersions come from (the most recent ones).
    min_alpha : float
        Floor of the negative binomial dispersion.
    dispersion : {"ml", "moments"}
        How the per-unit dispersion is estimated from the unit's h-step errors: maximum
        likelihood (the default) or Cameron and Trivedi's moments.
    """

    name = "ses_negbin"
    summary = "Exponential smoothing of the counts, one constant pooled across units; NB per unit and horizon."
    min_months = 2

    def __init__(self, fit_months: int = 60, min_alpha: float = 0.001, dispersion: str = "ml") -> None:
        self.fit_months = fit_months
        self.min_alpha = min_alpha
        self.dispersion = dispersion

    def _check(self) -> None:
        check_int(self.name, "fit_months", self.fit_months, 1)
        if not is_real(self.min_alpha, 0.0) or not float(self.min_alpha) > 0:
            raise ModelError(f"{self.name}: min_alpha must be a number > 0, got {self.min_alpha!r}")
        if self.dispersion not in DISPERSIONS:
            raise ModelError(f"{self.name}: dispersion must be one of {', '.join(DISPERSIONS)}, "
                             f"got {self.dispersion!r}")

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, _, _ = count_matrix(history)
        n = len(counts)
        if n < self.min_months:
            raise ModelError(f"{self.name}: needs at least {self.min_months} months of history, got {n}")
        # One-step errors of months first..n-1: the last fit_months, and not the months that
        # started the level when there are enough others.
        first = max(INIT_MONTHS if n >= 2 * INIT_MONTHS else 1, n - int(self.fit_months))
        errors = one_step_errors(counts, np.asarray(SMOOTHING_GRID), first)
        best = int(np.argmin(errors))  # ties: the smallest constant, the smoothest level
        self.smoothing_ = float(SMOOTHING_GRID[best])
        self.levels_ = smoothed_levels(counts, self.smoothing_)  # (n_months, n_units)
        self.counts_ = counts
        self.first_ = first
        self.mean_ = np.maximum(self.levels_[-1], 0.0)
        self.dispersion_: dict[int, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        if n < 2 * INIT_MONTHS:
            # A short history (a new panel, a new unit): say what the fit stood on.
            self.fallbacks_["history"] = (
                f"{n} months of history (< {2 * INIT_MONTHS}): level started from the mean of the first "
                f"{min(n, INIT_MONTHS)}, smoothing constant and dispersions from the {n - first} month(s) "
                f"after the first; a horizon past {n - first} takes the {n - first}-step dispersion")

    def horizon_dispersion(self, h: int) -> np.ndarray:
        """Per-unit NB dispersion at horizon ``h`` from the h-step errors of the fit months."""
        n = len(self.counts_)
        h_used = min(h, n - self.first_)  # the longest horizon with at least one step
        if h_used not in self.dispersion_:
            start = self.first_ - 1
            mu = np.maximum(self.levels_[start:n - h_used], 0.0)
            y = self.counts_[start + h_used:]
            estimate = negbin_ml_alpha if self.dispersion == "ml" else cameron_trivedi_alpha
            self.dispersion_[h_used] = estimate(y, mu, float(self.min_alpha))
        return self.dispersion_[h_used]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        mean = np.repeat(self.mean_[:, None], horizon, axis=1)
        quantiles = np.stack([negbin_quantiles(self.mean_, self.horizon_dispersion(h)) for h in range(1, horizon + 1)],
                             axis=1)
        quantiles[self.mean_ <= 0] = 0.0
        return grid_frame(self.units_, self.origin_, mean, quantiles)
