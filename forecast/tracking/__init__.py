"""MLflow tracking and the model registry: the only package that imports mlflow.

``store`` (where runs go, the client, request deadlines, batched logging, provenance tags) is
the base; ``metrics`` (every score pooled, per horizon and as horizon curves), ``provenance``
(the panel as a dataset and as parameters, the process owning a run), ``signature`` and
``plots`` build on it; ``model`` (fitted forecasters as MLflow models, registering a version),
``winners`` (the parent run as the leaderboard), ``registry`` (promotion, listing, loading),
``runs`` (an experiment as a parent run with one child run per model and a final run) and
``board`` (the leaderboard across runs) on those. The names below are the package's public API.
"""

from __future__ import annotations

from forecast.tracking.board import compare
from forecast.tracking.metrics import TABLE, curve_key, horizon_key, rounded, score_metrics
from forecast.tracking.model import ForecasterModel, ModelRef, log_forecaster, to_periods
from forecast.tracking.provenance import OWNER_TAG, dataset_name, owner, owner_is_gone, panel_params, source_names
from forecast.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    Decision,
    RegisteredForecaster,
    list_models,
    list_versions,
    load_registered,
    parse_model_ref,
    promote,
)
from forecast.tracking.runs import ChildRun, ExperimentTracker, eval_window
from forecast.tracking.store import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    TrackingError,
    check_reachable,
    connect,
    default_artifact_location,
    flatten_params,
    log_batch,
    panel_digest,
    require_store,
    require_writable,
    resolve_tracking_uri,
    server_errors,
    sqlite_path,
)
from forecast.tracking.winners import VIEW_KEY, winners_by_horizon
from forecast.errors import NoSuchModel, NotMlflowServer, ServerTimeout

__all__ = [
    "CHALLENGER", "CHAMPION", "ChildRun", "Decision", "EXPERIMENT_KIND_TAG", "ExperimentTracker",
    "ForecasterModel", "MODEL_TRAINING", "ModelRef", "NoSuchModel", "NotMlflowServer", "OWNER_TAG", "RegisteredForecaster",
    "ServerTimeout", "TABLE", "TrackingError", "VIEW_KEY", "check_reachable", "compare", "connect", "curve_key", "dataset_name",
    "default_artifact_location", "eval_window", "flatten_params", "horizon_key", "list_models",
    "list_versions", "load_registered", "log_batch", "log_forecaster", "owner", "owner_is_gone", "panel_digest",
    "panel_params",
    "parse_model_ref", "promote", "require_store", "require_writable", "resolve_tracking_uri", "rounded",
    "score_metrics", "server_errors", "source_names", "sqlite_path", "to_periods", "winners_by_horizon",
]
