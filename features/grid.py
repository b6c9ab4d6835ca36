"""The unit x month grid of a panel, as integer positions: where each event falls, and sums per cell.

A panel of 13,000 units and 252 months has 3.3 million cells, and its event files millions of
events. Events are placed by the position of their unit in the gazetteer (from the unit
column's categorical codes) and of their month in the panel's months (from the month
ordinals), and summed into a (units, months) array; nothing is grouped or reindexed by
Period objects or by text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["grid_sums", "month_positions", "unit_positions"]


def unit_positions(units_of_events: pd.Series, units: Sequence[str]) -> np.ndarray:
    """Position of each event's unit in ``units`` (-1 for a unit that is not there), int64."""
    index = pd.Index(units)
    if isinstance(units_of_events.dtype, pd.CategoricalDtype):
        # Looked up once per category, spread by the codes.
        found = np.append(index.get_indexer(units_of_events.cat.categories), -1)
        codes = units_of_events.cat.codes.to_numpy()
        return found[np.where(codes >= 0, codes, len(found) - 1)].astype(np.int64)
    return index.get_indexer(units_of_events).astype(np.int64)


def month_positions(dates: pd.Series, months: pd.PeriodIndex) -> np.ndarray:
    """Position of each date's month in ``months`` (-1 outside them, or for a missing date), int64."""
    ordinals = dates.dt.to_period("M").array.asi8
    return pd.Index(months.asi8).get_indexer(ordinals).astype(np.int64)


def grid_sums(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` summed per (row, col) cell into an array of ``shape``; -1 positions are left out.

    Integers are summed as integers (exact), floats as floats.
    """
    keep = (rows >= 0) & (cols >= 0)
    out = np.zeros(shape[0] * shape[1], dtype=np.asarray(values).dtype)
    np.add.at(out, rows[keep] * shape[1] + cols[keep], np.asarray(values)[keep])
    return out.reshape(shape)
