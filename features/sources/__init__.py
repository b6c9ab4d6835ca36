"""Readers for the public conflict event datasets.

Every reader turns one export file into the normalised event table
(:data:`~features.sources.base.EVENT_COLUMNS`: event_id, date, unit, count, deaths,
event_type, actors, source) plus a quarantine of the rows it could not use. The format is
detected from the columns or forced by name.
"""

from __future__ import annotations

from pathlib import Path

from features.errors import DataError
from features.gazetteer import Gazetteer, load_gazetteer
from features.sources.acled import ACLED
from features.sources.acled_hdx import ACLED_HDX
from features.sources.base import (
    EVENT_COLUMNS,
    EventFilters,
    ReadResult,
    SourceFormat,
    check_required,
    detect_format,
    normalise_events,
    read_table,
)
from features.sources.generic import GENERIC
from features.sources.geocausal import GEOCAUSAL
from features.sources.gtd import GTD
from features.sources.ibc import IBC
from features.sources.ucdp import UCDP_CANDIDATE, UCDP_GED, review_note, ucdp_variant

#: Formats by name, in detection order (the generic format, with the fewest columns, last).
#: UCDP Candidate Events share GED's columns: a file detected as GED is then told apart by
#: :func:`~features.sources.ucdp.ucdp_variant`.
FORMATS: dict[str, SourceFormat] = {
    f.name: f for f in (UCDP_GED, UCDP_CANDIDATE, ACLED, ACLED_HDX, GTD, IBC, GEOCAUSAL, GENERIC)
}

__all__ = ["EVENT_COLUMNS", "FORMATS", "EventFilters", "ReadResult", "read_events"]


def read_events(
    path: str | Path,
    *,
    format: str | None = None,
    gazetteer: Gazetteer | None = None,
    filters: EventFilters | None = None,
    encoding: str | None = None,
    date_format: str | None = None,
    sheet: str | None = None,
) -> ReadResult:
    """Read one event file into the normalised event table and its quarantine.

    Parameters
    ----------
    path
        CSV file (or a .zip holding one CSV).
    format
        One of :data:`FORMATS`; detected from the columns when None. ``ucdp`` names the GED
        layout: whether the file is GED or a Candidate Events release is then found from its
        name and columns (``ucdp-candidate`` forces Candidate).
    gazetteer
        Units to map names onto (the bundled Iraq gazetteer when None).
    filters
        Date range, event types and actor substring to keep.
    encoding
        Text encoding when the file is neither UTF-8 nor UTF-16 with a BOM.
    date_format
        ``strftime`` form of the file's dates (e.g. ``%d/%m/%Y``); by default the form is
        found among those the format's real exports use, and an ambiguous one is an error.
    sheet
        The sheet of an .xlsx workbook to read (default: its largest); the result names it.

    Raises
    ------
    DataError
        When the file as a whole cannot be read (missing, empty, binary, wrong encoding,
        not a CSV, unknown format, missing required columns). Problems of single rows do not
        raise: those rows go to ``ReadResult.quarantine`` with a reason.
    """
    path = Path(path)
    gazetteer = gazetteer or load_gazetteer()
    table = read_table(path, encoding, sheet)
    columns = list(table.frame.columns)
    where = table.where(path)
    if format is None:
        fmt = detect_format(where, columns, list(FORMATS.values()))
    else:
        try:
            fmt = FORMATS[format]
        except KeyError:
            raise DataError(
                f"unknown format {format!r}; choose one of {', '.join(FORMATS)}"
            ) from None
    check_required(where, columns, fmt)
    variant_notes: list[str] = []
    if table.sheet:
        variant_notes.append(f"{path.name}: read sheet {table.sheet!r} of the workbook "
                             f"({'as asked' if sheet else 'its largest; choose another with --sheet'})")
    if fmt is UCDP_GED or fmt is UCDP_CANDIDATE:
        if fmt is UCDP_GED:
            fmt, why = ucdp_variant(path, columns)
            if fmt is UCDP_CANDIDATE:
                variant_notes.append(f"{path.name}: read as {fmt.label}, not GED: {why}")
        flagged = review_note(table.frame.rename(columns=lambda c: c.strip().lower()))
        if flagged:
            variant_notes.append(f"{path.name}: {flagged}")
    result = normalise_events(path, table, fmt, gazetteer, filters or EventFilters(), date_format)
    result.notes[:0] = variant_notes
    result.sheet = table.sheet
    # The generic format numbers rows when the file has no event_id: such ids name no event.
    result.ids_from_file = fmt is not GENERIC or "event_id" in {c.strip().lower() for c in columns}
    return result
