"""The monthly panel: one row per unit x month, the contract between all stages, and its one build.

Columns: ``unit`` (the gazetteer's canonical name), ``month`` (``YYYY-MM`` in files, a
monthly :class:`pandas.Period` in memory), ``incidents``, ``deaths``, then covariates. The
grid is complete (every unit has every month from the first to the last) and zeros are
explicit. The panel carries its unit graph (the gazetteer's neighbours, :mod:`features.graph`).

:func:`build_panel` is the one build every job calls (``forecast data build``, an experiment
built from event files, the scheduled refresh): a :class:`PanelSpec` in, a
:class:`~features.panel_files.PanelBuild` out. Writing and reading panel files, and the
contract's check, are in :mod:`features.panel_files`.

Data vintage: a month enters the panel only when the sources cover it completely, i.e. their
coverage (the last event date, or ``coverage_end`` when the provider states it) reaches the
month's last day. A trailing month with partial coverage would look like a sudden drop in
violence, so it is left out by default and reported; the last complete month is the vintage
recorded in the panel metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from features.covariates import (
    FILL_WARN_MONTHS, attach_covariates, covariate_staleness, read_covariates, staleness_warnings,
)
from features.errors import DataError
from features.gazetteer import Gazetteer, load_gazetteer
from features.graph import UnitGraph, with_graph
from features.panel_files import COUNTS, KEYS, PanelBuild, file_sha256, month_range
from features.sources import EventFilters, ReadResult, read_events

__all__ = ["EventFile", "NoUsableEvents", "PanelSpec", "assemble_panel", "build_panel", "events_to_panel",
           "last_complete_month", "quarantine_digest"]


@dataclass(frozen=True)
class EventFile:
    """One event file of a panel and its format (None: detected from the columns)."""

    path: Path
    format: str | None = None


@dataclass(frozen=True)
class PanelSpec:
    """Everything a panel is built from. ``forecast data build``, experiment files that build
    from event files and the refresh configuration all describe their panel as one of these.

    Parameters
    ----------
    events
        The event files (:class:`EventFile`, or paths whose format is detected).
    gazetteer
        Gazetteer CSV of the admin-1 units; None: the bundled Iraq gazetteer.
    covariates, fill
        Monthly covariates CSV and the policy for months it has no value for
        (:data:`features.covariates.FILL_POLICIES`).
    filters
        Date range, event types and actor to keep. The range also bounds the panel's months;
        up to ``filters.end`` the sources are taken as complete.
    coverage_end
        Last day the sources cover, when the provider says so (default: their last event date).
    keep_incomplete
        Keep trailing months that the sources cover only partly.
    encoding, date_format
        Text encoding of files that are neither UTF-8 nor UTF-16 with a BOM; ``strftime`` form of
        the event files' dates when ambiguous.
    """

    events: tuple[EventFile | str | Path, ...]
    gazetteer: str | Path | None = None
    covariates: str | Path | None = None
    fill: str = "error"
    filters: EventFilters = EventFilters()
    coverage_end: pd.Timestamp | None = None
    keep_incomplete: bool = False
    encoding: str | None = None
    date_format: str | None = None

    def event_files(self) -> list[EventFile]:
        return [e if isinstance(e, EventFile) else EventFile(Path(e)) for e in self.events]


def build_panel(spec: PanelSpec, *, progress: bool = False) -> PanelBuild:
    """Read the spec's event files and covariates and assemble the panel (nothing is written).

    Raises
    ------
    features.errors.DataError
        Naming the file, row and column of bad input; :class:`NoUsableEvents` (carrying the
        quarantine) when no event survives reading and filtering.
    """
    gaz = load_gazetteer(spec.gazetteer)
    files = spec.event_files()
    results = [
        read_events(f.path, format=f.format, gazetteer=gaz, filters=spec.filters, encoding=spec.encoding,
                    date_format=spec.date_format)
        for f in tqdm(files, desc="reading events", unit="file", disable=not progress or len(files) < 2)
    ]
    cov, cov_notes = (None, [])
    if spec.covariates is not None:
        cov, cov_notes = read_covariates(spec.covariates, gaz, spec.encoding)
    start = spec.filters.start.to_period("M") if spec.filters.start is not None else None
    end = spec.filters.end.to_period("M") if spec.filters.end is not None else None
    coverage_end = spec.coverage_end
    if end is not None:
        # Up to `end` the sources are taken as complete: the panel sees the data as it stood then.
        cap = end.end_time.normalize()
        coverage_end = cap if coverage_end is None else min(pd.Timestamp(coverage_end), cap)
    build = assemble_panel(results, gaz, start=start, end=end, coverage_end=coverage_end,
                           keep_incomplete=spec.keep_incomplete, covariates=cov,
                           covariate_source=str(spec.covariates) if spec.covariates is not None else None,
                           fill=spec.fill)
    build.notes.extend(cov_notes)
    return build


def _package_version() -> str:
    try:
        return version("insurgency-forecast")
    except PackageNotFoundError:
        return "unknown"


def last_complete_month(coverage_end: pd.Timestamp) -> pd.Period:
    """The last month whose final day is on or before ``coverage_end``."""
    month = coverage_end.to_period("M")
    if coverage_end.normalize() < month.end_time.normalize():
        month -= 1
    return month


def events_to_panel(events: pd.DataFrame, units: Sequence[str], months: pd.PeriodIndex) -> pd.DataFrame:
    """Aggregate normalised events into a complete, zero-filled unit x month grid."""
    grid = pd.MultiIndex.from_product([list(units), months], names=list(KEYS))
    month = events["date"].dt.to_period("M")
    counts = (
        events.assign(month=month)
        .groupby(["unit", "month"], observed=True)[["count", "deaths"]]
        .sum()
        .rename(columns={"count": "incidents"})
    )
    panel = counts.reindex(grid, fill_value=0).reset_index()
    panel[list(COUNTS)] = panel[list(COUNTS)].astype("int64")
    return panel


class NoUsableEvents(DataError):
    """No event survived reading and filtering; carries the quarantine so it can be written."""

    def __init__(self, message: str, quarantine: pd.DataFrame) -> None:
        super().__init__(message)
        self.quarantine = quarantine


def quarantine_digest(quarantine: pd.DataFrame, top: int = 4) -> str:
    """Counts by reason kind and the most common offending reasons with their values.

    For example ``9,029 x unparseable date '...' (most common: unparseable date
    '31-Dec-20' x 9,029)``: what to fix first in a file that will not build.
    """
    if quarantine.empty:
        return "none"
    reasons = quarantine["reason"].astype(str)
    # Values and row numbers differ from row to row: the kind is the reason without them.
    kinds = reasons.str.replace(r"'[^']*'", "'...'", regex=True).str.replace(r"\d+", "N", regex=True)
    by_kind = "; ".join(f"{n:,} x {k}" for k, n in kinds.value_counts().head(top).items())
    common = "; ".join(f"{r} x {n:,}" for r, n in reasons.value_counts().head(top).items())
    return f"{by_kind} (most common: {common})"


def assemble_panel(
    results: Sequence[ReadResult],
    gazetteer: Gazetteer,
    *,
    start: pd.Period | None = None,
    end: pd.Period | None = None,
    coverage_end: pd.Timestamp | None = None,
    keep_incomplete: bool = False,
    covariates: pd.DataFrame | None = None,
    covariate_source: str | None = None,
    fill: str = "error",
    fill_warn_months: int = FILL_WARN_MONTHS,
) -> PanelBuild:
    """Turn event files already read (and optional covariates) into a panel, its metadata and quarantine.

    :func:`build_panel` reads the files of a :class:`PanelSpec` and calls this; tests and
    benchmarks that hold :class:`~features.sources.base.ReadResult` objects call it directly.

    Parameters
    ----------
    results
        One :class:`ReadResult` per event file.
    start, end
        First / last month of the panel (default: first event month / vintage).
    coverage_end
        Last day the sources are known to cover; default: the earliest of the sources'
        last event dates (every source must cover a month for it to be complete).
    keep_incomplete
        Keep trailing months that the sources cover only partly.
    covariates, covariate_source, fill
        Covariate frame from :func:`features.covariates.read_covariates`, its file name
        for messages, and the fill policy.
    fill_warn_months
        A covariate filled for more months in a row than this gets a warning in the notes.
    """
    events = pd.concat([r.events for r in results], ignore_index=True)
    quarantine = pd.concat([r.quarantine for r in results], ignore_index=True)
    # What the gazetteer leaves out (no neighbours, no tile positions ...) is said once here.
    notes = [*gazetteer.notes, *(n for r in results for n in r.notes)]
    if events.empty:
        where = ", ".join(r.path for r in results)
        raise NoUsableEvents(
            f"{where}: no usable events ({len(quarantine):,} quarantined, "
            f"{sum(r.filtered_out for r in results):,} filtered out); nothing to build",
            quarantine,
        )

    if coverage_end is None:
        ends = [r.last_date for r in results if r.last_date is not None]
        coverage_end = min(ends)
    vintage = last_complete_month(pd.Timestamp(coverage_end))
    last_event_month = events["date"].max().to_period("M")
    first = start or events["date"].min().to_period("M")
    last = end or (last_event_month if keep_incomplete else vintage)
    if not keep_incomplete and last > vintage:
        last = vintage
    incomplete = [str(m) for m in month_range(vintage + 1, last_event_month)] if last_event_month > vintage else []
    if incomplete:
        if keep_incomplete:
            notes.append(
                f"month(s) {', '.join(incomplete)} only partly covered (sources end "
                f"{pd.Timestamp(coverage_end).date()}) but kept (--keep-incomplete)"
            )
        else:
            dropped = int((events["date"].dt.to_period("M") > last).sum())
            notes.append(
                f"left out incomplete month(s) {', '.join(incomplete)} ({dropped} events): the "
                f"sources end {pd.Timestamp(coverage_end).date()}; pass --coverage-end or "
                "--keep-incomplete if the month is in fact complete"
            )
    if last < first:
        raise DataError(
            f"no complete month: events start {first} but the sources only cover up to "
            f"{pd.Timestamp(coverage_end).date()}"
        )
    months = month_range(first, last)
    in_range = events["date"].dt.to_period("M").between(first, last)
    panel = events_to_panel(events[in_range], gazetteer.names, months)

    cov_meta = None
    if covariates is not None:
        panel = attach_covariates(panel, covariates, fill=fill, source=covariate_source or "covariates")
        cov_meta = {
            "path": covariate_source,
            "sha256": file_sha256(covariate_source) if covariate_source and Path(covariate_source).exists() else None,
            "columns": [c for c in covariates.columns if c not in ("month", "unit")],
            "scope": "unit" if "unit" in covariates else "national",
            "fill": fill,
            # Last observed month and filled stretches per covariate, so nothing shows filled values as data.
            "staleness": covariate_staleness(covariates, months, fill=fill),
            "fill_warn_months": fill_warn_months,
        }
        notes.extend(staleness_warnings(cov_meta["staleness"], limit=fill_warn_months))

    metadata = {
        "vintage": str(vintage if last >= vintage else last),
        "first_month": str(first),
        "last_month": str(last),
        "coverage_end": str(pd.Timestamp(coverage_end).date()),
        "incomplete_months": incomplete,
        "incomplete_months_kept": bool(keep_incomplete and incomplete),
        "units": gazetteer.names,
        # Absolute, so that commands run from another folder find the same gazetteer.
        "gazetteer": str(Path(gazetteer.path).resolve()),
        "gazetteer_notes": list(gazetteer.notes),
        "sources": [
            {
                "path": r.path,
                "format": r.format,
                "dataset": r.dataset,
                "sha256": file_sha256(r.path),
                "rows": r.rows,
                "events": int(len(r.events)),
                "quarantined": int(len(r.quarantine)),
                "filtered_out": r.filtered_out,
                "last_date": str(r.last_date.date()) if r.last_date is not None else None,
                "filters": r.filters,
                "date_form": r.date_form,
            }
            for r in results
        ],
        "events_outside_panel": int((~in_range).sum()),
        "covariates": cov_meta,
        "totals": {c: int(panel[c].sum()) for c in COUNTS},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": _package_version(),
    }
    graph = UnitGraph.from_gazetteer(gazetteer)
    metadata["unit_graph"] = graph.to_json()
    with_graph(panel, graph)
    return PanelBuild(panel=panel, metadata=metadata, quarantine=quarantine, notes=notes)
