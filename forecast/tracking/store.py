"""The MLflow store: where runs go, a client that fails fast, batched logging, provenance.

The lowest room of :mod:`forecast.tracking`: the other two (``runs``, ``registry``) build on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import math
import os
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from mlflow import MlflowClient
from pandas.errors import Pandas4Warning
from sqlalchemy.exc import SADeprecationWarning
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from forecast.errors import TrackingError

KIND_EXPERIMENT = "experiment"

KIND_BACKTEST = "backtest"

KIND_FINAL = "final"

#: The experiment tag the MLflow 3 UI reads to choose an experiment's landing page, and the
#: value that opens it on the model-training view (runs, metrics, charts) rather than the
#: GenAI one (traces). The UI offers exactly these two kinds in its "experiment type" switch.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"

#: Packages whose versions are recorded on every parent run.
PACKAGES = ("pandas", "numpy", "statsmodels", "scikit-learn", "mlflow")

#: MLflow's limits per ``log_batch`` call (metrics, params, tags).
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}

#: The checkout (or installed tree) holding the packages `forecast` and `features`.
ROOT = Path(__file__).resolve().parent.parent.parent



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
            with urllib.request.urlopen(url, timeout=max(0.1, min(remaining, 2.0))) as answer:
                body = answer.read(200)
            # MLflow's server answers its health check with "OK"; anything else that answers is
            # some other web server (a typo in the port, a proxy's landing page).
            if body.strip() != b"OK":
                raise TrackingError(
                    f"{uri} answers HTTP but is not an MLflow tracking server (GET /health gave "
                    f"{body[:60]!r}); check the URI (mlflow server --host ... --port ...), or pass another "
                    f"--tracking-uri / MLFLOW_TRACKING_URI")
            return
        except urllib.error.HTTPError as err:
            if err.code == 404:
                # Every MLflow server has /health: a 404 is another web server at that address.
                raise TrackingError(
                    f"{uri} answers HTTP but is not an MLflow tracking server (GET /health gave HTTP 404); "
                    f"check the URI (mlflow server --host ... --port ...), or pass another --tracking-uri / "
                    f"MLFLOW_TRACKING_URI") from None
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

def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other store, or in memory)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or ":memory:" in uri:
        return None
    return Path(uri[len(prefix):].split("?")[0])


def require_store(uri: str) -> None:
    """For commands that only read: fail when ``uri`` names no store, instead of creating one.

    MLflow creates an empty SQLite database at a ``sqlite:///`` URI whose file does not exist;
    a leaderboard read from it would be silently empty. HTTP stores are checked with
    :func:`check_reachable`.
    """
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no MLflow store at {uri} ({path} does not exist); run an experiment first "
                            f"(forecast experiment run FILE) or pass the store with --tracking-uri / "
                            f"MLFLOW_TRACKING_URI")
    check_reachable(uri)


@contextlib.contextmanager
def mlflow_deprecations_silenced() -> Iterator[None]:
    """Inside: the deprecation warnings MLflow's own code raises under pandas 3 and SQLAlchemy 2.1
    (``Pandas4Warning`` from ``mlflow.models.utils`` on an input example, ``SADeprecationWarning``
    when its SQLite store configures its mappers) are not shown. Only warnings raised from
    MLflow's modules, of those two kinds: ours and everyone else's still show."""
    with warnings.catch_warnings():
        for category in (Pandas4Warning, SADeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=r"mlflow\.")
        yield


def connect(tracking_uri: str, *, existing: bool = False) -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri``, after :func:`check_reachable`
    (after :func:`require_store` when ``existing``: a command that only reads)."""
    (require_store if existing else check_reachable)(tracking_uri)
    return new_client(tracking_uri)


def new_client(tracking_uri: str) -> MlflowClient:
    """``MlflowClient`` for tracking and registry at ``tracking_uri``; making the first one of a process
    imports MLflow's SQL store, whose mappers raise a deprecation warning (silenced here)."""
    with mlflow_deprecations_silenced():
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


#: What the MLflow client raises when the server fails: its own exception (which wraps
#: connection errors once its bounded retries are spent) and a bare connection error.
SERVER_ERRORS: tuple[type[BaseException], ...] = (MlflowException, requests.RequestException)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def server_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn what the MLflow client raises into one :class:`TrackingError` naming the URI and
    what was being done (no chained traceback reaches the user)."""
    try:
        yield
    except SERVER_ERRORS as exc:
        raise TrackingError(f"MLflow at {uri} failed while {doing}: {first_line(exc)}") from None


def decimals(values: Iterable[float], start: int = 3, limit: int = 8) -> int:
    """Fewest decimals (at least ``start``) that print distinct ``values`` distinctly.

    ``[0.13130, 0.13145]`` needs 4 (``0.1313``, ``0.1315``) where 3 prints both as ``0.131``;
    values equal to ``limit`` decimals are taken as equal.
    """
    finite = sorted({round(float(v), limit) for v in values if v is not None and math.isfinite(float(v))})
    for n in range(start, limit + 1):
        if len({f"{v:.{n}f}" for v in finite}) == len(finite):
            return n
    return limit


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

def month_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Period columns as ``YYYY-MM`` strings (portable in CSV, Parquet, JSON and MLflow datasets)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.PeriodDtype):
            out[col] = out[col].astype(str)
    return out

def panel_digest(panel: pd.DataFrame) -> str:
    """SHA-256 of the panel's CSV bytes (months as ``YYYY-MM``, no index): its content hash."""
    data = month_strings(panel).to_csv(index=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()

def git(*args: str, root: Path = ROOT) -> str | None:
    """The output of ``git ARGS`` in the checkout, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(root: Path = ROOT) -> str:
    """The checkout's commit, or ``unknown`` outside a git checkout."""
    return git("rev-parse", "HEAD", root=root) or "unknown"


def source_tags(description: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """MLflow's own source tags (what the UI shows as the run's source and git commit) and,
    when given, the run description (``mlflow.note.content``)."""
    tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": str(root),
            "mlflow.source.git.commit": git_commit(root)}
    branch = git("rev-parse", "--abbrev-ref", "HEAD", root=root)
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    remote = git("config", "--get", "remote.origin.url", root=root)
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
    status = git("status", "--porcelain", "--untracked-files=no", root=root)
    if status is not None:
        # A run from a checkout with uncommitted changes is not reproducible from the commit alone.
        tags["forecast.git_dirty"] = "true" if status else "false"
    if description:
        tags["mlflow.note.content"] = description
    return tags

def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES`."""
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
               params: Mapping[str, str] = {}, tags: Mapping[str, str] = {},
               histories: Iterable[Metric] = ()) -> None:
    """Log in as few ``log_batch`` calls as MLflow's per-call limits allow (``histories``:
    metrics with their own steps)."""
    now = int(time.time() * 1000)
    m = [Metric(k, float(v), now, 0) for k, v in metrics.items()] + list(histories)
    p = [Param(k, str(v)) for k, v in params.items()]
    t = [RunTag(k, str(v)) for k, v in tags.items()]
    for chunk in _chunks(m, _BATCH["metrics"]):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks(p, _BATCH["params"]):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(t, _BATCH["tags"]):
        client.log_batch(run_id, tags=chunk)

def slug(text: str) -> str:
    """``text`` with every character but letters, digits, ``-`` and ``_`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))

def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """``<db dir>/mlartifacts/<experiment>`` for a SQLite file store, else None (the store decides)."""
    database = sqlite_path(tracking_uri)
    if database is None:
        return None
    return (database.resolve().parent / "mlartifacts" / slug(experiment_name)).as_uri()
