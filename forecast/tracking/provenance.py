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

from forecast.schema import month_strings

__all__ = ["DIGEST", "OWNER_TAG", "dataset_name", "dataset_source", "owner", "owner_is_gone", "panel_dataset",
           "panel_months", "panel_params", "source_names"]

#: Run tag: ``host:pid`` of the process that started the run.
OWNER_TAG = "forecast.owner"
#: Characters of the panel's SHA-256 kept as the dataset digest (MLflow stores at most 36).
DIGEST = 32


def _file_uri(text: str):
    return get_dataset_source_from_json(json.dumps({"uri": Path(text).resolve().as_uri()}), "local")


def dataset_source(raw: str | None, metadata: Mapping[str, Any] | None = None):
    """MLflow's source of the panel, built explicitly (MLflow's resolver warns that a local
    path "can be interpreted in multiple ways").

    The event file the panel was built from when its metadata records exactly one (a panel
    file such as ``outputs/panel.parquet`` is replaced by the next build: its sources are
    what it *is*); else ``raw`` (the panel file, or the event files): a local file, an HTTP(S)
    URL, or, for anything else (several files, ``synthetic://seed=1``), a ``code`` source whose
    tag ``forecast.panel_source`` keeps the text.
    """
    recorded = [s for s in (metadata or {}).get("sources") or () if isinstance(s, Mapping) and s.get("path")]
    if len(recorded) == 1:
        return _file_uri(str(recorded[0]["path"]))
    text = str(raw) if raw else ""
    if recorded:
        text = ", ".join(str(s["path"]) for s in recorded)
    if text.startswith(("http://", "https://")):
        return HTTPDatasetSource(text)
    if text and "," not in text and "://" not in text:
        return _file_uri(text)
    return CodeDatasetSource(tags={"forecast.panel_source": text or "unknown"})


def _sources(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in metadata.get("sources") or () if isinstance(s, Mapping)]


def source_names(metadata: Mapping[str, Any], *, files: bool = True) -> str:
    """The panel's event sources as people name them: ``UCDP GED (ucdp_ged_iraq_hdx.csv)``,
    several joined by `` + `` (``unknown`` when its metadata records none)."""
    names = []
    for s in _sources(metadata):
        name = str(s.get("dataset") or s.get("format") or "events")
        if files and s.get("path"):
            name += f" ({Path(str(s['path'])).name})"
        if name not in names:
            names.append(name)
    return " + ".join(names) or "unknown"


def panel_months(panel: pd.DataFrame) -> str:
    """``2004-01..2024-12``: the panel's first and last month."""
    months = panel["month"].astype(str)
    return f"{months.min()}..{months.max()}"


def dataset_name(panel: pd.DataFrame, metadata: Mapping[str, Any], country: str | None = None) -> str:
    """The panel as a dataset is named by its sources, country and months:
    ``UCDP GED Iraq, 1989-01..2016-12`` (``, 3 of 18 units`` when the experiment keeps a subset)."""
    name = " ".join(p for p in (source_names(metadata, files=False), country) if p and p != "unknown") or "panel"
    name = f"{name}, {panel_months(panel)}"
    recorded = metadata.get("units")
    n = panel["unit"].nunique()
    if isinstance(recorded, list) and 0 < n < len(recorded):
        name += f", {n} of {len(recorded)} units"
    return name


def panel_params(panel: pd.DataFrame, metadata: Mapping[str, Any]) -> dict[str, str]:
    """What the panel is, from its own metadata (not from the experiment file's defaults):
    ``panel.sources`` (dataset, file and SHA-256 of each), ``panel.vintage``, ``panel.months``,
    ``panel.units``, ``panel.gazetteer``, ``panel.covariates`` and ``panel.fill`` (the policy the
    covariates were filled with when the panel was built)."""
    sources = "; ".join(f"{s.get('dataset') or s.get('format') or 'events'}: {Path(str(s.get('path', '?'))).name}"
                        + (f" (sha256 {str(s['sha256'])[:12]}...)" if s.get("sha256") else "")
                        for s in _sources(metadata))
    covariates = metadata.get("covariates") if isinstance(metadata.get("covariates"), Mapping) else {}
    columns = [str(c) for c in panel.columns if c not in ("unit", "month", "incidents", "deaths")]
    return {
        "panel.sources": sources or "unknown (the panel has no metadata)",
        "panel.vintage": str(metadata.get("vintage", "unknown")),
        "panel.months": panel_months(panel),
        "panel.units": str(panel["unit"].nunique()),
        "panel.gazetteer": str(metadata.get("gazetteer") or "unknown"),
        "panel.covariates": ", ".join(columns) or "none",
        "panel.fill": str(covariates.get("fill") or ("none (no covariates)" if not columns else "unknown")),
    }


def panel_dataset(panel: pd.DataFrame, source: str | None, metadata: Mapping[str, Any], sha256: str,
                  country: str | None = None):
    """The panel as an MLflow dataset named by :func:`dataset_name`, whose digest is the start
    of the panel's SHA-256 (MLflow keeps at most 36 characters of digest; the full hash is the
    run tag and dataset-input tag ``forecast.panel_sha256``).

    Counts are given to MLflow as floats: its schema then says ``double``, which can hold a
    missing month (an integer schema cannot, and MLflow warns about it on every run). The
    digest is of the panel as it is.
    """
    frame = month_strings(panel)
    frame = frame.astype({c: "float64" for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])})
    return mlflow.data.from_pandas(frame, source=dataset_source(source, metadata),
                                   name=dataset_name(panel, metadata, country), digest=sha256[:DIGEST])


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
