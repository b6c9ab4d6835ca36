"""The forecast split by type of violence or event type, when the panel carries the split.

A panel may carry, beside ``incidents`` (or ``deaths``), counts by type in columns named
``incidents_<type>`` (``incidents_state_based``, ``incidents_battles``, ...; they are never
used as covariates). The models forecast the total only, so the split is an allocation, said
as such in the report: each unit's expected count is divided in the mix of types that unit
recorded over the last :data:`MIX_MONTHS` months up to the origin (a unit that recorded
nothing then takes the national mix). Counts without a type (the total minus the typed
columns) are shown as their own row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MIX_MONTHS", "type_columns", "type_split"]

#: Months of history whose mix of types allocates the forecast.
MIX_MONTHS = 12
#: Row label of the counts the typed columns do not cover.
UNTYPED = "no type recorded"


def type_columns(panel: pd.DataFrame, target: str) -> list[str]:
    """The panel's ``<target>_<type>`` count columns."""
    prefix = f"{target}_"
    return [c for c in panel.columns if c.startswith(prefix) and len(c) > len(prefix)
            and pd.api.types.is_numeric_dtype(panel[c])]


def type_split(panel: pd.DataFrame, origin: pd.Period, expected: pd.Series, target: str) -> dict | None:
    """Recorded and allocated expected counts per type, nationally; None without typed columns.

    Parameters
    ----------
    expected
        Each unit's expected count per month over the forecast months (indexed by unit).

    Returns
    -------
    dict
        ``rows`` (``type, recent, share, expected``: recorded a month over the last 3 months,
        share of the last :data:`MIX_MONTHS` months, allocated expected a month) and ``text``.
    """
    cols = type_columns(panel, target)
    if not cols:
        return None
    upto = panel.loc[panel["month"] <= origin]
    window = upto.loc[upto["month"] > origin - MIX_MONTHS]
    typed = window.groupby("unit")[cols].sum().astype(float)
    typed[UNTYPED] = (window.groupby("unit")[target].sum() - typed.sum(axis=1)).clip(lower=0)
    national = typed.sum()
    fallback = national / national.sum() if national.sum() > 0 else pd.Series(1.0 / len(national), national.index)
    totals = typed.sum(axis=1)
    mix = typed.div(totals.where(totals > 0), axis=0)
    mix = mix.apply(lambda row: fallback if row.isna().all() else row, axis=1)
    allocated = mix.mul(expected.reindex(mix.index).fillna(0.0), axis=0).sum()
    recent_months = upto.loc[upto["month"] > origin - 3]
    recent = recent_months[cols].sum().astype(float)
    recent[UNTYPED] = max(float(recent_months[target].sum() - recent.sum()), 0.0)
    recent = recent / max(recent_months["month"].nunique(), 1)
    share = national / national.sum() if national.sum() > 0 else national * np.nan
    rows = []
    for col in [*cols, UNTYPED]:
        if col == UNTYPED and national[col] == 0 and recent[col] == 0:
            continue
        name = col if col == UNTYPED else col[len(target) + 1:].replace("_", " ")
        rows.append({"type": name, "column": col, "recent": float(recent[col]), "share": float(share[col]),
                     "expected": float(allocated[col])})
    first, last = window["month"].min(), window["month"].max()
    text = (f"The models forecast the total only: the expected {target} a month are split by type in the mix "
            f"each unit recorded from {first} to {last} (a unit with none then takes the national mix). "
            "This is an allocation, not a forecast of each type.")
    return {"rows": rows, "text": text, "first": str(first), "last": str(last)}
