"""A backtest's scores as MLflow metrics: pooled, one flat key per horizon, horizon curves, one table.

Every score of the score table is logged (the experiment file's ``[scores] metrics``, and the
``<metric>_skill`` columns once skill is known), three ways:

``crps``            the score pooled over horizons (the table's ``all`` row);
``crps_h1``..       one flat metric per horizon, so that the runs table of the MLflow UI can
                    show and sort by any horizon;
``by_horizon/crps`` one history, step = horizon: the chart view draws it as the score-by-horizon
                    curve and overlays the curves of every run (the ``by_horizon/`` prefix puts
                    those charts in one section of the UI).

Values are rounded to :data:`SIGNIFICANT` significant digits: the MLflow UI prints a metric as
it is stored, and 16 digits hide the ones that matter. The score table artifact :data:`TABLE`
keeps every score at full precision.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from mlflow.entities import Metric

from forecast.errors import TrackingError

__all__ = ["SIGNIFICANT", "TABLE", "curve_key", "curve_metrics", "headline_metrics", "horizon_key", "horizon_metrics",
           "pooled_score", "rounded", "score_columns", "score_metrics"]

#: Significant digits of a logged metric: 0.13130 and 0.13145 stay apart, 0.1313045678 does not clutter.
SIGNIFICANT = 5
#: The table artifact of the full score table: at the run's top level, where the compare view
#: of the MLflow UI looks for artifacts the compared runs have in common.
TABLE = "scores_by_horizon.json"
#: Columns of a score table that are not scores.
_NOT_SCORES = ("model", "horizon", "n", "unit")


def rounded(value: float, digits: int = SIGNIFICANT) -> float:
    """``value`` to ``digits`` significant digits (0.131304567 -> 0.13130; 1234.5678 -> 1234.6)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def curve_key(score: str) -> str:
    """The metric key of a score's horizon curve: ``by_horizon/crps``."""
    return f"by_horizon/{score}"


def horizon_key(score: str, horizon: int) -> str:
    """The flat metric key of a score at one horizon: ``crps_h1``."""
    return f"{score}_h{int(horizon)}"


def check_scores(scores: pd.DataFrame) -> None:
    """A score table of one model (``horizon, n, <scores>``, with the pooled ``all`` row)."""
    if "horizon" not in scores:
        raise TrackingError(f"scores need a 'horizon' column (score_table(..., by=('model', 'horizon'))); "
                            f"got columns {', '.join(map(str, scores.columns))}")
    if "model" in scores and scores["model"].nunique() > 1:
        raise TrackingError(f"scores hold several models ({', '.join(map(str, scores['model'].unique()))}); "
                            f"log each model's scores in its own child run")


def score_columns(scores: pd.DataFrame) -> list[str]:
    """The score columns of a score table, in its order: every numeric column but ``n``
    (the ``<metric>_benchmark`` columns name models and are left out)."""
    return [str(c) for c in scores.columns
            if c not in _NOT_SCORES and pd.api.types.is_numeric_dtype(scores[c]) and not pd.api.types.is_bool_dtype(scores[c])]


def _per_horizon(scores: pd.DataFrame) -> pd.DataFrame:
    per_h = scores.loc[scores["horizon"].astype(str) != "all"]
    return per_h.assign(horizon=per_h["horizon"].astype(int))


def pooled_score(scores: pd.DataFrame, name: str = "crps") -> float | None:
    """A score pooled over horizons, at full precision (None when the table lacks it)."""
    rows = scores.loc[scores["horizon"].astype(str) == "all"]
    if rows.empty or name not in rows:
        return None
    value = float(rows.iloc[0][name])
    return value if math.isfinite(value) else None


def headline_metrics(scores: pd.DataFrame, shown: list[str] | None = None) -> dict[str, float]:
    """Each score pooled over horizons (the ``all`` row), rounded; NaN left out (MLflow would
    store it, but it makes leaderboards sort oddly)."""
    check_scores(scores)
    pooled = scores.loc[scores["horizon"].astype(str) == "all"]
    if pooled.empty:
        return {}
    row = pooled.iloc[0]
    return {name: rounded(row[name]) for name in (shown or score_columns(scores)) if np.isfinite(float(row[name]))}


def horizon_metrics(scores: pd.DataFrame, shown: list[str] | None = None) -> dict[str, float]:
    """Each score at each horizon as a flat key (``crps_h1``), rounded; NaN left out."""
    check_scores(scores)
    per_h = _per_horizon(scores)
    return {horizon_key(name, h): rounded(value) for name in (shown or score_columns(scores))
            for h, value in zip(per_h["horizon"], per_h[name]) if np.isfinite(float(value))}


def curve_metrics(scores: pd.DataFrame, shown: list[str] | None = None) -> list[Metric]:
    """One metric history per score: value at step = horizon, rounded."""
    check_scores(scores)
    per_h = _per_horizon(scores)
    now = int(time.time() * 1000)
    return [Metric(curve_key(name), rounded(value), now, int(h)) for name in (shown or score_columns(scores))
            for h, value in zip(per_h["horizon"], per_h[name]) if np.isfinite(float(value))]


def score_metrics(scores: pd.DataFrame, shown: list[str] | None = None) -> tuple[dict[str, float], list[Metric]]:
    """Plain metrics (pooled and per horizon) and horizon curves of the scores ``shown``
    (default every score of the table): see the module docstring."""
    return {**headline_metrics(scores, shown), **horizon_metrics(scores, shown)}, curve_metrics(scores, shown)
