"""What the jobs share: their error types, the panel reader, and CSV text of forecast frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.panel_files import read_panel
from forecast.errors import USER_ERRORS, JobError

__all__ = ["USER_ERRORS", "Echo", "JobError", "load_panel", "origin_in_panel", "quiet"]

#: A callback taking one line of progress text (``click.echo``, ``print``, or :func:`quiet`).
Echo = Callable[[str], None]


def quiet(line: str) -> None:
    """An :data:`Echo` that shows nothing."""


def load_panel(path: str | Path, gazetteer: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The panel file and its metadata, unit names checked against the gazetteer.

    Without ``gazetteer``: the one the panel was built with, when its file is still there,
    else the bundled Iraq gazetteer. The panel carries its unit graph (the neighbours models
    use): ``gazetteer``'s when given, else the one the panel was built with
    (:func:`features.panel_files.read_panel`).
    """
    return read_panel(Path(path), load_gazetteer(gazetteer) if gazetteer is not None else None)


def origin_in_panel(panel: pd.DataFrame, meta: dict, origin: pd.Period | str | None) -> pd.Period:
    """``origin`` (default the panel's data vintage), checked to lie inside the panel's months."""
    if origin is None:
        origin = meta.get("vintage") or panel["month"].max()
    origin_p = pd.Period(origin, freq="M")
    first, last = panel["month"].min(), panel["month"].max()
    if origin_p > last or origin_p < first:
        raise DataError(f"origin {origin_p} is outside the panel ({first} .. {last})")
    if origin_p == first:
        raise DataError(f"origin {origin_p} is the panel's first month ({first} .. {last}): a forecast needs "
                        "at least 2 months of history up to its origin")
    return origin_p
