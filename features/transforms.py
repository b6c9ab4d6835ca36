"""Leak-free features for monthly count forecasting, built for all units and months at once.

Convention: features are **as of t**. The row for ``(unit, month t)`` holds only what is known
at the end of month ``t`` (the counts and covariates of months ``<= t``), so a model trained on
rows ``t`` with targets ``y[t + h]`` (:func:`direct_targets`) and applied to the row of the
forecast origin ``T`` forecasts ``y[T + h]`` without ever having seen a month after ``T``.
Consequently every feature is **prefix-invariant**: building on a history cut at ``T`` gives
exactly the rows ``<= T`` of building on the full history (``tests/test_transforms.py``
checks this on random panels).

Features (``k``, ``w`` and ``c`` name the parameters they come from):

=============================== =============================================================
column                          value for the row (unit i, month t)
=============================== =============================================================
``y_lag{k}``                    ``y[t - k]`` for ``k`` in ``{0} | lags`` (``y_lag0`` is this
                                month's count); NaN before the unit's first month
``y_rollmean{w}``               mean of ``y[t - w + 1 .. t]``; NaN until ``w`` months exist
``y_rollmax{w}``                maximum of ``y[t - w + 1 .. t]``; NaN until ``w`` months exist
``y_months_since_spike``        months since the last spike at or before ``t`` (0 when ``t``
                                is one), NaN when the unit has had no spike yet. A *spike* is
                                a month ``s`` whose count exceeds the ``spike_quantile``
                                quantile (linear interpolation) of the unit's own counts in
                                the months *before* ``s``, so whether ``s`` is a spike is
                                known at the end of ``s``; the first month is never one
``y_neighbour_mean``            mean of ``y[t]`` over the unit's neighbours (from
                                ``neighbours``, ignoring names that are not units of the
                                history); for a unit without any, the national mean at ``t``
                                excluding the unit (NaN in a one-unit history)
``national_total``              sum of ``y[t]`` over all units
``<feature>_log1p``             ``log1p`` of ``y_lag0``, each ``y_rollmean{w}``,
                                ``y_neighbour_mean`` and ``national_total`` (when ``log1p``):
                                counts are right-skewed and effects multiplicative, which
                                matters to linear models; trees do not need them
``month_sin``, ``month_cos``    ``sin`` and ``cos`` of ``2 pi m / 12``, ``m`` = month of year
                                of ``t`` (1-12)
``{c}_lag{k}``                  covariate ``c`` at ``t - k`` for ``k`` in
                                ``{0} | covariate_lags``; NaN before the unit's first month
=============================== =============================================================

Everything is computed on the (months x units) matrix with NumPy, so 3,500 units x 240 months
take about a second. The history must be a complete grid (every unit has every month from the
first to the last, as :mod:`features.panel` guarantees); gaps are an error, not filled.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from features.errors import DataError
from features.matrix_ops import lag, months_since_spike, neighbour_mean, rolling_mean_max

__all__ = [
    "DEFAULT_COVARIATE_LAGS",
    "DEFAULT_LAGS",
    "DEFAULT_SPIKE_QUANTILE",
    "DEFAULT_WINDOWS",
    "PrefixFeatures",
    "active_prefix_features",
    "build_features",
    "direct_targets",
    "feature_names",
    "features_for",
    "use_prefix_features",
]

DEFAULT_LAGS = (1, 2, 3, 6, 12)
DEFAULT_WINDOWS = (3, 6, 12)
DEFAULT_COVARIATE_LAGS = (1, 2)
DEFAULT_SPIKE_QUANTILE = 0.9
_KEYS = ("unit", "month", "y")


def build_features(
    history: pd.DataFrame,
    *,
    lags: Sequence[int] = DEFAULT_LAGS,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    neighbours: Mapping[str, Iterable[str]] | None = None,
    covariates: Sequence[str] | None = None,
    covariate_lags: Sequence[int] = DEFAULT_COVARIATE_LAGS,
    spike_quantile: float = DEFAULT_SPIKE_QUANTILE,
    log1p: bool = True,
) -> pd.DataFrame:
    """Features as of each month for every unit (see the module docstring for the list).

    Parameters
    ----------
    history
        ``unit``, ``month`` (monthly periods), ``y`` (non-negative counts) and covariate
        columns; a complete unit x month grid.
    lags
        Lags of ``y`` in months (``y_lag0`` is always included).
    windows
        Lengths in months of the rolling means and maxima ending at ``t``.
    neighbours
        Unit -> its neighbouring units (e.g. ``load_gazetteer().neighbours()``). Units absent
        from the mapping, or whose neighbours are all absent from the history, get the
        national mean excluding themselves. None: every unit gets the national fallback.
    covariates
        Covariate columns to include; None: every column other than ``unit, month, y``.
    covariate_lags
        Lags of each covariate in months (lag 0 is always included).
    spike_quantile
        Level of the unit's expanding quantile a count must exceed to be a spike.
    log1p
        Add the ``_log1p`` copies of the level features.

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``month`` and the float feature columns in the order of
        :func:`feature_names`, one row per row of ``history``, sorted by unit then month,
        with a fresh ``RangeIndex`` (the same order as :func:`direct_targets`).

    Raises
    ------
    DataError
        Missing columns, months that are not monthly periods, missing or negative ``y``,
        non-numeric covariates, duplicate or missing unit-months.
    ValueError
        Invalid lags, windows or ``spike_quantile``.
    """
    lags = _whole_numbers("lags", lags, minimum=0)
    windows = _whole_numbers("windows", windows, minimum=1)
    covariate_lags = _whole_numbers("covariate_lags", covariate_lags, minimum=0)
    if not 0.0 < float(spike_quantile) < 1.0:
        raise ValueError(f"spike_quantile must lie strictly between 0 and 1, got {spike_quantile!r}")
    covariates = _covariates(history, covariates)
    grid = _Grid.from_history(history, covariates)
    y = grid.y  # (n_months, n_units)
    n_months, n_units = y.shape

    cols: dict[str, np.ndarray] = {}
    for k in sorted({0, *lags}):
        cols[f"y_lag{k}"] = lag(y, k)
    for w in windows:
        cols[f"y_rollmean{w}"], cols[f"y_rollmax{w}"] = rolling_mean_max(y, w)
    cols["y_months_since_spike"] = months_since_spike(y, spike_quantile)
    # Over the units with data that month (NaN when none has any).
    observed = ~np.isnan(y)
    total = np.where(observed.any(axis=1, keepdims=True), np.nansum(y, axis=1, keepdims=True), np.nan)  # (n_months, 1)
    cols["y_neighbour_mean"] = neighbour_mean(y, total, grid.units, neighbours)
    cols["national_total"] = np.broadcast_to(total, y.shape)
    if log1p:
        for name in ["y_lag0", *(f"y_rollmean{w}" for w in windows), "y_neighbour_mean", "national_total"]:
            cols[f"{name}_log1p"] = np.log1p(cols[name])
    angle = 2.0 * np.pi * grid.months.month.to_numpy(dtype=float)[:, None] / 12.0  # (n_months, 1)
    cols["month_sin"] = np.broadcast_to(np.sin(angle), y.shape)
    cols["month_cos"] = np.broadcast_to(np.cos(angle), y.shape)
    for name, values in grid.covariates.items():
        for k in sorted({0, *covariate_lags}):
            cols[f"{name}_lag{k}"] = lag(values, k)

    # (n_months, n_units) matrices -> one column in unit-major order, like the sorted history.
    out = pd.DataFrame(
        {
            "unit": np.repeat(grid.units, n_months),
            "month": pd.PeriodIndex.from_ordinals(np.tile(grid.months.asi8, n_units), freq="M"),
        }
    )
    features = pd.DataFrame({name: m.T.reshape(-1) for name, m in cols.items()}, dtype=float)
    return pd.concat([out, features], axis=1)


def feature_names(
    *,
    lags: Sequence[int] = DEFAULT_LAGS,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    covariates: Sequence[str] = (),
    covariate_lags: Sequence[int] = DEFAULT_COVARIATE_LAGS,
    log1p: bool = True,
) -> list[str]:
    """The feature columns :func:`build_features` returns for these parameters, in order."""
    lags = _whole_numbers("lags", lags, minimum=0)
    windows = _whole_numbers("windows", windows, minimum=1)
    covariate_lags = _whole_numbers("covariate_lags", covariate_lags, minimum=0)
    names = [f"y_lag{k}" for k in sorted({0, *lags})]
    for w in windows:
        names += [f"y_rollmean{w}", f"y_rollmax{w}"]
    names += ["y_months_since_spike", "y_neighbour_mean", "national_total"]
    if log1p:
        names += [f"{n}_log1p" for n in ["y_lag0", *(f"y_rollmean{w}" for w in windows), "y_neighbour_mean", "national_total"]]
    names += ["month_sin", "month_cos"]
    for c in covariates:
        names += [f"{c}_lag{k}" for k in sorted({0, *covariate_lags})]
    return names


def direct_targets(history: pd.DataFrame, horizon: int) -> pd.Series:
    """Direct-strategy targets: ``y[t + horizon]`` aligned to the row of month ``t``.

    Parameters
    ----------
    history
        As for :func:`build_features` (covariates are ignored).
    horizon
        Months ahead (>= 1).

    Returns
    -------
    pandas.Series
        Named ``y_lead{horizon}``, in the row order of :func:`build_features` (sorted by
        unit then month, ``RangeIndex``); NaN where ``t + horizon`` is after the history's
        last month. Pairing it with :func:`build_features` of the same history therefore
        only ever yields pairs whose target month is inside the history.
    """
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number >= 1, got {horizon!r}")
    grid = _Grid.from_history(history, [])
    lead = np.full(grid.y.shape, np.nan)
    h = int(horizon)
    if h < grid.y.shape[0]:
        lead[:-h] = grid.y[h:]
    return pd.Series(lead.T.reshape(-1), name=f"y_lead{h}")


# ----------------------------------------------------------------------------------------
# Features of every origin from one build


class PrefixFeatures:
    """:func:`build_features` computed once on a full history; the features of any prefix of
    it (the history cut at an origin T) are then a slice instead of a rebuild.

    Because every feature is prefix-invariant, the rows ``<= T`` of the features built on the
    full history are exactly the features built on the history cut at ``T`` (no value of a
    month after ``T`` enters them; ``tests/test_transforms.py`` and
    ``tests/test_backends.py`` check it). A rolling-origin backtest therefore builds each
    feature set once for all origins.

    :meth:`features` checks that the history it is given really is a prefix of the full
    history (same units, the first months, equal values) and otherwise builds the features
    from that history, so a caller can never get features of data it did not pass.

    Parameters
    ----------
    history
        The full history (``unit, month, y`` and covariates), a complete grid; None for a
        store that slices nothing (every call builds its features anew).
    """

    def __init__(self, history: pd.DataFrame | None):
        self._history = history
        self._grid_: _Grid | None = None  # built on first use: many models never ask
        self._built: dict = {}
        self.builds = 0
        self.slices = 0

    @property
    def _grid(self) -> "_Grid":
        if self._grid_ is None:
            self._grid_ = _Grid.from_history(self._history, [c for c in self._history.columns if c not in _KEYS])
        return self._grid_

    def features(self, history: pd.DataFrame, **params) -> pd.DataFrame:
        """``build_features(history, **params)``, sliced from the full build when ``history``
        is a prefix of the full history."""
        k = None if self._history is None else self._prefix_months(history, params.get("covariates"))
        if k is None:
            return build_features(history, **params)
        neighbours = params.get("neighbours")
        key = (id(neighbours), repr(sorted((n, v) for n, v in params.items() if n != "neighbours")))
        entry = self._built.get(key)
        if entry is None:
            # The mapping is kept with the build so that its id() stays a valid key.
            entry = self._built[key] = (build_features(self._history, **params), neighbours)
            self.builds += 1
        full = entry[0]
        n_units, n_months = len(self._grid.units), len(self._grid.months)
        self.slices += 1
        if k == n_months:
            return full.copy()
        rows = (np.arange(n_units)[:, None] * n_months + np.arange(k)[None, :]).reshape(-1)
        return full.take(rows).reset_index(drop=True)

    def _prefix_months(self, history: pd.DataFrame, covariates: Sequence[str] | None) -> int | None:
        """Months of the full history that ``history`` holds when it is a prefix, else None.

        ``history`` must have its rows sorted by unit then month (as models keep them).
        """
        grid = self._grid
        n_units = len(grid.units)
        if any(c not in history.columns for c in _KEYS) or len(history) == 0 or len(history) % n_units:
            return None
        if history["month"].dtype != pd.PeriodDtype("M"):
            return None
        k = len(history) // n_units
        if k > len(grid.months):
            return None
        covs = [c for c in history.columns if c not in _KEYS] if covariates is None else list(covariates)
        if any(c not in grid.covariates or c not in history.columns for c in covs):
            return None
        if not np.array_equal(history["month"].array.asi8, np.tile(grid.months.asi8[:k], n_units)):
            return None
        if not np.array_equal(history["unit"].to_numpy(dtype=object), np.repeat(grid.units, k)):
            return None
        if not np.array_equal(pd.to_numeric(history["y"], errors="coerce").to_numpy(dtype=float),
                              grid.y[:k].T.reshape(-1)):
            return None
        for c in covs:
            col = history[c]
            if not pd.api.types.is_numeric_dtype(col) and col.dtype != bool:
                return None
            if not np.array_equal(col.to_numpy(dtype=float), grid.covariates[c][:k].T.reshape(-1), equal_nan=True):
                return None
        return k


_PREFIX_FEATURES: contextvars.ContextVar[PrefixFeatures | None] = contextvars.ContextVar("prefix_features",
                                                                                         default=None)


@contextlib.contextmanager
def use_prefix_features(store: PrefixFeatures) -> Iterator[PrefixFeatures]:
    """Make :func:`features_for` slice features from ``store`` inside the block."""
    token = _PREFIX_FEATURES.set(store)
    try:
        yield store
    finally:
        _PREFIX_FEATURES.reset(token)


def active_prefix_features() -> PrefixFeatures | None:
    """The :class:`PrefixFeatures` of the enclosing :func:`use_prefix_features` block, if any."""
    return _PREFIX_FEATURES.get()


def features_for(history: pd.DataFrame, **params) -> pd.DataFrame:
    """:func:`build_features` of ``history``, sliced from the active :class:`PrefixFeatures`
    (see :func:`use_prefix_features`) when ``history`` is a prefix of its full history."""
    store = _PREFIX_FEATURES.get()
    if store is None:
        return build_features(history, **params)
    return store.features(history, **params)


# ----------------------------------------------------------------------------------------
# The (months x units) grid


class _Grid:
    """The history as (n_months, n_units) matrices, units sorted, months consecutive."""

    def __init__(self, units: np.ndarray, months: pd.PeriodIndex, y: np.ndarray, covariates: dict[str, np.ndarray]):
        self.units = units
        self.months = months
        self.y = y
        self.covariates = covariates

    @classmethod
    def from_history(cls, history: pd.DataFrame, covariates: Sequence[str]) -> "_Grid":
        missing = [c for c in _KEYS if c not in history.columns]
        if missing:
            raise DataError(f"history lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, history.columns))}")
        if history.empty:
            raise DataError("history is empty")
        if history["month"].dtype != pd.PeriodDtype("M"):
            raise DataError(f"history 'month' must hold monthly periods (Period[M]), got dtype {history['month'].dtype}")
        y = pd.to_numeric(history["y"], errors="coerce").to_numpy(dtype=float)
        # NaN is a month no source covers (missing, see features.coverage): it stays NaN, and so
        # does every feature whose window holds it.
        bad = np.flatnonzero(np.isinf(y) | (y < 0) | (np.isnan(y) & history["y"].notna().to_numpy()))
        if len(bad):
            row = history.iloc[bad[0]]
            raise DataError(
                f"history 'y' must be finite and non-negative; unit {row['unit']!r}, month {row['month']} "
                f"has {row['y']}"
            )
        unit_code, units = pd.factorize(history["unit"], sort=True)
        month_ord = history["month"].array.asi8
        order = np.lexsort((month_ord, unit_code))
        n_units = len(units)
        first, last = month_ord.min(), month_ord.max()
        n_months = int(last - first + 1)
        months = pd.period_range(pd.Period(ordinal=first, freq="M"), periods=n_months, freq="M")
        if len(history) != n_units * n_months or not np.array_equal(
            month_ord[order].reshape(n_units, n_months), np.broadcast_to(first + np.arange(n_months), (n_units, n_months))
        ):
            raise DataError(_grid_problem(history, unit_code, units, month_ord, months))

        def matrix(values: np.ndarray) -> np.ndarray:
            # Rows of the sorted history are unit-major: (n_units, n_months) -> (n_months, n_units).
            return np.ascontiguousarray(values[order].reshape(n_units, n_months).T)

        covs = {}
        for c in covariates:
            col = history[c]
            if col.dtype == bool:
                col = col.astype(float)
            if not pd.api.types.is_numeric_dtype(col):
                raise DataError(
                    f"covariate {c!r} must be numeric, got dtype {col.dtype} (e.g. {col.iloc[0]!r}); "
                    "drop it from the history or encode it as numbers"
                )
            covs[c] = matrix(col.to_numpy(dtype=float))
        return cls(np.asarray(units, dtype=object), months, matrix(y), covs)


def _grid_problem(history, unit_code, units, month_ord, months) -> str:
    keys = pd.DataFrame({"u": unit_code, "m": month_ord})
    dup = keys.duplicated()
    if dup.any():
        row = history.loc[dup.to_numpy()].iloc[0]
        return f"history has more than one row for unit {row['unit']!r}, month {row['month']}"
    present = set(zip(unit_code.tolist(), month_ord.tolist()))
    for u, unit in enumerate(units):
        for m in months:
            if (u, m.ordinal) not in present:
                return (
                    f"history is not a complete unit x month grid: unit {unit!r} has no row for month {m} "
                    f"(the history spans {months[0]}..{months[-1]}); build it with features.panel, "
                    "which writes explicit zeros"
                )
    return "history is not a complete unit x month grid"  # pragma: no cover


def _covariates(history: pd.DataFrame, covariates: Sequence[str] | None) -> list[str]:
    if covariates is None:
        return [c for c in history.columns if c not in _KEYS]
    covariates = list(covariates)
    unknown = [c for c in covariates if c not in history.columns]
    if unknown:
        others = [c for c in history.columns if c not in _KEYS]
        raise DataError(f"covariate(s) {', '.join(map(repr, unknown))} not in the history; it has {', '.join(others) or 'none'}")
    reserved = [c for c in covariates if c in _KEYS]
    if reserved:
        raise DataError(f"{reserved[0]!r} cannot be a covariate")
    return covariates


def _whole_numbers(name: str, values: Sequence[int], *, minimum: int) -> list[int]:
    values = list(values)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name} must be whole numbers >= {minimum}, got {v!r} in {values!r}")
    return list(dict.fromkeys(int(v) for v in values))
