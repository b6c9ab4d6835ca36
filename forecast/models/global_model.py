"""A global distributional model: one gradient-boosted regressor per horizon for every unit at once.

``global_boost`` learns ``y[t + h]`` relative to each unit's own scale, pooling every unit of
the panel into one training set per horizon (the "global" models of the ViEWS prediction
challenge, which beat per-unit models by learning the dynamics every unit shares):

* **Target and scale.** ``s_t`` is the unit's mean over its last 12 months (fewer at the
  start), floored at ``floor``. The regressor (scikit-learn's HistGradientBoosting, Poisson
  loss, which handles missing feature values natively) is fitted on ``y[t + h] / s_t`` with
  sample weight ``s_t``: the Poisson deviance of ``y`` against ``s_t * m`` is ``s_t`` times
  that of ``y / s_t`` against ``m``, so this is a Poisson regression of the count with the
  offset ``log s_t``, and units of a hundred events a month and of one share what they
  teach. The forecast mean is ``s_T * m_h(x_T)``.
* **Features** as of ``t`` (:func:`features.transforms.build_features`, reused, so every
  one is leak-free and prefix-invariant): lags 1, 2, 3, 6, 12, rolling means and maxima over
  3, 6 and 12 months, months since a spike, the neighbours' mean (the unit graph the history
  carries, :func:`features.graph.unit_graph`; the national mean without one), the national
  total, month of year, and every covariate column of the history with lags 1 and 2 (the
  other target when the caller passes it, the type split and the context series of a
  context panel, NaN where their source does not cover a month). Added here: the same counts
  as ratios to ``s_t``, ``log s_t``, months since the last event, the neighbours' mean one
  and three months back, and the mean of the neighbours across a national border.
* **Distribution.** Negative binomial around the mean, with a dispersion per unit and
  horizon: the maximum-likelihood value of the unit's training targets given the regressor's
  means (:func:`~forecast.models.smoothing.negbin_ml_alpha`), never below ``min_alpha``. As
  for the pooled count models, the mean is capped at
  :data:`~forecast.models.common.CAP_FACTOR` times the unit's largest count so far.

Missing months (``supports_missing``): a count or context value no source covers is NaN and
stays NaN. The trees route it, the scale and the cross-border mean use the months with data,
training pairs whose target month has no data are left out, and a unit without data at the
origin is not forecast (:mod:`forecast.models.missing` says so in the fit notes).

Cost, and when it refits. Training pairs use target months up to an *anchor*: the last month
of the history whose position from the history's first month is a multiple of
``refit_months`` (every month while the history is shorter than 4 x ``refit_months``). The
fitted regressors are therefore the same for ``refit_months`` consecutive origins and are
taken from the fit cache of a backtest instead of being refitted; the features, and so the
forecasts, still use every month up to the origin. A fit depends on the history alone, so
deleting or changing months after the origin changes nothing (``tests/test_models.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import ThreadpoolController

from features.graph import unit_graph
from features.transforms import features_for
from forecast.models.base import (
    Forecaster,
    ModelError,
    active_fit_cache,
    covariate_columns,
    fingerprint,
    history_fingerprint,
    negbin_quantiles,
    register,
)
from forecast.models.baselines import grid_frame
from forecast.models.common import CAP_FACTOR
from forecast.models.memory import check_memory
from forecast.models.ml import TREE_ADVICE
from forecast.models.params import check_int, is_real
from forecast.models.smoothing import negbin_ml_alpha

LAGS = (1, 2, 3, 6, 12)
WINDOWS = (3, 6, 12)
COVARIATE_LAGS = (1, 2)
#: Months of the unit scale s_t.
SCALE_MONTHS = 12


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # Built once: inspecting the loaded libraries costs about 4 ms a call.
    return ThreadpoolController()


def thread_limit(n_jobs: int | None):
    """OpenMP threads of scikit-learn's boosting limited to ``n_jobs`` (None or < 1: no limit)."""
    return _controller().limit(limits=None if n_jobs is None or n_jobs < 1 else int(n_jobs), user_api="openmp")


def _trailing_mean(y: np.ndarray, months: int) -> np.ndarray:
    """Mean of each column over its observed values in the last ``months`` rows up to each row
    (fewer at the start); NaN where none of them is observed."""
    seen = ~np.isnan(y)
    sums = np.cumsum(np.vstack([np.zeros((1, y.shape[1])), np.where(seen, y, 0.0)]), axis=0)
    counts = np.cumsum(np.vstack([np.zeros((1, y.shape[1])), seen]), axis=0)
    rows = np.arange(1, len(y) + 1)
    first = np.maximum(rows - months, 0)
    n = counts[rows] - counts[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[rows] - sums[first]) / n, np.nan)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    out[k:] = x[:len(x) - k]
    return out


def _months_since_event(y: np.ndarray) -> np.ndarray:
    """Months since the last month with a count above 0 (the month itself: 0); the months so far when none."""
    t = np.arange(len(y))[:, None]
    last = np.maximum.accumulate(np.where(y > 0, t, -1), axis=0)
    return np.where(last >= 0, t - last, t + 1).astype(float)


def _cross_border_mean(y: np.ndarray, units: list[str], history: pd.DataFrame) -> np.ndarray:
    """Mean count of each unit's neighbours in another country (NaN for a unit with none)."""
    out = np.full(y.shape, np.nan)
    graph = unit_graph(history)
    if graph is None:
        return out
    index = {u: i for i, u in enumerate(units)}
    for unit, found in graph.cross_border.items():
        cols = [index[n] for n in found if n in index]
        if unit in index and cols:
            seen = ~np.isnan(y[:, cols])
            total = np.where(seen, y[:, cols], 0.0).sum(axis=1)
            n = seen.sum(axis=1)
            out[:, index[unit]] = np.where(n > 0, total / np.maximum(n, 1), np.nan)  # mean of those with data
    return out


@register
class GlobalBoost(Forecaster):
    """Gradient-boosted trees for every unit at once, on counts relative to each unit's scale; NB.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingRegressor` (``loss="poisson"``,
        no early stopping).
    refit_months : int
        Regressors are trained on target months up to the last multiple of this many months
        from the history's start (see the module docstring); 1 refits at every origin.
    floor : float
        Smallest unit scale ``s_t``.
    min_alpha : float
        Smallest NB dispersion.
    random_state : int
        Seed of the regressors.
    n_jobs : int or None
        OpenMP threads while fitting (None or -1: all cores).
    """

    name = "global_boost"
    summary = "Gradient-boosted trees for all units at once, counts relative to each unit's 12-month mean; NB."
    uses_covariates = True
    #: Months no source covers (NaN counts, NaN context) are taken as they are: the trees route
    #: them, the scale and ratios use the months with data, and a unit without data at the
    #: origin is not forecast.
    supports_missing = True
    cost = 20
    min_months = 3

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0, refit_months: int = 12,
                 floor: float = 0.5, min_alpha: float = 0.01, random_state: int = 0, n_jobs: int | None = 1) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.refit_months = refit_months
        self.floor = floor
        self.min_alpha = min_alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check(self) -> None:
        check_int(self.name, "refit_months", self.refit_months, 1)
        for name in ("floor", "min_alpha"):
            value = getattr(self, name)
            if not is_real(value, 0.0) or not float(value) > 0:
                raise ModelError(f"{self.name}: {name} must be a number > 0, got {value!r}")
        if self.n_jobs == 0:
            raise ModelError(f"{self.name}: n_jobs must be a whole number other than 0 (-1 or none: every core), got 0")
        try:
            self._regressor()._validate_params()
        except InvalidParameterError as exc:
            raise ModelError(f"{self.name}: {exc}") from None

    def _regressor(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, early_stopping=False, random_state=self.random_state)

    # -- features ------------------------------------------------------------------------------

    def _design(self, history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Counts (months, units), scales (months, units) and features (months, units, k)."""
        graph = unit_graph(history)
        built = features_for(history, lags=LAGS, windows=WINDOWS,
                             neighbours=graph.neighbours if graph is not None else None,
                             covariates=covariate_columns(history), covariate_lags=COVARIATE_LAGS, log1p=False)
        units = list(pd.unique(built["unit"]))
        n_units = len(units)

        def matrix(column) -> np.ndarray:  # unit-major rows -> (months, units)
            return np.asarray(column, dtype=float).reshape(n_units, -1).T

        y = matrix(built["y_lag0"])
        # fmax: a unit with no month of data in the last 12 gets the floor, not NaN.
        scale = np.fmax(_trailing_mean(y, SCALE_MONTHS), float(self.floor))
        names = [c for c in built.columns if c not in ("unit", "month")]
        columns = [matrix(built[c]) for c in names]
        neighbour = matrix(built["y_neighbour_mean"])
        extra = {"log_scale": np.log(scale), "months_since_event": _months_since_event(y),
                 "neighbour_lag1": _lag(neighbour, 1), "neighbour_lag3": _lag(neighbour, 3),
                 "cross_border_mean": _cross_border_mean(y, units, history)}
        for c in [c for c in names if c.startswith(("y_lag", "y_roll")) or c in ("y_neighbour_mean",)]:
            extra[f"{c}_ratio"] = matrix(built[c]) / scale
        names += list(extra)
        columns += list(extra.values())
        self.design_units_ = np.asarray(units, dtype=object)
        return y, scale, np.stack(columns, axis=-1), names

    def _anchor(self, n_months: int) -> int:
        """Index of the last month whose target months train the regressors."""
        step = int(self.refit_months) if n_months >= 4 * int(self.refit_months) else 1
        return ((n_months) // step) * step - 1

    # -- Forecaster hooks ---------------------------------------------------------------------

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        y, scale, X, self.feature_names_ = self._design(history)
        n_months, n_units = y.shape
        if n_months < self.min_months:
            raise ModelError(f"{self.name}: needs at least {self.min_months} months of history, got {n_months}")
        check_memory(self.name, "feature matrix", n_months * n_units, X.shape[-1], copies=3, advice=TREE_ADVICE)
        self.anchor_ = self._anchor(n_months)
        cache = active_fit_cache()
        self.train_key_ = None
        if cache is not None and cache.enabled:
            cut = history[history["month"] <= history["month"].min() + self.anchor_]
            graph = unit_graph(history)
            self.train_key_ = fingerprint("global_boost", repr(sorted(self.get_params().items())),
                                          history_fingerprint(cut), repr(self.feature_names_),
                                          graph.digest() if graph is not None else "")
        self.train_ = (y[:self.anchor_ + 1], scale[:self.anchor_ + 1], X[:self.anchor_ + 1])
        self.regressors_: dict[int, object] = {}
        self.dispersion_: dict[int, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        self._set_origin(y, scale, X)
        self._fit_horizon(1)

    def _update(self, history: pd.DataFrame) -> None:
        y, scale, X, names = self._design(history)
        if names != self.feature_names_:
            raise ModelError(f"{self.name}: the update history has other columns than the fit; refit instead")
        self._set_origin(y, scale, X)

    def _set_origin(self, y: np.ndarray, scale: np.ndarray, X: np.ndarray) -> None:
        live = ~np.isnan(y[-1])  # units with data at the origin: the others are not forecast
        self.origin_live_ = live
        self.origin_units_ = self.design_units_[live]
        self.origin_scale_ = scale[-1, live]
        self.origin_X_ = X[-1, live]  # (units, features)
        # As the other direct count models: never a mean above CAP_FACTOR x the unit's largest count.
        self.cap_ = CAP_FACTOR * np.maximum(np.where(np.isnan(y), 0.0, y).max(axis=0), 1.0)[live]

    def _fit_horizon(self, h: int) -> None:
        cache = active_fit_cache()
        key = None if self.train_key_ is None else fingerprint(self.train_key_, h)
        hit = cache.get(key) if key is not None else None
        if hit is not None:
            self.regressors_[h], self.dispersion_[h], note = hit
        else:
            y, scale, X = self.train_
            n = len(y)
            # Longer horizons than the training months allow take the longest that has pairs.
            h_used = max(1, min(h, n - 2))
            pairs = np.arange(max(n - h_used, 0))  # rows t with t + h_used inside the training months
            target = (y[pairs + h_used] / scale[pairs]).reshape(-1)
            weight = scale[pairs].reshape(-1)
            design = X[pairs].reshape(-1, X.shape[-1])
            keep = ~np.isnan(target)  # pairs whose target month some source covers
            # A column with no value in the rows fitted on is made a constant (the trees cannot bin it).
            design = np.where(np.isnan(design[keep]).all(axis=0), 0.0, design)
            note = None
            if not keep.any() or np.all(target[keep] == 0):
                regressor, fitted = None, np.zeros(len(target))
                note = f"horizon {h}: no count in the training months; forecasts 0"
            else:
                with thread_limit(self.n_jobs):
                    regressor = self._regressor().fit(design[keep], target[keep], sample_weight=weight[keep])
                    fitted = regressor.predict(design) * weight
            mu = fitted.reshape(len(pairs), -1)
            alpha = negbin_ml_alpha(y[pairs + h_used], mu, float(self.min_alpha)) if len(pairs) else \
                np.full(y.shape[1], float(self.min_alpha))
            self.regressors_[h], self.dispersion_[h] = regressor, alpha
            if key is not None:
                cache.put(key, (regressor, alpha, note))
        if note:
            self.fallbacks_[f"horizon {h}"] = note

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        n_units = len(self.origin_scale_)
        mean = np.zeros((n_units, horizon))
        quantiles = np.zeros((n_units, horizon, 7))
        X = self.origin_X_
        for h in range(1, horizon + 1):
            if h not in self.regressors_:
                self._fit_horizon(h)
            regressor = self.regressors_[h]
            if regressor is None:
                continue
            with thread_limit(self.n_jobs):
                mean[:, h - 1] = np.clip(regressor.predict(X) * self.origin_scale_, 0.0, self.cap_)
            quantiles[:, h - 1] = negbin_quantiles(mean[:, h - 1], self.dispersion_[h][self.origin_live_])
        quantiles[mean <= 0] = 0.0
        return grid_frame(list(self.origin_units_), self.origin_, mean, quantiles)
