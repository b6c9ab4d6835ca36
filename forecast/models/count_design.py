"""The design shared by the pooled direct count regressions (``nb_glm``, ``hurdle``, ``nb_glmx``):
direct features, neighbour weights, month-of-year harmonics and the base class that fits one
regression per horizon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import sparse

from features.graph import unit_graph
from forecast.models.base import (
    Forecaster,
    ModelError,
    future_months,
)
from forecast.models.baselines import count_matrix, grid_frame
from forecast.models.common import (
    CAP_FACTOR,
    check_int,
    check_same_units,
    covariate_array,
    covariate_scaling,
    fit_progress,
    one_blas_thread,
)
from forecast.models.memory import check_memory
from forecast.schema import QUANTILES

#: What to change when a pooled regression's design does not fit in memory.
FIT_ADVICE = ("forecast fewer units at a time (split the panel by region), start the history later, use fewer "
              "covariates, or run on a machine with more memory")

#: Columns of :func:`direct_features` before the covariates.
DIRECT_FEATURES = ("log1p_y", "log1p_mean3", "log1p_mean12", "log1p_neighbour_mean", "log1p_national_total")


class NeighbourWeights:
    """The neighbour matrix W of :func:`neighbour_weights` without its national-mean rows.

    A unit with no neighbour in the panel has the row ``W[i] = 1 / n_units``: as matrix
    entries, n_units of them per such unit, which is quadratic in the units when the
    unit graph does not know the panel's units (13,000 units: 169 million entries, 4 GB
    to build, and a product of that size at every feature build). Here those rows are a
    mask, and their neighbours' mean is the national mean, computed once per month.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array
        (n_units, n_units): the rows of units with neighbours (row-normalised); the other
        rows are empty.
    national : numpy.ndarray
        (n_units,) bool: units whose neighbours' mean is the national mean.
    """

    def __init__(self, matrix: sparse.csr_array, national: np.ndarray) -> None:
        self.matrix = matrix
        self.national = np.asarray(national, dtype=bool)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def mean_of(self, counts: np.ndarray) -> np.ndarray:
        """Neighbours' mean ``(W @ counts.T).T`` of (n_months, n_units) counts.

        Counts may hold NaN (months no source covers): the mean is then over the neighbours
        with data that month (NaN when none has any), never counting a missing month as 0.
        """
        observed = ~np.isnan(counts)
        if observed.all():
            out = np.asarray((self.matrix @ counts.T).T, dtype=float)
            if self.national.any():
                out[:, self.national] = counts.mean(axis=1, keepdims=True)
            return out
        adjacency = (self.matrix > 0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (np.asarray((adjacency @ np.nan_to_num(counts).T).T, dtype=float)
                   / np.asarray((adjacency @ observed.T.astype(float)).T, dtype=float))
            if self.national.any():
                out[:, self.national] = np.nanmean(np.where(observed.any(axis=1, keepdims=True), counts, 0.0),
                                                   axis=1, keepdims=True)
        return out

    def toarray(self) -> np.ndarray:
        """The dense (n_units, n_units) matrix (quadratic in the units: for small panels and checks)."""
        dense = self.matrix.toarray()
        dense[self.national] = 1.0 / max(len(self.national), 1)
        return dense


def neighbour_weights(units: list[str], neighbours: Mapping[str, Iterable[str]] | None = None, *,
                      sparse_matrix: bool = False) -> tuple[np.ndarray | NeighbourWeights, dict[str, str]]:
    """Row-normalised neighbour matrix W of shape (n_units, n_units): ``W @ y`` = neighbours' mean.

    ``neighbours`` maps a unit to its neighbouring units (the unit graph the history carries,
    :func:`features.graph.unit_graph`). A unit it does not list, or none of whose neighbours
    is in the panel, gets the national mean instead (``W[i] = 1 / n_units``); so does every
    unit when there is no graph.

    ``sparse_matrix=True`` returns W as a :class:`NeighbourWeights` with the same values:
    the dense matrix grows with the square of the number of units (98 MB and a
    3,500 x 3,500 product per feature build at 3,500 units), the sparse one with the number
    of neighbour pairs, and national-mean rows are a mask rather than n_units entries each.

    Returns
    -------
    (W, source)
        ``source`` maps each unit to ``"neighbours"`` or ``"national mean"``.
    """
    neighbours = neighbours or {}
    index = {u: i for i, u in enumerate(units)}
    n_units = len(units)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    national = np.zeros(n_units, dtype=bool)
    source = {}
    for i, unit in enumerate(units):
        present = [index[n] for n in neighbours.get(unit, ()) if n in index]
        if present:
            # As W[i, present] = 1 / len(present) would: a name listed twice counts twice in
            # the divisor but fills its cell once.
            cols.append(np.unique(np.asarray(present, dtype=np.int64)))
            vals.append(np.full(len(cols[-1]), 1.0 / len(present)))
            rows.append(np.full(len(cols[-1]), i, dtype=np.int64))
            source[unit] = "neighbours"
        else:
            national[i] = True
            source[unit] = "national mean"
    flat = [np.concatenate(part) if part else np.zeros(0, dtype=dtype)
            for part, dtype in ((vals, float), (rows, np.int64), (cols, np.int64))]
    weights = NeighbourWeights(sparse.csr_array((flat[0], (flat[1], flat[2])), shape=(n_units, n_units)), national)
    return (weights if sparse_matrix else weights.toarray()), source


def _trailing_mean(counts: np.ndarray, window: int) -> np.ndarray:
    """Mean of months t-window+1..t for every t (fewer months at the start), shape as counts.

    Over the months with data when counts hold NaN (NaN when the window has none).
    """
    t = np.arange(len(counts))
    lo = np.maximum(t - window + 1, 0)
    observed = ~np.isnan(counts)
    if observed.all():
        cum = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(counts, axis=0)])
        return (cum[t + 1] - cum[lo]) / (t + 1 - lo)[:, None]
    cum = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(np.nan_to_num(counts), axis=0)])
    seen = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(observed, axis=0)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cum[t + 1] - cum[lo]) / (seen[t + 1] - seen[lo])


def direct_features(counts: np.ndarray, weights: np.ndarray, covariates: np.ndarray,
                    countries: np.ndarray | None = None) -> np.ndarray:
    """Features known at the end of month t, for every month and unit.

    Parameters
    ----------
    counts
        (n_months, n_units) counts.
    weights
        (n_units, n_units) neighbour matrix from :func:`neighbour_weights` (dense, or a
        :class:`NeighbourWeights`).
    covariates
        (n_months, n_units, n_covariates) standardised covariates at t.
    countries
        (n_units,) country code of each unit: the national total is then each unit's own
        country's (a panel of Iraq and Syria); None: one country.

    Returns
    -------
    numpy.ndarray
        Shape (n_months, n_units, 5 + n_covariates): :data:`DIRECT_FEATURES` (``log1p`` of
        y[t], of the mean of y[t-2..t], of the mean of y[t-11..t], of the neighbours' mean
        y[t], and of the national total y[t]), then the covariates. Each row uses months
        <= t only, so the features are prefix-invariant. Months without data (NaN counts) give
        NaN where they enter, and means over the months and neighbours with data.
    """
    n_months, n_units = counts.shape
    national = _national_total(counts, countries)
    neighbour_mean = (weights.mean_of(counts) if isinstance(weights, NeighbourWeights)
                      else np.asarray((weights @ counts.T).T) if sparse.issparse(weights)
                      else counts @ weights.T)
    parts = [counts, _trailing_mean(counts, 3), _trailing_mean(counts, 12), neighbour_mean, national]
    logged = np.log1p(np.stack(parts, axis=-1))
    return np.concatenate([logged, covariates.reshape(n_months, n_units, -1)], axis=-1)


def _national_total(counts: np.ndarray, countries: np.ndarray | None) -> np.ndarray:
    """Each unit's country total per month, (n_months, n_units); NaN where no unit of the country has data."""
    observed = ~np.isnan(counts)
    if countries is None and observed.all():
        return np.broadcast_to(counts.sum(axis=1, keepdims=True), counts.shape)
    codes = np.zeros(counts.shape[1], dtype=np.int64) if countries is None else np.asarray(countries)
    out = np.empty(counts.shape)
    for code in np.unique(codes):
        members = codes == code
        seen = observed[:, members].any(axis=1, keepdims=True)
        out[:, members] = np.where(seen, np.nansum(counts[:, members], axis=1, keepdims=True), np.nan)
    return out


def unit_countries(graph, units: list[str]) -> np.ndarray | None:
    """Country codes of ``units`` from the unit graph, when it spans more than one country."""
    if graph is None:
        return None
    names = [graph.country.get(u, "") for u in units]
    return pd.factorize(pd.Series(names))[0] if len(set(names)) > 1 else None


def harmonics(months) -> np.ndarray:
    """Month-of-year harmonics (sin, cos) of target months, shape (n, 2).

    ``months`` is best a ``PeriodIndex`` (as :func:`count_matrix` gives): a list or object
    array of ``Period`` objects is converted one element at a time, which at 3,500 units
    cost more than the model fit.
    """
    moy = pd.PeriodIndex(months, freq="M").month.to_numpy(dtype=float)
    angle = 2 * np.pi * moy / 12
    return np.column_stack([np.sin(angle), np.cos(angle)])


class DirectCountModel(Forecaster):
    """Pooled direct-strategy count regression shared by ``nb_glm`` and ``hurdle``.

    For horizon h the response is y[t + h] and the regressors are :func:`direct_features` at
    t, the month-of-year harmonics of the target month t + h, and either unit effects
    (``unit_effects``, absorbed rather than indicator columns) or an intercept. Training
    rows are the months t from the 12th month of the history (so the 12-month mean covers a
    full window) to T - h (so the target month t + h is at most the origin T: no row looks
    past the history). Horizons 1..``max_horizon``
    are fitted by ``fit``; a longer horizon is fitted the first time it is predicted, on the
    same fit-time history, so ``update`` never changes an estimate.

    Subclasses implement ``_estimate(h, x, y, target_months, unit_index, units) -> dict``
    (one horizon's fit, stored in ``coefs_[h]``) and ``_distribution(h, at_origin,
    target_month, units) -> (mean, quantiles)``.
    """

    uses_covariates = True
    uses_future_covariates = False
    # Months without data (a panel of two countries whose sources cover different years) are
    # rows left out of the training, never zeros; units without data at the origin are not
    # forecast; a covariate's missing value is its history mean (0 after standardising).
    supports_missing = True
    cost = 9
    first_row = 11  # 0-based index of the first training month: the 12-month mean is full
    min_rows = 12  # months of training rows required per horizon

    def _check(self) -> None:
        check_int(self.name, "max_horizon", self.max_horizon, 1)
        check_int(self.name, "maxiter", self.maxiter, 1)

    @one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, months = count_matrix(history, missing=True)
        # Guard against explosive extrapolation of the log-linear fit (seen on the IBC panel,
        # where lagged log counts beyond the training range pushed means above 10^4): no mean
        # may exceed CAP_FACTOR times the largest monthly count of the history.
        self.max_eta_ = float(np.log(CAP_FACTOR * (np.nanmax(counts) + 1.0)))
        need = self.first_row + int(self.max_horizon) + self.min_rows
        if len(counts) < need:
            raise ModelError(
                f"{self.name}: needs at least {need} months of history for max_horizon="
                f"{self.max_horizon} (a full 12-month window, then {self.min_rows} training months "
                f"for the longest horizon), got {len(counts)} ({months[0]}..{months[-1]})"
            )
        columns = [c for c in history.columns if c not in ("unit", "month", "y")]
        # The features of every month and unit, then per horizon the training rows' design
        # and the estimator's working copies of it: about six arrays of rows x columns.
        check_memory(self.name, "design", counts.size, len(DIRECT_FEATURES) + len(columns) + 3, copies=6,
                     advice=FIT_ADVICE)
        scaling = covariate_scaling(history, columns, self.name)
        self.covariate_columns_, self.covariate_mean_, self.covariate_sd_ = scaling
        graph = unit_graph(history)
        self.weights_, self.neighbour_source_ = neighbour_weights(units, graph.neighbours if graph else None,
                                                                 sparse_matrix=True)
        self.countries_ = unit_countries(graph, units)
        # A covariate missing in some months (outside its source's coverage) gets an indicator
        # column beside its value (the mean there): its effect is learned where it was recorded.
        self.covariate_gaps_ = [c for c in self.covariate_columns_ if history[c].isna().any()]
        self.feature_names_ = [*DIRECT_FEATURES, *self.covariate_columns_, *(f"{c}_missing" for c in self.covariate_gaps_)]
        covs = self._covariates(history, units, months)
        self._train_ = (direct_features(counts, self.weights_, covs, self.countries_), counts, months, units)
        self.coefs_: dict[int, dict] = {}
        self.fallbacks_: dict[str, str] = {}
        self._notes_: dict[str, dict[str, list[int]]] = {}
        for h in fit_progress(range(1, int(self.max_horizon) + 1), self.name, len(units), "horizons"):
            self._fit_horizon(h)

    @staticmethod
    def _design(features: np.ndarray, target_months, unit_effects: bool) -> np.ndarray:
        """Regressors of rows (n_rows, n_features) -> dense design (n_rows, n_columns).

        ``[features, harmonics]`` with unit effects (the effects are absorbed, never columns:
        see :mod:`forecast.models.absorbed`), ``[1, features, harmonics]`` without.
        Column-major: statsmodels' NB Hessian and IRLS weighting walk the design column by
        column, and on a row-major design of 3,500 units (700,000 rows) every column pass
        strode through the whole matrix, which made the fit grow faster than the rows.
        """
        parts = [features, harmonics(target_months)]
        if not unit_effects:
            parts.insert(0, np.ones((len(features), 1)))
        return np.asfortranarray(np.column_stack(parts))

    @staticmethod
    def _linear(design: np.ndarray, beta: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """``design @ beta`` of the dense columns plus, when ``groups`` is given (each row's
        index among the units with an effect), that unit's effect (``beta``'s trailing part)."""
        p = design.shape[1]
        eta = design @ beta[:p]
        return eta if groups is None else eta + beta[p:][groups]

    @staticmethod
    def _groups(keep: np.ndarray) -> np.ndarray:
        """Per unit, its index among the ``keep`` units (0 for the others, which callers mask)."""
        return np.maximum(np.cumsum(keep) - 1, 0)

    def _fit_horizon(self, h: int) -> None:
        features, counts, months, units = self._train_
        last = len(counts) - 1 - h  # last t whose target t + h is within the history
        if last - self.first_row + 1 < self.min_rows:
            raise ModelError(
                f"{self.name}: horizon {h} needs at least {self.first_row + h + self.min_rows} months of "
                f"fit history, got {len(counts)}; refit on a longer history or ask for a shorter horizon"
            )
        t = np.arange(self.first_row, last + 1)
        n_units = len(units)
        x = features[t].reshape(len(t) * n_units, -1)  # rows ordered (t, unit)
        y = counts[t + h].reshape(-1)
        target_months = months[t + h].repeat(n_units)  # a PeriodIndex, rows ordered (t, unit)
        unit_index = np.tile(np.arange(n_units), len(t))
        usable = np.isfinite(y) & np.isfinite(x).all(axis=1)
        if not usable.all():
            # Rows with a month no source covers (in the target or a feature) are left out.
            x, y, target_months, unit_index = x[usable], y[usable], target_months[usable], unit_index[usable]
        self.coefs_[h] = self._estimate(h, x, y, target_months, unit_index, units)

    def _note(self, key: str, reason: str, h: int) -> None:
        """Record in ``fallbacks_[key]`` that ``reason`` applied at horizon h."""
        horizons = self._notes_.setdefault(key, {}).setdefault(reason, [])
        horizons.append(h)
        self.fallbacks_[key] = "; ".join(
            f"{why} (horizon{'s' if len(hs) > 1 else ''} {', '.join(map(str, sorted(hs)))})"
            for why, hs in self._notes_[key].items()
        )

    def _covariates(self, frame: pd.DataFrame, units: list[str], months: pd.PeriodIndex) -> np.ndarray:
        """(n_months, n_units, n_covariates + n_gaps): standardised covariates (0 where missing), then
        1/0 indicators of the missing months of the covariates that have any."""
        covs = covariate_array(frame, self.covariate_columns_, self.covariate_mean_, self.covariate_sd_, units, months)
        gaps = getattr(self, "covariate_gaps_", [])
        if not gaps:
            return covs
        missing = [frame.pivot(index="month", columns="unit", values=c).reindex(index=months, columns=units).isna()
                   for c in gaps]
        return np.concatenate([covs, np.stack([m.to_numpy(dtype=float) for m in missing], axis=-1)], axis=-1)

    def _update(self, history: pd.DataFrame) -> None:
        _, units, _ = count_matrix(history, missing=True)
        check_same_units(self.name, self._train_[3], units)
        missing = [c for c in self.covariate_columns_ if c not in history]
        if missing:
            raise ModelError(f"{self.name}: update history lacks covariate(s) {', '.join(missing)} it was fitted with")

    @one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        # Features at the origin come from the current history (longer after update); the
        # coefficients and the standardisation stay those of the fit.
        counts, units, months = count_matrix(self.history_, missing=True)
        # Covariates of the origin month only: pivoting the whole history at every origin of a
        # backtest was a fifth of nb_glm's backtest at 3,500 units (the same numbers).
        at_last = self.history_[self.history_["month"] == months[-1]]
        covs = self._covariates(at_last, units, months[-1:])
        no_covariates = np.zeros((len(months), len(units), 0))
        at_origin = np.concatenate([direct_features(counts, self.weights_, no_covariates, self.countries_)[-1],
                                    covs[0]], axis=-1)  # (n_units, n_features)
        # A unit without data at the origin (its sources end earlier) is not forecast.
        live = np.isfinite(counts[-1])
        at_origin = np.nan_to_num(at_origin)
        mean = np.zeros((len(units), horizon))
        quantiles = np.zeros((len(units), horizon, len(QUANTILES)))
        targets = future_months(self.origin_, horizon)
        for h in range(1, horizon + 1):
            if h not in self.coefs_:
                self._fit_horizon(h)
            mean[:, h - 1], quantiles[:, h - 1] = self._distribution(h, at_origin, targets[h - 1], units)
        if live.all():
            return grid_frame(units, self.origin_, mean, quantiles)
        return grid_frame([u for u, keep in zip(units, live) if keep], self.origin_, mean[live], quantiles[live])
