"""The memory guard: a fit whose design would not fit in memory stops before it starts.

A model estimates the bytes its design needs from rows x columns (and how many working copies
its estimator makes) and calls :func:`check_memory` before building it. When the estimate
exceeds the memory available (``psutil.virtual_memory().available``, or less when the
environment variable ``FORECAST_MEMORY_LIMIT`` sets a lower bound, e.g. ``"2GB"``), the fit
raises a :class:`~forecast.models.base.ModelError` naming the model, the estimate, the
memory available and what to change, instead of letting the machine swap or the kernel kill
the process.
"""

from __future__ import annotations

import os
import re

import psutil

from forecast.models.base import ModelError

#: Environment variable bounding the memory a fit may plan to use (bytes, or with a unit: 500MB, 2GB).
MEMORY_LIMIT_ENV = "FORECAST_MEMORY_LIMIT"

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes of a size such as ``"1500000"``, ``"500MB"`` or ``"2.5 GB"`` (binary units)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ModelError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size; write e.g. 2GB, 500MB or a number of bytes")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(n: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory() -> tuple[int, str]:
    """Bytes a fit may use and where the figure comes from."""
    free = int(psutil.virtual_memory().available)
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit:
        bound = parse_size(limit)
        if bound < free:
            return bound, f"{MEMORY_LIMIT_ENV}={limit}"
    return free, "free memory, psutil"


def design_bytes(rows: int, columns: int, copies: float = 1.0, itemsize: int = 8) -> int:
    """Bytes of ``copies`` dense (rows x columns) arrays of ``itemsize``-byte numbers."""
    return int(rows) * int(columns) * int(itemsize) * float(copies)


def check_memory(model: str, what: str, rows: int, columns: int, *, copies: float = 1.0,
                 extra: int = 0, advice: str) -> int:
    """Raise :class:`ModelError` when ``what`` (rows x columns, ``copies`` working copies, plus
    ``extra`` bytes) would need more memory than is available; returns the estimate in bytes.

    ``advice`` says what to change (fewer units, a shorter history, another model, ...).
    """
    need = design_bytes(rows, columns, copies) + int(extra)
    have, source = available_memory()
    if need > have:
        raise ModelError(
            f"{model}: the fit needs about {format_size(need)} for its {what} ({int(rows):,} rows x "
            f"{int(columns)} columns) but only {format_size(have)} is available ({source}); {advice}"
        )
    return need
