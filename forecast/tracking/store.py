"""The MLflow store: where runs go, a client that fails fast, batched logging, provenance.

The lowest room of :mod:`forecast.tracking`: the other two (``runs``, ``registry``) build on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
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
import sqlalchemy.exc
from mlflow import MlflowClient
from pandas.errors import Pandas4Warning
from sqlalchemy.exc import SADeprecationWarning
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException, RestException

from forecast.errors import NotMlflowServer, ServerTimeout, TrackingError, first_line
from forecast.schema import month_strings

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



def request_deadline() -> tuple[float, int]:
    """(seconds an MLflow request waits for an answer, attempts): MLflow's own settings
    ``MLFLOW_HTTP_REQUEST_TIMEOUT`` and ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (+ 1), which
    :mod:`forecast.limits` bounds for every command."""
    def number(name: str, default: float) -> float:
        try:
            return float(os.environ.get(name, default))
        except ValueError:
            return default
    return number("MLFLOW_HTTP_REQUEST_TIMEOUT", 120), int(number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7)) + 1


@contextlib.contextmanager
def brief_requests(seconds: int = 2) -> Iterator[None]:
    """MLflow requests of one attempt of ``seconds`` each, for the duration (closing runs on a
    server that has already let a request time out: each would wait out the deadline again)."""
    brief = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(seconds), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    saved = {k: os.environ.get(k) for k in brief}
    os.environ.update(brief)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
                raise NotMlflowServer(
                    f"{uri} answers HTTP but is not an MLflow tracking server (GET /health gave "
                    f"{body[:60]!r}); check the URI (mlflow server --host ... --port ...), or pass another "
                    f"--tracking-uri / MLFLOW_TRACKING_URI")
            return
        except urllib.error.HTTPError as err:
            if err.code == 404:
                # Every MLflow server has /health: a 404 is another web server at that address.
                raise NotMlflowServer(
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


def require_writable(uri: str) -> None:
    """For commands that write runs: fail when a ``sqlite:///`` store (or the folder a new one
    would be created in) cannot be written, naming the store, before any run is started.

    MLflow itself fails part-way, logging SQLAlchemy's traceback, at the first write.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    target = path if path.exists() else next((p for p in path.parents if p.exists()), None)
    # SQLite writes its journal beside the database: the folder must be writable too.
    folder = path.parent if path.exists() else target
    for item in (target, folder):
        if item is not None and not os.access(item, os.W_OK):
            raise TrackingError(f"the MLflow store {uri} cannot be written ({item} is read-only for this user or on a "
                                f"read-only file system); a run needs a writable store: pass another --tracking-uri / "
                                f"MLFLOW_TRACKING_URI, or make {item} writable")


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


def connect(tracking_uri: str, *, existing: bool = False, doing: str = "opening the store") -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri``, after :func:`check_reachable`
    (after :func:`require_store` when ``existing``: a command that only reads). A SQL store is
    opened here: a damaged one is a :class:`TrackingError` saying so, and what was being done."""
    (require_store if existing else check_reachable)(tracking_uri)
    with server_errors(tracking_uri, doing):
        return new_client(tracking_uri)


def new_client(tracking_uri: str) -> MlflowClient:
    """``MlflowClient`` for tracking and registry at ``tracking_uri``; making the first one of a process
    imports MLflow's SQL store, whose mappers raise a deprecation warning (silenced here)."""
    with mlflow_deprecations_silenced():
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


#: What the MLflow client raises when the store fails: its own exception (which wraps
#: connection errors once its bounded retries are spent), a bare connection error, and the
#: database errors of a SQL store that MLflow lets through (a read-only or locked SQLite file).
SERVER_ERRORS: tuple[type[BaseException], ...] = (MlflowException, requests.RequestException,
                                                  sqlalchemy.exc.SQLAlchemyError)


def timed_out(exc: BaseException) -> bool:
    """True when ``exc`` is a request that got no answer in time (after MLflow's retries)."""
    text = str(exc)
    return isinstance(exc, requests.Timeout) or "timed out" in text or "ReadTimeout" in text


def not_mlflow(exc: BaseException) -> bool:
    """True when an HTTP answer was not MLflow's: an error page (HTML, plain text) where the
    MLflow REST API answers JSON, or an endpoint the server does not have."""
    if not isinstance(exc, MlflowException) or isinstance(exc, RestException):
        return False
    text = str(exc)
    return "Response body:" in text or exc.error_code == "ENDPOINT_NOT_FOUND" or "<html" in text.lower()


def describe(exc: BaseException, uri: str, doing: str) -> TrackingError:
    """One :class:`TrackingError` (or subclass) saying what went wrong with the store at ``uri``
    while ``doing``: no answer in time, not an MLflow server, a store that cannot be written,
    or MLflow's own error."""
    if timed_out(exc):
        seconds, attempts = request_deadline()
        return ServerTimeout(f"MLflow tracking server {uri} did not answer while {doing}: no answer within {seconds:g} s, "
                             f"{attempts} attempt(s) (MLFLOW_HTTP_REQUEST_TIMEOUT, MLFLOW_HTTP_REQUEST_MAX_RETRIES); "
                             f"check the server, or pass another --tracking-uri / MLFLOW_TRACKING_URI")
    if not_mlflow(exc):
        return NotMlflowServer(f"{uri} did not answer as an MLflow tracking server while {doing}: "
                               f"{first_line(exc)[:200]}; check the URI (and, behind a proxy, its credentials), or "
                               f"pass another --tracking-uri / MLFLOW_TRACKING_URI")
    text = " ".join(str(exc).split())
    if "readonly database" in text or "read-only" in text:
        return TrackingError(f"the MLflow store {uri} cannot be written while {doing} (attempt to write a read-only "
                             f"database); pass a writable --tracking-uri / MLFLOW_TRACKING_URI")
    return TrackingError(f"MLflow at {uri} failed while {doing}: {first_line(exc)}")


@contextlib.contextmanager
def server_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn what the MLflow client raises into one :class:`TrackingError` naming the URI and
    what was being done (:func:`describe`; no chained traceback reaches the user)."""
    try:
        yield
    except SERVER_ERRORS as exc:
        raise describe(exc, uri, doing) from None


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
