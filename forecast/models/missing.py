"""Histories with missing months, for the models that cannot use them.

A panel's count is NaN where no source covers the unit and month (``features.coverage``): the
Syrian governorates before 2016 in a panel of Iraq and Syria, the months between two
collections of a source. A covariate or context series is NaN outside its own coverage. A
model that handles missing values (``supports_missing = True``: trees that route NaN, the
global model) is given them as they are. Every other model is given the largest stretch it
can use, never zeros in place of missing values:

* units without data at the origin are not forecast (their sources end earlier);
* the other units from the first month after which every one of them has data;
* covariates with a missing value in that stretch are left out.

What was left out is a fit note, so ``forecast predict`` and the backtest's ``fit_notes.csv``
say it.
"""

from __future__ import annotations

import pandas as pd

from forecast.errors import ModelError

__all__ = ["covered_window", "unforecast_units"]


def unforecast_units(history: pd.DataFrame, model: str) -> dict[str, str]:
    """The note of a model that takes missing months: the units without data at the origin, which
    it does not forecast."""
    origin = history["month"].max()
    at_origin = history.loc[history["month"] == origin, ["unit", "y"]]
    dead = sorted(at_origin.loc[at_origin["y"].isna(), "unit"])
    if not dead:
        return {}
    if len(dead) == len(at_origin):
        raise ModelError(f"{model}: no unit has data at the origin {origin} (every source ends earlier or "
                         "starts later); choose an origin inside the sources' coverage")
    return {"units": _dead_units(dead, origin)}


def _dead_units(dead, origin) -> str:
    shown = ", ".join(sorted(dead)[:5]) + (" ..." if len(dead) > 5 else "")
    return (f"{len(dead)} unit(s) have no data at the origin {origin} and are not forecast ({shown}): their "
            "sources do not cover that month")


def covered_window(history: pd.DataFrame, model: str, *, covariates: bool = True) -> tuple[pd.DataFrame, dict[str, str]]:
    """The part of ``history`` (``unit, month, y`` + covariates, sorted) without missing values.

    Returns the history to fit on and the notes (subject -> what was left out and why).

    Raises
    ------
    ModelError
        When no unit has data at the origin.
    """
    notes: dict[str, str] = {}
    frame = history
    if history["y"].isna().any():
        origin = history["month"].max()
        at_origin = history.loc[history["month"] == origin, ["unit", "y"]]
        dead = at_origin.loc[at_origin["y"].isna(), "unit"]
        if len(dead) == len(at_origin):
            raise ModelError(f"{model}: no unit has data at the origin {origin} (every source ends earlier or "
                             "starts later); choose an origin inside the sources' coverage")
        frame = history.loc[~history["unit"].isin(dead)]
        gaps = frame.loc[frame["y"].isna(), "month"]
        if len(gaps):
            frame = frame.loc[frame["month"] > gaps.max()]
        if len(dead):
            notes["units"] = _dead_units(dead, origin)
        if len(gaps):
            notes["months"] = (f"fitted on {frame['month'].min()} .. {origin}, the months every forecast unit has "
                                f"data for ({model} cannot use missing months)")
    if covariates:
        columns = [c for c in frame.columns if c not in ("unit", "month", "y")]
        patchy = [c for c in columns if frame[c].isna().any()]
        if patchy:
            frame = frame.drop(columns=patchy)
            notes["covariates"] = (f"left out {', '.join(patchy)}: missing in some months up to the origin "
                                   f"({model} cannot use missing values)")
    if frame is not history:
        frame = frame.reset_index(drop=True)
    return frame, notes
