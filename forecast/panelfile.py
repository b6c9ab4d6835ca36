"""Declarative panel files: the target sources, the context series, covariates and gazetteer of a panel.

A panel file is TOML, kept beside the experiment files (``experiments/panels/``) and copied and
edited like them; ``forecast data build --spec FILE`` builds it and an experiment's
``[data] spec = "FILE"`` builds it in memory. Paths are read from the file's own folder::

    description = "UCDP GED Iraq and Syria, with operations tempo and the coalition's airstrikes"
    gazetteer = "../../data/reference/iraq_syria_governorates.csv"
    type_split = true                        # incidents_<type of violence> columns

    [[events]]                               # the target: incidents and deaths
    path = "../../../shared/data/ucdp_ged_iraq_hdx.csv"
    [[events]]
    path = "../../../shared/data/ucdp_ged_syria_2016_2018.csv"

    [[context]]                              # a column counted from events
    name = "ops_tempo"
    operations = true                        # actions by state or coalition forces

    [[context]]
    name = "airstrikes"
    events = ["../../../shared/data/iraq_geocausal_airstrikes_insurgencies_events.csv"]
    event_types = ["Airstrike"]

Every key is checked before anything is read, and a mistake names the file, the table and the
key (:class:`forecast.config.ConfigError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features.context import MEASURES, ContextSeries
from features.covariates import FILL_POLICIES, parse_fill
from features.errors import DataError
from features.panel import EventFile, PanelSpec
from features.sources import FORMATS, EventFilters
from forecast.config import ConfigError, Reader, parse_coverage_end, parse_month, read_toml

__all__ = ["read_panel_file"]

_TOP = ("description", "gazetteer", "covariates", "fill", "coverage_end", "keep_incomplete", "start", "end",
        "event_types", "actor", "type_split", "events", "context")
_EVENTS = ("path", "format")
_CONTEXT = ("name", "events", "event_types", "sub_event_types", "actor", "operations", "measure")


def read_panel_file(path: str | Path) -> tuple[PanelSpec, str]:
    """The :class:`features.panel.PanelSpec` of a panel file, and its description."""
    path = Path(path)
    raw, _ = read_toml(path, "panel file")
    base = path.resolve().parent
    top = Reader(path, "top level", raw, _TOP)
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        top.fail("events", "must be one or more [[events]] tables with a path (the target's event files)")
    files = tuple(_event_file(path, i, table, base) for i, table in enumerate(events, 1))
    coverage_end = top.string("coverage_end")
    if coverage_end is not None and parse_coverage_end(coverage_end) is None:
        top.fail("coverage_end", f"{coverage_end!r} is not a date; expected \"YYYY-MM\" or \"YYYY-MM-DD\"")
    start, end = (top.string(k) for k in ("start", "end"))
    for key, value in (("start", start), ("end", end)):
        if value is not None and parse_month(value) is None:
            top.fail(key, f"{value!r} is not a month; expected \"YYYY-MM\"")
    filters = EventFilters(start=parse_month(start).start_time if start else None,
                           end=parse_month(end).end_time.normalize() if end else None,
                           event_types=top.strings("event_types") or (), actor=top.string("actor"))
    context = raw.get("context", [])
    if not isinstance(context, list):
        top.fail("context", "must be [[context]] tables")
    series = tuple(_context(path, i, table, base) for i, table in enumerate(context, 1))
    keep_incomplete = top.get("keep_incomplete", False)
    type_split = top.get("type_split", False)
    for key, value in (("keep_incomplete", keep_incomplete), ("type_split", type_split)):
        if not isinstance(value, bool):
            top.fail(key, f"must be true or false, got {value!r}")
    spec = PanelSpec(
        events=files,
        gazetteer=top.file("gazetteer", raw["gazetteer"], base, "gazetteer") if "gazetteer" in raw else None,
        covariates=top.file("covariates", raw["covariates"], base, "covariate file") if "covariates" in raw else None,
        fill=_fill(top, raw.get("fill")),
        filters=filters,
        coverage_end=parse_coverage_end(coverage_end) if coverage_end else None,
        keep_incomplete=keep_incomplete,
        context=series,
        type_split=type_split,
    )
    return spec, top.string("description") or ""


def _fill(top: Reader, value: Any) -> str | dict[str, str]:
    """``fill = "keep"``, or ``fill = {"*" = "keep", us_troops = "linear"}`` per covariate."""
    if value is None:
        return "error"
    if isinstance(value, str):
        return top.string("fill", list(FILL_POLICIES))
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        top.fail("fill", f"must be a policy ({', '.join(FILL_POLICIES)}) or a table of covariate = policy "
                         f"(\"*\" for the others), got {value!r}")
    try:
        return parse_fill([f"{k}={v}" for k, v in value.items()], where=f"{top.path}: fill")
    except DataError as exc:
        raise ConfigError(str(exc)) from None


def _event_file(path: Path, i: int, table: Any, base: Path) -> EventFile:
    r = Reader(path, f"[[events]] #{i}", table, _EVENTS)
    if "path" not in table:
        r.fail(None, "needs path = \"FILE\"")
    return EventFile(r.file("path", table["path"], base, "event file"), r.string("format", list(FORMATS)))


def _context(path: Path, i: int, table: Any, base: Path) -> ContextSeries:
    r = Reader(path, f"[[context]] #{i}", table, _CONTEXT)
    name = r.string("name")
    if name is None:
        r.fail(None, "needs name = \"...\" (the column, e.g. ops_tempo)")
    given = table.get("events", [])
    given = [given] if isinstance(given, str) else given
    if not isinstance(given, list):
        r.fail("events", f"must be a path or a list of paths, got {given!r}")
    operations = table.get("operations", False)
    if not isinstance(operations, bool):
        r.fail("operations", f"must be true or false, got {operations!r}")
    try:
        return ContextSeries(
            name=name,
            events=tuple(EventFile(r.file("events", e, base, "event file")) for e in given),
            event_types=r.strings("event_types") or (),
            sub_event_types=r.strings("sub_event_types") or (),
            actor=r.string("actor"),
            operations=operations,
            measure=r.string("measure", list(MEASURES)) or "events",
        )
    except DataError as exc:
        raise ConfigError(f"{path}: [[context]] #{i}: {exc}") from None
