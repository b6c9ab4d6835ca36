"""A backtest's scores as MLflow metrics: per-horizon curves, a few headline numbers, one table.

MLflow draws a metric's history against its step. With step = horizon, the chart of
``by_horizon/crps`` is the CRPS-by-horizon curve, and the charts of the experiment overlay the
curves of every run; the ``by_horizon/`` prefix puts those charts in one section of the UI. The
headline metrics are the pooled scores (the score table's ``all`` row), the ones the runs table
sorts by. Every score of the table, at every horizon, is in the table artifact
:data:`TABLE`, which the run page and the compare view show.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from mlflow.entities import Metric

from forecast.errors import TrackingError

__all__ = ["CURVE_SCORES", "HEADLINE_SCORES", "TABLE", "curve_key", "curve_metrics", "headline_metrics",
           "score_metrics"]

#: Scores logged as one history each, step = horizon (those the score table has).
CURVE_SCORES = ("crps", "mae", "coverage90", "brier", "crps_skill")
#: Pooled scores logged as plain metrics (those the score table has).
HEADLINE_SCORES = ("crps", "crps_skill", "mae", "coverage90", "brier")
#: The table artifact of the full score table: at the run's top level, where the compare view
#: of the MLflow UI looks for artifacts the compared runs have in common.
TABLE = "scores_by_horizon.json"


def curve_key(score: str) -> str:
    """The metric key of a score's horizon curve: ``by_horizon/crps``."""
    return f"by_horizon/{score}"


def check_scores(scores: pd.DataFrame) -> None:
    """A score table of one model (``horizon, n, <scores>``, with the pooled ``all`` row)."""
    if "horizon" not in scores:
        raise TrackingError(f"scores need a 'horizon' column (score_table(..., by=('model', 'horizon'))); "
                            f"got columns {', '.join(map(str, scores.columns))}")
    if "model" in scores and scores["model"].nunique() > 1:
        raise TrackingError(f"scores hold several models ({', '.join(map(str, scores['model'].unique()))}); "
                            f"log each model's scores in its own child run")


def _pooled(scores: pd.DataFrame) -> pd.Series | None:
    rows = scores.loc[scores["horizon"].astype(str) == "all"]
    return rows.iloc[0] if len(rows) else None


def headline_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """The pooled scores of :data:`HEADLINE_SCORES` as plain metrics; NaN left out (MLflow
    would store it, but it makes leaderboards sort oddly)."""
    check_scores(scores)
    pooled = _pooled(scores)
    if pooled is None:
        return {}
    out = {}
    for name in HEADLINE_SCORES:
        if name in pooled and np.isfinite(float(pooled[name])):
            out[name] = float(pooled[name])
    return out


def curve_metrics(scores: pd.DataFrame, scores_shown: tuple[str, ...] = CURVE_SCORES) -> list[Metric]:
    """One metric history per score of ``scores_shown``: value at step = horizon."""
    check_scores(scores)
    per_h = scores.loc[scores["horizon"].astype(str) != "all"]
    now = int(time.time() * 1000)
    out = []
    for name in scores_shown:
        if name not in per_h:
            continue
        for h, value in zip(per_h["horizon"], per_h[name]):
            if np.isfinite(float(value)):
                out.append(Metric(curve_key(name), float(value), now, int(h)))
    return out


def score_metrics(scores: pd.DataFrame) -> tuple[dict[str, float], list[Metric]]:
    """Headline metrics and horizon curves of a score table (see the module docstring)."""
    return headline_metrics(scores), curve_metrics(scores)
