"""Shared machinery of the event readers: validating rows, quarantine.

A reader for one export format only says how its columns map onto the *staging* columns
(:data:`STAGE_COLUMNS`, all text); everything else (encodings, parse errors, dates, counts,
governorate names, duplicate ids, filters, the quarantine) happens here, once, so every
format gets the same checks and the same messages.

Row numbers in messages and in the quarantine file are CSV record numbers with the header as
row 1 (the first data row is row 2; a skipped HXL tag row still counts), which is what a
spreadsheet shows.

A file is staged chunk by chunk as :mod:`features.sources.table` reads it, into compact
columns (:mod:`features.sources.compact`), and validated as a whole: the date form, two-digit
years and duplicate ids are questions about the whole file. The rows that end up in the
quarantine are read again from the file, whole, for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError, shorten
from features.gazetteer import Gazetteer, visible
from features.sources.compact import (
    compact_text, concat_compact, first_occurrence, per_value, sorted_categories, spread,
)
from features.sources.dates import parse_dates
from features.sources.table import RawTable, read_table

__all__ = ["DAYS_AHEAD", "EARLIEST_DATE", "EVENT_COLUMNS", "MAX_COUNT", "MISSING_NAMES", "STAGE_COLUMNS",
           "EventFilters", "RawTable", "ReadResult", "SourceFormat", "check_required", "collection_spans",
           "detect_format", "lower_columns", "normalise_events", "normalise_staged", "parse_whole_numbers",
           "read_table", "stage_chunks"]

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
    optional
        Other columns ``stage`` reads when the file has them: with ``required``, the only
        columns read from an event file.
    """

    name: str
    label: str
    required: tuple[str, ...]
    column_of: dict[str, str]
    stage: Callable[[pd.DataFrame], pd.DataFrame]
    date_format: str | None = None
    event_type_aliases: dict[str, str] = field(default_factory=dict)
    date_forms: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def matches(self, columns: Sequence[str]) -> bool:
        present = {c.strip().lower() for c in columns}
        return all(c.lower() in present for c in self.required)

    def reads(self, columns: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
        """The file's columns (as ``columns`` names them) that ``stage`` reads, and those named in ``extra``."""
        used = {c.lower() for c in (*self.required, *self.optional, *extra)}
        return [c for c in columns if c.strip().lower() in used]


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
    """Parse non-negative whole numbers; return (values as float, reason or '' per row).

    A categorical column is parsed once per distinct value.
    """
    if isinstance(text.dtype, pd.CategoricalDtype):
        values, reason = parse_whole_numbers(pd.Series(text.cat.categories))
        return spread(values, text), spread(reason, text)
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


def stage_chunks(chunks: Iterable[RawTable], fmt: SourceFormat, carry: Sequence[str] = ()) -> pd.DataFrame:
    """Stage each :class:`RawTable` chunk with the format and stack them compactly.

    Returns one row per data row of the file, indexed by file row number: the
    :data:`STAGE_COLUMNS`, ``broken`` (the parser's reason, '' for most rows) and the raw
    columns named in ``carry`` that the file has; categorical except ``event_id`` (stripped).
    """
    parts = []
    for table in chunks:
        raw = lower_columns(table.frame.set_axis(table.rownum))
        staged = fmt.stage(raw).reindex(columns=list(STAGE_COLUMNS), fill_value="")
        staged = staged.assign(**{c: _text(staged[c]) for c in STAGE_COLUMNS})
        staged["event_id"] = staged["event_id"].str.strip()
        staged["broken"] = table.broken.set_axis(table.rownum).astype(str)
        for c in carry:
            if c in raw:
                staged[c] = raw[c]
        parts.append(compact_text(staged, keep=("event_id",)))
    return concat_compact(parts)


def _text(values: pd.Series) -> pd.Series:
    """A staged column as text, missing values empty."""
    if values.dtype == "str" and not values.isna().any():
        return values
    return values.astype(object).fillna("").astype(str)


def normalise_events(
    path: Path,
    table: RawTable,
    fmt: SourceFormat,
    gazetteer: Gazetteer,
    filters: EventFilters,
    date_format: str | None = None,
    today: pd.Timestamp | None = None,
) -> ReadResult:
    """:func:`normalise_staged` for a table read whole (:func:`read_table`)."""
    raw = table.frame.set_axis(table.rownum)
    return normalise_staged(path, stage_chunks([table], fmt), fmt, gazetteer, filters, lambda rows: raw.loc[rows],
                            date_format, today)


def _quoted(values: pd.Series) -> pd.Series:
    return values.astype(object).map(repr)


def normalise_staged(
    path: Path,
    staged: pd.DataFrame,
    fmt: SourceFormat,
    gazetteer: Gazetteer,
    filters: EventFilters,
    rows_of: Callable[[np.ndarray], pd.DataFrame],
    date_format: str | None = None,
    today: pd.Timestamp | None = None,
) -> ReadResult:
    """Validate staged rows, map names to units, split usable rows from the quarantine.

    ``staged`` comes from :func:`stage_chunks`; ``rows_of`` gives the file's rows (all
    columns, indexed by row number) for the row numbers of the quarantine. ``today`` is the
    build date (default: today, UTC): events dated more than :data:`DAYS_AHEAD` days after it,
    or before :data:`EARLIEST_DATE`, are quarantined.
    """
    rownum = staged.index.to_numpy()
    notes: list[str] = []
    date_column = fmt.column_of.get("date", "date")

    # Rows the CSV parser already found broken come first, then what the format knows.
    broken = (staged["broken"] != "").to_numpy()
    known = ~broken & (staged["problem"] != "").to_numpy()
    reason = pd.Series("", index=staged.index, dtype=object)
    column = pd.Series("", index=staged.index, dtype=object)
    reason[broken] = staged["broken"][broken].to_numpy(dtype=object)
    reason[known] = staged["problem"][known].to_numpy(dtype=object)
    column[broken] = "(whole row)"
    column[known] = date_column
    ok = ~(broken | known)  # rows without a problem so far

    def flag(mask, col: str, why: Callable[[np.ndarray], pd.Series] | str) -> None:
        # Only the first problem of a row is reported: it is the one to fix first. The message
        # is made for those rows only.
        new = np.asarray(mask, dtype=bool) & ok
        if new.any():
            reason[new] = why if isinstance(why, str) else why(new).to_numpy(dtype=object)
            column[new] = fmt.column_of.get(col, col)
            ok[new] = False

    def strip(values: pd.Series) -> pd.Series:
        return per_value(values, lambda s: s.str.strip())

    # Dates
    date_text = strip(staged["date"])
    forms = fmt.date_forms or ((fmt.date_format,) if fmt.date_format else ())
    dates, date_form, doubtful = parse_dates(path, date_text, date_column, forms, date_format)
    flag(date_text == "", "date", "date is empty")
    flag(doubtful != "", "date", lambda rows: "date " + _quoted(date_text[rows]) + ": " + doubtful[rows])
    flag(dates.isna(), "date", lambda rows: "unparseable date " + _quoted(date_text[rows]))
    latest = (today or pd.Timestamp.now(tz="UTC")).tz_localize(None).normalize() + pd.Timedelta(days=DAYS_AHEAD)
    flag(dates < EARLIEST_DATE, "date",
         lambda rows: "date " + _quoted(date_text[rows]) + f" is before {EARLIEST_DATE.date()}: a placeholder or a typo")
    flag(dates > latest, "date", lambda rows: "date " + _quoted(date_text[rows]) + f" is more than {DAYS_AHEAD} days "
         f"after the build date ({(latest - pd.Timedelta(days=DAYS_AHEAD)).date()}): a placeholder or a typo")

    # Counts and deaths
    count_text = per_value(staged["count"], lambda s: s.where(s.str.strip() != "", "1"))
    counts, count_reason = parse_whole_numbers(count_text)
    flag(count_reason != "", "count",
         lambda rows: "count " + _quoted(count_text[rows]) + " " + count_reason[rows].astype(object))
    deaths, death_reason = parse_whole_numbers(staged["deaths"])
    flag(death_reason != "", "deaths",
         lambda rows: "deaths " + _quoted(staged["deaths"][rows]) + " " + death_reason[rows].astype(object))
    civilians, civilian_reason = parse_whole_numbers(staged["deaths_civilians"])
    flag(civilian_reason != "", "deaths_civilians", lambda rows: "civilian deaths "
         + _quoted(staged["deaths_civilians"][rows]) + " " + civilian_reason[rows].astype(object))
    no_deaths = (strip(staged["deaths"]) == "").to_numpy()
    unknown_deaths = int((no_deaths & ok).sum())
    if unknown_deaths and unknown_deaths == int(ok.sum()):
        notes.append(f"{path.name}: no event has a death count: deaths are missing (not 0) where only this "
                     "file covers a unit and month, and cannot be a forecast target there")
    elif unknown_deaths:
        notes.append(f"{unknown_deaths} event(s) with no death count were counted as 0 deaths")

    # Country: a multi-country export is cut to the gazetteer's countries, loudly.
    country = strip(staged["country"])
    known_countries = {c.casefold() for c in gazetteer.countries}
    # A gazetteer without a country column cannot cut anything: every country passes.
    if known_countries:
        flag((country != "").to_numpy() & ~per_value(country, lambda s: s.str.casefold().isin(known_countries)),
             "country", lambda rows: "country " + _quoted(country[rows]) + " is not covered by the gazetteer "
             f"({', '.join(sorted(gazetteer.countries))})")

    # Names. R and spreadsheet exports write a missing name as a placeholder word.
    given = strip(staged["admin1"])
    admin1 = per_value(given, lambda s: s.where(~s.str.casefold().isin(MISSING_NAMES), ""))
    distinct = [name for name in admin1.cat.categories if name != ""]
    resolved = {name: gazetteer.match(name) for name in distinct}
    names = gazetteer.names
    position = {name: i for i, name in enumerate(names)}
    unit_of = np.array([position[resolved[name]] if resolved.get(name) is not None else -1
                        for name in admin1.cat.categories], dtype=np.int64)
    unit_codes = unit_of[admin1.cat.codes.to_numpy()] if len(unit_of) else np.full(len(admin1), -1)
    flag(admin1 == "", "admin1",
         lambda rows: f"no {gazetteer.unit_word} given (value " + _quoted(given[rows]) + ")")
    unknown = (admin1 != "").to_numpy() & (unit_codes < 0)
    if unknown.any():
        suggestion = {n: gazetteer.suggest(n) for n in distinct if resolved[n] is None}
        flag(unknown, "admin1", lambda rows: f"unknown {gazetteer.unit_word} "
             + admin1[rows].astype(object).map(lambda name: repr(visible(name))) + "; "
             + admin1[rows].astype(object).map(suggestion).fillna(""))

    # Event ids: a repeated id is a second report of one event or an export error; either
    # way counting it twice would inflate the panel.
    ids = staged["event_id"]
    flag(ids == "", "event_id", "event id is empty")
    first = first_occurrence(ids)
    if first is not None:
        dup = (first != np.arange(len(ids))) & (ids != "").to_numpy()
        first_row = pd.Series(rownum[first], index=staged.index)
        flag(dup, "event_id", lambda rows: "duplicate event id " + _quoted(ids[rows]) + " (first at row "
             + first_row[rows].astype(str).astype(object) + ")")

    bad = ~ok
    quarantine = rows_of(rownum[bad]).copy()
    quarantine.insert(0, "reason", pd.Series(reason[bad].to_numpy(), index=quarantine.index, dtype=object))
    quarantine.insert(0, "column", pd.Series(column[bad].to_numpy(), index=quarantine.index, dtype=object))
    quarantine.insert(0, "row", quarantine.index)
    quarantine.insert(0, "file", str(path))

    # Boolean indexing copies every column: a file without bad rows keeps them as they are.
    good = slice(None) if ok.all() else ok
    operation = per_value(staged["operation"], lambda s: s.str.strip().map({"1": 1.0, "0": 0.0}))
    part = strip(staged["part"])
    events = pd.DataFrame(
        {
            "event_id": ids[good],
            "date": dates[good],
            "unit": pd.Categorical.from_codes(unit_codes[good], categories=names),
            "count": counts[good].astype("int64"),
            "deaths": deaths[good].fillna(0).astype("int64"),
            "event_type": strip(staged["event_type"])[good],
            "actors": strip(staged["actors"])[good],
            "source": pd.Categorical.from_codes(np.zeros(int(ok.sum()), dtype=np.int8), categories=[fmt.name]),
            "sub_event_type": strip(staged["sub_event_type"])[good],
            "side_a": strip(staged["side_a"])[good],
            "side_b": strip(staged["side_b"])[good],
            "deaths_civilians": civilians[good].astype(float),
            "operation": pd.array(operation[good].to_numpy(dtype=float), dtype="Float64").astype("boolean"),
            "part": part[good],
        },
        index=staged.index[good],
    )
    kept = sorted_categories(_apply_filters(events, filters, fmt))
    in_time = dates.notna().to_numpy() & (dates >= EARLIEST_DATE).to_numpy() & (dates <= latest).to_numpy()
    # Collections by their codes: the spans are the same, without a column of text.
    collections = pd.DataFrame({"part": part.cat.codes.to_numpy()[in_time], "date": dates[in_time]})
    return ReadResult(
        path=str(path),
        format=fmt.name,
        rows=len(staged),
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
        spans=collection_spans(collections),
        parts=bool((part != "").any()),
        has_deaths=bool((~no_deaths & ok).any()),
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
        keep &= per_value(events["event_type"], lambda s: s.str.casefold().isin(wanted))
    if filters.actor:
        # Whole words, so that "IS" selects the Islamic State and not "Islamic Army" or
        # "Civilians"; case does not matter.
        pattern = r"(?<!\w)" + re.escape(filters.actor.strip()) + r"(?!\w)"
        keep &= per_value(events["actors"], lambda s: s.str.contains(pattern, case=False, regex=True))
    return events if keep.all() else events[keep]
