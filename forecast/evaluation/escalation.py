"""The predictive distribution read from quantiles, and the escalation event.

Defined once for the scores and the analyst's report:

* the predictive CDF of a forecast's 7 quantiles (:func:`predictive_cdf`, linear between them,
  exponential tails) and the probability of exceeding a count (:func:`exceedance_probability`);
* the escalation event (:func:`escalated`) and its threshold from the history up to the origin
  (:func:`escalation_threshold`, :func:`threshold_table`), with the history helpers that read a
  panel as a months x units matrix (:func:`wide_history`, :func:`history_until`, :func:`at_origin`);
* the escalation event's definition in plain words for the report's legend.

:mod:`forecast.evaluation.scores` sits above this module (the Brier score of an escalation and the
MASE scale read the same history); this module imports nothing from it. The report's threat tiers
and trend are its own (:mod:`forecast.report.tiers`).

Escalation
----------
The reference level of a unit at origin T is the median of its monthly counts over the 12
months T-11..T (fewer where the history is shorter). The unit *escalates* in a target month m
when ``y[m] > 1.5 * reference + 1``; so a quiet unit (reference 0) escalates at 2 or more
incidents, and one at 10 a month at 17 or more. The threshold uses only months up to the
origin (:func:`escalation_threshold`), so it is known when the forecast is made.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.errors import ScoringError
from forecast.schema import QUANTILES, check_levels, require_columns

__all__ = [
    "ESCALATION_FACTOR",
    "ESCALATION_OFFSET",
    "ESCALATION_WINDOW",
    "at_origin",
    "escalated",
    "escalation_definition",
    "escalation_threshold",
    "exceedance_probability",
    "history_until",
    "predictive_cdf",
    "threshold_table",
    "wide_history",
]

#: Months in the escalation reference window (T-11..T).
ESCALATION_WINDOW = 12
#: Escalation in month m: ``y[m] > ESCALATION_FACTOR * reference + ESCALATION_OFFSET``.
ESCALATION_FACTOR = 1.5
ESCALATION_OFFSET = 1.0


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


