"""MLflow tracking and the model registry: the only package that imports mlflow.

``store`` (where runs go, the client, batched logging, provenance tags) is the base;
``metrics`` (scores as horizon curves and headline metrics), ``provenance`` (the panel as a
dataset, the process owning a run), ``signature`` and ``plots`` build on it; ``registry``
(fitted forecasters as MLflow models, promotion), ``runs`` (an experiment as a parent run
with one child run per model and a final run) and ``board`` (the leaderboard) on those.
The names below are the package's public API.
"""

from __future__ import annotations

from forecast.tracking.board import compare
from forecast.tracking.metrics import CURVE_SCORES, HEADLINE_SCORES, TABLE, curve_key, score_metrics
from forecast.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    Decision,
    ForecasterModel,
    ModelRef,
    NoSuchModel,
    RegisteredForecaster,
    list_models,
    list_versions,
    load_registered,
    log_forecaster,
    parse_model_ref,
    promote,
    to_periods,
    to_strings,
)
from forecast.tracking.runs import ChildRun, ExperimentTracker, eval_window
from forecast.tracking.store import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    TrackingError,
    check_reachable,
    connect,
    decimals,
    default_artifact_location,
    flatten_params,
    log_batch,
    panel_digest,
    require_store,
    resolve_tracking_uri,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "CURVE_SCORES", "ChildRun", "Decision", "EXPERIMENT_KIND_TAG", "ExperimentTracker",
    "ForecasterModel", "HEADLINE_SCORES", "MODEL_TRAINING", "ModelRef", "NoSuchModel", "RegisteredForecaster",
    "TABLE", "TrackingError", "check_reachable", "compare", "connect", "curve_key", "decimals",
    "default_artifact_location", "eval_window", "flatten_params", "list_models", "list_versions",
    "load_registered", "log_batch", "log_forecaster", "panel_digest", "parse_model_ref", "promote",
    "require_store", "resolve_tracking_uri", "score_metrics", "to_periods", "to_strings",
]
