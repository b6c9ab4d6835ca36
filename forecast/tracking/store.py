"""The MLflow store: where runs go, a client that fails fast, batched logging, provenance.

The lowest room of :mod:`forecast.tracking`: the other two (``runs``, ``registry``) build on it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from forecast.errors import TrackingError

KIND_EXPERIMENT = "experiment"

KIND_BACKTEST = "backtest"

#: Packages whose versions are recorded on every parent run.
PACKAGES = ("pandas", "numpy", "statsmodels", "scikit-learn", "mlflow")

#: MLflow's limits per ``log_batch`` call (metrics, params, tags).
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}

_ROOT = Path(__file__).resolve().parent.parent.parent



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

def connect(tracking_uri: str) -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri``, after :func:`check_reachable`."""
    check_reachable(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


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

def git_commit(root: Path = _ROOT) -> str:
    """The checkout's commit, or ``unknown`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"

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

def slug(text: str) -> str:
    """``text`` with every character but letters, digits, ``-`` and ``_`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))

def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """``<db dir>/mlartifacts/<experiment>`` for a SQLite file store, else None (the store decides)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or ":memory:" in tracking_uri:
        return None
    database = Path(tracking_uri[len(prefix):].split("?")[0]).resolve()
    return (database.parent / "mlartifacts" / slug(experiment_name)).as_uri()
