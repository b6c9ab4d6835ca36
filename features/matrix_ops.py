"""Matrix transforms of the features: each takes and returns (n_months, n_units) arrays and looks only back.

Used by :func:`features.transforms.build_features`. A NaN count is a month no source covers:
it propagates into the windows that hold it, and means over units or neighbours skip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["lag", "months_since_spike", "neighbour_mean", "rolling_mean_max"]



def lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if k == 0:
        out[:] = x
    elif k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def rolling_mean_max(y: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.full(y.shape, np.nan)
    high = np.full(y.shape, np.nan)
    if w <= y.shape[0]:
        # (n_months - w + 1, n_units, w): each window summed on its own, never from a running
        # sum, so a window's value does not depend on how long the history is.
        view = np.lib.stride_tricks.sliding_window_view(y, w, axis=0)
        mean[w - 1 :] = view.mean(axis=-1)
        high[w - 1 :] = view.max(axis=-1)
    return mean, high


def months_since_spike(y: np.ndarray, q: float) -> np.ndarray:
    n_months = y.shape[0]
    # Quantile of months 0..t, moved down one row: the threshold for month t uses months < t.
    threshold = pd.DataFrame(y).expanding(min_periods=1).quantile(q, interpolation="linear").to_numpy()
    before = np.full(y.shape, np.nan)
    before[1:] = threshold[:-1]
    spike = y > before  # NaN threshold (first month) compares False
    t = np.arange(n_months)[:, None]
    last = np.maximum.accumulate(np.where(spike, t, -1), axis=0)
    return np.where(last >= 0, t - last, np.nan).astype(float)


def neighbour_mean(y: np.ndarray, total: np.ndarray, units: np.ndarray,
                    neighbours: Mapping[str, Iterable[str]] | None) -> np.ndarray:
    """Mean of ``y`` over each unit's neighbours with data that month (months of a neighbour no
    source covers are left out of the mean, not counted as zero); NaN when no neighbour has data."""
    n_units = len(units)
    index = {u: i for i, u in enumerate(units)}
    rows, cols, vals = [], [], []
    fallback = np.ones(n_units, dtype=bool)
    for i, unit in enumerate(units):
        found = (neighbours or {}).get(unit) or ()
        js = sorted({index[n] for n in found if n in index and index[n] != i})
        if js:
            fallback[i] = False
            rows += [i] * len(js)
            cols += js
            vals += [1.0 / len(js)] * len(js)
    weights = sparse.csr_matrix((vals, (rows, cols)), shape=(n_units, n_units))
    observed = ~np.isnan(y)
    if observed.all():
        out = np.asarray((weights @ y.T).T, dtype=float)  # (n_months, n_units)
    else:
        adjacency = (weights > 0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray((adjacency @ np.nan_to_num(y).T).T, dtype=float) / np.asarray(
                (adjacency @ observed.T.astype(float)).T, dtype=float)
    if fallback.any():
        n_observed = observed.sum(axis=1, keepdims=True)
        own = np.nan_to_num(y[:, fallback])
        with np.errstate(invalid="ignore", divide="ignore"):
            others = n_observed - observed[:, fallback]
            out[:, fallback] = np.where(others > 0, (np.nan_to_num(total) - own) / others, np.nan)
    return out
