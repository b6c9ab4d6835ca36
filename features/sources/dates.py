"""Reading the date column of an event export: the forms real exports use, never guessed.

A two-digit year (ACLED's ``31-Dec-20``) is read in the 100 years centred on the file's own
dates (its median year), not in Python's fixed window (``69``..``99`` as 19xx, ``00``..``68``
as 20xx): in a file of 2019-2022 events ``01-Jan-69`` is 2069, which the reader then
quarantines as a date after the build date, instead of 1969 stretching the panel back 50 years.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
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


#: Farthest a two-digit year may lie from the file's median year: beyond it the century is a guess.
TWO_DIGIT_SPREAD = 40


def _two_digit(form: str) -> bool:
    return "%y" in form


def window_two_digit_years(dates: pd.Series, two_digit: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Put each ``two_digit`` row in the century nearest the file's median year (of all ``dates``).

    Returns the dates and a reason per row ('' for most): a two-digit year more than
    :data:`TWO_DIGIT_SPREAD` years from the median in either century cannot be placed, and
    its date is NaT.
    """
    reason = pd.Series("", index=dates.index, dtype=object)
    if not (two_digit & dates.notna()).any():
        return dates, reason
    years = dates.dt.year
    centre = int(np.median(years[dates.notna()]))
    rows = two_digit & dates.notna()
    # The candidate of the row's two digits nearest the centre: year + 100 * k for k in -1, 0, 1.
    best = years.copy()
    for k in (-1, 1):
        other = years + 100 * k
        best = best.where((best - centre).abs() <= (other - centre).abs(), other)
    dates = dates.copy()
    move = rows & (best != years)
    if move.any():
        # Rebuilt from the parts: a 29 February the other century lacks becomes NaT (unreadable).
        moved = pd.to_datetime(pd.DataFrame({"year": best[move], "month": dates[move].dt.month,
                                             "day": dates[move].dt.day}), errors="coerce")
        dates[move] = moved.astype(dates.dtype)
    far = rows & ((best - centre).abs() > TWO_DIGIT_SPREAD)
    for i in far[far].index:
        lower = centre - (centre - int(best[i])) % 100
        reason[i] = (f"two-digit year '{lower % 100:02d}' lies more than {TWO_DIGIT_SPREAD} years from this file's "
                     f"other dates (median year {centre}) as {lower} and as {lower + 100}: write the year in "
                     "four digits")
    dates[far] = pd.NaT
    return dates, reason


def parse_dates(
    path: Path, text: pd.Series, column: str, forms: Sequence[str] = (), date_format: str | None = None
) -> tuple[pd.Series, str, pd.Series]:
    """Parse the staged date text; return the dates (NaT where unreadable), the form used, and
    per row the reason a two-digit year could not be placed ('' for the others; its date is NaT).

    ``date_format`` (the user's ``--date-format``) wins. Otherwise each of ``forms`` (the
    forms a format's real exports use; ISO ``YYYY-MM-DD``, time part allowed, when empty) is
    tried. Each row is read with the form that reads it (exports mix ``2020-01-15`` and
    ``15 January 2020``); the forms found are returned, comma-separated. Two forms that read
    one row as different days (``03/04/2020``) are an error: never guessed.
    """
    if date_format:
        dates = _to_dates(text, date_format)
        if _two_digit(date_format):
            dates, doubtful = window_two_digit_years(dates, dates.notna())
        else:
            doubtful = pd.Series("", index=text.index, dtype=object)
        if text.ne("").any() and dates.isna().all() and not doubtful.ne("").any():
            sample = text[text != ""].iloc[0]
            raise DataError(
                f"{path}, column {column}: no date reads with --date-format {date_format!r} "
                f"(first value {sample!r})"
            )
        return dates, date_format, doubtful
    iso_default = not forms
    forms = tuple(forms) or ("%Y-%m-%d",)
    # One resolution for all forms: a year-1 date reads as microseconds, not nanoseconds.
    parsed = {form: _to_dates(text, form).astype("datetime64[us]") for form in forms}
    if iso_default:
        # ISO dates with a time part ("2014-01-24 00:00:00.000") are common in exports.
        dates = parsed["%Y-%m-%d"]
        retry = dates.isna() & (text != "")
        dates[retry] = pd.to_datetime(text[retry].str[:10], format="%Y-%m-%d", errors="coerce")
        return dates, "%Y-%m-%d", pd.Series("", index=text.index, dtype=object)
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
    two_digit = pd.Series(False, index=text.index)
    used = []
    for form in forms:
        new = dates.isna() & parsed[form].notna()
        if new.any():
            dates[new] = parsed[form][new]
            two_digit |= new & _two_digit(form)
            used.append(form)
    dates, doubtful = window_two_digit_years(dates, two_digit)
    return dates, ", ".join(used) or forms[0], doubtful
