"""Errors raised by the data layer.

Every message names the file and, where there is one, the row (1-based line number in the
file, header = line 1), the column and the offending value, and says how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class DataError(ValueError):
    """Input data that cannot be used as given (missing columns, unknown names, bad values)."""


#: The longest value echoed in a message: a whole GeoJSON read as a header must not fill the screen.
SHOWN_LENGTH = 80


def shorten(text: str, limit: int = SHOWN_LENGTH) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


class NoUsableEvents(DataError):
    """No event survived reading and filtering; carries the quarantine so it can be written."""

    def __init__(self, message: str, quarantine: pd.DataFrame) -> None:
        super().__init__(message)
        self.quarantine = quarantine


class DownloadError(DataError):
    """A source could not be downloaded, or its content does not have the expected SHA-256."""
