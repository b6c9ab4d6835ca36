"""Experiment tracking in MLflow (with :mod:`forecast.tracking.registry`, the only modules importing mlflow).

One experiment file is one MLflow experiment. Running it makes a *parent* run (the
configuration, the input panel with its content hash and vintage, the code version) and one
*nested child* run per model (its backtest scores as metrics, the forecasts and plots as
artifacts, optionally the fitted model). Runs always end: FINISHED when the block completes,
FAILED when an exception leaves it (KILLED on Ctrl-C), never left RUNNING.

Naming on the MLflow side:

============================ ==============================================================
run tag ``forecast.kind``    ``experiment`` (parent) or ``backtest`` (child); also an
                             experiment tag, so :func:`compare` finds our experiments
run tag ``forecast.model``   the model's registry name (``moving_average``)
run tag ``forecast.label``   the display name of the model in the experiment file
metrics ``<score>_h<H>``     a score at horizon H; ``<score>`` alone is pooled over horizons
version tag ``forecast.crps`` overall CRPS of the backtest of the run that logged the model
version tag ``forecast.eval_window``  the backtest's origins and horizons, e.g.
                             ``origins 2017-01..2018-06, horizons 1..6``
============================ ==============================================================
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.tracking.plots import PLOTTED_SCORES, plot_fan, plot_scores_by_horizon
from forecast.tracking.registry import log_forecaster
from forecast.tracking.store import (
    KIND_BACKTEST,
    KIND_EXPERIMENT,
    TrackingError,
    check_reachable,
    default_artifact_location,
    flatten_params,
    git_commit,
    log_batch,
    month_strings,
    package_versions,
    panel_digest,
    score_metrics,
    slug,
)

_FAN_UNITS = 3


def _dataset_source(raw: str | None):
    """MLflow's source for a path or URL; any other text (``synthetic://seed=1``) is kept as a
    tag of a ``code`` source, since MLflow refuses sources it cannot resolve."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    if raw:
        try:
            return resolve_dataset_source(str(raw))
        except MlflowException:
            pass
    return CodeDatasetSource(tags={"forecast.panel_source": str(raw or "unknown")})

@dataclass(frozen=True)
class ModelRef:
    """A logged model: its URI, and the registered name and version when registered."""

    model_uri: str
    registered_name: str | None = None
    version: str | None = None

def eval_window(forecasts: pd.DataFrame) -> str:
    """The evaluation window of a backtest: first and last origin, and the horizons."""
    origins = forecasts["origin"].astype(str)
    return (f"origins {origins.min()}..{origins.max()}, "
            f"horizons {int(forecasts['horizon'].min())}..{int(forecasts['horizon'].max())}")

class ChildRun:
    """A model's nested run; returned by :meth:`ExperimentTracker.child_run`."""

    def __init__(self, client: MlflowClient, run_id: str, label: str, model: str | None) -> None:
        self.client = client
        self.run_id = run_id
        self.label = label
        self.model = model
        self.crps_: float | None = None
        self.eval_window_: str | None = None

    def log_backtest(self, forecasts: pd.DataFrame, scores: pd.DataFrame) -> dict[str, float]:
        """Log a model's backtest: scores as metrics, forecasts and scores as files, plots.

        Parameters
        ----------
        forecasts
            The backtest frame of this model (forecast columns and ``y``).
        scores
            ``score_table(forecasts)`` of this model: ``model, horizon, n, <scores>`` with the
            pooled ``all`` row.

        Returns
        -------
        dict
            The metrics logged (``crps_h1``, ..., ``crps``, ...).
        """
        metrics = score_metrics(scores)
        model = self.model
        if model is None and "model" in forecasts and forecasts["model"].nunique() == 1:
            model = str(forecasts["model"].iloc[0])
        self.eval_window_ = eval_window(forecasts)
        tags = {"forecast.label": self.label, "forecast.eval_window": self.eval_window_}
        if model:
            tags["forecast.model"] = model
        log_batch(self.client, self.run_id, metrics=metrics, tags=tags)
        self.crps_ = metrics.get("crps")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            month_strings(forecasts).to_parquet(tmp / "forecasts.parquet", index=False)
            scores.to_csv(tmp / "scores.csv", index=False)
            self.client.log_artifact(self.run_id, str(tmp / "forecasts.parquet"), "backtest")
            self.client.log_artifact(self.run_id, str(tmp / "scores.csv"), "backtest")
            plots = tmp / "plots"
            plots.mkdir()
            if any(s in scores for s in PLOTTED_SCORES):
                plot_scores_by_horizon(scores, plots / "scores_by_horizon.png", self.label)
            if "y" in forecasts:
                h1 = forecasts.loc[forecasts["horizon"] == 1]
                top = h1.groupby("unit")["y"].sum().sort_values(ascending=False, kind="stable")
                for unit in top.index[:_FAN_UNITS]:
                    plot_fan(forecasts, unit, plots / f"fan_{slug(unit)}.png", self.label)
            self.client.log_artifacts(self.run_id, str(plots), "plots")
        return metrics

    def log_model(self, forecaster, history: pd.DataFrame, horizon: int = 6,
                  registered_name: str | None = None, *, window: str | None = None) -> ModelRef:
        """Log the fitted ``forecaster`` as a pyfunc model, and register it when a name is given.

        The registered version is tagged with this run's overall ``forecast.crps`` and the
        ``forecast.eval_window`` (from :meth:`log_backtest`, or ``window``), which is what
        :func:`forecast.tracking.registry.promote` compares.
        """
        window = window or self.eval_window_
        info = log_forecaster(forecaster, history, horizon=horizon, registered_name=registered_name)
        if registered_name is None:
            return ModelRef(info.model_uri)
        version = str(info.registered_model_version)
        tags = {"forecast.model": forecaster.name, "forecast.label": self.label,
                "forecast.origin": str(forecaster.origin_), "forecast.run_id": self.run_id}
        if self.crps_ is not None:
            tags["forecast.crps"] = repr(self.crps_)
        if window:
            tags["forecast.eval_window"] = window
        for key, value in tags.items():
            self.client.set_model_version_tag(registered_name, version, key, value)
        return ModelRef(info.model_uri, registered_name, version)

class ExperimentTracker:
    """Log an experiment file's runs to the MLflow experiment of the same name.

    Parameters
    ----------
    experiment_name
        Usually the experiment file's stem; the experiment is created on first use.
    tracking_uri
        From :func:`resolve_tracking_uri`; checked with :func:`check_reachable` first.
    artifact_location
        Where a *new* experiment stores artifacts. Default: the server's choice for HTTP
        stores; for a SQLite file, ``mlartifacts/<experiment>`` beside the database (MLflow
        would use ``./mlruns`` in whatever the working directory happens to be).
    """

    def __init__(self, experiment_name: str, tracking_uri: str, *, artifact_location: str | None = None,
                 timeout: float = 5.0) -> None:
        check_reachable(tracking_uri, timeout=timeout)
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None and artifact_location is None:
            artifact_location = default_artifact_location(tracking_uri, experiment_name)
        if experiment is None:
            self.experiment_id = self.client.create_experiment(
                experiment_name, artifact_location=artifact_location,
                tags={"forecast.kind": KIND_EXPERIMENT})
        else:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingError(f"MLflow experiment {experiment_name!r} at {tracking_uri} is deleted; "
                                    f"restore it (mlflow experiments restore) or rename the experiment")
            self.experiment_id = experiment.experiment_id
        self.parent_run_id: str | None = None

    def _activate(self) -> None:
        # pyfunc.log_model and log_input work on the active (fluent) run, which follows
        # the global URIs: point them at this tracker's store.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    @contextmanager
    def _run(self, **kwargs) -> Iterator[mlflow.ActiveRun]:
        run = mlflow.start_run(experiment_id=self.experiment_id, **kwargs)
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")

    @contextmanager
    def parent_run(self, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None, *,
                   config_path: Path | None = None, panel: pd.DataFrame | None = None,
                   panel_source: str | None = None,
                   panel_metadata: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The run of one execution of the experiment file; yields its run id.

        Logs the flattened ``params``, ``tags`` plus the git commit, package versions and
        ``forecast.kind=experiment``, the experiment file, and the panel as an MLflow dataset
        input whose digest is the start of its SHA-256 (the full hash is the tag
        ``forecast.panel_sha256``; ``panel_metadata["vintage"]`` the tag ``forecast.data_vintage``).
        """
        if mlflow.active_run() is not None:
            raise TrackingError(f"an MLflow run ({mlflow.active_run().info.run_id}) is already active; "
                                f"end it before starting experiment {self.experiment_name!r}")
        self._activate()
        metadata = dict(panel_metadata or {})
        all_tags = {"forecast.kind": KIND_EXPERIMENT, "forecast.git_commit": git_commit(),
                    **{f"forecast.version.{k}": v for k, v in package_versions().items()},
                    **{k: str(v) for k, v in (tags or {}).items()}}
        if panel is not None:
            all_tags["forecast.panel_sha256"] = panel_digest(panel)
            all_tags["forecast.data_vintage"] = str(metadata.get("vintage", "unknown"))
        with self._run(run_name=run_name) as run:
            run_id = run.info.run_id
            self.parent_run_id = run_id
            log_batch(self.client, run_id, params=flatten_params(params), tags=all_tags)
            if config_path is not None:
                self.client.log_artifact(run_id, str(config_path), "config")
            if panel is not None:
                self._log_panel(panel, panel_source, metadata, all_tags["forecast.panel_sha256"])
            try:
                yield run_id
            finally:
                self.parent_run_id = None

    def _log_panel(self, panel: pd.DataFrame, source: str | None, metadata: dict, sha256: str) -> None:
        dataset = mlflow.data.from_pandas(
            month_strings(panel), source=_dataset_source(source),
            name=str(metadata.get("name", "panel")),
            # MLflow stores at most 36 characters of digest; the full hash is a run tag.
            digest=sha256[:32])
        mlflow.log_input(dataset, context="training", tags={
            "forecast.panel_sha256": sha256, "forecast.data_vintage": str(metadata.get("vintage", "unknown"))})

    @contextmanager
    def child_run(self, label: str, params: Mapping[str, Any] | None = None, *,
                  model: str | None = None) -> Iterator[ChildRun]:
        """A nested run for one model of the experiment (``model``: its registry name)."""
        if self.parent_run_id is None:
            raise TrackingError("child_run must be used inside parent_run")
        self._activate()
        params = dict(params or {})
        model = model or (str(params["model"]) if "model" in params else None)
        tags = {"forecast.kind": KIND_BACKTEST, "forecast.label": label}
        if model:
            tags["forecast.model"] = model
        with self._run(run_name=label, nested=True, tags=tags) as run:
            run_id = run.info.run_id
            log_batch(self.client, run_id, params=flatten_params(params))
            yield ChildRun(self.client, run_id, label, model)

_LEADERBOARD = ("experiment", "run_name", "label", "model", "crps", "mae", "coverage90", "status",
                "start_time", "run_id")

def compare(experiment_name: str | None, tracking_uri: str) -> pd.DataFrame:
    """Leaderboard of the model runs of one experiment (or of every tracked experiment).

    Returns
    -------
    pandas.DataFrame
        ``experiment, run_name, label, model, crps, mae, coverage90, status, start_time,
        run_id``, sorted by ``crps`` (runs without a score last).
    """
    check_reachable(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    if experiment_name is not None:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            known = [e.name for e in client.search_experiments()]
            raise TrackingError(f"no MLflow experiment {experiment_name!r} at {tracking_uri}; "
                                f"it has {', '.join(sorted(known)) or 'none'}")
        experiments = [experiment]
    else:
        experiments = client.search_experiments(filter_string=f"tags.`forecast.kind` = '{KIND_EXPERIMENT}'")
    names = {e.experiment_id: e.name for e in experiments}
    rows: list[dict] = []
    token = None
    while names:
        page = client.search_runs(list(names), filter_string=f"tags.`forecast.kind` = '{KIND_BACKTEST}'",
                                  max_results=1000, page_token=token)
        for run in page:
            m, t = run.data.metrics, run.data.tags
            rows.append({
                "experiment": names[run.info.experiment_id], "run_name": run.info.run_name,
                "label": t.get("forecast.label"), "model": t.get("forecast.model"),
                "crps": m.get("crps", np.nan), "mae": m.get("mae", np.nan),
                "coverage90": m.get("coverage90", np.nan), "status": run.info.status,
                "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
                "run_id": run.info.run_id,
            })
        token = page.token
        if not token:
            break
    out = pd.DataFrame(rows, columns=list(_LEADERBOARD))
    return out.sort_values(["crps", "start_time"], na_position="last", kind="stable").reset_index(drop=True)
