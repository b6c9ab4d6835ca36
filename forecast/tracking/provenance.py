"""Where a run's data and process came from: the panel as an MLflow dataset, and the process
that owns a run (so that a run its process left RUNNING can be recognised and closed)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.data.http_dataset_source import HTTPDatasetSource

from forecast.tracking.store import month_strings

__all__ = ["OWNER_TAG", "dataset_source", "owner", "owner_is_gone", "panel_dataset"]

#: Run tag: ``host:pid`` of the process that started the run.
OWNER_TAG = "forecast.owner"


def dataset_source(raw: str | None):
    """MLflow's source of the panel, built explicitly (MLflow's resolver warns that a local
    path "can be interpreted in multiple ways"): a local file, an HTTP(S) URL, or, for
    anything else (several event files, ``synthetic://seed=1``), a ``code`` source whose tag
    ``forecast.panel_source`` keeps the text."""
    text = str(raw) if raw else ""
    if text.startswith(("http://", "https://")):
        return HTTPDatasetSource(text)
    if text and "," not in text and "://" not in text:
        return get_dataset_source_from_json(json.dumps({"uri": Path(text).resolve().as_uri()}), "local")
    return CodeDatasetSource(tags={"forecast.panel_source": text or "unknown"})


def panel_dataset(panel: pd.DataFrame, source: str | None, metadata: Mapping[str, Any], sha256: str):
    """The panel as an MLflow dataset whose digest is the start of its SHA-256 (MLflow keeps at
    most 36 characters of digest; the full hash is the run tag ``forecast.panel_sha256``).

    Counts are given to MLflow as floats: its schema then says ``double``, which can hold a
    missing month (an integer schema cannot, and MLflow warns about it on every run). The
    digest is of the panel as it is.
    """
    frame = month_strings(panel)
    frame = frame.astype({c: "float64" for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])})
    return mlflow.data.from_pandas(frame, source=dataset_source(source),
                                   name=str(metadata.get("name", "panel")), digest=sha256[:32])


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(tag: str | None) -> bool:
    """True when ``tag`` (from :func:`owner`) names a process of this host that no longer runs.

    A run of another host, or without the tag, is never taken as abandoned: its process
    cannot be checked from here. (A pid reused by a new process keeps the run open: the
    safe side.)
    """
    host, _, pid = (tag or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
