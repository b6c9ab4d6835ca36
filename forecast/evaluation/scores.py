"""Scores of backtest forecasts, as conflict forecasting uses them (ViEWS, ACLED CAST).

Every metric is a plain function ``fn(frame) -> numpy.ndarray`` with one value per row of a
backtest frame (``unit, origin, month, horizon, model, mean, q05..q95, y`` and, for two of
them, ``scale`` and ``threshold``). :data:`METRICS` (a dict) is the registry;
:func:`score_table` averages the per-row values over groups. All scores are lower-is-better
except the coverages, which are reported as they are (a well-calibrated model has 0.50 and
0.90).

This room holds the per-row scoring rules, the :data:`METRICS` registry, the reference levels
the scores need from the history (:func:`reference_levels`, :func:`naive_scale`,
:func:`add_references`), aggregation (:func:`score_table`) and skill (:func:`skill`,
:func:`add_skill`). The escalation event, the predictive CDF the Brier score reads, and the
history helpers are in :mod:`forecast.evaluation.escalation`, below this module.

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
                quantiles (:func:`~forecast.evaluation.escalation.exceedance_probability`); the
                event is an escalation
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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd
import scoringrules as sr

from forecast.evaluation.escalation import (
    at_origin,
    escalated,
    exceedance_probability,
    history_until,
    threshold_table,
    wide_history,
)
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, QUANTILES, check_levels, require_columns, validate_forecast
from forecast.errors import ScoringError

__all__ = [
    "LOSSES",
    "METRICS",
    "MIN_SCALE",
    "ROOT_MEAN",
    "ScoringError",  # defined in forecast.evaluation.escalation, which raises it too
    "absolute_error",
    "add_references",
    "add_skill",
    "brier",
    "coverage_50",
    "coverage_90",
    "crps",
    "crps_from_quantiles",
    "interval_score_90",
    "naive_scale",
    "pinball",
    "pinball_level",
    "reference_levels",
    "scaled_absolute_error",
    "score_table",
    "skill",
    "squared_error",
    "squared_log_error",
]

#: Floor of the MASE scale, in incidents per month. Applied as ``max(scale, MIN_SCALE)``, not
#: only at zero: a unit with one change in 100 months has scale 0.01 and would make every
#: error of a fraction of an incident count a hundredfold. One incident is the smallest
#: error a count can make, so below it the naive error says nothing about the unit's scale.
MIN_SCALE = 1.0

#: scoringrules' NumPy backend (see the module docstring for why it is pinned).
_BACKEND = "numpy"
_LEVELS = np.asarray(QUANTILES, dtype=float)


# --- input helpers ---------------------------------------------------------------------------

def _column(frame: pd.DataFrame, name: str, what: str, hint: str = "") -> np.ndarray:
    require_columns(frame, [name], what, hint)
    return frame[name].to_numpy(dtype=float)


def _quantiles(frame: pd.DataFrame, what: str) -> np.ndarray:
    require_columns(frame, QUANTILE_COLUMNS, what)
    return frame[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)  # (n, 7)


def _unscored(y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """NaN where there is no actual: indicators would otherwise read a missing y as a miss."""
    return np.where(np.isnan(y), np.nan, values)


_REFERENCE_HINT = "Add them with forecast.evaluation.scores.add_references(frame, panel), or pass panel= to score_table"


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
    tau = check_levels(levels, q.shape[1])
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


# --- references from the history: MASE scale and escalation threshold ------------------------

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
    wide = wide_history(history, target)
    # Row t: the naive one-step error |y_t - y_(t-1)|; the expanding mean skips the NaN of the
    # first month (and of gaps), so the scale at T averages the errors of months 2..T.
    scale = wide.diff().abs().expanding(min_periods=1).mean()
    scale = np.fmax(scale, floor)  # fmax: a unit with one month (NaN scale) gets the floor
    return scale, threshold_table(wide)


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
    scale, _ = reference_levels(history_until(history, origin), target=target, floor=floor)
    return at_origin(scale, origin, "scale")


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
    require_columns(frame, ["unit", "origin"], "backtest frame")
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
    require_columns(frame, needed, f"scoring {', '.join(m for m in metrics if m in _NEEDS)}", _REFERENCE_HINT)

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
    require_columns(table, ["model", *within], "score table", "Pass within= the columns that make rows comparable, e.g. within=('unit',)")
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
        require_columns(table, metrics, "score table")
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
