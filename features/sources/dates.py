"""Reading the date column of an event export: the forms real exports use, never guessed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.errors import DataError


def _to_dates(text: pd.Series, form: str) -> pd.Series:
    """``pd.to_datetime`` with ``errors="coerce"``, also for dates outside its range."""
    try:
        return pd.to_datetime(text, format=form, errors="coerce")
    except (pd.errors.OutOfBoundsDatetime, ValueError, OverflowError):
        # One out-of-range value ("000111" as %Y%m%d is year 1) makes the vectorised parse
        # raise even when coercing: read row by row instead.
        def one(value: str) -> pd.Timestamp:
            try:
                return pd.to_datetime(value, format=form)
            except (pd.errors.OutOfBoundsDatetime, ValueError, OverflowError):
                return pd.NaT

        return pd.to_datetime(text.map(one))


def parse_dates(
    path: Path, text: pd.Series, column: str, forms: Sequence[str] = (), date_format: str | None = None
) -> tuple[pd.Series, str]:
    """Parse the staged date text; return the dates (NaT where unreadable) and the form used.

    ``date_format`` (the user's ``--date-format``) wins. Otherwise each of ``forms`` (the
    forms a format's real exports use; ISO ``YYYY-MM-DD``, time part allowed, when empty) is
    tried. Each row is read with the form that reads it (exports mix ``2020-01-15`` and
    ``15 January 2020``); the forms found are returned, comma-separated. Two forms that read
    one row as different days (``03/04/2020``) are an error: never guessed.
    """
    if date_format:
        dates = _to_dates(text, date_format)
        if text.ne("").any() and dates.isna().all():
            sample = text[text != ""].iloc[0]
            raise DataError(
                f"{path}, column {column}: no date reads with --date-format {date_format!r} "
                f"(first value {sample!r})"
            )
        return dates, date_format
    iso_default = not forms
    forms = tuple(forms) or ("%Y-%m-%d",)
    # One resolution for all forms: a year-1 date reads as microseconds, not nanoseconds.
    parsed = {form: _to_dates(text, form).astype("datetime64[us]") for form in forms}
    if iso_default:
        # ISO dates with a time part ("2014-01-24 00:00:00.000") are common in exports.
        dates = parsed["%Y-%m-%d"]
        retry = dates.isna() & (text != "")
        dates[retry] = pd.to_datetime(text[retry].str[:10], format="%Y-%m-%d", errors="coerce")
        return dates, "%Y-%m-%d"
    # A file is written in one form of each conflicting pair: when rows such as 13/04/2020 read
    # in only one of them, the file settles the question and the other form is dropped. Only a
    # file whose rows never tell the two apart (or contradict each other) is ambiguous.
    forms = list(forms)
    for one, other in [(a, b) for i, a in enumerate(forms) for b in forms[i + 1:]]:
        if one not in forms or other not in forms:
            continue
        differ = parsed[one].notna() & parsed[other].notna() & (parsed[one] != parsed[other])
        if not differ.any():
            continue
        only_one = (parsed[one].notna() & parsed[other].isna()).any()
        only_other = (parsed[other].notna() & parsed[one].isna()).any()
        if only_one != only_other:
            forms.remove(other if only_one else one)
            continue
        sample = text[differ].iloc[0]
        raise DataError(
            f"{path}, column {column}: dates such as {sample!r} are ambiguous ({one} or "
            f"{other}); say which with --date-format, e.g. --date-format '{one}'"
        )
    dates = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    used = []
    for form in forms:
        new = dates.isna() & parsed[form].notna()
        if new.any():
            dates[new] = parsed[form][new]
            used.append(form)
    return dates, ", ".join(used) or forms[0]
