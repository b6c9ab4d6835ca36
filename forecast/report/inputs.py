"""What a report is made from (:class:`ReportInputs`), and the data a report embeds about itself.

Every report carries its own numbers as JSON in ``<script type="application/json"
id="report-data">``, so the next report can say what changed since this one without any
other store: :func:`find_previous_report` reads the reports already in the output folder.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.gazetteer import Gazetteer
from forecast.report.tiers import DEFAULT_TIER_YEARS
from forecast.schema import FORECAST_COLUMNS
from forecast.errors import ReportError

__all__ = ["REPORT_DATA_ID", "PreviousReport", "ReportError", "ReportInputs", "ReportWarning",
           "dataset_identity", "find_previous_report", "read_report_data"]

#: ``id`` of the ``<script type="application/json">`` element holding a report's own data.
REPORT_DATA_ID = "report-data"
#: Version of the embedded data layout, so a later layout can still read older reports.
REPORT_DATA_VERSION = 1
_DATA_BLOCK = re.compile(
    r'<script type="application/json" id="' + REPORT_DATA_ID + r'">(.*?)</script>', re.DOTALL)


class ReportWarning(UserWarning):
    """Something the report could not use and left out (e.g. an unreadable earlier report)."""


@dataclass(frozen=True)
class ReportInputs:
    """Everything one report shows; a report renders these and computes nothing it must fit.

    Attributes
    ----------
    panel
        The panel as :func:`features.panel.read_panel` returns it (``month`` as Period[M]).
    meta
        The panel's metadata (vintage, sources, quarantine counts, covariates, ...).
    forecast
        :data:`~forecast.schema.FORECAST_COLUMNS`: one origin (normally the panel's last
        month), horizons 1..H, every unit of the panel.
    model, model_version
        Display name of the model (``"ensemble"``) and, for a registered model, its
        :attr:`forecast.tracking.registry.RegisteredForecaster.label`.
    backtest
        :func:`forecast.evaluation.backtest.run_backtest` output for the model (rows labelled ``model``)
        and the benchmarks it is compared with.
    past_forecasts
        The ledger's issued forecasts (``issued, vintage, model, model_version, unit, origin,
        month, horizon, mean, q05..q95, y``), ``y`` NaN while unknown.
    previous
        The previous report's forecast frame, for "change since the previous report".
    scenarios
        A :class:`forecast.scenario.ScenarioResult` for the scenario section (not imported here:
        the report renders what it is given and pulls in no model).
    gazetteer
        Unit names and tile-grid positions (default: the bundled Iraq gazetteer).
    geojson
        Admin-1 polygons (a GeoJSON FeatureCollection): real boundaries instead of tiles.
    target
        The panel column forecast.
    issued
        Issue date shown in the report (ISO date); default today (UTC).
    provenance
        Where the numbers come from, each shown when known: ``members`` (ensemble member ->
        weight), ``git_commit``, ``panel_sha256``, ``panel_path``, ``mlflow_run``,
        ``registered`` (the registered model and version).
    units
        Canonical names of the units the report focuses on: its tables, charts and headline
        show only these; the national figures stay those of every unit, and say so. None: all.
    tier_years
        Years of the panel up to the origin whose unit-months set the tier bounds.
    model_covariates
        The covariates the model's forecasts depend on (``()`` for none), drawn as context after
        the forecasts; None when not known (every covariate of the panel is drawn).
    """

    panel: pd.DataFrame
    meta: dict
    forecast: pd.DataFrame
    model: str
    model_version: str | None = None
    backtest: pd.DataFrame | None = None
    past_forecasts: pd.DataFrame | None = None
    previous: pd.DataFrame | None = None
    scenarios: Any = None
    gazetteer: Gazetteer | None = None
    geojson: dict | None = None
    target: str = "incidents"
    issued: str | None = None
    provenance: dict | None = None
    units: tuple[str, ...] | None = None
    tier_years: int = DEFAULT_TIER_YEARS
    model_covariates: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PreviousReport:
    """An earlier report found in the output folder."""

    path: Path
    origin: pd.Period
    issued: str | None
    model: str | None
    forecast: pd.DataFrame


def read_report_data(path: str | Path) -> dict[str, Any] | None:
    """The data a report embedded about itself, or None for an HTML file that is not a report.

    Raises
    ------
    ReportError
        When the file holds a report-data block that is not valid JSON of this layout.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the report ({exc})") from exc
    match = _DATA_BLOCK.search(text)
    if match is None:
        return None
    try:
        # Written with Jinja's |tojson, which escapes <, > and & inside strings (no </script>).
        data = json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: the embedded report data is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or "origin" not in data or "forecast" not in data:
        raise ReportError(f"{path}: the embedded report data lacks 'origin' or 'forecast'")
    return data


def _frame(data: dict, path: Path) -> pd.DataFrame:
    frame = pd.DataFrame(data["forecast"])
    missing = [c for c in FORECAST_COLUMNS if c not in frame]
    if missing:
        raise ReportError(f"{path}: the embedded forecast lacks column(s) {', '.join(missing)}")
    frame["origin"] = pd.PeriodIndex(frame["origin"].astype(str), freq="M")
    frame["month"] = pd.PeriodIndex(frame["month"].astype(str), freq="M")
    return frame[list(FORECAST_COLUMNS)]


def dataset_identity(meta: dict, units) -> dict:
    """What makes two panels the same data set at different vintages: the units and the sources
    (format and filters of each event file), not the months or the file contents."""
    sources = sorted(f"{s.get('format')}|{s.get('filters', 'none')}" for s in (meta or {}).get("sources", [])
                     if isinstance(s, dict))
    return {"units": sorted(str(u) for u in units), "sources": sources}


def _same_dataset(data: dict, dataset: dict) -> bool:
    theirs = data.get("dataset")
    if isinstance(theirs, dict):
        return theirs.get("units") == dataset["units"] and (
            not theirs.get("sources") or not dataset["sources"] or theirs.get("sources") == dataset["sources"])
    # A report written before the identity was embedded: its units are all there is to compare.
    units = sorted(str(u.get("unit")) for u in data.get("units", []) if isinstance(u, dict))
    return units == dataset["units"]


def find_previous_report(folder: str | Path, origin: pd.Period, *, target: str = "incidents",
                         exclude: Path | None = None, dataset: dict | None = None) -> PreviousReport | None:
    """The report in ``folder`` with the latest forecast origin before ``origin``.

    HTML files that are not reports are ignored; a report whose embedded data cannot be
    read is skipped with a :class:`ReportWarning` naming it (it must not stop a new report).
    Reports of another target, or of another data set (``dataset``, from
    :func:`dataset_identity`: other units or other sources), are not comparable and are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    best: PreviousReport | None = None
    for path in sorted(folder.glob("*.html")):
        if exclude is not None and path.resolve() == Path(exclude).resolve():
            continue
        try:
            data = read_report_data(path)
            if data is None or data.get("target", "incidents") != target:
                continue
            if dataset is not None and not _same_dataset(data, dataset):
                continue
            found = pd.Period(str(data["origin"]), freq="M")
            if found >= origin or (best is not None and found <= best.origin):
                continue
            best = PreviousReport(path=path, origin=found, issued=data.get("issued"), model=data.get("model"),
                                  forecast=_frame(data, path))
        except (ReportError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"{path}: skipped as a previous report ({exc})", ReportWarning, stacklevel=2)
    return best
