"""Shared machinery of the event readers: reading a CSV safely, validating rows, quarantine.

A reader for one export format only says how its columns map onto the *staging* columns
(:data:`STAGE_COLUMNS`, all text); everything else (encodings, parse errors, dates, counts,
governorate names, duplicate ids, filters, the quarantine) happens here, once, so every
format gets the same checks and the same messages.

Row numbers in messages and in the quarantine file are CSV record numbers with the header as
row 1 (the first data row is row 2; a skipped HXL tag row still counts), which is what a
spreadsheet shows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError, shorten
from features.gazetteer import Gazetteer, visible
from features.sources.dates import parse_dates
from features.textfile import read_sheet_text

#: The normalised event table every reader returns (one row per event). Besides the counts:
#: ``event_type`` and ``sub_event_type`` (the source's own words), ``actors`` (``side_a | side_b``),
#: ``side_a`` / ``side_b`` (who acted, and against whom, where the source says), ``deaths_civilians``
#: (NaN where the source does not say), ``operation`` (True for an action by state or coalition
#: forces, False for one by others, NA where the source cannot tell: see each format) and
#: ``part`` (the collection a row belongs to, for sources gathered in separate periods).
EVENT_COLUMNS = ("event_id", "date", "unit", "count", "deaths", "event_type", "actors", "source",
                 "sub_event_type", "side_a", "side_b", "deaths_civilians", "operation", "part")

#: Text columns a format's ``stage`` function must return, one row per CSV data row.
#: ``problem`` holds a reason when the format itself already knows the row is unusable
#: (e.g. GTD's imonth = 0); ``operation`` is ``1``, ``0`` or empty (unknown); ``actors`` is
#: ``side_a | side_b`` when a format gives only the sides.
STAGE_COLUMNS = (
    "event_id",
    "date",
    "admin1",
    "country",
    "count",
    "deaths",
    "event_type",
    "actors",
    "problem",
    "sub_event_type",
    "side_a",
    "side_b",
    "deaths_civilians",
    "operation",
    "part",
)

#: Largest count or death toll accepted for one row.
MAX_COUNT = 10**9

#: Earliest event date accepted: no conflict dataset this tool reads starts before 1946 (UCDP's
#: earliest year); an earlier date is a placeholder (0001-01-01) or a typo.
EARLIEST_DATE = pd.Timestamp("1946-01-01")
#: Days after the build date an event may be dated (time zones, a source's end-of-month dating);
#: a later date (2099-12-31, 9999-12-31) is a placeholder or a typo.
DAYS_AHEAD = 31

#: Placeholders that mean "no name" in exports (R writes NA, spreadsheets #N/A).
MISSING_NAMES = {"na", "n/a", "#n/a", "nan", "null", "none", "unknown"}



@dataclass(frozen=True)
class SourceFormat:
    """One event export format.

    Parameters
    ----------
    name
        Format name used by ``--format``.
    label
        Human-readable dataset name.
    required
        Columns that must be present; they also identify the format.
    column_of
        Staging column -> source column named in error messages.
    stage
        Maps the raw text frame (all columns as ``str``) to :data:`STAGE_COLUMNS`.
    date_format
        ``strftime`` format of the staged ``date`` text, or None for ISO ``YYYY-MM-DD``.
    event_type_aliases
        Extra spellings accepted by the event-type filter (e.g. UCDP's ``1`` for
        state-based violence).
    date_forms
        ``strftime`` formats the format's real exports use; when given, the form that reads
        the file's dates is found (and reported), instead of ``date_format``.
    """

    name: str
    label: str
    required: tuple[str, ...]
    column_of: dict[str, str]
    stage: Callable[[pd.DataFrame], pd.DataFrame]
    date_format: str | None = None
    event_type_aliases: dict[str, str] = field(default_factory=dict)
    date_forms: tuple[str, ...] = ()

    def matches(self, columns: Sequence[str]) -> bool:
        present = {c.strip().lower() for c in columns}
        return all(c.lower() in present for c in self.required)


@dataclass(frozen=True)
class EventFilters:
    """Which events to keep. Filtered events are counted, not quarantined: they are valid."""

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    event_types: tuple[str, ...] = ()
    #: Whole-word, case-insensitive match against the event's actors.
    actor: str | None = None

    def describe(self) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"from {self.start.date()}")
        if self.end is not None:
            parts.append(f"to {self.end.date()}")
        if self.event_types:
            parts.append("event type in " + ", ".join(self.event_types))
        if self.actor:
            parts.append(f"actor contains {self.actor!r}")
        return "; ".join(parts) or "none"


@dataclass
class ReadResult:
    """What a reader produced from one file.

    ``events`` follows :data:`EVENT_COLUMNS`; ``quarantine`` holds the unusable rows as they
    were in the file plus ``file``, ``row``, ``column`` and ``reason``.
    """

    path: str
    format: str
    rows: int
    events: pd.DataFrame
    quarantine: pd.DataFrame
    filtered_out: int
    notes: list[str]
    #: Latest date among the usable events before filtering: how far the source reaches.
    last_date: pd.Timestamp | None = None
    filters: str = "none"
    #: ``strftime`` form the dates were read with (found, or given with ``date_format``).
    date_form: str = "%Y-%m-%d"
    #: The dataset the format names ("UCDP GED", "UCDP Candidate Events", ...).
    dataset: str = ""
    #: The periods the file was collected over, ``(first date, last date)`` of the usable events
    #: before filtering: one for most files, one per collection (``part``) where a source was
    #: gathered in separate periods (the geocausal data: 2006, then 2007-08).
    spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    #: Whether the spans are collections with known bounds (``part``): then only months they
    #: cover completely are covered; otherwise the first event's month counts from its start.
    parts: bool = False
    #: Whether the file gives death tolls at all (some usable event has one); a file with none
    #: leaves deaths missing, not zero, where it is the only source.
    has_deaths: bool = True
    #: Whether ``event_id`` comes from the file (False: made from row numbers, so it
    #: identifies nothing across files).
    ids_from_file: bool = True
    #: The workbook sheet read, for an .xlsx file.
    sheet: str | None = None


# ----------------------------------------------------------------------------------------
# Reading the file


@dataclass(frozen=True)
class RawTable:
    """A CSV as text: the data rows, their file row numbers, and rows the parser found broken."""

    frame: pd.DataFrame
    rownum: np.ndarray
    broken: pd.Series  # reason per row, '' when the row parsed cleanly
    #: The workbook sheet the rows come from (None for a CSV).
    sheet: str | None = None

    def where(self, path: Path) -> str:
        """The file as messages name it: with the sheet for a workbook."""
        return f"{path} (sheet {self.sheet!r})" if self.sheet else str(path)


def read_table(path: Path, encoding: str | None = None, sheet: str | None = None) -> RawTable:
    """Parse a CSV into an all-text frame and the file row number of every data row.

    A HDX HXL hashtag row under the header (``#date+start,#adm1+name,...``) is skipped.
    Rows with the wrong number of fields are kept for the quarantine, unless most rows are
    like that, in which case the file is not the table it claims to be.
    """
    text, sheet_read = read_sheet_text(path, encoding, sheet)
    if sheet_read:
        path = f"{path} (sheet {sheet_read!r})"
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc
    if not records or not any(cell.strip() for cell in records[0]):
        raise DataError(f"{path}: the first row is empty; expected a header row")
    header = [cell.strip() for cell in records[0]]
    if len(set(header)) != len(header):
        dup = sorted({c for c in header if header.count(c) > 1})
        named = [shorten(c, 40) for c in dup if c]
        empty = header.count("")
        raise DataError(f"{path}, row 1: duplicate column name(s) {', '.join(named)}" if named else
                        f"{path}, row 1: {empty} of its {len(header)} columns have no name; is row 1 the header?")
    body = records[1:]
    rownum = np.arange(2, len(records) + 1)
    if body and _is_hxl_row(body[0]):
        body, rownum = body[1:], rownum[1:]
    # Blank lines carry no data: they are skipped rather than reported as bad rows.
    keep = [i for i, rec in enumerate(body) if any(cell.strip() for cell in rec)]
    body = [body[i] for i in keep]
    rownum = rownum[keep]
    width = len(header)
    ragged = [i for i, rec in enumerate(body) if len(rec) != width]
    if ragged and len(ragged) > len(body) / 2:
        n = rownum[ragged[0]]
        raise DataError(
            f"{path}, row {n}: {len(body[ragged[0]])} fields where the header has {width}, "
            f"and so do {len(ragged)} of {len(body)} rows: this is not a well-formed CSV "
            "(wrong delimiter or unbalanced quotes?)"
        )
    ragged_reason = {}
    for i in ragged:
        rec = body[i]
        ragged_reason[i] = f"{len(rec)} fields where the header has {width}"
        # Keep what the row held, so the quarantine shows it: pad, or fold the surplus into
        # the last column.
        body[i] = (rec + [""] * width)[:width] if len(rec) < width else rec[: width - 1] + [
            ",".join(rec[width - 1 :])
        ]
    frame = pd.DataFrame(body, columns=header, dtype=str) if body else pd.DataFrame(
        columns=header, dtype=str
    )
    broken = pd.Series(
        [ragged_reason.get(i, "") for i in range(len(body))], index=frame.index, dtype=object
    )
    return RawTable(frame, rownum, broken, sheet_read)


def _is_hxl_row(record: Sequence[str]) -> bool:
    cells = [c.strip() for c in record if c.strip()]
    return bool(cells) and all(c.startswith("#") for c in cells)


# ----------------------------------------------------------------------------------------
# Validation and normalisation


def detect_format(path: Path | str, columns: Sequence[str], formats: Sequence[SourceFormat]) -> SourceFormat:
    """The first format whose required columns are all present."""
    for fmt in formats:
        if fmt.matches(columns):
            return fmt
    described = "; ".join(f"{f.name} ({', '.join(f.required)})" for f in formats)
    raise DataError(
        f"{path}: cannot tell the format from its columns ({', '.join(shorten(c, 40) for c in columns[:12])}"
        f"{', ...' if len(columns) > 12 else ''}). Known formats and their required columns: "
        f"{described}. Force one with --format."
    )


def check_required(path: Path | str, columns: Sequence[str], fmt: SourceFormat) -> None:
    present = {c.strip().lower() for c in columns}
    missing = [c for c in fmt.required if c.lower() not in present]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)} for the {fmt.label} "
            f"format; the file has {', '.join(shorten(c, 40) for c in columns[:30])}"
            f"{f' and {len(columns) - 30} more' if len(columns) > 30 else ''}"
        )


def lower_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names stripped and lower-cased, so 'Event_Date' reads like 'event_date'."""
    return frame.rename(columns=lambda c: c.strip().lower())


def parse_whole_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse non-negative whole numbers; return (values as float, reason or '' per row)."""
    stripped = text.str.strip()
    values = pd.to_numeric(stripped.str.replace(",", "", regex=False), errors="coerce")
    reason = pd.Series("", index=text.index, dtype=object)
    empty = stripped == ""
    reason[~empty & values.isna()] = "is not a number"
    reason[values.notna() & (values < 0)] = "is negative"
    reason[values.notna() & (values >= 0) & (values % 1 != 0)] = "is not a whole number"
    reason[values.notna() & ~np.isfinite(values.fillna(0))] = "is not a finite number"
    # Beyond this a count is an export error, and int64 arithmetic would overflow.
    reason[values.notna() & np.isfinite(values.fillna(0)) & (values > MAX_COUNT)] = "is implausibly large"
    return values, reason


def normalise_events(
    path: Path,
    table: RawTable,
    fmt: SourceFormat,
    gazetteer: Gazetteer,
    filters: EventFilters,
    date_format: str | None = None,
    today: pd.Timestamp | None = None,
) -> ReadResult:
    """Validate staged rows, map names to units, split usable rows from the quarantine.

    ``today`` is the build date (default: today, UTC): events dated more than
    :data:`DAYS_AHEAD` days after it, or before :data:`EARLIEST_DATE`, are quarantined.
    """
    # Index every frame by file row number: messages, quarantine and generated ids use it.
    rownum = table.rownum
    raw = table.frame.set_axis(rownum)
    staged = fmt.stage(lower_columns(raw))
    staged = staged.reindex(columns=list(STAGE_COLUMNS), fill_value="").astype(object).fillna("").astype(str)
    notes: list[str] = []

    # Rows the CSV parser already found broken come first, then what the format knows.
    ragged = table.broken.set_axis(rownum)
    reason = ragged.where(ragged != "", staged["problem"]).astype(object)
    column = pd.Series(
        np.where(ragged != "", "(whole row)", np.where(reason != "", fmt.column_of.get("date", "date"), "")),
        index=raw.index,
        dtype=object,
    )

    def flag(mask: pd.Series, col: str, why: pd.Series | str) -> None:
        # Only the first problem of a row is reported: it is the one to fix first.
        new = mask & (reason == "")
        if isinstance(why, pd.Series):
            reason[new] = why[new]
        else:
            reason[new] = why
        column[new] = fmt.column_of.get(col, col)

    # Dates
    date_text = staged["date"].str.strip()
    forms = fmt.date_forms or ((fmt.date_format,) if fmt.date_format else ())
    dates, date_form, doubtful = parse_dates(path, date_text, fmt.column_of.get("date", "date"), forms, date_format)
    flag(date_text == "", "date", "date is empty")
    flag(doubtful != "", "date", "date " + date_text.map(repr) + ": " + doubtful)
    flag(dates.isna(), "date", "unparseable date " + date_text.map(repr))
    latest = (today or pd.Timestamp.now(tz="UTC")).tz_localize(None).normalize() + pd.Timedelta(days=DAYS_AHEAD)
    flag(dates < EARLIEST_DATE, "date",
         "date " + date_text.map(repr) + f" is before {EARLIEST_DATE.date()}: a placeholder or a typo")
    flag(dates > latest, "date", "date " + date_text.map(repr) + f" is more than {DAYS_AHEAD} days after the build "
         f"date ({(latest - pd.Timedelta(days=DAYS_AHEAD)).date()}): a placeholder or a typo")

    # Counts and deaths
    count_text = staged["count"].where(staged["count"].str.strip() != "", "1")
    counts, count_reason = parse_whole_numbers(count_text)
    flag(count_reason != "", "count", "count " + count_text.map(repr) + " " + count_reason)
    deaths, death_reason = parse_whole_numbers(staged["deaths"])
    flag(death_reason != "", "deaths", "deaths " + staged["deaths"].map(repr) + " " + death_reason)
    civilians, civilian_reason = parse_whole_numbers(staged["deaths_civilians"])
    flag(civilian_reason != "", "deaths_civilians",
         "civilian deaths " + staged["deaths_civilians"].map(repr) + " " + civilian_reason)
    unknown_deaths = int(((staged["deaths"].str.strip() == "") & (reason == "")).sum())
    if unknown_deaths and unknown_deaths == int((reason == "").sum()):
        notes.append(f"{path.name}: no event has a death count: deaths are missing (not 0) where only this "
                     "file covers a unit and month, and cannot be a forecast target there")
    elif unknown_deaths:
        notes.append(f"{unknown_deaths} event(s) with no death count were counted as 0 deaths")

    # Country: a multi-country export is cut to the gazetteer's countries, loudly.
    country = staged["country"].str.strip()
    known_countries = {c.casefold() for c in gazetteer.countries}
    # A gazetteer without a country column cannot cut anything: every country passes.
    flag(
        (country != "") & bool(known_countries) & ~country.str.casefold().isin(known_countries),
        "country",
        "country " + country.map(repr) + " is not covered by the gazetteer "
        f"({', '.join(sorted(gazetteer.countries))})",
    )

    # Names. R and spreadsheet exports write a missing name as a placeholder word.
    admin1 = staged["admin1"].str.strip()
    admin1 = admin1.where(~admin1.str.casefold().isin(MISSING_NAMES), "")
    distinct = admin1[admin1 != ""].unique()
    resolved = {name: gazetteer.match(name) for name in distinct}
    units = admin1.map(resolved)
    flag(
        admin1 == "",
        "admin1",
        f"no {gazetteer.unit_word} given (value " + staged["admin1"].str.strip().map(repr) + ")",
    )
    unknown = (admin1 != "") & units.isna()
    if unknown.any():
        suggestion = {n: gazetteer.suggest(n) for n in distinct if resolved[n] is None}
        flag(
            unknown,
            "admin1",
            f"unknown {gazetteer.unit_word} " + admin1.map(lambda name: repr(visible(name))) + "; "
            + admin1.map(suggestion).fillna(""),
        )

    # Event ids: a repeated id is a second report of one event or an export error; either
    # way counting it twice would inflate the panel.
    ids = staged["event_id"].str.strip()
    flag(ids == "", "event_id", "event id is empty")
    first_row = pd.Series(rownum, index=raw.index).groupby(ids).transform("min")
    dup = ids.duplicated(keep="first") & (ids != "")
    flag(dup, "event_id", "duplicate event id " + ids.map(repr) + " (first at row " + first_row.astype(str) + ")")

    bad = reason != ""
    quarantine = raw[bad].copy()
    quarantine.insert(0, "reason", reason[bad])
    quarantine.insert(0, "column", column[bad])
    quarantine.insert(0, "row", quarantine.index)
    quarantine.insert(0, "file", str(path))

    good = ~bad
    events = pd.DataFrame(
        {
            "event_id": ids[good],
            "date": dates[good],
            "unit": units[good],
            "count": counts[good].astype("int64"),
            "deaths": deaths[good].fillna(0).astype("int64"),
            "event_type": staged["event_type"][good].str.strip(),
            "actors": staged["actors"][good].str.strip(),
            "source": fmt.name,
            "sub_event_type": staged["sub_event_type"][good].str.strip(),
            "side_a": staged["side_a"][good].str.strip(),
            "side_b": staged["side_b"][good].str.strip(),
            "deaths_civilians": civilians[good].astype(float),
            "operation": staged["operation"][good].str.strip().map({"1": True, "0": False}).astype("boolean"),
            "part": staged["part"][good].str.strip(),
        }
    )
    kept = _apply_filters(events, filters, fmt)
    return ReadResult(
        path=str(path),
        format=fmt.name,
        rows=len(raw),
        events=kept.reset_index(drop=True),
        quarantine=quarantine.reset_index(drop=True),
        filtered_out=len(events) - len(kept),
        notes=notes,
        last_date=events["date"].max() if len(events) else None,
        filters=filters.describe(),
        date_form=date_form,
        dataset=fmt.label,
        # A collection's period shows in every dated row, usable or not (a row without a unit
        # was still collected that day).
        spans=collection_spans(pd.DataFrame({"part": staged["part"].str.strip(), "date": dates})
                               .loc[dates.notna() & (dates >= EARLIEST_DATE) & (dates <= latest)]),
        parts=bool((staged["part"].str.strip() != "").any()),
        has_deaths=bool((staged["deaths"][good].str.strip() != "").any()),
    )


def collection_spans(events: pd.DataFrame) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    """``(first, last)`` event date of each collection (``part``) of a file, in date order."""
    if events.empty:
        return ()
    spans = events.groupby("part", sort=False)["date"].agg(["min", "max"]).sort_values("min")
    return tuple((first, last) for first, last in zip(spans["min"], spans["max"]))


def _apply_filters(events: pd.DataFrame, filters: EventFilters, fmt: SourceFormat) -> pd.DataFrame:
    keep = pd.Series(True, index=events.index)
    if filters.start is not None:
        keep &= events["date"] >= filters.start
    if filters.end is not None:
        keep &= events["date"] <= filters.end
    if filters.event_types:
        wanted = {fmt.event_type_aliases.get(t.strip().lower(), t).strip().casefold() for t in filters.event_types}
        keep &= events["event_type"].str.casefold().isin(wanted)
    if filters.actor:
        # Whole words, so that "IS" selects the Islamic State and not "Islamic Army" or
        # "Civilians"; case does not matter.
        pattern = r"(?<!\w)" + re.escape(filters.actor.strip()) + r"(?!\w)"
        keep &= events["actors"].str.contains(pattern, case=False, regex=True)
    return events[keep]
