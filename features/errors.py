"""Errors raised by the data layer.

Every message names the file and, where there is one, the row (1-based line number in the
file, header = line 1), the column and the offending value, and says how to fix it.
"""

from __future__ import annotations


class DataError(ValueError):
    """Input data that cannot be used as given (missing columns, unknown names, bad values)."""
