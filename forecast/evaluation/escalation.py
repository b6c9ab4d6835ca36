"""The predictive distribution read from quantiles, the escalation event, and the report's threat tiers.

What the analyst's report classes a unit's outlook by, defined once:

* the predictive CDF of a forecast's 7 quantiles (:func:`predictive_cdf`, linear between them,
  exponential tails) and the probability of exceeding a count (:func:`exceedance_probability`);
* the escalation event (:func:`escalated`) and its threshold from the history up to the origin
  (:func:`escalation_threshold`, :func:`threshold_table`), with the history helpers that read a
  panel as a months x units matrix (:func:`wide_history`, :func:`history_until`, :func:`at_origin`);
* the threat tiers (:func:`threat_tier`) and the trend (:func:`trend`), and their definitions in
  plain words for the report's legend.

:mod:`forecast.evaluation.scores` sits above this module (the Brier score of an escalation and the
MASE scale read the same history); this module imports nothing from it. :class:`ScoringError` and
:func:`require_columns` live here for that reason.

Escalation
----------
The reference level of a unit at origin T is the median of its monthly counts over the 12
months T-11..T (fewer where the history is shorter). The unit *escalates* in a target month m
when ``y[m] > 1.5 * reference + 1``; so a quiet unit (reference 0) escalates at 2 or more
incidents, and one at 10 a month at 17 or more. The threshold uses only months up to the
origin (:func:`escalation_threshold`), so it is known when the forecast is made.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.errors import DataError
from forecast.schema import QUANTILES

__all__ = [
    "ESCALATION_FACTOR",
    "ESCALATION_OFFSET",
    "ESCALATION_WINDOW",
    "ScoringError",
    "TIER_BOUNDS",
    "TIER_ESCALATION_STEP",
    "TIER_NAMES",
    "TREND_ABSOLUTE",
    "TREND_RELATIVE",
    "TREND_WINDOW",
    "at_origin",
    "check_levels",
    "escalated",
    "escalation_definition",
    "escalation_threshold",
    "exceedance_probability",
    "history_until",
    "predictive_cdf",
    "require_columns",
    "threat_tier",
    "threshold_table",
    "tier_definition",
    "tier_ranges",
    "trend",
    "trend_definition",
    "wide_history",
]

#: Months in the escalation reference window (T-11..T).
ESCALATION_WINDOW = 12
#: Escalation in month m: ``y[m] > ESCALATION_FACTOR * reference + ESCALATION_OFFSET``.
ESCALATION_FACTOR = 1.5
ESCALATION_OFFSET = 1.0


class ScoringError(DataError):
    """An input that cannot be scored as given (missing columns, unknown models, bad levels)."""


# --- input helpers ---------------------------------------------------------------------------

def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str, hint: str = "") -> None:
    """Raise :class:`ScoringError` naming the columns of ``columns`` that ``frame`` lacks (``what``: whose)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ScoringError(
            f"{what}: missing column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
            + (f". {hint}" if hint else "")
        )


# --- the predictive CDF from quantiles, and the escalation event ----------------------------

def check_levels(levels, k: int) -> np.ndarray:
    """``levels`` as an array, checked: ``k`` of them, strictly increasing inside (0, 1)."""
    tau = np.asarray(levels, dtype=float).reshape(-1)
    if len(tau) != k:
        raise ScoringError(f"{len(tau)} quantile level(s) for {k} quantile column(s); give one level per column")
    if not (np.all((tau > 0) & (tau < 1)) and np.all(np.diff(tau) > 0)):
        raise ScoringError(f"quantile levels must increase strictly inside (0, 1); got {tau.tolist()}")
    return tau


def predictive_cdf(quantiles, x, levels=QUANTILES) -> np.ndarray:
    """P(Y <= x) of the distribution the quantiles describe, for counts (Y >= 0).

    Between quantile points the CDF is linear. Where quantiles tie it jumps to the highest
    tied level (right-continuous: with q05 = q10 = 0, P(Y <= 0) = 0.10). Beyond the outer
    quantiles the tails are exponential with the scale that keeps the density continuous
    (the density of the adjacent segment):

    * above q95: ``1 - 0.05 exp(-(x - q95) / theta)`` with ``theta = q95 - q90``;
    * below q05: ``0.05 exp(-(q05 - x) / theta)`` with ``theta = q10 - q05``, for x >= 0; the
      mass this tail would put below 0 sits at 0 (a point mass at zero, as counts have), and
      P(Y <= x) = 0 for x < 0.

    (For other levels, ``theta = tau_1 (q_2 - q_1) / (tau_2 - tau_1)`` at the bottom and
    ``(1 - tau_K) (q_K - q_(K-1)) / (tau_K - tau_(K-1))`` at the top.)

    A flat outer segment (q90 = q95, or q05 = q10) means a tail of zero width.

    Parameters
    ----------
    quantiles : array_like, shape (n, K)
        Monotone predictive quantiles at ``levels``.
    x : array_like, shape (n,) or scalar
    levels : sequence of float, length K

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    q = np.atleast_2d(np.asarray(quantiles, dtype=float))
    n, k = q.shape
    tau = check_levels(levels, k)
    x = np.broadcast_to(np.asarray(x, dtype=float), (n,))
    rows = np.arange(n)
    below = (q <= x[:, None]).sum(axis=1)  # quantiles at or below x: q is monotone, so an index
    j = np.clip(below, 1, k - 1)
    lo, hi = q[rows, j - 1], q[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Used only where 1 <= below <= k-1, i.e. lo <= x < hi, so hi > lo there.
        inner = tau[j - 1] + (tau[j] - tau[j - 1]) * (x - lo) / (hi - lo)
        theta_lo = tau[0] * (q[:, 1] - q[:, 0]) / (tau[1] - tau[0])
        theta_hi = (1 - tau[-1]) * (q[:, -1] - q[:, -2]) / (tau[-1] - tau[-2])
        # Distances clipped at 0: each tail is used only on its own side, and the other side
        # would overflow exp() for nothing.
        lower = np.where(theta_lo > 0, tau[0] * np.exp(-np.maximum(q[:, 0] - x, 0) / theta_lo), 0.0)
        upper = np.where(theta_hi > 0, 1 - (1 - tau[-1]) * np.exp(-np.maximum(x - q[:, -1], 0) / theta_hi), 1.0)
    cdf = np.where(below == 0, np.where(x < 0, 0.0, lower), np.where(below == k, upper, inner))
    return np.where(np.isnan(x), np.nan, cdf)


def exceedance_probability(quantiles, threshold, levels=QUANTILES) -> np.ndarray:
    """P(Y > threshold) from quantiles, for integer counts: ``1 - F(floor(threshold))``.

    ``F`` is :func:`predictive_cdf` (linear between quantiles, exponential tails). Counts
    are whole numbers, so Y > 3.5 is Y > 3. A threshold below every quantile gives at least
    0.95, one above every quantile at most 0.05.

    Parameters
    ----------
    quantiles : array_like, shape (n, K)
    threshold : array_like, shape (n,) or scalar
    levels : sequence of float, length K

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    return 1.0 - predictive_cdf(quantiles, np.floor(np.asarray(threshold, dtype=float)), levels)


def escalated(y, threshold) -> np.ndarray:
    """The escalation event: ``y > threshold`` (the one place it is defined)."""
    return np.asarray(y, dtype=float) > np.asarray(threshold, dtype=float)


# --- the history up to an origin, and the escalation threshold -----------------------------

def wide_history(history: pd.DataFrame, target: str) -> pd.DataFrame:
    """Months x units matrix of ``target`` on a complete monthly index (gaps are NaN rows)."""
    if {"unit", "month"} <= set(history.columns):
        hint = " (a history from forecast.evaluation.backtest.history_at calls it 'y': pass target='y')" if "y" in history else ""
        require_columns(history, [target], "history", f"Choose the count column with target=...{hint}")
        dup = history.duplicated(["unit", "month"])
        if dup.any():
            row = history.loc[dup].iloc[0]
            raise ScoringError(f"history: unit {row['unit']!r}, month {row['month']} appears more than once")
        wide = history.pivot(index="month", columns="unit", values=target)
    else:
        wide = history
    index = wide.index
    if isinstance(index, pd.DatetimeIndex):
        index = index.to_period("M")
    if not isinstance(index, pd.PeriodIndex):
        raise ScoringError(
            "history: give a panel with columns unit, month and the count, or a months x units "
            f"frame indexed by month; got an index of type {type(wide.index).__name__}"
        )
    wide = wide.set_axis(index).sort_index().astype(float)
    if len(wide) == 0:
        raise ScoringError("history: no months")
    # Windows count calendar months, so a month missing from the history is a NaN row, not skipped.
    return wide.reindex(pd.period_range(index.min(), index.max(), freq="M"))


def threshold_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Escalation threshold of every unit at every month taken as the origin (months x units).

    ``wide`` is a months x units matrix from :func:`wide_history`; the value at origin T uses
    only the months T-11..T (a trailing window, fewer months where the history is shorter).
    """
    reference = wide.rolling(ESCALATION_WINDOW, min_periods=1).median()
    return ESCALATION_FACTOR * reference + ESCALATION_OFFSET


def at_origin(table: pd.DataFrame, origin: pd.Period, name: str) -> pd.Series:
    """Row ``origin`` of a months x units table, as a Series indexed by unit and named ``name``."""
    if origin not in table.index:
        raise ScoringError(f"origin {origin} is after the history, which ends {table.index.max()}")
    return table.loc[origin].rename(name).rename_axis("unit")


def history_until(history: pd.DataFrame, origin: pd.Period) -> pd.DataFrame:
    """The history up to the origin: the reference windows already stop there, this makes it plain."""
    if {"unit", "month"} <= set(history.columns):
        months = pd.PeriodIndex(history["month"], freq="M")
    elif isinstance(history.index, (pd.PeriodIndex, pd.DatetimeIndex)):
        months = pd.PeriodIndex(history.index, freq="M")
    else:
        return history  # wide_history says what is wrong with it
    cut = history.loc[np.asarray(months <= origin)]
    if len(cut) == 0:
        raise ScoringError(f"origin {origin} is before the history, which starts {months.min()}")
    return cut


def escalation_threshold(history: pd.DataFrame, origin, *, target: str = "incidents") -> pd.Series:
    """Each unit's escalation threshold at ``origin``: ``1.5 * median(y[T-11..T]) + 1``.

    Uses only months <= origin (fewer than 12 where the history is shorter). A target month
    m escalates when ``y[m] > threshold`` (:func:`escalated`).

    Returns
    -------
    pandas.Series
        Indexed by unit, named ``threshold``.
    """
    origin = pd.Period(origin, freq="M")
    threshold = threshold_table(wide_history(history_until(history, origin), target))
    return at_origin(threshold, origin, "threshold")


# --- threat tiers and trend: how the analyst's report classes a unit's outlook ---------------
#
# Defined here, beside escalation, so that the report, its legend and its tests read one
# definition. The words shown to readers are generated from the same constants.

#: Threat tiers, lowest first; a unit's tier is an index into this tuple.
TIER_NAMES = ("Minimal", "Low", "Moderate", "High", "Severe")
#: Expected count per month at which tiers 1..4 start (tier 0 is below the first bound).
#: Fixed counts, not ranks among units: a calm month must be able to show a calm map.
TIER_BOUNDS = (0.5, 2.0, 5.0, 15.0)
#: A unit whose escalation probability reaches this in any forecast month moves up one tier.
TIER_ESCALATION_STEP = 0.5
#: Months of recent history the trend compares the forecast with.
TREND_WINDOW = 3
#: The forecast must differ from the recent level by at least this share of it ...
TREND_RELATIVE = 0.25
#: ... and by at least this count per month, so that 0 -> 1 incident is not called a surge.
TREND_ABSOLUTE = 1.0


def _finite(values, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if np.isnan(out).any():
        raise ScoringError(f"{what}: NaN at position {int(np.flatnonzero(np.isnan(out).ravel())[0])}")
    return out


def threat_tier(expected, escalation_probability) -> np.ndarray:
    """Threat tier (index into :data:`TIER_NAMES`) from a unit's forecast.

    Parameters
    ----------
    expected : array_like, shape (n,)
        Expected count per month: the predictive means averaged over the forecast months.
    escalation_probability : array_like, shape (n,)
        The highest monthly probability of escalation over the forecast months.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        The base tier from :data:`TIER_BOUNDS` (a bound belongs to the tier it starts),
        one tier higher when the escalation probability reaches
        :data:`TIER_ESCALATION_STEP`, never above the top tier.
    """
    level = _finite(expected, "threat_tier expected")
    p = _finite(escalation_probability, "threat_tier escalation_probability")
    base = np.searchsorted(np.asarray(TIER_BOUNDS), level, side="right")
    return np.minimum(base + (p >= TIER_ESCALATION_STEP), len(TIER_NAMES) - 1).astype(int)


def _count(value: float) -> str:
    return f"{value:g}"


def tier_ranges(target: str = "incidents") -> list[tuple[str, str]]:
    """(tier name, the expected counts it covers) for a legend, lowest tier first."""
    bounds = TIER_BOUNDS
    out = [(TIER_NAMES[0], f"fewer than {_count(bounds[0])} {target} a month expected")]
    for name, lo, hi in zip(TIER_NAMES[1:-1], bounds[:-1], bounds[1:]):
        out.append((name, f"{_count(lo)} to under {_count(hi)} {target} a month expected"))
    out.append((TIER_NAMES[-1], f"{_count(bounds[-1])} or more {target} a month expected"))
    return out


def tier_definition(target: str = "incidents", unit_word: str = "unit") -> str:
    """The tier rule of :func:`threat_tier` in plain words."""
    ranges = "; ".join(f"{name}: {text.replace(' expected', '')}" for name, text in tier_ranges(target))
    return (
        f"A {unit_word}'s threat tier comes from its forecast. The number of {target} it is expected "
        f"to have per month (the forecast means averaged over the forecast months) sets the base tier "
        f"({ranges}). A {unit_word} whose probability of escalation reaches "
        f"{TIER_ESCALATION_STEP:.0%} in any forecast month moves up one tier ({TIER_NAMES[-1]} stays "
        f"{TIER_NAMES[-1]})."
    )


def escalation_definition(target: str = "incidents", unit_word: str = "unit") -> str:
    """The escalation event of :func:`escalated` / :func:`escalation_threshold` in plain words."""
    quiet = int(np.floor(ESCALATION_OFFSET)) + 1
    ten = int(np.floor(ESCALATION_FACTOR * 10 + ESCALATION_OFFSET)) + 1
    return (
        f"A {unit_word} escalates in a month when its {target} exceed {ESCALATION_FACTOR:g} times its "
        f"reference level plus {ESCALATION_OFFSET:g}. The reference level is the median of its monthly "
        f"{target} over the {ESCALATION_WINDOW} months up to the forecast origin, so it is known when the "
        f"forecast is made. A quiet {unit_word} (reference 0) escalates at {quiet} or more {target} in a "
        f"month; one with a reference of 10 a month at {ten} or more. The probability of escalation is "
        f"read from the forecast's quantiles."
    )


def trend(recent, projected) -> np.ndarray:
    """``'rising'``, ``'stable'`` or ``'falling'``: the forecast against the recent level.

    Parameters
    ----------
    recent : array_like, shape (n,)
        Mean count per month over the last :data:`TREND_WINDOW` months up to the origin.
    projected : array_like, shape (n,)
        The forecast medians averaged over the forecast months.

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        Rising (falling) when ``projected`` is above (below) ``recent`` by at least
        ``max(TREND_ABSOLUTE, TREND_RELATIVE * recent)``; stable otherwise.
    """
    recent = _finite(recent, "trend recent")
    projected = _finite(projected, "trend projected")
    band = np.maximum(TREND_ABSOLUTE, TREND_RELATIVE * recent)
    diff = projected - recent
    return np.where(diff >= band, "rising", np.where(diff <= -band, "falling", "stable"))


def trend_definition(target: str = "incidents") -> str:
    """The rule of :func:`trend` in plain words."""
    return (
        f"The trend compares the median forecast, averaged over the forecast months, with the average "
        f"of the last {TREND_WINDOW} months of recorded {target}: rising when the forecast is higher by at "
        f"least {TREND_ABSOLUTE:g} a month and by at least {TREND_RELATIVE:.0%} of the recent average, "
        f"falling when it is lower by as much, stable otherwise."
    )
