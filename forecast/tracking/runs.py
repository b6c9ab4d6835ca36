"""Experiment tracking in MLflow: an experiment file as a parent run with one child run per model.

One experiment file is one MLflow experiment, which opens on the model-training view of the
MLflow 3 UI. Running it makes a *parent* run (the configuration, the input panel with its
content hash and vintage, the code version), one *nested child* run per model (its backtest
scores as curves over the horizon and headline metrics, the full score table, the forecasts
and plots) and a *final* run (the best model refitted on all the data, as an MLflow model,
with the backtest scores it was chosen on). Every run carries the panel as a dataset input,
the git commit in MLflow's source fields, the experiment file's description and every
hyperparameter, defaults included. Runs always end: FINISHED when the block completes, FAILED
when an exception leaves it (KILLED on Ctrl-C); a run whose server vanished before it could be
closed is closed as FAILED by the next tracker of its experiment (see :class:`ExperimentTracker`).

Naming on the MLflow side:

============================== ============================================================
run tag ``forecast.kind``      ``experiment`` (parent), ``backtest`` (child) or ``final``;
                               ``experiment`` is also an experiment tag, so :func:`compare`
                               finds our experiments
run tag ``forecast.model``     the model's registry name (``moving_average``)
run tag ``forecast.label``     the display name of the model in the experiment file
``forecast.final_run_id``      on a backtest run: the final run that refits its model
``forecast.backtest_run_id``   on a final run (and its registered version): the backtest run
metrics ``by_horizon/<score>`` a score's history, step = horizon (:mod:`.metrics`)
metrics ``<score>``            the score pooled over horizons
version tag ``forecast.crps``  overall CRPS of the backtest of the model
version tag ``forecast.eval_window``  the backtest's origins and horizons, e.g.
                               ``origins 2017-01..2018-06, horizons 1..6``
============================== ============================================================
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient

from forecast.tracking.metrics import CURVE_SCORES, TABLE, curve_metrics, headline_metrics, score_metrics
from forecast.tracking.plots import PLOTTED_SCORES, plot_fan, plot_scores_by_horizon
from forecast.tracking.provenance import OWNER_TAG, owner, owner_is_gone, panel_dataset
from forecast.tracking.registry import ModelRef, log_forecaster, tag_version
from forecast.tracking.store import (
    EXPERIMENT_KIND_TAG,
    KIND_BACKTEST,
    KIND_EXPERIMENT,
    KIND_FINAL,
    MODEL_TRAINING,
    SERVER_ERRORS,
    TrackingError,
    check_reachable,
    default_artifact_location,
    first_line,
    flatten_params,
    log_batch,
    month_strings,
    new_client,
    package_versions,
    panel_digest,
    server_errors,
    slug,
    source_tags,
)

__all__ = ["ChildRun", "ExperimentTracker", "eval_window"]

_FAN_UNITS = 3


def eval_window(forecasts: pd.DataFrame) -> str:
    """The evaluation window of a backtest: first and last origin, and the horizons."""
    origins = forecasts["origin"].astype(str)
    return (f"origins {origins.min()}..{origins.max()}, "
            f"horizons {int(forecasts['horizon'].min())}..{int(forecasts['horizon'].max())}")


def _write_table(client: MlflowClient, run_id: str, table: pd.DataFrame, name: str = TABLE) -> None:
    """Log ``table`` as MLflow's table artifact ``name``, replacing one logged before
    (``log_table`` appends to an existing file; the tag that marks it a table stays)."""
    # Text columns as plain objects: the horizon column mixes numbers and "all".
    table = table.astype({c: object for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])})
    paths = {f.path for f in client.list_artifacts(run_id)}
    if name not in paths:
        client.log_table(run_id, table, name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        table.to_json(path, orient="split", index=False, date_format="iso")
        client.log_artifact(run_id, str(path))


class ChildRun:
    """A model's nested run; returned by :meth:`ExperimentTracker.child_run`."""

    def __init__(self, client: MlflowClient, run_id: str, label: str, model: str | None) -> None:
        self.client = client
        self.run_id = run_id
        self.label = label
        self.model = model
        self.crps_: float | None = None
        self.eval_window_: str | None = None
        self.scores_: pd.DataFrame | None = None
        self.backtest_run_id_: str | None = None

    def log_backtest(self, forecasts: pd.DataFrame, scores: pd.DataFrame) -> dict[str, float]:
        """Log a model's backtest: scores as curves and headline metrics, the score table,
        forecasts and scores as files, plots.

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
            The headline metrics logged (``crps``, ``mae``, ...).
        """
        headline, curves = score_metrics(scores)
        model = self.model
        if model is None and "model" in forecasts and forecasts["model"].nunique() == 1:
            model = str(forecasts["model"].iloc[0])
        self.eval_window_ = eval_window(forecasts)
        tags = {"forecast.label": self.label, "forecast.eval_window": self.eval_window_}
        if model:
            tags["forecast.model"] = model
        log_batch(self.client, self.run_id, metrics=headline, histories=curves, tags=tags)
        self.crps_ = headline.get("crps")
        self.scores_ = scores
        _write_table(self.client, self.run_id, scores)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            month_strings(forecasts).to_parquet(tmp / "forecasts.parquet", index=False)
            scores.to_csv(tmp / "scores.csv", index=False)
            self.client.log_artifact(self.run_id, str(tmp / "forecasts.parquet"), "backtest")
            self.client.log_artifact(self.run_id, str(tmp / "scores.csv"), "backtest")
            if any(s in scores for s in PLOTTED_SCORES):
                # At the top level, where the compare view finds the runs' common artifacts.
                plot_scores_by_horizon(scores, tmp / "scores_by_horizon.png", self.label)
                self.client.log_artifact(self.run_id, str(tmp / "scores_by_horizon.png"))
            plots = tmp / "plots"
            plots.mkdir()
            if "y" in forecasts:
                h1 = forecasts.loc[forecasts["horizon"] == 1]
                top = h1.groupby("unit")["y"].sum().sort_values(ascending=False, kind="stable")
                for unit in top.index[:_FAN_UNITS]:
                    plot_fan(forecasts, unit, plots / f"fan_{slug(unit)}.png", self.label)
            if any(plots.iterdir()):
                self.client.log_artifacts(self.run_id, str(plots), "plots")
        return headline

    def log_skill(self, scores: pd.DataFrame) -> None:
        """Add the skill columns of ``scores`` (this model's rows of the experiment's combined
        table, known once every benchmark has run): ``crps_skill`` and its curve, and the table."""
        shown = tuple(c for c in CURVE_SCORES if c.endswith("_skill") and c in scores)
        if not shown:
            return
        log_batch(self.client, self.run_id, metrics={k: v for k, v in headline_metrics(scores).items() if k in shown},
                  histories=curve_metrics(scores, shown))
        self.scores_ = scores
        _write_table(self.client, self.run_id, scores)

    def log_evidence(self, backtest: ChildRun) -> None:
        """On a final run: the scores of the backtest run of the model it refits, and links
        both ways (``forecast.backtest_run_id`` here, ``forecast.final_run_id`` there)."""
        if backtest.scores_ is None:
            raise TrackingError(f"run {backtest.run_id} ({backtest.label}) has no backtest logged; "
                                f"call log_backtest before refitting its model")
        headline, curves = score_metrics(backtest.scores_)
        log_batch(self.client, self.run_id, metrics=headline, histories=curves, tags={
            "forecast.backtest_run_id": backtest.run_id, "forecast.eval_window": backtest.eval_window_ or ""})
        _write_table(self.client, self.run_id, backtest.scores_)
        self.client.set_tag(backtest.run_id, "forecast.final_run_id", self.run_id)
        self.crps_, self.eval_window_, self.scores_ = backtest.crps_, backtest.eval_window_, backtest.scores_
        self.backtest_run_id_ = backtest.run_id

    def log_learned(self, forecaster) -> None:
        """What the fit learned that the hyperparameters do not say: an ensemble's member
        weights (``ensemble_weight/<member>``, their average over horizons, and the table
        ``ensemble_weights.json`` with each member's CRPS over the ensemble's own evaluation
        window and its weight at each horizon, ``weight_h1``...)."""
        weights = getattr(forecaster, "weights_", None)
        if not isinstance(weights, pd.Series):
            return
        log_batch(self.client, self.run_id, metrics={f"ensemble_weight/{m}": float(w) for m, w in weights.items()})
        table = pd.DataFrame({"member": weights.index.astype(str), "weight": weights.to_numpy(dtype=float)})
        member_scores = getattr(forecaster, "member_scores_", None)
        if isinstance(member_scores, pd.Series):
            table["member_crps"] = member_scores.reindex(weights.index).to_numpy(dtype=float)
        by_horizon = getattr(forecaster, "horizon_weights_", None)
        if isinstance(by_horizon, pd.DataFrame):
            for h, row in by_horizon.iterrows():  # the weights the forecasts use, horizon by horizon
                table[f"weight_h{h}"] = row.reindex(weights.index).to_numpy(dtype=float)
        _write_table(self.client, self.run_id, table, "ensemble_weights.json")

    def log_model(self, forecaster, history: pd.DataFrame, horizon: int = 6,
                  registered_name: str | None = None, *, window: str | None = None) -> ModelRef:
        """Log the fitted ``forecaster`` as a pyfunc model, and register it when a name is given.

        The registered version is tagged with this run's overall ``forecast.crps`` and the
        ``forecast.eval_window`` (from :meth:`log_backtest` or :meth:`log_evidence`, or
        ``window``), which is what :func:`forecast.tracking.registry.promote` compares, links
        to this run and to its backtest run, and describes its scores.
        """
        window = window or self.eval_window_
        info = log_forecaster(forecaster, history, horizon=horizon, registered_name=registered_name)
        self.log_learned(forecaster)
        if registered_name is None:
            return ModelRef(info.model_uri)
        version = str(info.registered_model_version)
        tag_version(self.client, registered_name, version, forecaster=forecaster, label=self.label,
                    run_id=self.run_id, backtest_run_id=self.backtest_run_id_ or self.run_id,
                    scores=self.scores_, crps=self.crps_, window=window)
        return ModelRef(info.model_uri, registered_name, version)


class ExperimentTracker:
    """Log an experiment file's runs to the MLflow experiment of the same name.

    Parameters
    ----------
    experiment_name
        Usually the experiment file's stem; the experiment is created on first use, tagged to
        open on the model-training view of the MLflow 3 UI (an existing one is tagged too).
    tracking_uri
        From :func:`resolve_tracking_uri`; checked with :func:`check_reachable` first.
    artifact_location
        Where a *new* experiment stores artifacts. Default: the server's choice for HTTP
        stores; for a SQLite file, ``mlartifacts/<experiment>`` beside the database (MLflow
        would use ``./mlruns`` in whatever the working directory happens to be).

    A run whose server stopped answering cannot be marked FAILED when it fails; its id is
    kept in ``unclosed_``. Such a run, left RUNNING by a process of this host that has since
    ended (run tag ``forecast.owner``), is marked FAILED when the next tracker of its
    experiment starts.
    """

    def __init__(self, experiment_name: str, tracking_uri: str, *, artifact_location: str | None = None,
                 timeout: float = 5.0) -> None:
        check_reachable(tracking_uri, timeout=timeout)
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.client = new_client(tracking_uri)
        self.parent_run_id: str | None = None
        self.unclosed_: list[str] = []
        self.closed_stale_: list[str] = []
        self._dataset = None
        self._description: str | None = None
        with server_errors(tracking_uri, f"opening experiment {experiment_name!r}"):
            experiment = self.client.get_experiment_by_name(experiment_name)
            if experiment is None:
                if artifact_location is None:
                    artifact_location = default_artifact_location(tracking_uri, experiment_name)
                self.experiment_id = self.client.create_experiment(
                    experiment_name, artifact_location=artifact_location,
                    tags={"forecast.kind": KIND_EXPERIMENT, EXPERIMENT_KIND_TAG: MODEL_TRAINING})
            else:
                if experiment.lifecycle_stage == "deleted":
                    raise TrackingError(f"MLflow experiment {experiment_name!r} at {tracking_uri} is deleted; "
                                        f"restore it (mlflow experiments restore) or rename the experiment")
                self.experiment_id = experiment.experiment_id
                if EXPERIMENT_KIND_TAG not in experiment.tags:
                    self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
            self._close_stale_runs()

    def _close_stale_runs(self) -> None:
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
            if owner_is_gone(run.data.tags.get(OWNER_TAG)):
                self.client.set_tag(run.info.run_id, "forecast.failure",
                                    "its process ended before it could close the run (the tracking server was "
                                    "unreachable); closed by the next run of the experiment")
                self.client.set_terminated(run.info.run_id, "FAILED")
                self.closed_stale_.append(run.info.run_id)

    def _activate(self) -> None:
        # pyfunc.log_model and log_input work on the active (fluent) run, which follows
        # the global URIs: point them at this tracker's store.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def _end(self, run_id: str, status: str) -> None:
        try:
            mlflow.end_run(status)
        except SERVER_ERRORS:
            self.unclosed_.append(run_id)  # the run is off MLflow's active stack already

    @contextmanager
    def _run(self, **kwargs) -> Iterator[mlflow.ActiveRun]:
        tags = {OWNER_TAG: owner(), **kwargs.pop("tags", {})}
        with server_errors(self.tracking_uri, f"starting run {kwargs.get('run_name')!r}"):
            run = mlflow.start_run(experiment_id=self.experiment_id, tags=tags, **kwargs)
        run_id = run.info.run_id
        try:
            yield run
        except KeyboardInterrupt:
            self._end(run_id, "KILLED")
            raise
        except SERVER_ERRORS as exc:
            self._end(run_id, "FAILED")
            raise TrackingError(f"MLflow at {self.tracking_uri} stopped answering during run "
                                f"{kwargs.get('run_name')!r}: {first_line(exc)}") from None
        except BaseException:
            self._end(run_id, "FAILED")
            raise
        with server_errors(self.tracking_uri, f"closing run {kwargs.get('run_name')!r}"):
            mlflow.end_run("FINISHED")

    @contextmanager
    def parent_run(self, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None, *,
                   config_path: Path | None = None, panel: pd.DataFrame | None = None,
                   panel_source: str | None = None, panel_metadata: Mapping[str, Any] | None = None,
                   description: str | None = None) -> Iterator[str]:
        """The run of one execution of the experiment file; yields its run id.

        Logs the flattened ``params``; ``tags`` plus MLflow's source tags (git commit),
        package versions, ``forecast.kind=experiment`` and ``description`` as the run
        description; the experiment file; and the panel as an MLflow dataset input whose
        digest is the start of its SHA-256 (the full hash is the tag ``forecast.panel_sha256``;
        ``panel_metadata["vintage"]`` the tag ``forecast.data_vintage``). The child runs get
        the same dataset, source tags and description.
        """
        if mlflow.active_run() is not None:
            raise TrackingError(f"an MLflow run ({mlflow.active_run().info.run_id}) is already active; "
                                f"end it before starting experiment {self.experiment_name!r}")
        self._activate()
        metadata = dict(panel_metadata or {})
        self._description = description or None
        all_tags = {"forecast.kind": KIND_EXPERIMENT, **source_tags(self._description),
                    **{f"forecast.version.{k}": v for k, v in package_versions().items()},
                    **{k: str(v) for k, v in (tags or {}).items()}}
        input_tags = {}
        if panel is not None:
            all_tags["forecast.panel_sha256"] = panel_digest(panel)
            all_tags["forecast.data_vintage"] = str(metadata.get("vintage", "unknown"))
            input_tags = {"forecast.panel_sha256": all_tags["forecast.panel_sha256"],
                          "forecast.data_vintage": all_tags["forecast.data_vintage"]}
        with self._run(run_name=run_name, tags=all_tags) as run:
            run_id = run.info.run_id
            self.parent_run_id = run_id
            log_batch(self.client, run_id, params=flatten_params(params))
            if config_path is not None:
                self.client.log_artifact(run_id, str(config_path), "config")
            if panel is not None:
                self._dataset = (panel_dataset(panel, panel_source, metadata, all_tags["forecast.panel_sha256"]),
                                 input_tags)
                mlflow.log_input(self._dataset[0], context="backtest", tags=input_tags)
            try:
                yield run_id
            finally:
                self.parent_run_id = None
                self._dataset = None

    @contextmanager
    def child_run(self, label: str, params: Mapping[str, Any] | None = None, *, model: str | None = None,
                  kind: str = KIND_BACKTEST) -> Iterator[ChildRun]:
        """A nested run for one model of the experiment (``model``: its registry name;
        ``params``: every hyperparameter, defaults included)."""
        if self.parent_run_id is None:
            raise TrackingError("child_run must be used inside parent_run")
        self._activate()
        params = dict(params or {})
        model = model or (str(params["model"]) if "model" in params else None)
        tags = {"forecast.kind": kind, "forecast.label": label, **source_tags(self._description)}
        if model:
            tags["forecast.model"] = model
        with self._run(run_name=label, nested=True, tags=tags) as run:
            run_id = run.info.run_id
            log_batch(self.client, run_id, params=flatten_params(params))
            if self._dataset is not None:
                mlflow.log_input(self._dataset[0], context="training" if kind == KIND_FINAL else "backtest",
                                 tags=self._dataset[1])
            yield ChildRun(self.client, run_id, label, model)

    @contextmanager
    def final_run(self, backtest: ChildRun, params: Mapping[str, Any] | None = None, *,
                  model: str | None = None) -> Iterator[ChildRun]:
        """The run of the model of ``backtest`` refitted on all the data (``forecast.kind=final``),
        carrying the backtest's scores and linked to it both ways; log the model with
        :meth:`ChildRun.log_model`."""
        with self.child_run(f"final: {backtest.label}", params, model=model or backtest.model,
                            kind=KIND_FINAL) as child:
            # Labelled as the model it refits (the run name says "final: ..."), as its version is.
            child.label = backtest.label
            self.client.set_tag(child.run_id, "forecast.label", backtest.label)
            child.log_evidence(backtest)
            yield child
