"""Column names and validators of the two frames that pass between stages.

* The **panel** (features -> models): ``unit, month, incidents, deaths, <covariates>``; see
  :mod:`features.panel`, whose :func:`~features.panel_files.validate_panel` is re-exported here.
* The **forecast frame** (models -> scores, reports, ledger): one row per unit, origin and
  target month, with the predictive mean and quantiles. Backtests add the actual ``y``.

Validators raise with a precise message; they never repair.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.panel_files import validate_panel
from forecast.errors import ForecastError, ScoringError

__all__ = [
    "MAX_HORIZON",
    "FORECAST_COLUMNS",
    "KEYS",
    "QUANTILES",
    "QUANTILE_COLUMNS",
    "TARGETS",
    "ForecastError",
    "quantile_column",
    "validate_forecast",
    "validate_panel", "month_strings", "require_columns", "check_levels"]

KEYS = ("unit", "month")
TARGETS = ("incidents", "deaths")
#: The longest horizon any command forecasts (months ahead).
MAX_HORIZON = 36
#: Probability levels of the predictive quantiles every model reports.
QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)


def quantile_column(level: float) -> str:
    """``0.05 -> 'q05'``, ``0.5 -> 'q50'``."""
    return f"q{round(level * 100):02d}"


QUANTILE_COLUMNS = tuple(quantile_column(q) for q in QUANTILES)
#: What a model's ``predict`` returns.
PREDICTION_COLUMNS = ("unit", "month", "horizon", "mean", *QUANTILE_COLUMNS)
#: The forecast frame written by ``forecast predict`` and the backtests.
FORECAST_COLUMNS = ("unit", "origin", "month", "horizon", "model", "mean", *QUANTILE_COLUMNS)


def validate_forecast(frame: pd.DataFrame, *, source: str = "forecast", columns=PREDICTION_COLUMNS) -> pd.DataFrame:
    """Check a forecast frame: columns present, values finite, non-negative, quantiles monotone.

    Returns the frame unchanged so calls can be chained.

    Raises
    ------
    ForecastError
        Naming the first offending row (unit, month) and column.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ForecastError(f"{source}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        return frame
    values = frame[["mean", *QUANTILE_COLUMNS]].to_numpy(dtype=float)

    def where(i: int) -> str:
        row = frame.iloc[i]
        return f"{source}: unit {row['unit']!r}, month {row['month']}"

    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ForecastError(f"{where(i)}: {(['mean', *QUANTILE_COLUMNS])[j]} is {values[i, j]}")
    neg = values < 0
    if neg.any():
        i, j = np.argwhere(neg)[0]
        raise ForecastError(f"{where(i)}: {(['mean', *QUANTILE_COLUMNS])[j]} is negative ({values[i, j]:.4g})")
    q = values[:, 1:]
    # A tiny tolerance: quantiles computed in floating point may differ in the last bits.
    crossing = np.diff(q, axis=1) < -1e-9
    if crossing.any():
        i, j = np.argwhere(crossing)[0]
        raise ForecastError(
            f"{where(i)}: quantiles cross ({QUANTILE_COLUMNS[j]} = {q[i, j]:.4g} > "
            f"{QUANTILE_COLUMNS[j + 1]} = {q[i, j + 1]:.4g})"
        )
    if "horizon" in frame and (frame["horizon"] < 1).any():
        i = int(np.flatnonzero((frame["horizon"] < 1).to_numpy())[0])
        raise ForecastError(f"{where(i)}: horizon {frame['horizon'].iloc[i]} is below 1")
    return frame


def month_strings(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """A copy with month columns as ``YYYY-MM`` text, as CSV, Parquet, JSON and MLflow datasets hold them:
    ``columns`` (those present), else every column of monthly periods."""
    if columns is None:
        columns = tuple(c for c in frame.columns if isinstance(frame[c].dtype, pd.PeriodDtype))
    return frame.assign(**{c: frame[c].astype(str) for c in columns if c in frame})


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str, hint: str = "") -> None:
    """Raise :class:`ScoringError` naming the columns of ``columns`` that ``frame`` lacks (``what``: whose)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ScoringError(
            f"{what}: missing column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
            + (f". {hint}" if hint else "")
        )


def check_levels(levels, k: int) -> np.ndarray:
    """``levels`` as an array, checked: ``k`` of them, strictly increasing inside (0, 1)."""
    tau = np.asarray(levels, dtype=float).reshape(-1)
    if len(tau) != k:
        raise ScoringError(f"{len(tau)} quantile level(s) for {k} quantile column(s); give one level per column")
    if not (np.all((tau > 0) & (tau < 1)) and np.all(np.diff(tau) > 0)):
        raise ScoringError(f"quantile levels must increase strictly inside (0, 1); got {tau.tolist()}")
    return tau
