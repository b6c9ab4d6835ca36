"""Scenario files: what a scenario changes in which covariate, read and validated (see
``experiments/scenarios/README.md``). Every mistake is a :class:`~forecast.config.ConfigError`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.covariates import COVARIATE_BOUND
from features.gazetteer import Gazetteer, load_gazetteer
from forecast.config import Reader, kind, read_toml

__all__ = ["BASELINE", "OPERATIONS", "Change", "Scenario", "load_scenario", "month_at", "parse_when"]


#: What a ``[[change]]`` can do to a covariate's path.
OPERATIONS = {
    "set": "set to `value` from month `from` on",
    "scale": "multiply by `factor` from month `from` on",
    "ramp": "move in equal monthly steps to `value` (or to `factor` times the path), reaching it at `to`",
}
# Every operation may end at `until` (the last month changed); after it the path is the baseline's again.

#: The largest ``factor`` a change may multiply a covariate by.
MAX_FACTOR = 100.0

_TOP_KEYS = ("name", "description", "rationale", "change")
_CHANGE_KEYS = ("covariate", "operation", "value", "factor", "from", "to", "until", "units")


# ----------------------------------------------------------------------------------------
# Scenario files


def parse_when(text: Any) -> tuple[str, Any] | None:
    """``"+3"`` -> ("after", 3); ``"2025-01"`` -> ("month", Period); anything else None."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if s.startswith("+") and s[1:].isdigit() and int(s[1:]) >= 1:
        return ("after", int(s[1:]))
    if re.fullmatch(r"\d{4}-\d{2}", s):
        try:
            return ("month", pd.Period(s, freq="M"))
        except ValueError:
            return None
    return None


def month_at(when: tuple[str, Any], origin: pd.Period) -> pd.Period:
    """The month a parsed ``from``/``to`` value names, given the forecast origin."""
    return origin + when[1] if when[0] == "after" else when[1]


@dataclass(frozen=True)
class Change:
    """One change to one covariate's future path (a ``[[change]]`` table of a scenario file)."""

    #: The covariate, or alternative names of it: the first the panel has is used.
    covariate: tuple[str, ...]
    operation: str
    value: float | None = None
    factor: float | None = None
    #: First month changed: ``"+N"`` (N months after the origin) or ``"YYYY-MM"``.
    start: str = "+1"
    #: Month a ramp reaches its target (ramps only).
    end: str | None = None
    #: Last month changed (the path returns to the baseline after it); None = to the horizon.
    until: str | None = None
    #: Canonical unit names; None = every unit (a national change).
    units: tuple[str, ...] | None = None
    #: Position of the table in the file (1-based), for error messages.
    index: int = 0

    def describe(self) -> str:
        target = f"{self.value:g}" if self.value is not None else f"x{self.factor:g}"
        what = {"set": "set to ", "scale": "", "ramp": "ramp to "}[self.operation] + target
        when = f"from {self.start}" + (f" to {self.end}" if self.end else "") + (
            f" until {self.until}" if self.until else "" if self.end else " on")
        where = "all units" if self.units is None else ", ".join(self.units)
        return f"{' or '.join(self.covariate)}: {what} {when} ({where})"


@dataclass(frozen=True)
class Scenario:
    """A named set of covariate changes; no changes is the baseline (covariates held)."""

    name: str
    description: str
    rationale: str
    path: Path | None
    changes: tuple[Change, ...] = ()

    @property
    def is_baseline(self) -> bool:
        return not self.changes

    def as_dict(self) -> dict[str, Any]:
        """Plain values, e.g. to log as MLflow parameters."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "rationale": self.rationale,
                               "file": str(self.path) if self.path else ""}
        for c in self.changes:
            out[f"change{c.index}"] = c.describe()
        return out


#: The reference scenario added when none of the given scenarios is a baseline.
BASELINE = Scenario(
    name="baseline", description="Every covariate held at its last known value.",
    rationale="The reference the other scenarios are compared with (what 'forecast predict' assumes).",
    path=None,
)


def _number(r: Reader, key: str, *, minimum: float, maximum: float, why: str) -> float | None:
    value = r.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        r.fail(key, f"must be a number, got {value!r}")
    if not minimum <= value <= maximum:
        r.fail(key, f"must be between {minimum:g} and {maximum:g} ({why}), got {value!r}")
    return float(value)


def _month_key(r: Reader, key: str, default: str | None) -> str | None:
    value = r.get(key, default)
    if value is None:
        return None
    if parse_when(value) is None:
        r.fail(key, f"{value!r} is not a month; write \"YYYY-MM\" or \"+N\" (N >= 1 months after the "
                    f"forecast origin), as a quoted string, e.g. \"+1\" or \"2025-03\"")
    return value.strip()


def load_scenario(path: str | Path, gazetteer: Gazetteer | str | Path | None = None) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file (format: ``experiments/scenarios/README.md``).
    gazetteer
        Resolves the ``units`` of changes (default: the bundled Iraq gazetteer).

    Raises
    ------
    ConfigError
        Naming the file, the table (``[[change]] #2``), the key and the value: unknown keys
        (with the closest valid key), unknown operations and governorates (with suggestions),
        missing or contradictory keys, malformed months and numbers. Covariate names and
        months relative to the data are checked by :func:`run_scenarios` before any fitting.
    """
    path = Path(path)
    raw, _ = read_toml(path, "scenario file")
    top = Reader(path, "top level", raw, _TOP_KEYS)
    name = top.string("name")
    if not name or not name.strip():
        top.fail("name", "is required: a short name for the scenario, e.g. name = \"partial withdrawal\"")
    description = top.string("description")
    if description is None or not description.strip():
        top.fail("description", "is required: one or two sentences saying what the scenario assumes")
    rationale = top.string("rationale") or ""
    if "\n" in rationale.strip():
        top.fail("rationale", "must be one line (why this scenario is worth looking at)")
    entries = raw.get("change", [])
    if isinstance(entries, dict):
        top.fail("change", "write each change as a [[change]] table (two brackets), not [change]")
    if not isinstance(entries, list):
        top.fail("change", f"must be [[change]] tables, got {kind(entries)}")
    gaz = gazetteer if isinstance(gazetteer, Gazetteer) else load_gazetteer(gazetteer)
    changes = tuple(_read_change(path, i, entry, gaz) for i, entry in enumerate(entries, start=1))
    return Scenario(name=name.strip(), description=" ".join(description.split()), rationale=rationale.strip(),
                    path=path, changes=changes)


def _read_change(path: Path, index: int, entry: Any, gaz: Gazetteer) -> Change:
    r = Reader(path, f"[[change]] #{index}", entry, _CHANGE_KEYS)
    covariate = r.get("covariate")
    if covariate is None:
        r.fail("covariate", "is required: the panel column to change, e.g. covariate = \"us_troops\"")
    if isinstance(covariate, str):
        covariate = [covariate]
    if (not isinstance(covariate, list) or not covariate
            or not all(isinstance(c, str) and c.strip() for c in covariate)):
        r.fail("covariate", f"must be a column name or a list of alternative names, got {r.get('covariate')!r}")
    operation = r.string("operation", list(OPERATIONS))
    if operation is None:
        r.fail("operation", f"is required: one of {', '.join(OPERATIONS)}")
    value = _number(r, "value", minimum=0.0, maximum=COVARIATE_BOUND,
                    why="covariates are levels and counts, such as troops or operations")
    factor = _number(r, "factor", minimum=0.0, maximum=MAX_FACTOR, why="a factor beyond that is no scenario")
    if operation == "set":
        if value is None:
            r.fail("value", "is required for operation \"set\" (the covariate's value from `from` on)")
        for key in ("factor", "to"):
            if key in entry:
                r.fail(key, f"does not apply to operation \"set\"; use \"{'scale' if key == 'factor' else 'ramp'}\"")
    elif operation == "scale":
        if factor is None:
            r.fail("factor", "is required for operation \"scale\" (e.g. factor = 2 doubles the covariate)")
        for key in ("value", "to"):
            if key in entry:
                r.fail(key, f"does not apply to operation \"scale\"; use \"{'set' if key == 'value' else 'ramp'}\"")
    else:
        if (value is None) == (factor is None):
            r.fail(None, "a ramp needs exactly one of value (the level reached) or factor (the multiple of the "
                         "path reached)")
        if "to" not in entry:
            r.fail("to", "is required for operation \"ramp\": the month the target is reached (\"+N\" or \"YYYY-MM\")")
    start = _month_key(r, "from", "+1")
    end = _month_key(r, "to", None)
    if end is not None:
        a, b = parse_when(start), parse_when(end)
        if a[0] == b[0] and b[1] < a[1]:
            r.fail("to", f"{end!r} is before from {start!r}")
    until = _month_key(r, "until", None)
    if until is not None:
        for key, other in (("from", start), ("to", end)):
            a, b = parse_when(other) if other else None, parse_when(until)
            if a is not None and a[0] == b[0] and b[1] < a[1]:
                r.fail("until", f"{until!r} is before {key} {other!r}; until is the last month changed")
    units = r.units("units", lambda: gaz, "leave it out for a national change (every unit)")
    return Change(covariate=tuple(c.strip() for c in covariate), operation=operation, value=value, factor=factor,
                  start=start, end=end, until=until, units=units, index=index)


