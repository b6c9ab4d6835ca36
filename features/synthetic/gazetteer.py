"""Units of the synthetic process: a lattice gazetteer for scale, and the unit helpers.

:func:`synthetic_gazetteer` builds a gazetteer of any size; :func:`units_frame` turns the
``gazetteer`` argument of the simulators into a frame of units, and
:func:`neighbour_mean_matrix` is the contagion operator over a unit's neighbours.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from scipy import sparse

from features.gazetteer import Gazetteer, load_gazetteer, split_list

def synthetic_gazetteer(n_units: int, seed: int = 0, *, contiguity: str = "rook") -> pd.DataFrame:
    """A gazetteer of ``n_units`` units on a square-ish lattice, for scale benchmarks.

    Parameters
    ----------
    n_units : int
        Number of units (at least 1).
    seed : int
        Seed of the jitter of the capitals' coordinates.
    contiguity : {"rook", "queen"}
        Lattice neighbours sharing an edge (rook) or also a corner (queen).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`features.gazetteer.GAZETTEER_COLUMNS`. Unit ``k`` (1-based) is
        ``name`` ``"Unit 000k"``, ``unit_id`` ``"SYN-000k"``, country ``"Synthetica"``, at
        lattice position ``(tile_row, tile_col)`` filled row by row. ``neighbours`` lists the
        lattice neighbours' ids (symmetric); units in column 0 border ``Syria`` (so the
        cross-border term applies), units in row 0 ``Turkey`` and units in the last column
        ``Iran``. ``aliases`` hold ``"Unit k"`` and ``"Unit-000k"`` so readers exercise name
        matching. Write it with ``to_csv(path, index=False)`` and read it back with
        :func:`features.gazetteer.load_gazetteer`.
    """
    if int(n_units) != n_units or n_units < 1:
        raise ValueError(
            f"synthetic_gazetteer: n_units must be a positive integer, got {n_units!r}"
        )
    if contiguity not in ("rook", "queen"):
        raise ValueError(
            f"synthetic_gazetteer: contiguity must be 'rook' or 'queen', got {contiguity!r}"
        )
    n = int(n_units)
    width = len(str(n)) if n > 9999 else 4
    n_cols = math.ceil(math.sqrt(n))
    k = np.arange(n)
    rows, cols = k // n_cols, k % n_cols
    ids = np.array([f"SYN-{i + 1:0{width}d}" for i in k], dtype=object)

    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if contiguity == "queen":
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    neighbour_lists: list[list[str]] = [[] for _ in k]
    for dr, dc in steps:
        r2, c2 = rows + dr, cols + dc
        j = r2 * n_cols + c2
        ok = (r2 >= 0) & (c2 >= 0) & (c2 < n_cols) & (j < n)
        for a, b in zip(k[ok], j[ok]):
            neighbour_lists[a].append(b)
    neighbours = ["|".join(ids[sorted(js)]) for js in neighbour_lists]

    last_col = np.minimum(n_cols, n - rows * n_cols) - 1
    borders = []
    for r, c, lc in zip(rows, cols, last_col):
        b = []
        if c == 0:
            b.append("Syria")
        if r == 0:
            b.append("Turkey")
        if c == lc:
            b.append("Iran")
        borders.append("|".join(b))

    # A 0.1-degree lattice from the north-west corner of a box the size of Iraq's; the
    # jitter keeps capitals off a perfect grid without leaving their cell.
    rng = np.random.default_rng(seed)
    lat = 37.0 - 0.1 * rows + rng.uniform(-0.03, 0.03, n)
    lon = 39.0 + 0.1 * cols + rng.uniform(-0.03, 0.03, n)
    number = k + 1
    return pd.DataFrame(
        {
            "unit_id": ids,
            "name": [f"Unit {i:0{width}d}" for i in number],
            "name_ar": "",
            "country": "Synthetica",
            "aliases": [f"Unit {i}|Unit-{i:0{width}d}" for i in number],
            "capital": [f"Town {i:0{width}d}" for i in number],
            "capital_lat": np.round(lat, 4),
            "capital_lon": np.round(lon, 4),
            "neighbours": neighbours,
            "borders": borders,
            "tile_row": rows,
            "tile_col": cols,
        }
    )


def units_frame(gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None) -> pd.DataFrame:
    """The units of a simulator's ``gazetteer`` argument (None: the bundled gazetteer), one row each."""
    if gazetteer is None or isinstance(gazetteer, (str, os.PathLike)):
        return load_gazetteer(gazetteer).units
    if isinstance(gazetteer, Gazetteer):
        return gazetteer.units
    if isinstance(gazetteer, pd.DataFrame):
        missing = [c for c in ("unit_id", "name", "neighbours", "borders") if c not in gazetteer]
        if missing:
            raise ValueError(
                f"gazetteer frame is missing column(s) {', '.join(missing)}; pass a frame "
                "like synthetic_gazetteer() returns or a Gazetteer"
            )
        return gazetteer.reset_index(drop=True)
    raise TypeError(
        "gazetteer must be a Gazetteer, a DataFrame, a path or None, "
        f"got {type(gazetteer).__name__}"
    )


def neighbour_mean_matrix(units: pd.DataFrame) -> sparse.csr_matrix:
    """Sparse (n_units, n_units) matrix W with W @ y = mean of y over each unit's neighbours."""
    position = {uid: i for i, uid in enumerate(units["unit_id"])}
    rows, cols = [], []
    for i, cell in enumerate(units["neighbours"]):
        for uid in split_list(cell):
            if uid not in position:
                raise ValueError(
                    f"gazetteer unit {units['name'].iat[i]!r}: unknown neighbour id {uid!r}"
                )
            rows.append(i)
            cols.append(position[uid])
    n = len(units)
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # a neighbour listed twice still counts once
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros(n), where=degree > 0)
    return sparse.diags(inv) @ adj

