"""Experiment tracking in MLflow (with :mod:`forecast.registry`, the only modules importing mlflow).

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

import hashlib
import importlib.metadata
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

__all__ = [
    "ChildRun",
    "ExperimentTracker",
    "ModelRef",
    "TrackingError",
    "check_reachable",
    "connect",
    "compare",
    "flatten_params",
    "panel_digest",
    "resolve_tracking_uri",
]

KIND_EXPERIMENT = "experiment"
KIND_BACKTEST = "backtest"
#: Packages whose versions are recorded on every parent run.
PACKAGES = ("pandas", "numpy", "statsmodels", "scikit-learn", "mlflow")
#: MLflow's limits per ``log_batch`` call (metrics, params, tags).
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}
#: Scores drawn in the score-by-horizon plot.
_PLOTTED_SCORES = ("crps", "mae")
_FAN_UNITS = 3
_ROOT = Path(__file__).resolve().parent.parent


class TrackingError(RuntimeError):
    """The tracking server cannot be used, or what is logged breaks the conventions above."""


# ----------------------------------------------------------------------------------------
# Where runs go


def resolve_tracking_uri(cli_value: str | None = None) -> str:
    """The tracking URI: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else a local SQLite file.

    MLflow 3 itself defaults to ``sqlite:///mlflow.db`` in the working directory when the
    environment variable is unset; that default is kept, and forced if a future MLflow
    changes it to anything but SQLite (the file store is deprecated and lacks the registry).
    """
    if cli_value:
        return cli_value
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    # What mlflow.get_tracking_uri() gives with nothing set (MLflow >= 3.0), made absolute so
    # a later change of directory does not move the store. Not read from MLflow itself:
    # mlflow.set_tracking_uri() elsewhere in the process would leak into it.
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast when an HTTP(S) tracking server does not answer; a no-op for local stores.

    Asks ``{uri}/health`` with back-off (0.2 s, 0.4 s, ...) until ``timeout`` seconds have
    passed in total. Any HTTP answer below 500 counts as alive (a proxy may guard
    ``/health`` with 401/403; the server is there). Without this check the MLflow client
    retries for minutes before giving up.

    Raises
    ------
    TrackingError
        Naming the URI and the last error.
    """
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    deadline = time.monotonic() + timeout
    delay, last = 0.2, "no answer"
    while True:
        remaining = deadline - time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=max(0.1, min(remaining, 2.0))):
                return
        except urllib.error.HTTPError as err:
            if err.code < 500:
                return
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(getattr(err, "reason", err))
        if time.monotonic() + delay >= deadline:
            break
        time.sleep(delay)
        delay *= 2
    raise TrackingError(
        f"MLflow tracking server {uri} did not answer within {timeout:g} s ({last}); start it "
        f"(mlflow server --host ... --port ...), or pass another --tracking-uri / "
        f"MLFLOW_TRACKING_URI (e.g. sqlite:///mlflow.db for a local store)"
    )


# ----------------------------------------------------------------------------------------
# Helpers


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"backtest": {"start": "2017-01"}} -> {"backtest.start": "2017-01"}``; values as strings."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = str(value)
    return out


def _month_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Period columns as ``YYYY-MM`` strings (portable in CSV, Parquet, JSON and MLflow datasets)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.PeriodDtype):
            out[col] = out[col].astype(str)
    return out


def panel_digest(panel: pd.DataFrame) -> str:
    """SHA-256 of the panel's CSV bytes (months as ``YYYY-MM``, no index): its content hash."""
    data = _month_strings(panel).to_csv(index=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def git_commit(root: Path = _ROOT) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {}
    for package in PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def log_batch(client: MlflowClient, run_id: str, *, metrics: Mapping[str, float] = {},
               params: Mapping[str, str] = {}, tags: Mapping[str, str] = {}) -> None:
    """Log in as few ``log_batch`` calls as MLflow's per-call limits allow."""
    now = int(time.time() * 1000)
    m = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    p = [Param(k, str(v)) for k, v in params.items()]
    t = [RunTag(k, str(v)) for k, v in tags.items()]
    for chunk in _chunks(m, _BATCH["metrics"]):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks(p, _BATCH["params"]):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(t, _BATCH["tags"]):
        client.log_batch(run_id, tags=chunk)


def score_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """A score table (``horizon, n, <scores>``; one model) as metrics ``<score>_h<H>`` and ``<score>``.

    The ``all`` row (pooled over horizons) gives the plain names; NaN scores are left out
    (MLflow would store them, but they make leaderboards sort oddly).
    """
    if "horizon" not in scores:
        raise TrackingError(f"scores need a 'horizon' column (score_table(..., by=('model', 'horizon'))); "
                            f"got columns {', '.join(map(str, scores.columns))}")
    if "model" in scores and scores["model"].nunique() > 1:
        raise TrackingError(f"scores hold several models ({', '.join(map(str, scores['model'].unique()))}); "
                            f"log each model's scores in its own child run")
    names = [c for c in scores.columns if c not in ("model", "horizon", "n")
             and pd.api.types.is_numeric_dtype(scores[c])]
    out: dict[str, float] = {}
    for _, row in scores.iterrows():
        h = row["horizon"]
        suffix = "" if str(h) == "all" else f"_h{int(h)}"
        for name in names:
            value = float(row[name])
            if np.isfinite(value):
                out[f"{name}{suffix}"] = value
    return out


# ----------------------------------------------------------------------------------------
# Plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend switch)


def _figure(width: float = 7.0, height: float = 3.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_scores_by_horizon(scores: pd.DataFrame, path: Path, title: str) -> Path:
    per_h = scores.loc[scores["horizon"].astype(str) != "all"].copy()
    per_h["horizon"] = per_h["horizon"].astype(int)
    per_h = per_h.sort_values("horizon")
    shown = [s for s in _PLOTTED_SCORES if s in per_h]
    fig = _figure(3.5 * max(1, len(shown)), 3.2)
    for i, score in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        ax.plot(per_h["horizon"], per_h[score], marker="o")
        ax.set_xlabel("horizon (months)")
        ax.set_ylabel(score.upper())
        ax.set_xticks(per_h["horizon"].tolist())
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_fan(forecasts: pd.DataFrame, unit: str, path: Path, title: str) -> Path:
    """One-month-ahead forecasts of one unit against the actuals: median, 50% and 90% bands."""
    rows = forecasts.loc[(forecasts["unit"] == unit) & (forecasts["horizon"] == 1)].sort_values("month")
    x = rows["month"].dt.to_timestamp() if isinstance(rows["month"].dtype, pd.PeriodDtype) \
        else pd.to_datetime(rows["month"].astype(str))
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(x, rows["q05"], rows["q95"], alpha=0.2, color="C0", label="90% interval")
    ax.fill_between(x, rows["q25"], rows["q75"], alpha=0.4, color="C0", label="50% interval")
    ax.plot(x, rows["q50"], color="C0", label="median")
    if "y" in rows:
        ax.plot(x, rows["y"], "o", color="k", markersize=3, label="actual")
    ax.set_ylabel("count")
    ax.set_title(f"{title}: {unit}, 1 month ahead")
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return path


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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))


# ----------------------------------------------------------------------------------------
# Runs


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """``<db dir>/mlartifacts/<experiment>`` for a SQLite file store, else None (the store decides)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or ":memory:" in tracking_uri:
        return None
    database = Path(tracking_uri[len(prefix):].split("?")[0]).resolve()
    return (database.parent / "mlartifacts" / _slug(experiment_name)).as_uri()


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
            _month_strings(forecasts).to_parquet(tmp / "forecasts.parquet", index=False)
            scores.to_csv(tmp / "scores.csv", index=False)
            self.client.log_artifact(self.run_id, str(tmp / "forecasts.parquet"), "backtest")
            self.client.log_artifact(self.run_id, str(tmp / "scores.csv"), "backtest")
            plots = tmp / "plots"
            plots.mkdir()
            if any(s in scores for s in _PLOTTED_SCORES):
                plot_scores_by_horizon(scores, plots / "scores_by_horizon.png", self.label)
            if "y" in forecasts:
                h1 = forecasts.loc[forecasts["horizon"] == 1]
                top = h1.groupby("unit")["y"].sum().sort_values(ascending=False, kind="stable")
                for unit in top.index[:_FAN_UNITS]:
                    plot_fan(forecasts, unit, plots / f"fan_{_slug(unit)}.png", self.label)
            self.client.log_artifacts(self.run_id, str(plots), "plots")
        return metrics

    def log_model(self, forecaster, history: pd.DataFrame, horizon: int = 6,
                  registered_name: str | None = None, *, window: str | None = None) -> ModelRef:
        """Log the fitted ``forecaster`` as a pyfunc model, and register it when a name is given.

        The registered version is tagged with this run's overall ``forecast.crps`` and the
        ``forecast.eval_window`` (from :meth:`log_backtest`, or ``window``), which is what
        :func:`forecast.registry.promote` compares.
        """
        from forecast.registry import log_forecaster

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
            _month_strings(panel), source=_dataset_source(source),
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


# ----------------------------------------------------------------------------------------
# Leaderboard

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


def connect(tracking_uri: str) -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri``, after :func:`check_reachable`."""
    check_reachable(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

