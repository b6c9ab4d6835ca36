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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.context import ContextSeries, context_counts, type_split_series
from features.covariates import (
    FILL_WARN_MONTHS, OBSERVED_KEY, attach_covariates, covariate_staleness, describe_fill, observed_months,
    read_covariates, staleness_warnings,
)
from features.coverage import country_coverage, covered_mask, last_complete_month, unit_countries
from features.errors import DataError
from features.gazetteer import Gazetteer, load_gazetteer
from features.graph import UnitGraph, with_graph
from features.panel_files import COUNTS, KEYS, PanelBuild, file_sha256, month_range
from features.sources import EventFilters, ReadResult, read_events
from features.sources.dedup import drop_duplicate_events

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
        Date range, event types and actor to keep. The range also bounds the panel's months.
    coverage_end
        Last day the sources cover, when the provider says so (default: their last event date).
    keep_incomplete
        Keep trailing months that the sources cover only partly.
    encoding, date_format
        Text encoding of files that are neither UTF-8 nor UTF-16 with a BOM; ``strftime`` form of
        the event files' dates when ambiguous.
    sheet
        The sheet of .xlsx event workbooks to read (default: the largest).
    context
        Context series (:class:`features.context.ContextSeries`): operations tempo, airstrikes,
        ... counted per unit and month into columns of their own.
    type_split
        Also count the target files' events per event type into ``incidents_<type>`` columns.
    """

    events: tuple[EventFile | str | Path, ...]
    gazetteer: str | Path | None = None
    covariates: str | Path | None = None
    fill: str | Mapping[str, str] = "error"
    filters: EventFilters = EventFilters()
    coverage_end: pd.Timestamp | None = None
    keep_incomplete: bool = False
    encoding: str | None = None
    date_format: str | None = None
    sheet: str | None = None
    context: tuple[ContextSeries, ...] = ()
    type_split: bool = False

    def event_files(self) -> list[EventFile]:
        return _event_files(self.events)


def _event_files(events) -> list[EventFile]:
    return [e if isinstance(e, EventFile) else EventFile(Path(e)) for e in events]


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
    reads: dict[tuple, ReadResult] = {}

    def read(f: EventFile, filters: EventFilters) -> ReadResult:
        # A file a context series shares with the target, under the same filters, is read once.
        key = (str(f.path), f.format, filters)
        if key not in reads:
            reads[key] = read_events(f.path, format=f.format, gazetteer=gaz, filters=filters, encoding=spec.encoding,
                                     date_format=spec.date_format, sheet=spec.sheet)
        return reads[key]

    results = [read(f, spec.filters)
               for f in tqdm(files, desc="reading events", unit="file", disable=not progress or len(files) < 2)]
    # A context series selects its own events: only the target's date range applies to its files.
    dates_only = EventFilters(start=spec.filters.start, end=spec.filters.end)
    context = [(series, [read(f, dates_only) for f in _event_files(series.events or spec.events)])
               for series in spec.context]
    if spec.type_split:
        target_files = [read(f, dates_only) for f in files]
        context += [(series, target_files) for series in type_split_series(target_files)]
    names = [series.name for series, _ in context]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"context series {twice[0]!r} is defined twice (a type split makes incidents_<type> columns)")
    cov, cov_notes = (None, [])
    if spec.covariates is not None:
        cov, cov_notes = read_covariates(spec.covariates, gaz, spec.encoding)
    start = spec.filters.start.to_period("M") if spec.filters.start is not None else None
    end = spec.filters.end.to_period("M") if spec.filters.end is not None else None
    build = assemble_panel(results, gaz, start=start, end=end, coverage_end=spec.coverage_end,
                           keep_incomplete=spec.keep_incomplete, covariates=cov,
                           covariate_source=str(spec.covariates) if spec.covariates is not None else None,
                           fill=spec.fill, context=context)
    build.notes.extend(cov_notes)
    return build


def _package_version() -> str:
    try:
        return version("insurgency-forecast")
    except PackageNotFoundError:
        return "unknown"


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
    kinds = reasons.str.replace(r"'[^']*'", "'...'", regex=True).str.replace(r"(?<!admin-)\d+", "N", regex=True)
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
    fill: str | Mapping[str, str] = "error",
    fill_warn_months: int = FILL_WARN_MONTHS,
    context: Sequence[tuple[ContextSeries, Sequence[ReadResult]]] = (),
) -> PanelBuild:
    """Turn event files already read (and optional covariates) into a panel, its metadata and quarantine.

    :func:`build_panel` reads the files of a :class:`PanelSpec` and calls this; tests and
    benchmarks that hold :class:`~features.sources.base.ReadResult` objects call it directly.

    Parameters
    ----------
    results
        One :class:`ReadResult` per event file: the target counts.
    start, end
        First / last month of the panel (default: first event month / vintage).
    coverage_end
        Last day the sources are known to cover; default: the earliest of the sources'
        last event dates (every source must cover a month for it to be complete). Unit-months
        the sources do not cover are missing (:mod:`features.coverage`).
    keep_incomplete
        Keep trailing months that the sources cover only partly.
    covariates, covariate_source, fill
        Covariate frame from :func:`features.covariates.read_covariates`, its file name
        for messages, and the fill policy.
    fill_warn_months
        A covariate filled for more months in a row than this gets a warning in the notes.
    context
        Context series with the files they count (:mod:`features.context`), read with the
        target's date range only.
    """
    results, dropped = drop_duplicate_events(results)
    events = pd.concat([r.events for r in results], ignore_index=True)
    quarantine = pd.concat([r.quarantine for r in results], ignore_index=True)
    # What the gazetteer leaves out (no neighbours, no tile positions ...) is said once here.
    notes = [*gazetteer.notes, *(n for r in results for n in r.notes), *dropped]
    if events.empty:
        where = ", ".join(r.path for r in results)
        raise NoUsableEvents(
            f"{where}: no usable events ({len(quarantine):,} quarantined, "
            f"{sum(r.filtered_out for r in results):,} filtered out); nothing to build",
            quarantine,
        )
    coverage = country_coverage(results, gazetteer, start=start, end=end, coverage_end=coverage_end,
                                keep_incomplete=keep_incomplete)
    event_month = events["date"].dt.to_period("M")
    country_of = unit_countries(gazetteer)
    for country, c in coverage.items():
        if not c.incomplete:
            continue
        who = f"{country}: " if country and len(coverage) > 1 else ""
        if keep_incomplete:
            notes.append(f"{who}month(s) {', '.join(c.incomplete)} only partly covered (sources end "
                         f"{c.coverage_end.date()}) but kept (--keep-incomplete)")
        else:
            left_out = int(((event_month > c.last) & (events["unit"].map(country_of) == country)).sum())
            notes.append(f"{who}left out incomplete month(s) {', '.join(c.incomplete)} ({left_out} events): the "
                         f"sources end {c.coverage_end.date()}; pass --coverage-end or --keep-incomplete if the "
                         "month is in fact complete")
    first = min(c.first for c in coverage.values())
    last = max(c.last for c in coverage.values())
    months = month_range(first, last)
    units = gazetteer.names
    covered = covered_mask(coverage, units, months, country_of)
    index = {u: i for i, u in enumerate(units)}
    row = events["unit"].map(index).to_numpy()
    col = np.asarray(months.get_indexer(event_month), dtype=np.int64)
    in_range = pd.Series(col >= 0, index=events.index)
    in_range[in_range] = covered[row[in_range.to_numpy()], col[in_range.to_numpy()]]
    panel = events_to_panel(events[in_range], units, months)
    missing = ~covered.reshape(-1)  # (unit, month) order, as the panel's rows
    # Deaths are known where every file covering the country gives them.
    deaths_known = {c: all(r.has_deaths for r in results if r.path in cov.sources) for c, cov in coverage.items()}
    no_deaths = ~np.repeat([deaths_known.get(country_of.get(u, ""), True) for u in units], len(months))
    if missing.any() or no_deaths.any():
        panel["incidents"] = panel["incidents"].astype(float).mask(missing)
        panel["deaths"] = panel["deaths"].astype(float).mask(missing | no_deaths)

    context_meta = {}
    for series, files in context:
        # The target's own files cover what the target covers; other files cover their own months.
        same = {r.path for r in files} == {r.path for r in results}
        span = coverage if same else country_coverage(files, gazetteer)
        mask = covered_mask(span, units, months, country_of)
        panel[series.name] = context_counts(series, files, units, months, mask).reshape(-1)
        context_meta[series.name] = {
            "counts": series.describe(),
            "files": [r.path for r in files],
            "part_of": series.split_of,
            "coverage": {c or "all units": cov.to_json() for c, cov in span.items()},
        }

    cov_meta = None
    if covariates is not None:
        panel = attach_covariates(panel, covariates, fill=fill, source=covariate_source or "covariates")
        cov_meta = {
            "path": covariate_source,
            "sha256": file_sha256(covariate_source) if covariate_source and Path(covariate_source).exists() else None,
            "columns": [c for c in covariates.columns if c not in ("month", "unit")],
            "scope": "unit" if "unit" in covariates else "national",
            "fill": describe_fill(fill),
            # Last observed month and filled stretches per covariate, so nothing shows filled values as data.
            "staleness": covariate_staleness(covariates, months, fill=fill),
            "fill_warn_months": fill_warn_months,
        }
        notes.extend(staleness_warnings(cov_meta["staleness"], limit=fill_warn_months))
        panel.attrs[OBSERVED_KEY] = observed_months(cov_meta["staleness"], months)

    vintage = max(min(c.vintage, c.last) for c in coverage.values())
    metadata = {
        "vintage": str(vintage),
        "first_month": str(first),
        "last_month": str(last),
        "coverage_end": str(max(c.coverage_end for c in coverage.values()).date()),
        "incomplete_months": sorted({m for c in coverage.values() for m in c.incomplete}),
        "incomplete_months_kept": bool(keep_incomplete and any(c.incomplete for c in coverage.values())),
        # Which units and months the target sources cover; the others are missing in the panel.
        "coverage": {c or "all units": cov.to_json() for c, cov in coverage.items()},
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
                "deaths": r.has_deaths,
            }
            for r in results
        ],
        "events_outside_panel": int((~in_range).sum()),
        "context": context_meta,
        "covariates": cov_meta,
        "totals": {c: int(np.nansum(panel[c].to_numpy(dtype=float))) for c in COUNTS},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": _package_version(),
    }
    uncovered = sorted({u for u in units if country_of.get(u, "") not in coverage})
    if uncovered:
        notes.append(f"no source has events in {len(uncovered)} unit(s) of the gazetteer ({', '.join(uncovered[:5])}"
                     f"{' ...' if len(uncovered) > 5 else ''}): their months are missing, not zero")
    graph = UnitGraph.from_gazetteer(gazetteer)
    metadata["unit_graph"] = graph.to_json()
    with_graph(panel, graph)
    return PanelBuild(panel=panel, metadata=metadata, quarantine=quarantine, notes=notes)
