"""Scores of backtest forecasts, as conflict forecasting uses them (ViEWS, ACLED CAST).

Every metric is a plain function ``fn(frame) -> numpy.ndarray`` with one value per row of a
backtest frame (``unit, origin, month, horizon, model, mean, q05..q95, y`` and, for two of
them, ``scale`` and ``threshold``). :data:`METRICS` (a dict) is the registry;
:func:`score_table` averages the per-row values over groups. All scores are lower-is-better
except the coverages, which are reported as they are (a well-calibrated model has 0.50 and
0.90).

=============== ================================================================================
``mae``         mean ``|y - q50|``: absolute error goes with the median (the median minimises it)
``rmse``        ``sqrt(mean (y - mean)^2)``: squared error goes with the mean
``rmsle``       ``sqrt(mean (log1p(mean) - log1p(y))^2)``: relative error, so quiet and violent
                units weigh alike
``mase``        mean ``|y - q50| / scale``, ``scale`` the unit's in-sample one-step naive MAE up
                to the origin (:func:`naive_scale`)
``crps``        ``2 * mean_k QS_k(q_k, y)`` over the 7 levels (see "CRPS" below)
``pinball``     mean over the 7 levels of the quantile (pinball) score ``QS_k``;
                ``pinball_q05`` .. ``pinball_q95`` per level
``coverage50``  share of ``y`` in ``[q25, q75]`` (closed: counts often equal a quantile)
``coverage90``  share of ``y`` in ``[q05, q95]``
``mis90``       mean interval score of ``[q05, q95]``, alpha = 0.1 (Gneiting & Raftery 2007):
                ``(u - l) + 2/alpha (l - y) 1{y < l} + 2/alpha (y - u) 1{y > u}``
``brier``       mean ``(p - 1{y > threshold})^2``, ``p`` = P(Y > threshold) read from the
                quantiles (:func:`exceedance_probability`); the event is an escalation
=============== ================================================================================

The scoring rules come from `scoringrules <https://github.com/frazane/scoringrules>`_
(``crps_quantile``, ``quantile_score``, ``interval_score``, ``brier_score``), always with
its NumPy backend: its conventions are the published ones (which side of a tie, the 2/alpha
factor), and pinning the backend keeps results and speed the same whether or not numba
happens to be installed (with numba the library would JIT-compile on first call).

CRPS
----
What we report as ``crps`` is ``scoringrules.crps_quantile``: twice the mean pinball loss over
the 7 levels, ``2/K sum_k QS_k``. With our symmetric levels this is *exactly* the weighted
interval score of Bracher et al. (2021) with its canonical weights (the median plus the 50%,
80% and 90% intervals: ``alpha_k/2 IS_alpha_k = QS_(alpha_k/2) + QS_(1-alpha_k/2)``), so it is
comparable with WIS figures from the epidemic forecast hubs. It is a proper score for the
quantiles reported.

It is an *approximation* of the CRPS ``2 * int_0^1 QS_tau d tau``, and a coarse one: the
equal weights treat the 7 unequally spaced levels as if they were a uniform grid, and the
outer 10% of probability is not seen at all. For a calibrated N(0, 1) forecast the expected
7-level value is 0.455 against a true CRPS of 0.565 (about 19% lower), and for a negative
binomial count forecast (mean 5, size 2) 1.78 against 2.20. With a dense uniform grid of
levels the same formula converges to the CRPS (999 levels: 0.5654 against 0.5648); quadrature
weights on the 7 levels (0.075, 0.1, 0.2, 0.25, 0.2, 0.1, 0.075) would come closer (0.555),
but no longer equal the WIS anyone else reports. Compare ``crps`` across our models and with
WIS elsewhere; do not compare it with a CRPS computed from samples (ViEWS), which is larger.

Escalation
----------
The reference level of a unit at origin T is the median of its monthly counts over the 12
months T-11..T (fewer where the history is shorter). The unit *escalates* in a target month m
when ``y[m] > 1.5 * reference + 1``; so a quiet unit (reference 0) escalates at 2 or more
incidents, and one at 10 a month at 17 or more. The threshold uses only months up to the
origin (:func:`escalation_threshold`), so it is known when the forecast is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd
import scoringrules as sr

from features.errors import DataError
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, QUANTILES, validate_forecast

__all__ = [
    "ESCALATION_FACTOR",
    "ESCALATION_OFFSET",
    "ESCALATION_WINDOW",
    "LOSSES",
    "METRICS",
    "MIN_SCALE",
    "ROOT_MEAN",
    "ScoringError",
    "absolute_error",
    "add_references",
    "add_skill",
    "brier",
    "coverage_50",
    "coverage_90",
    "crps",
    "crps_from_quantiles",
    "escalated",
    "escalation_threshold",
    "exceedance_probability",
    "interval_score_90",
    "naive_scale",
    "pinball",
    "pinball_level",
    "predictive_cdf",
    "reference_levels",
    "scaled_absolute_error",
    "score_table",
    "skill",
    "squared_error",
    "squared_log_error",
]

#: Months in the escalation reference window (T-11..T).
ESCALATION_WINDOW = 12
#: Escalation in month m: ``y[m] > ESCALATION_FACTOR * reference + ESCALATION_OFFSET``.
ESCALATION_FACTOR = 1.5
ESCALATION_OFFSET = 1.0
#: Floor of the MASE scale, in incidents per month. Applied as ``max(scale, MIN_SCALE)``, not
#: only at zero: a unit with one change in 100 months has scale 0.01 and would make every
#: error of a fraction of an incident count a hundredfold. One incident is the smallest
#: error a count can make, so below it the naive error says nothing about the unit's scale.
MIN_SCALE = 1.0

#: scoringrules' NumPy backend (see the module docstring for why it is pinned).
_BACKEND = "numpy"
_LEVELS = np.asarray(QUANTILES, dtype=float)


class ScoringError(DataError):
    """An input that cannot be scored as given (missing columns, unknown models, bad levels)."""


# --- input helpers ---------------------------------------------------------------------------

def _require(frame: pd.DataFrame, columns: Iterable[str], what: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ScoringError(
            f"{what}: missing column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
            + (f". {hint}" if hint else "")
        )


def _column(frame: pd.DataFrame, name: str, what: str, hint: str = "") -> np.ndarray:
    _require(frame, [name], what, hint)
    return frame[name].to_numpy(dtype=float)


def _quantiles(frame: pd.DataFrame, what: str) -> np.ndarray:
    _require(frame, QUANTILE_COLUMNS, what)
    return frame[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)  # (n, 7)


def _unscored(y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """NaN where there is no actual: indicators would otherwise read a missing y as a miss."""
    return np.where(np.isnan(y), np.nan, values)


_REFERENCE_HINT = "Add them with forecast.evaluation.metrics.add_references(frame, panel), or pass panel= to score_table"


# --- per-row metrics: fn(frame) -> ndarray of shape (n,) --------------------------------------

def absolute_error(frame: pd.DataFrame) -> np.ndarray:
    """``|y - q50|``; averaged, the MAE of the median (the point the absolute error rewards)."""
    return np.abs(_column(frame, "y", "mae") - _column(frame, "q50", "mae"))


def squared_error(frame: pd.DataFrame) -> np.ndarray:
    """``(y - mean)^2``; the root of its group mean is the RMSE of the predictive mean."""
    return (_column(frame, "y", "rmse") - _column(frame, "mean", "rmse")) ** 2


def squared_log_error(frame: pd.DataFrame) -> np.ndarray:
    """``(log1p(mean) - log1p(y))^2``; the root of its group mean is the RMSLE."""
    return (np.log1p(_column(frame, "mean", "rmsle")) - np.log1p(_column(frame, "y", "rmsle"))) ** 2


def scaled_absolute_error(frame: pd.DataFrame) -> np.ndarray:
    """``|y - q50| / scale``; its mean is the MASE (``scale`` from :func:`add_references`)."""
    scale = _column(frame, "scale", "mase", _REFERENCE_HINT)
    return absolute_error(frame) / scale


def crps_from_quantiles(y, quantiles, levels=QUANTILES) -> np.ndarray:
    """CRPS approximated from quantiles: ``2/K sum_k QS_k`` (``scoringrules.crps_quantile``).

    Parameters
    ----------
    y : array_like, shape (n,)
        Observations.
    quantiles : array_like, shape (n, K)
        Predictive quantiles at ``levels``.
    levels : sequence of float, length K
        Probability levels, strictly inside (0, 1).

    Returns
    -------
    numpy.ndarray, shape (n,)
        With K = 7 this is the weighted interval score, not the full CRPS; with a dense
        uniform grid of levels it converges to the CRPS (see the module docstring).
    """
    y = np.atleast_1d(np.asarray(y, dtype=float))
    q = np.atleast_2d(np.asarray(quantiles, dtype=float))
    tau = _check_levels(levels, q.shape[1])
    return np.asarray(sr.crps_quantile(y, q, tau, backend=_BACKEND), dtype=float).reshape(len(y))


def crps(frame: pd.DataFrame) -> np.ndarray:
    """Quantile CRPS (= WIS) over the 7 levels; see :func:`crps_from_quantiles`."""
    return crps_from_quantiles(_column(frame, "y", "crps"), _quantiles(frame, "crps"))


def _quantile_scores(frame: pd.DataFrame, what: str) -> np.ndarray:
    y = _column(frame, "y", what)
    q = _quantiles(frame, what)
    # QS_tau(q, y) = (1{y < q} - tau) (q - y)
    return np.asarray(sr.quantile_score(y[:, None], q, _LEVELS, backend=_BACKEND), dtype=float)  # (n, 7)


def pinball(frame: pd.DataFrame) -> np.ndarray:
    """Quantile (pinball) score averaged over the 7 levels; ``crps`` is twice this."""
    return _quantile_scores(frame, "pinball").mean(axis=1)


def pinball_level(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Quantile (pinball) score of one quantile column, e.g. ``column='q90'``."""
    if column not in QUANTILE_COLUMNS:
        raise ScoringError(f"pinball_level: {column!r} is not a quantile column; choose one of {', '.join(QUANTILE_COLUMNS)}")
    y = _column(frame, "y", f"pinball_{column}")
    q = _column(frame, column, f"pinball_{column}")
    level = QUANTILES[QUANTILE_COLUMNS.index(column)]
    return np.asarray(sr.quantile_score(y, q, level, backend=_BACKEND), dtype=float).reshape(len(y))


def _coverage(frame: pd.DataFrame, lower: str, upper: str, what: str) -> np.ndarray:
    y = _column(frame, "y", what)
    inside = (_column(frame, lower, what) <= y) & (y <= _column(frame, upper, what))
    return _unscored(y, inside.astype(float))


def coverage_50(frame: pd.DataFrame) -> np.ndarray:
    """1 where ``q25 <= y <= q75``, else 0 (NaN without an actual)."""
    return _coverage(frame, "q25", "q75", "coverage50")


def coverage_90(frame: pd.DataFrame) -> np.ndarray:
    """1 where ``q05 <= y <= q95``, else 0 (NaN without an actual)."""
    return _coverage(frame, "q05", "q95", "coverage90")


def interval_score_90(frame: pd.DataFrame) -> np.ndarray:
    """Interval score of ``[q05, q95]`` at alpha = 0.1; its mean is the MIS."""
    y = _column(frame, "y", "mis90")
    lower, upper = _column(frame, "q05", "mis90"), _column(frame, "q95", "mis90")
    score = np.asarray(sr.interval_score(y, lower, upper, 0.1, backend=_BACKEND), dtype=float).reshape(len(y))
    return _unscored(y, score)  # scoringrules would score a missing y as inside the interval


def brier(frame: pd.DataFrame) -> np.ndarray:
    """``(P(Y > threshold) - 1{y > threshold})^2``: the Brier score of an escalation."""
    y = _column(frame, "y", "brier")
    threshold = _column(frame, "threshold", "brier", _REFERENCE_HINT)
    p = exceedance_probability(_quantiles(frame, "brier"), threshold)
    out = np.full(len(y), np.nan)
    seen = ~np.isnan(y)
    # scoringrules checks the outcome is 0 or 1, so rows without an actual stay out of the call.
    out[seen] = np.asarray(
        sr.brier_score(escalated(y[seen], threshold[seen]).astype(float), np.clip(p[seen], 0.0, 1.0), backend=_BACKEND),
        dtype=float,
    ).reshape(int(seen.sum()))
    return out


#: The registry: table column -> per-row metric. A group's score is the mean of its rows,
#: except for the names in :data:`ROOT_MEAN`, whose group score is the root of the mean.
METRICS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "mae": absolute_error,
    "rmse": squared_error,
    "rmsle": squared_log_error,
    "mase": scaled_absolute_error,
    "crps": crps,
    "pinball": pinball,
    **{f"pinball_{c}": partial(pinball_level, column=c) for c in QUANTILE_COLUMNS},
    "coverage50": coverage_50,
    "coverage90": coverage_90,
    "mis90": interval_score_90,
    "brier": brier,
}
ROOT_MEAN = frozenset({"rmse", "rmsle"})
#: Lower-is-better scores: those a skill score makes sense for (not the coverages).
LOSSES = tuple(name for name in METRICS if not name.startswith("coverage"))
#: Skill columns :func:`add_skill` adds by default (the per-level pinball losses are left out).
_SKILL_DEFAULT = tuple(name for name in LOSSES if not name.startswith("pinball_"))
#: Metrics that need a column beyond the forecast frame and ``y``.
_NEEDS = {"mase": "scale", "brier": "threshold"}


# --- the predictive CDF from quantiles, and the escalation event ----------------------------

def _check_levels(levels, k: int) -> np.ndarray:
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
    tau = _check_levels(levels, k)
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


# --- references from the history: MASE scale and escalation threshold ------------------------

def _wide(history: pd.DataFrame, target: str) -> pd.DataFrame:
    """Months x units matrix of ``target`` on a complete monthly index (gaps are NaN rows)."""
    if {"unit", "month"} <= set(history.columns):
        hint = " (a history from forecast.evaluation.backtest.history_at calls it 'y': pass target='y')" if "y" in history else ""
        _require(history, [target], "history", f"Choose the count column with target=...{hint}")
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


def reference_levels(history: pd.DataFrame, *, target: str = "incidents", floor: float = MIN_SCALE):
    """MASE scale and escalation threshold of every unit at every month taken as the origin.

    Each value at origin T uses only months <= T: expanding and trailing windows.

    Parameters
    ----------
    history
        A panel (``unit, month, <target>``) or a months x units frame indexed by month.
    target
        The count column of a panel.
    floor
        The MASE scale is ``max(naive MAE, floor)`` (see :data:`MIN_SCALE`).

    Returns
    -------
    scale, threshold : pandas.DataFrame
        Months (as origins) x units.
    """
    wide = _wide(history, target)
    # Row t: the naive one-step error |y_t - y_(t-1)|; the expanding mean skips the NaN of the
    # first month (and of gaps), so the scale at T averages the errors of months 2..T.
    scale = wide.diff().abs().expanding(min_periods=1).mean()
    scale = np.fmax(scale, floor)  # fmax: a unit with one month (NaN scale) gets the floor
    reference = wide.rolling(ESCALATION_WINDOW, min_periods=1).median()
    threshold = ESCALATION_FACTOR * reference + ESCALATION_OFFSET
    return scale, threshold


def _at_origin(table: pd.DataFrame, origin: pd.Period, name: str) -> pd.Series:
    if origin not in table.index:
        raise ScoringError(f"origin {origin} is after the history, which ends {table.index.max()}")
    return table.loc[origin].rename(name).rename_axis("unit")


def _cut(history: pd.DataFrame, origin: pd.Period) -> pd.DataFrame:
    """The history up to the origin: the reference windows already stop there, this makes it plain."""
    if {"unit", "month"} <= set(history.columns):
        months = pd.PeriodIndex(history["month"], freq="M")
    elif isinstance(history.index, (pd.PeriodIndex, pd.DatetimeIndex)):
        months = pd.PeriodIndex(history.index, freq="M")
    else:
        return history  # _wide says what is wrong with it
    cut = history.loc[np.asarray(months <= origin)]
    if len(cut) == 0:
        raise ScoringError(f"origin {origin} is before the history, which starts {months.min()}")
    return cut


def naive_scale(history: pd.DataFrame, origin, *, target: str = "incidents", floor: float = MIN_SCALE) -> pd.Series:
    """Each unit's MASE scale at ``origin``: mean |y_t - y_(t-1)| over the months up to it.

    The in-sample mean absolute one-step naive error from the first month of the history to
    the origin, floored at ``floor`` (:data:`MIN_SCALE`, 1 incident a month).

    Returns
    -------
    pandas.Series
        Indexed by unit, named ``scale``.
    """
    origin = pd.Period(origin, freq="M")
    scale, _ = reference_levels(_cut(history, origin), target=target, floor=floor)
    return _at_origin(scale, origin, "scale")


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
    _, threshold = reference_levels(_cut(history, origin), target=target)
    return _at_origin(threshold, origin, "threshold")


def add_references(frame: pd.DataFrame, panel: pd.DataFrame, *, target: str = "incidents",
                   floor: float = MIN_SCALE) -> pd.DataFrame:
    """Add ``scale`` (MASE) and ``threshold`` (escalation) to a backtest frame, per unit and origin.

    Both are computed from the panel up to each row's origin, never later. Existing
    ``scale`` and ``threshold`` columns are replaced.

    Raises
    ------
    ScoringError
        When a row's unit or origin is not in the panel, naming the first such row.
    """
    _require(frame, ["unit", "origin"], "backtest frame")
    scale, threshold = reference_levels(panel, target=target, floor=floor)
    rows = scale.index.get_indexer(pd.PeriodIndex(frame["origin"], freq="M"))
    cols = scale.columns.get_indexer(frame["unit"])
    bad = (rows < 0) | (cols < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScoringError(
            f"backtest frame row {i}: unit {frame['unit'].iloc[i]!r}, origin {frame['origin'].iloc[i]} is not in the "
            f"panel (units {', '.join(map(str, scale.columns))}; months {scale.index.min()}..{scale.index.max()})"
        )
    return frame.assign(scale=scale.to_numpy()[rows, cols], threshold=threshold.to_numpy()[rows, cols])


# --- aggregation and skill -------------------------------------------------------------------

def score_table(
    frame: pd.DataFrame,
    by: Sequence[str] = ("model", "horizon"),
    *,
    metrics: Mapping[str, Callable[[pd.DataFrame], np.ndarray]] | Sequence[str] | None = None,
    panel: pd.DataFrame | None = None,
    target: str = "incidents",
    overall: bool = True,
) -> pd.DataFrame:
    """Score a backtest: one row per group of ``by`` with every metric, and ``n`` (rows scored).

    Rows without an actual (``y`` NaN: target month after the panel's end) are not scored.

    Parameters
    ----------
    frame
        A backtest frame: :data:`~forecast.schema.FORECAST_COLUMNS` and ``y``, plus ``scale``
        and ``threshold`` for ``mase`` and ``brier`` unless ``panel`` is given.
    by
        Grouping columns, e.g. ``("model", "horizon")`` or ``("model", "unit")``.
    metrics
        Names from :data:`METRICS`, or a name -> function mapping; default every metric.
    panel, target
        When given, ``scale`` and ``threshold`` are computed from ``panel[target]``
        (:func:`add_references`).
    overall
        Also add, for each group of the other keys, a row pooled over the last key of ``by``
        and labelled ``"all"`` (with the default ``by``: each model over all horizons).

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, n, <metrics>``.
    """
    by = [by] if isinstance(by, str) else list(by)
    if metrics is None:
        metrics = METRICS
    elif not isinstance(metrics, Mapping):
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ScoringError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
        metrics = {m: METRICS[m] for m in metrics}
    validate_forecast(frame, source="backtest", columns=(*FORECAST_COLUMNS, "y", *by))
    if panel is not None:
        frame = add_references(frame, panel, target=target)
    needed = sorted({_NEEDS[m] for m in metrics if m in _NEEDS})
    _require(frame, needed, f"scoring {', '.join(m for m in metrics if m in _NEEDS)}", _REFERENCE_HINT)

    frame = frame.loc[frame["y"].notna()]
    rows = pd.DataFrame({name: fn(frame) for name, fn in metrics.items()}, index=frame.index)
    rows.insert(0, "n", 1)
    keys = frame[by]
    table = _group_mean(rows, keys, by)
    if overall and by:
        pooled = _group_mean(rows, keys[by[:-1]], by[:-1])
        pooled.insert(len(by) - 1, by[-1], "all")
        table = pd.concat([table.astype({by[-1]: object}), pooled], ignore_index=True)
    for name in metrics:
        if name in ROOT_MEAN:
            table[name] = np.sqrt(table[name])
    return table


def _group_mean(rows: pd.DataFrame, keys: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if not by:
        means = rows.mean().to_frame().T
        means["n"] = len(rows)
        return means.astype({"n": int})
    grouped = pd.concat([keys, rows], axis=1).groupby(by, sort=True, observed=True)
    table = grouped.mean()
    table["n"] = grouped.size()
    return table.reset_index()


def skill(score, benchmark_score):
    """``1 - score / benchmark_score``: 0 as good as the benchmark, 1 perfect, < 0 worse.

    For lower-is-better scores. A perfect benchmark (score 0) gives -inf for an imperfect
    model and NaN for a perfect one.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - np.divide(score, benchmark_score)


def add_skill(
    table: pd.DataFrame,
    benchmarks: Sequence[str],
    *,
    metrics: Sequence[str] | None = None,
    within: Sequence[str] = ("horizon",),
) -> pd.DataFrame:
    """Add skill against the best benchmark: ``<metric>_skill`` and ``<metric>_benchmark``.

    For each metric and each group of ``within`` (by default each horizon, and the "all"
    rows), the best benchmark is the one of ``benchmarks`` with the lowest score; every
    model's skill is measured against it, so a benchmark's own skill is <= 0.

    Parameters
    ----------
    table
        A per-model score table from :func:`score_table` (column ``model``).
    benchmarks
        Model names to take the best from, e.g. ``["zero", "last_value", "average"]``.
    metrics
        Lower-is-better metrics to add skill for; default every one in :data:`LOSSES` that
        the table has, except the per-level pinball losses.
    within
        Columns that define comparable rows (``()`` compares across the whole table).
    """
    within = [within] if isinstance(within, str) else list(within)
    _require(table, ["model", *within], "score table", "Pass within= the columns that make rows comparable, e.g. within=('unit',)")
    models = list(pd.unique(table["model"]))
    unknown = [b for b in benchmarks if b not in models]
    if unknown or not benchmarks:
        raise ScoringError(f"benchmark(s) {', '.join(unknown) or '(none given)'} not in the score table; its models are {', '.join(map(str, models))}")
    if metrics is None:
        metrics = [m for m in _SKILL_DEFAULT if m in table.columns]
    else:
        not_losses = [m for m in metrics if m not in LOSSES]
        if not_losses:
            raise ScoringError(f"no skill for {', '.join(not_losses)}: skill needs a lower-is-better score, one of {', '.join(LOSSES)}")
        _require(table, metrics, "score table")
    # With no grouping columns every row is compared with the one best benchmark.
    keys = within or ["_whole_table"]
    out = table.assign(_whole_table=0) if not within else table.copy()
    bench = out.loc[out["model"].isin(benchmarks)]
    for m in metrics:
        # The lowest score first; NaN sorts last, so a group with only NaN scores keeps NaN.
        best = bench.sort_values(m, kind="stable").drop_duplicates(keys, keep="first")
        best = best[[*keys, m, "model"]].rename(columns={m: "_best", "model": f"{m}_benchmark"})
        merged = out[keys].merge(best, on=keys, how="left")
        out[f"{m}_skill"] = skill(out[m].to_numpy(dtype=float), merged["_best"].to_numpy(dtype=float))
        out[f"{m}_benchmark"] = merged[f"{m}_benchmark"].to_numpy()
    return out.drop(columns="_whole_table", errors="ignore")


# --- threat tiers and trend: how the analyst's report classes a unit's outlook ---------------
#
# Defined here, beside escalation, so that the report, its legend and its tests read one
# definition. The words shown to readers are generated from the same constants.

__all__ += [
    "TIER_BOUNDS",
    "TIER_ESCALATION_STEP",
    "TIER_NAMES",
    "TREND_ABSOLUTE",
    "TREND_RELATIVE",
    "TREND_WINDOW",
    "escalation_definition",
    "threat_tier",
    "tier_definition",
    "tier_ranges",
    "trend",
    "trend_definition",
]

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
