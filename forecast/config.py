"""Configuration files: the TOML reader that experiment, scenario and refresh files share.

Each file kind defines frozen dataclasses (the defaults live there, once) and reads its tables
through :class:`Reader`, so every mistake is a :class:`ConfigError` that names the file, the
section and the key, and suggests the closest valid key. Nothing here reads data or fits.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecast.errors import ConfigError

if TYPE_CHECKING:
    from features.gazetteer import Gazetteer

__all__ = ["ConfigError", "Reader", "field_names", "explicit", "kind", "parse_coverage_end", "parse_month", "read_toml"]


class Reader:
    """Typed access to one table of the file; every error names file, section and key."""

    def __init__(self, path: Path, section: str, table: Any, valid: Sequence[str]):
        self.path, self.section = path, section
        if not isinstance(table, dict):
            self.fail(None, f"must be a table ([{section}]), got {kind(table)}")
        self.table = table
        for key in table:
            if key not in valid:
                close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(key, f"unknown key; {hint}valid keys: {', '.join(valid)}", key_word=False)

    def fail(self, key: str | None, message: str, *, key_word: bool = True):
        where = f"{self.path}: {self.section}"
        if key is not None:
            where += f" {'key ' if key_word else ''}{key!r}"
        raise ConfigError(f"{where}: {message}")

    def get(self, key, default=None):
        return self.table.get(key, default)

    def string(self, key: str, choices: Sequence[str] | None = None) -> str | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {kind(value)}")
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(value, list(choices), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail(key, f"{value!r} is not allowed; {hint}choose one of {', '.join(choices)}")
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of strings, e.g. [\"a\", \"b\"]; got {value!r}")
        return tuple(value)

    def units(self, key: str, gazetteer: Callable[[], Gazetteer], if_empty: str) -> tuple[str, ...] | None:
        """Unit names resolved through the gazetteer (loaded only when the key is given), deduplicated."""
        names = self.strings(key)
        if names is None:
            return None
        if not names:
            self.fail(key, f"is empty; {if_empty}")
        gaz = gazetteer()
        resolved = []
        for name in names:
            found = gaz.match(name)
            if found is None:
                self.fail(key, f"unknown {gaz.unit_word} {name!r}; {gaz.suggest(name)}")
            resolved.append(found)
        return tuple(dict.fromkeys(resolved))

    def integer(self, key: str, minimum: int = 1) -> int | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"must be a whole number >= {minimum}, got {value!r}")
        return value

    def month(self, key: str, *, required: bool) -> pd.Period | None:
        value = self.table.get(key)
        if value is None:
            if required:
                self.fail(key, "is required: the first/last forecast origin as \"YYYY-MM\"")
            return None
        period = parse_month(value)
        if period is None:
            self.fail(key, f"{value!r} is not a month; expected \"YYYY-MM\" (a quoted string), e.g. \"2021-01\"")
        return period

    def file(self, key: str, value: Any, base: Path, what: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a file path (a string), got {value!r}")
        path = Path(value).expanduser()
        path = (path if path.is_absolute() else base / path).resolve()
        if not path.exists():
            self.fail(key, f"{what} {value!r} not found (looked for {path}; relative paths are read "
                           "from the experiment file's folder)")
        return path


def kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "true/false"}.get(type(value), type(value).__name__)


def parse_month(value: Any) -> pd.Period | None:
    if not isinstance(value, str) or len(value.strip()) != 7:
        return None
    try:
        return pd.Period(value.strip(), freq="M")
    except ValueError:
        return None


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def explicit(**kwargs) -> dict:
    """Keyword arguments that were given: the dataclass keeps its default for the others."""
    return {k: v for k, v in kwargs.items() if v is not None}


def read_toml(path: Path, what: str) -> tuple[dict, str]:
    """The TOML table and text of a configuration file, or a :class:`ConfigError` naming the file.

    Shared by experiment, scenario and refresh files, so all three fail alike.
    """
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def parse_coverage_end(text: str) -> pd.Timestamp | None:
    """The last covered day: a month means its last day."""
    month = parse_month(text)
    if month is not None:
        return month.end_time.normalize()
    try:
        return pd.Timestamp(pd.to_datetime(text.strip(), format="%Y-%m-%d"))
    except (ValueError, TypeError):
        return None
