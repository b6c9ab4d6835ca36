"""The model interface, its ``@register`` decorator, and the helpers every model shares.

A model is fitted on the panel up to a forecast origin T (the last month it may see) and
predicts months T+1..T+H for every unit as a predictive distribution summarised by its mean
and the quantiles of :data:`forecast.schema.QUANTILES`.

Writing a model (copy one from ``baselines.py``): subclass :class:`Forecaster`, give it a
``name``, store keyword hyperparameters in ``__init__`` (nothing else; annotate each one with its
type, ``window: int = 12``, which :func:`make_model` checks every value against), implement

* ``_fit(history)``: estimate parameters from ``history`` (rows with month <= origin; columns
  ``unit, month, y`` and covariates), store fitted state in attributes ending in ``_``;
* ``_predict(horizon, future)``: return :func:`prediction_frame` for the months after the
  last month seen;
* optionally ``_update(history)``: condition on a longer history while keeping the fitted
  parameters (cheap re-use between backtest origins; the default refits);

and decorate the class with :func:`register`; then give it its line (module and ``summary``) in
:data:`forecast.models.MODELS`. The contract test in ``tests/test_models.py`` picks it up.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import pickle
from collections import OrderedDict
from collections.abc import Iterator
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from scipy import stats

from features.graph import unit_graph, with_graph
from forecast.errors import ModelError
from forecast.models import MODELS, make_model  # the registry; make_model is re-exported for the models
from forecast.models.missing import covered_window, unforecast_units
from forecast.models.params import check_declared_types
from forecast.schema import PREDICTION_COLUMNS, QUANTILE_COLUMNS, QUANTILES, validate_forecast


class NotFittedError(ValueError, AttributeError):
    """``predict`` or ``update`` called before ``fit``."""


def register(cls: type["Forecaster"]) -> type["Forecaster"]:
    """Class decorator: make the model findable by its ``name`` (its module's line in
    :data:`forecast.models.MODELS` says where to find it)."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} needs a class attribute 'name'")
    MODELS.record(cls)
    return cls


class Forecaster:
    """Base class of every model (see the module docstring for how to write one)."""

    name: ClassVar[str] = ""
    #: One line for the README and ``forecast models``.
    summary: ClassVar[str] = ""
    #: Uses covariate columns of the history at all.
    uses_covariates: ClassVar[bool] = False
    #: Needs covariate values at the target months (``future``): only these models respond
    #: to scenarios.
    uses_future_covariates: ClassVar[bool] = False
    #: Takes histories with missing values (NaN counts where no source covers a unit-month, NaN
    #: covariates outside their coverage) as they are. The others get the part without them
    #: (:func:`forecast.models.missing.covered_window`), and a fit note says what was left out.
    supports_missing: ClassVar[bool] = False
    #: Rough relative cost of a backtest block, for scheduling only: the heaviest work is
    #: started first so that the last task to finish is a short one. The registered models'
    #: values are about three times the seconds their backtest of ``benchmarks/run.py``'s
    #: case 1 takes on one core (96 origins, 18 units); a cheap baseline is 1.
    cost: ClassVar[int] = 1

    # -- hyperparameters, the scikit-learn way ---------------------------------------------

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def check_params(self) -> None:
        """Check every hyperparameter before any data is seen (:func:`make_model` does).

        The values must be of the types ``__init__`` declares
        (:func:`forecast.models.params.check_declared_types`), then pass the model's own range
        checks (its ``_check``, which ``fit`` runs again).

        Raises
        ------
        ModelError
            Naming the model, the parameter, what it must be and the value given.
        """
        check_declared_types(type(self), self.get_params(), self.name)
        check = getattr(self, "_check", None)
        if callable(check):
            try:
                check()
            except ModelError:
                raise
            except (TypeError, ValueError) as exc:
                raise ModelError(f"model {self.name!r}: invalid parameters ({str(exc)[:200]})") from None

    def shared_fits(self) -> list["Forecaster"]:
        """Unfitted models whose fits this model repeats on the same histories (an ensemble's
        members). A backtest runs them in one process so that those fits are made once."""
        return []

    # -- public API -------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> Self:
        """Estimate the model on ``history`` (panel rows up to the origin, target as ``y``).

        Inside :func:`fit_cache` with ``models=True``, a fit of the same class with the same
        hyperparameters on an identical history is not repeated: the fitted state is copied
        from the cache (models are deterministic given their hyperparameters, which the
        contract test checks).
        """
        history = self._usable(check_history(history, self.name))
        cache = active_fit_cache()
        key = None
        if cache is not None and cache.enabled and cache.models:
            key = fingerprint("model", type(self).__qualname__, repr(sorted(self.get_params().items())),
                              history_fingerprint(history))
            state = cache.get(key)
            if state is not None:
                self.__dict__.update(state)
                self.chain_key_ = key
                return self
        self._fit(history)
        self._remember(history)
        if key is not None:
            cache.put(key, {k: v for k, v in self.__dict__.items() if k not in self.param_names()})
        self.chain_key_ = key
        return self

    def update(self, history: pd.DataFrame) -> Self:
        """Condition on a longer history, keeping fitted parameters where the model can.

        A history that carries no unit graph (rows served through MLflow's pyfunc interface, say)
        is read with the graph of the fit: the neighbours are part of what the model learned.
        """
        self._check_fitted()
        history = check_history(history, self.name)
        if unit_graph(history) is None and getattr(self, "unit_graph_", None) is not None:
            history = with_graph(history, self.unit_graph_)
        history = self._usable(history)
        if history["month"].max() < self.origin_:
            raise ModelError(f"{self.name}: update needs history up to at least {self.origin_}")
        self._update(history)
        self._remember(history)
        # The fitted state is a function of the fit's key and the histories of the updates
        # since, in order: predictions made from it can be shared (see predict).
        chain = getattr(self, "chain_key_", None)
        cache = active_fit_cache()
        self.chain_key_ = (fingerprint("update", chain, history_fingerprint(history))
                           if chain is not None and cache is not None and cache.enabled and cache.models else None)
        return self

    def predict(self, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast months origin+1 .. origin+horizon for every unit.

        Parameters
        ----------
        horizon
            Number of months ahead (>= 1).
        future
            ``unit, month`` and covariate values at the target months, for models that use
            covariates at target months (a scenario, or the last known values held).

        Returns
        -------
        pandas.DataFrame
            :data:`forecast.schema.PREDICTION_COLUMNS`, sorted by unit, month.
        """
        self._check_fitted()
        if int(horizon) != horizon or horizon < 1:
            raise ModelError(f"{self.name}: horizon must be a whole number >= 1, got {horizon!r}")
        if self.uses_future_covariates and self.covariates_ and future is None:
            future = hold_last_value(self.history_, int(horizon))
        # Inside fit_cache(models=True), a model fitted and updated exactly as another one was
        # (an ensemble's member and the same model backtested on its own: same fit key, same
        # update histories) predicts what that one predicted: the prediction is taken from
        # the cache rather than recomputed.
        cache = active_fit_cache()
        chain = getattr(self, "chain_key_", None)
        key = None
        if chain is not None and cache is not None and cache.enabled and cache.models:
            key = fingerprint("predict", chain, int(horizon),
                              b"" if future is None else history_fingerprint(future))
            hit = cache.get(key)
            if hit is not None:
                return hit
        out = self._predict(int(horizon), future)[list(PREDICTION_COLUMNS)]
        # Models build their rows in (unit, month) order already; sorting them again at every
        # origin of a backtest was a measurable share of a cheap model's cost.
        out = (out if _sorted_by_unit_and_month(out) else out.sort_values(["unit", "month"])).reset_index(drop=True)
        out = validate_forecast(out, source=f"model {self.name}")
        if key is not None:
            cache.put(key, out)
        return out

    # -- to implement -------------------------------------------------------------------------

    def _fit(self, history: pd.DataFrame) -> None:
        raise NotImplementedError

    def _update(self, history: pd.DataFrame) -> None:
        self._fit(history)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        raise NotImplementedError

    # -- internals ----------------------------------------------------------------------------

    def _usable(self, history: pd.DataFrame) -> pd.DataFrame:
        """The history this model can fit on: as given when it supports missing values."""
        if self.supports_missing:
            self.history_notes_ = unforecast_units(history, self.name)
            return history
        history, self.history_notes_ = covered_window(history, self.name, covariates=self.uses_covariates)
        return history

    def _remember(self, history: pd.DataFrame) -> None:
        self.history_ = history
        #: The neighbours the history carried (features.graph), kept for updates and serving.
        self.unit_graph_ = unit_graph(history)
        self.origin_ = history["month"].max()
        self.units_ = sorted(history["unit"].unique())
        self.covariates_ = covariate_columns(history)

    def _check_fitted(self) -> None:
        if not hasattr(self, "origin_"):
            raise NotFittedError(f"model {self.name!r} is not fitted yet: call fit(history) first")


# ----------------------------------------------------------------------------------------
# Memoised fits


class FitCache:
    """Results of deterministic fits within one process, keyed by a fingerprint of their inputs.

    A rolling-origin backtest repeats fits: a tree model's calibration regressor at origin T
    is trained on exactly the rows of its final regressor at T - 24 months, and the ensemble
    fits its members on histories that the members' own backtests fit too. Every entry is a
    pure function of its key (class, hyperparameters, training data), so a hit returns what a
    new fit would return and results never depend on whether the cache is used.

    Values are stored pickled (a model that is later updated in place cannot corrupt the
    cache), least recently used first out once ``max_bytes`` is exceeded.

    Parameters
    ----------
    max_bytes
        Bound on the pickled size of the entries kept.
    models
        Also memoise whole model fits (:meth:`Forecaster.fit`), worth it when several models
        of a backtest fit the same model (an ensemble and its members); regressor-level
        entries (the tree models' per-horizon regressors) are always memoised.
    """

    def __init__(self, max_bytes: int = 1 << 30, *, models: bool = False):
        self.max_bytes = int(max_bytes)
        self.models = bool(models)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        """False for a cache of size 0, which memoises nothing (every fit is made anew)."""
        return self.max_bytes > 0

    def get(self, key: bytes):
        blob = self._entries.get(key)
        if blob is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return pickle.loads(blob)

    def put(self, key: bytes, value) -> None:
        if not self.enabled:
            return
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return  # not picklable: the fit is simply not shared
        if len(blob) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._entries[key] = blob
        self._bytes += len(blob)
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped)


_FIT_CACHE: contextvars.ContextVar[FitCache | None] = contextvars.ContextVar("fit_cache", default=None)


@contextlib.contextmanager
def fit_cache(cache: FitCache | None = None) -> Iterator[FitCache]:
    """Use ``cache`` (a new :class:`FitCache` by default) for the fits made inside the block."""
    cache = FitCache() if cache is None else cache
    token = _FIT_CACHE.set(cache)
    try:
        yield cache
    finally:
        _FIT_CACHE.reset(token)


def active_fit_cache() -> FitCache | None:
    """The :class:`FitCache` of the enclosing :func:`fit_cache` block, if any."""
    return _FIT_CACHE.get()


def fingerprint(*parts) -> bytes:
    """A digest of strings, bytes and NumPy arrays (dtype and shape included)."""
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(pd.util.hash_array(part) if part.dtype == object else part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.view(np.uint8).reshape(-1) if array.size else b"")
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            digest.update(str(part).encode())
        digest.update(b"\x00")
    return digest.digest()


def history_fingerprint(history: pd.DataFrame) -> bytes:
    """A digest of a history's columns and values (row order included) and of its unit graph."""
    graph = unit_graph(history)
    parts: list = [repr(list(history.columns)), graph.digest() if graph is not None else ""]
    for column in history.columns:
        values = history[column]
        if isinstance(values.dtype, pd.PeriodDtype):
            parts.append(values.array.asi8)
        elif pd.api.types.is_numeric_dtype(values.dtype) or values.dtype == bool:
            parts.append(values.to_numpy())
        else:
            codes, uniques = pd.factorize(values, sort=False)
            parts += [codes, "\x1f".join(map(str, uniques))]
    return fingerprint(*parts)


# ----------------------------------------------------------------------------------------
# Histories


def covariate_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c not in ("unit", "month", "y")]


def check_history(history: pd.DataFrame, model: str = "model") -> pd.DataFrame:
    """A history a model can use: ``unit, month (Period[M]), y`` (+ covariates), complete grid."""
    missing = [c for c in ("unit", "month", "y") if c not in history]
    if missing:
        raise ModelError(f"{model}: history lacks column(s) {', '.join(missing)}")
    if history.empty:
        raise ModelError(f"{model}: history is empty")
    if not isinstance(history["month"].dtype, pd.PeriodDtype):
        raise ModelError(f"{model}: history 'month' must be monthly periods")
    if (history["y"] < 0).any():
        raise ModelError(f"{model}: history 'y' has negative values")
    if _sorted_by_unit_and_month(history):
        return history.reset_index(drop=True)  # a lazy copy (copy-on-write)
    return history.sort_values(["unit", "month"]).reset_index(drop=True)


def _sorted_by_unit_and_month(history: pd.DataFrame) -> bool:
    """Rows already in (unit, month) order with unique keys: a backtest's histories are, and
    sorting them again at every origin cost more than some models' fits."""
    units = history["unit"].to_numpy(dtype=object)
    months = history["month"].array.asi8
    if len(units) < 2:
        return True
    try:
        same = units[1:] == units[:-1]
        ascending = units[1:] > units[:-1]
    except TypeError:  # mixed types: let sort_values decide
        return False
    return bool(np.all(ascending | (same & (months[1:] > months[:-1]))))


def wide(history: pd.DataFrame, column: str = "y") -> pd.DataFrame:
    """History as a (months x units) frame of one column."""
    return history.pivot(index="month", columns="unit", values=column).sort_index()


def future_months(origin: pd.Period, horizon: int) -> pd.PeriodIndex:
    return pd.period_range(origin + 1, origin + horizon, freq="M")


def hold_last_value(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Covariates at the target months, each unit holding its last known value.

    This is the default when no scenario says otherwise; the forecast output records it.
    """
    covs = covariate_columns(history)
    last = history.sort_values("month").groupby("unit")[covs].last()
    months = future_months(history["month"].max(), horizon)
    grid = pd.MultiIndex.from_product([last.index, months], names=["unit", "month"])
    return last.reindex(grid.get_level_values("unit")).set_axis(grid).reset_index()


# ----------------------------------------------------------------------------------------
# Predictive distributions -> mean and quantiles


def prediction_frame(units, months, horizons, mean, quantiles) -> pd.DataFrame:
    """Build a model's output from flat arrays.

    ``quantiles`` has shape (n_rows, len(QUANTILES)). Quantiles are clipped at zero and sorted
    along each row (monotone rearrangement, Chernozhukov et al. 2010, which can only lower
    the pinball loss); the mean is clipped at zero. Nothing else is touched.
    """
    q = np.sort(np.clip(np.asarray(quantiles, dtype=float), 0.0, None), axis=1)
    columns = {"unit": units, "month": months, "horizon": horizons, "mean": np.clip(mean, 0.0, None)}
    # One constructor call: assigning the quantile columns afterwards cost more than some
    # models' predictions (a backtest builds thousands of these frames).
    columns.update({name: q[:, k] for k, name in enumerate(QUANTILE_COLUMNS)})
    return pd.DataFrame(columns)


def poisson_quantiles(mu: np.ndarray) -> np.ndarray:
    """Quantiles of Poisson(mu), shape (len(mu), len(QUANTILES))."""
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    return stats.poisson.ppf(np.asarray(QUANTILES)[None, :], mu[:, None])


def negbin_quantiles(mu: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Quantiles of a negative binomial with mean ``mu`` and variance ``mu + alpha * mu**2``."""
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    alpha = np.broadcast_to(np.maximum(np.asarray(alpha, dtype=float), 1e-8), mu.shape)
    n = 1.0 / alpha
    p = n / (n + mu)
    return stats.nbinom.ppf(np.asarray(QUANTILES)[None, :], n[:, None], p[:, None])


def sample_quantiles(samples: np.ndarray) -> np.ndarray:
    """Quantiles of predictive samples of shape (n_rows, n_draws)."""
    return np.quantile(samples, QUANTILES, axis=1).T
