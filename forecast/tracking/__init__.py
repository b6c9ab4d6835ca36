"""MLflow tracking and the model registry: the only package that imports mlflow.

``store`` (where runs go, the client, batched logging, provenance) is the base; ``registry``
(fitted forecasters as MLflow models, promotion) and ``runs`` (an experiment as a parent run
with one child run per model; the leaderboard) build on it; ``plots`` draws run artifacts.
The names below are the package's public API.
"""

from __future__ import annotations

from forecast.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    Decision,
    ForecasterModel,
    NoSuchModel,
    RegisteredForecaster,
    list_versions,
    load_registered,
    log_forecaster,
    parse_model_ref,
    promote,
    to_periods,
    to_strings,
)
from forecast.tracking.runs import ChildRun, ExperimentTracker, ModelRef, compare, eval_window
from forecast.tracking.store import (
    TrackingError,
    check_reachable,
    connect,
    default_artifact_location,
    flatten_params,
    log_batch,
    panel_digest,
    resolve_tracking_uri,
    score_metrics,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "ChildRun", "Decision", "ExperimentTracker", "ForecasterModel", "ModelRef",
    "NoSuchModel", "RegisteredForecaster", "TrackingError", "check_reachable", "compare", "connect",
    "default_artifact_location", "eval_window", "flatten_params", "list_versions", "load_registered",
    "log_batch", "log_forecaster", "panel_digest", "parse_model_ref", "promote", "resolve_tracking_uri",
    "score_metrics", "to_periods", "to_strings",
]
