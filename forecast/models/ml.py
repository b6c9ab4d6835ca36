"""Pooled tree ensembles (scikit-learn), one regressor per horizon (direct strategy).

Both models learn ``y[t + h]`` from the features of :func:`features.transforms.build_features`
as of month ``t`` (lags, rolling means and maxima, months since a spike, the neighbours' mean,
the national total, month-of-year harmonics, covariates at ``t`` and lagged), pooling every
unit into one training set per horizon ``h``. The forecast for ``T + h`` applies the horizon-h
regressor to the features of the origin ``T``. Nothing after ``T`` is needed, so ``future``
is ignored (``uses_future_covariates = False``): covariates enter only as known at ``T``, and
these models do not respond to scenarios.

Training pairs never reach past the origin: :func:`~features.transforms.direct_targets` is
NaN where ``t + h`` is after the history, and those rows are dropped.

Predictive distribution (both models)
-------------------------------------
The mean comes from the regressor; the quantiles from a negative binomial around it whose
dispersion is estimated out of sample on a time-ordered calibration block:

1. For horizon ``h``, the pairs whose target month is among the last ``calibration_months``
   months of the history (at most half of the target months, for short histories) form the
   calibration block. A regressor fitted on the earlier pairs only predicts them.
2. The dispersion ``alpha_h`` of ``NegBin(mean = mu, variance = mu + alpha_h * mu**2)`` is
   the maximum-likelihood estimate on the block's actual counts given those out-of-sample
   means (floored at :data:`forecast.models.common.MEAN_FLOOR`, so that one zero prediction cannot make a count
   infinitely unlikely). Because the means were made without the block, ``alpha_h`` covers
   both the count noise and the regressor's own error at that horizon, which in-sample
   residuals would understate.
3. The regressor is refitted on all pairs; the forecast is ``mean = mu`` and the NB
   quantiles at ``mu`` with ``alpha_h`` (whole counts, non-negative, monotone).

One ``alpha_h`` is shared by all units, so intervals are relatively too wide for units whose
counts the features predict well and too narrow for erratic ones; the NB variance
``mu + alpha mu^2`` at least scales them with the level.

Cost: each horizon takes two fits (calibration and final). :meth:`fit` fits horizon 1 (so
invalid hyperparameters and too-short histories fail there); longer horizons are fitted on
first use by :meth:`predict`, always from the history given to the last :meth:`fit`, so the
order of calls never changes a forecast. :meth:`update` keeps the fitted regressors and only
rebuilds the features at the new origin, which makes rolling-origin backtests cheap.

Neighbours come from the unit graph the history carries (:func:`features.graph.unit_graph`);
a unit the graph does not know, or whose neighbours are all absent from the history, gets the
national mean excluding itself instead, and so does every unit of a history without a graph.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import ThreadpoolController

from features.graph import unit_graph
from features.transforms import DEFAULT_COVARIATE_LAGS, DEFAULT_LAGS, DEFAULT_WINDOWS, direct_targets, features_for
from forecast.models.base import (
    Forecaster,
    ModelError,
    active_fit_cache,
    covariate_columns,
    fingerprint,
    future_months,
    history_fingerprint,
    negbin_quantiles,
    prediction_frame,
    register,
)
from forecast.models.common import check_int, fit_progress, negbin_dispersion
from forecast.models.memory import check_memory

@lru_cache(maxsize=1)
def _thread_controller() -> ThreadpoolController:
    # Built once: inspecting the loaded libraries reads /proc on every call (about 4 ms),
    # which cost more than the predictions it wrapped.
    return ThreadpoolController()


#: What to change when a tree model's feature matrix does not fit in memory.
TREE_ADVICE = ("forecast fewer units at a time (split the panel by region), start the history later, use fewer "
               "lags, windows or covariates, or run on a machine with more memory")


class DirectTreeForecaster(Forecaster):
    """Shared machinery of the tree models: features, per-horizon fits, calibration, update.

    A subclass stores its hyperparameters (including ``lags``, ``windows``,
    ``covariate_lags``, ``calibration_months``, ``random_state`` and
    ``n_jobs``) and implements :meth:`_make_regressor`.
    """

    uses_covariates: ClassVar[bool] = True
    uses_future_covariates: ClassVar[bool] = False
    # The trees route missing values (a month no source covers, a covariate outside its
    # coverage); training pairs whose target month is missing are left out, and a unit without
    # data at the origin is not forecast.
    supports_missing: ClassVar[bool] = True
    cost: ClassVar[int] = 35

    lags: tuple
    windows: tuple
    covariate_lags: tuple
    calibration_months: int
    random_state: int
    n_jobs: int | None

    def _make_regressor(self):
        """A fresh, unfitted scikit-learn regressor built from the hyperparameters."""
        raise NotImplementedError

    def _sized_regressor(self, n_rows: int):
        """The regressor to fit on ``n_rows`` rows (:meth:`_make_regressor` unless a subclass bounds it)."""
        return self._make_regressor()

    def _regressor_bytes(self, n_rows: int) -> int:
        """Estimated bytes of one fitted regressor on ``n_rows`` training rows (for the memory guard)."""
        return 0

    # -- Forecaster hooks -------------------------------------------------------------------

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        self.covariates_fitted_ = covariate_columns(history)
        features = self._features(history)
        self.feature_names_ = [c for c in features.columns if c not in ("unit", "month")]
        # The matrix, its training and calibration slices and scikit-learn's float32 copy,
        # plus the fitted trees of six horizons.
        check_memory(self.name, "feature matrix", len(features), len(self.feature_names_), copies=4,
                     extra=self._regressor_bytes(len(features)) * 6, advice=TREE_ADVICE)
        # The training set of every horizon, kept so that longer horizons are fitted on
        # demand from this history even after update() has moved the origin.
        self.train_history_ = history
        self.train_X_ = features[self.feature_names_].to_numpy(dtype=float)  # (rows, features)
        self.train_month_ = features["month"].array.asi8  # period ordinals, per row
        cache = active_fit_cache()
        self.train_key_ = history_fingerprint(history) if cache is not None and cache.enabled else None
        self.regressors_: dict[int, object] = {}
        self.dispersion_: dict[int, float] = {}
        self.calibration_rows_: dict[int, int] = {}
        self._set_origin_features(features)
        self._fit_horizon(1)

    def _update(self, history: pd.DataFrame) -> None:
        covs = covariate_columns(history)
        if covs != self.covariates_fitted_:
            raise ModelError(
                f"{self.name}: the update history has covariates {', '.join(covs) or 'none'} but the "
                f"model was fitted with {', '.join(self.covariates_fitted_) or 'none'}; refit instead"
            )
        self._set_origin_features(self._features(history))

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        units = self.origin_units_
        n = len(units)
        mean = np.empty((n, horizon))
        quantiles = []
        for h in fit_progress(range(1, horizon + 1), self.name, n, "horizons"):
            if h not in self.regressors_:
                self._fit_horizon(h)
            with self._threads():
                mu = np.clip(self._predict_regressor(self.regressors_[h], self.origin_X_), 0.0, None)
            mean[:, h - 1] = mu
            quantiles.append(negbin_quantiles(mu, self.dispersion_[h]))
        q = np.stack(quantiles, axis=1)  # (units, horizon, quantile levels)
        return prediction_frame(
            np.repeat(units, horizon),
            np.tile(np.asarray(future_months(self.origin_, horizon)), n),
            np.tile(np.arange(1, horizon + 1), n),
            mean.reshape(-1),
            q.reshape(n * horizon, -1),
        )

    # -- internals ----------------------------------------------------------------------------

    def _check(self) -> None:
        for name, minimum in (("lags", 0), ("windows", 1), ("covariate_lags", 0)):
            values = getattr(self, name)
            ok = isinstance(values, (tuple, list, np.ndarray)) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values
            )
            if not ok:
                raise ModelError(f"{self.name}: {name} must be whole numbers >= {minimum}, got {values!r}")
        c = self.calibration_months
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise ModelError(f"{self.name}: calibration_months must be a whole number >= 1, got {c!r}")
        if self.n_jobs == 0:
            raise ModelError(f"{self.name}: n_jobs must be a whole number other than 0 (-1 or none: every core), got 0")
        # The regressor's own constraints (max_iter >= 1, 0 < max_features <= 1, ...), checked
        # by scikit-learn's validator before any fit rather than at the first one.
        validate = getattr(self._make_regressor(), "_validate_params", None)
        if callable(validate):
            try:
                validate()
            except InvalidParameterError as exc:
                raise ModelError(f"{self.name}: {exc}") from None

    def _features(self, history: pd.DataFrame) -> pd.DataFrame:
        # Trees are invariant to monotone transforms of one feature: no log1p copies. In a
        # backtest the features of every origin are slices of one build (features_for).
        return features_for(
            history,
            lags=tuple(self.lags),
            windows=tuple(self.windows),
            # The graph object travels with the history unchanged (pandas keeps attrs), so a
            # backtest's feature store recognises the same neighbours at every origin.
            neighbours=graph.neighbours if (graph := unit_graph(history)) is not None else None,
            covariates=self.covariates_fitted_,
            covariate_lags=tuple(self.covariate_lags),
            log1p=False,
        )

    def _set_origin_features(self, features: pd.DataFrame) -> None:
        last = (features["month"] == features["month"].max()).to_numpy() & features["y_lag0"].notna().to_numpy()
        self.origin_units_ = features.loc[last, "unit"].to_numpy()
        self.origin_X_ = features.loc[last, self.feature_names_].to_numpy(dtype=float)  # (units, features)

    def _fit_horizon(self, h: int) -> None:
        cache = active_fit_cache()
        key = None
        if cache is not None and getattr(self, "train_key_", None) is not None:
            key = fingerprint("horizon", type(self).__qualname__, repr(sorted(self.get_params().items())),
                              self.train_key_, h)
            hit = cache.get(key)
            if hit is not None:
                self.regressors_[h], self.dispersion_[h], self.calibration_rows_[h] = hit
                return
        target = direct_targets(self.train_history_, h).to_numpy()
        keep = ~np.isnan(target)
        X, y = self.train_X_[keep], target[keep]
        target_month = self.train_month_[keep] + h  # all <= the fit origin, by construction
        n_target_months = int(target_month.max() - target_month.min() + 1) if keep.any() else 0
        if n_target_months < 2:
            n_months = int(self.train_month_.max() - self.train_month_.min() + 1)
            raise ModelError(
                f"{self.name}: a history of {n_months} month(s) is too short for horizon {h}; "
                f"it needs at least {h + 2} months"
            )
        n_calibration = min(int(self.calibration_months), n_target_months // 2)
        calibration = target_month > target_month.max() - n_calibration
        with self._threads():
            held_out = self._fit_regressor(X[~calibration], y[~calibration])
            mu = np.clip(self._predict_regressor(held_out, X[calibration]), 0.0, None)
            dispersion = negbin_dispersion(y[calibration], mu)
            final = self._fit_regressor(X, y)
        self.regressors_[h] = final
        self.dispersion_[h] = dispersion
        self.calibration_rows_[h] = int(calibration.sum())
        if key is not None:
            cache.put(key, (final, dispersion, self.calibration_rows_[h]))

    def _fit_regressor(self, X: np.ndarray, y: np.ndarray):
        """Fit a fresh regressor on (X, y), or take it from the active fit cache.

        The calibration regressor of an origin T is trained on exactly the rows of the final
        regressor of the origin 24 months earlier (features are prefix-invariant), which a
        backtest refitting every 12 months has already fitted: the cache fits it once.
        """
        cache = active_fit_cache()
        key = None
        if cache is not None and cache.enabled:
            key = fingerprint("regressor", type(self).__qualname__,
                              repr(sorted(self._sized_regressor(len(X)).get_params().items())), X, y)
            hit = cache.get(key)
            if hit is not None:
                return hit
        regressor = self._fit_regressor_now(X, y)
        if key is not None:
            cache.put(key, regressor)
        return regressor

    def _predict_regressor(self, regressor, X: np.ndarray) -> np.ndarray:
        """``regressor.predict(X)``; subclasses may compute the same numbers faster."""
        return regressor.predict(X)

    def _fit_regressor_now(self, X: np.ndarray, y: np.ndarray):
        # A feature with no value in the training rows (a 12-month lag on a short history)
        # carries no information, and HistGradientBoosting cannot bin it (scikit-learn 1.9
        # raises), so it becomes a constant column that no tree splits on.
        empty = np.isnan(X).all(axis=0)
        if empty.any():
            X = X.copy()
            X[:, empty] = 0.0
        try:
            return self._sized_regressor(len(X)).fit(X, y)
        except InvalidParameterError as exc:
            raise ModelError(f"{self.name}: {exc}") from None

    def _threads(self):
        # HistGradientBoosting uses every core through OpenMP by default; on panels of this
        # size the thread overhead dominates (three times slower on two cores) and it
        # oversubscribes the cores when backtests run models in parallel, so honour n_jobs.
        n_jobs = self.n_jobs
        return _thread_controller().limit(limits=None if n_jobs is None or n_jobs < 1 else int(n_jobs),
                                          user_api="openmp")


@register
class HistGradientBoosting(DirectTreeForecaster):
    """Pooled HistGradientBoostingRegressor (Poisson loss), one per horizon; NB quantiles.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingRegressor` (``loss="poisson"``,
        whose exponential link keeps the mean positive; no early stopping, so exactly
        ``max_iter`` trees and no random validation split).
    lags, windows, covariate_lags
        Feature parameters of :func:`features.transforms.build_features`.
    calibration_months
        Most recent target months held out to estimate the NB dispersion of each horizon.
    random_state
        Seed of the regressors: the same seed gives the same forecast.
    n_jobs
        OpenMP threads while fitting and predicting (None or -1: all cores).
    """

    name = "hgb"
    summary = ("Gradient-boosted trees (Poisson loss) pooled across units, one per horizon; "
               "NB quantiles calibrated on the last 24 months")

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        lags: tuple[int, ...] = DEFAULT_LAGS,
        windows: tuple[int, ...] = DEFAULT_WINDOWS,
        covariate_lags: tuple[int, ...] = DEFAULT_COVARIATE_LAGS,
        calibration_months: int = 24,
        random_state: int = 0,
        n_jobs: int | None = 1,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.lags = lags
        self.windows = windows
        self.covariate_lags = covariate_lags
        self.calibration_months = calibration_months
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_regressor_now(self, X: np.ndarray, y: np.ndarray):
        # The Poisson loss needs a positive total: targets that are all zero (a panel or a
        # stretch without a single incident) are forecast as zero, which is what any tree
        # fitted on them would say.
        if not np.any(np.asarray(y) > 0):
            return DummyRegressor(strategy="constant", constant=0.0).fit(X, y)
        return super()._fit_regressor_now(X, y)

    def _make_regressor(self):
        return HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )


@register
class RandomForest(DirectTreeForecaster):
    """Pooled RandomForestRegressor, one per horizon; NB quantiles.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_samples
        Passed to :class:`~sklearn.ensemble.RandomForestRegressor` (squared error; the forecast
        mean averages leaf means of counts, so it is never negative). Each tree sees half the
        rows and a third of the features at each split by default: four times faster than
        full bootstraps with all features, at no measurable cost in accuracy on the synthetic
        panel.
    lags, windows, covariate_lags, calibration_months, random_state
        As for ``hgb``.
    n_jobs
        Trees fitted in parallel (None or -1: all cores); the forecast does not depend on it.
    max_tree_rows
        At most this many rows per tree (None: no bound): with more training rows than
        ``max_samples`` x rows allows, each tree draws this many. The bound leaves panels of
        up to about 80 units x 20 years as they were, and keeps a tree's cost and memory from
        growing with the units (at 13,000 units a forest of half-sample trees would hold
        about 4.5 GB per horizon).
    """

    name = "random_forest"
    summary = ("Random forest pooled across units, one per horizon; "
               "NB quantiles calibrated on the last 24 months")
    cost = 40

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_features: float = 0.33,
        max_samples: float | None = 0.5,
        lags: tuple[int, ...] = DEFAULT_LAGS,
        windows: tuple[int, ...] = DEFAULT_WINDOWS,
        covariate_lags: tuple[int, ...] = DEFAULT_COVARIATE_LAGS,
        calibration_months: int = 24,
        random_state: int = 0,
        n_jobs: int | None = 1,
        max_tree_rows: int | None = 10_000,
    ):
        self.max_tree_rows = max_tree_rows
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.lags = lags
        self.windows = windows
        self.covariate_lags = covariate_lags
        self.calibration_months = calibration_months
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _predict_regressor(self, regressor, X: np.ndarray) -> np.ndarray:
        # RandomForestRegressor.predict dispatches every tree through joblib, about 4 ms for
        # the 18 rows of an origin, several times the trees' own work. Single-threaded it
        # adds the trees' predictions in order and divides by their number; so does this,
        # giving the same floats (tests/test_backends.py compares them).
        if self.n_jobs != 1 or getattr(regressor, "n_outputs_", 1) != 1:
            return regressor.predict(X)
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        out = np.zeros(len(X32))
        for tree in regressor.estimators_:
            values = tree.tree_.predict(X32)  # (rows, outputs) or (rows, outputs, 1)
            out += values[:, 0] if values.ndim == 2 else values[:, 0, 0]
        out /= len(regressor.estimators_)
        return out

    def _check(self) -> None:
        super()._check()
        if self.max_tree_rows is not None:
            check_int(self.name, "max_tree_rows", self.max_tree_rows, 1)

    def _tree_rows(self, n_rows: int, bounded: bool = True) -> int:
        """Rows each tree sees: ``max_samples`` of the rows, at most ``max_tree_rows`` when ``bounded``."""
        share = 1.0 if self.max_samples is None else float(self.max_samples)
        rows = max(round(share * n_rows), 1) if share <= 1 else int(share)
        return rows if self.max_tree_rows is None or not bounded else min(rows, int(self.max_tree_rows))

    def _sized_regressor(self, n_rows: int):
        regressor = self._make_regressor()
        if self.max_tree_rows is not None and int(self.max_tree_rows) < self._tree_rows(n_rows, bounded=False):
            # More rows than a tree may see: each tree draws max_tree_rows of them, so the
            # cost and size of a tree stop growing with the units (below the bound nothing changes).
            regressor.set_params(max_samples=int(self.max_tree_rows))
        return regressor

    def _regressor_bytes(self, n_rows: int) -> int:
        # A tree has about 2 x (rows it sees / min_samples_leaf) nodes of about 72 bytes
        # (scikit-learn's node record and its value).
        nodes = 2 * self._tree_rows(n_rows) / max(int(self.min_samples_leaf), 1)
        return int(int(self.n_estimators) * nodes * 72)

    def _make_regressor(self):
        return RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=self.max_samples,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
