"""Statistical models: per-unit time series (ETS, SARIMAX), pooled direct count regressions
(negative binomial GLM, hurdle) and Croston / TSB for intermittent series.

Every model states in its docstring how its predictive distribution (mean and quantiles) is
obtained. Estimation is capped (``maxiter``) and guarded: when statsmodels raises, warns that
it did not converge, or returns non-finite estimates, the model falls back to a simpler,
documented estimate for that unit (or horizon) instead of failing, and records it in the
fitted attribute ``fallbacks_`` (what fell back -> why and to what). Warnings raised inside
statsmodels are caught there and never reach the caller.

Shared pieces (one copy each): :func:`direct_features` (the features of ``nb_glm`` and
``hurdle``), :func:`neighbour_weights`, covariate standardisation, and the Gaussian
log-scale summary used by ``sarimax``.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, sparse, stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.discrete.truncated_model import TruncatedLFNegativeBinomialP, TruncatedLFPoisson
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults, ETSResultsWrapper
from statsmodels.tsa.statespace.sarimax import SARIMAX
from threadpoolctl import ThreadpoolController

from features.gazetteer import load_gazetteer
from forecast.models.base import (
    Forecaster,
    ModelError,
    future_months,
    negbin_quantiles,
    register,
    sample_quantiles,
)
from forecast.models.baselines import cameron_trivedi_alpha, count_matrix, grid_frame
from forecast.schema import QUANTILES

_Z = stats.norm.ppf(QUANTILES)  # standard normal quantiles at the reported levels
# Linear predictors of the count regressions are clipped here so that exp() stays finite.
_MAX_ETA = 30.0
#: Direct count models never forecast a mean above this multiple of the history's largest count.
_CAP_FACTOR = 3.0


# ----------------------------------------------------------------------------------------
# Shared helpers


class _EstimationFailed(Exception):
    """statsmodels raised, did not converge, or returned non-finite estimates."""


def _guarded(fit, fail_on: tuple[type[Warning], ...] = (ConvergenceWarning,)):
    """Run ``fit()`` (build and fit a statsmodels model); raise :class:`_EstimationFailed`
    instead of failing or warning.

    A warning of a ``fail_on`` category counts as a failure (by default a
    ``ConvergenceWarning``: the estimate stopped at ``maxiter``). Runtime warnings (overflow
    while the optimiser explores, for instance) and other categories are swallowed because
    the result is checked for finiteness by the caller.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            raise _EstimationFailed(f"{type(exc).__name__}: {exc}") from exc
    for w in caught:
        if issubclass(w.category, fail_on) and not issubclass(w.category, RuntimeWarning):
            first = str(w.message).splitlines()[0]
            raise _EstimationFailed(f"did not converge ({first})" if issubclass(w.category, ConvergenceWarning)
                                    else first)
    return result


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread(method):
    """Run a model method with single-threaded BLAS.

    The linear algebra here is small (at most thousands of rows by tens of columns), where
    BLAS threads only add synchronisation; on a busy machine (a parallel backtest, or other
    jobs) OpenBLAS threads spinning against other processes made one pooled fit 30 to 60
    times slower (0.15 s -> 5-10 s) in our measurements. The previous limits are restored on
    exit.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _blas_controller().limit(limits=1, user_api="blas"):
            return method(self, *args, **kwargs)

    return wrapper


def _unit_rng(random_state: int, unit: str) -> np.random.Generator:
    """A generator per (seed, unit): a unit's draws do not depend on which other units exist."""
    return np.random.default_rng([int(random_state), zlib.crc32(str(unit).encode("utf-8"))])


def _check_int(model: str, name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ModelError(f"{model}: {name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _is_real(value, low: float = -np.inf, high: float = np.inf) -> bool:
    """A real number (not a bool) in [low, high]."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and low <= value <= high)


def _check_same_units(model: str, fitted: list[str], units: list[str]) -> None:
    if units != list(fitted):
        extra = sorted(set(units) - set(fitted))
        lacking = sorted(set(fitted) - set(units))
        detail = "; ".join(part for part in (f"new: {', '.join(extra)}" if extra else "",
                                             f"missing: {', '.join(lacking)}" if lacking else "") if part)
        raise ModelError(f"{model}: update needs the units the model was fitted on ({detail}); refit instead")


def _check_choice(model: str, name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ModelError(f"{model}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _covariate_scaling(history: pd.DataFrame, columns: list[str],
                       model: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Means and standard deviations of the covariates over the history (all units, all months).

    Constant columns carry no information a model with an intercept could use and would make
    it singular, so they are dropped. Returns (kept columns, means, sds).
    """
    kept, means, sds = [], [], []
    for col in columns:
        try:
            values = pd.to_numeric(history[col], errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError):
            raise ModelError(f"{model}: covariate column {col!r} is not numeric "
                             f"(e.g. {history[col].iloc[0]!r}); drop it or encode it as numbers") from None
        sd = np.nanstd(values)
        if np.isfinite(sd) and sd > 0:
            kept.append(col)
            means.append(np.nanmean(values))
            sds.append(sd)
    return kept, np.asarray(means, dtype=float), np.asarray(sds, dtype=float)


def _covariate_array(frame: pd.DataFrame, columns: list[str], means: np.ndarray, sds: np.ndarray,
                     units: list[str], months: pd.PeriodIndex) -> np.ndarray:
    """Standardised covariates of shape (n_months, n_units, n_columns); missing values -> 0.

    A missing covariate value is set to the history mean (0 after standardising), the
    neutral value of a linear term.
    """
    out = np.zeros((len(months), len(units), len(columns)))
    for k, col in enumerate(columns):
        table = frame.pivot(index="month", columns="unit", values=col).reindex(index=months, columns=units)
        out[:, :, k] = (table.to_numpy(dtype=float) - means[k]) / sds[k]
    return np.nan_to_num(out, nan=0.0)


def _future_covariates(future: pd.DataFrame | None, columns: list[str], means: np.ndarray, sds: np.ndarray,
                       units: list[str], origin: pd.Period, horizon: int, model: str) -> np.ndarray:
    """Covariates at the target months from ``future``, shape (horizon, n_units, n_columns)."""
    months = future_months(origin, horizon)
    if not columns:
        return np.zeros((horizon, len(units), 0))
    if future is None:
        raise ModelError(f"{model}: needs covariate values at the target months ({', '.join(columns)}); pass future")
    missing = [c for c in ("unit", "month", *columns) if c not in future]
    if missing:
        raise ModelError(f"{model}: future lacks column(s) {', '.join(missing)}; "
                         f"it needs unit, month, {', '.join(columns)}")
    if not isinstance(future["month"].dtype, pd.PeriodDtype):
        raise ModelError(f"{model}: future 'month' must be monthly periods (like the history), "
                         f"got {future['month'].dtype}")
    rows = future.loc[future["unit"].isin(units) & future["month"].isin(months), ["unit", "month", *columns]]
    if rows.duplicated(["unit", "month"]).any():
        dup = rows[rows.duplicated(["unit", "month"])].iloc[0]
        raise ModelError(f"{model}: future has more than one row for unit {dup['unit']!r}, month {dup['month']}")
    grid = pd.MultiIndex.from_product([units, months], names=["unit", "month"])
    have = pd.MultiIndex.from_frame(rows[["unit", "month"]])
    lacking = grid.difference(have)
    if len(lacking):
        unit, month = lacking[0]
        raise ModelError(
            f"{model}: future has no row for unit {unit!r}, month {month} ({len(lacking)} unit-month(s) "
            f"missing); it needs every unit for months {months[0]}..{months[-1]}"
        )
    nan = rows[columns].isna().to_numpy()
    if nan.any():
        i, k = np.argwhere(nan)[0]
        raise ModelError(
            f"{model}: future has no value of {columns[k]!r} for unit {rows['unit'].iloc[i]!r}, "
            f"month {rows['month'].iloc[i]}"
        )
    return _covariate_array(rows, columns, means, sds, units, months)


def censored_normal_summary(m: np.ndarray, v: np.ndarray, log1p: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and quantiles of ``max(g(Z), 0)`` for ``Z ~ N(m, v)``, with ``g = expm1`` or identity.

    Counts cannot be negative, so the distribution is censored at 0; its quantiles are
    ``max(g(m + z_q * s), 0)`` (``g`` is increasing) and its mean is exact::

        log1p:    E[max(e^Z - 1, 0)] = e^(m + v/2) * Phi((m + v) / s) - Phi(m / s)
        identity: E[max(Z, 0)]       = m * Phi(m / s) + s * phi(m / s)

    Shapes: ``m`` and ``v`` any shape; quantiles get a trailing axis of len(QUANTILES).
    """
    m = np.asarray(m, dtype=float)
    s = np.sqrt(np.maximum(np.asarray(v, dtype=float), 0.0))
    z = m[..., None] + s[..., None] * _Z
    quantiles = np.expm1(np.minimum(z, 700.0)) if log1p else z
    safe = np.where(s > 0, s, 1.0)
    if log1p:
        mean = np.exp(np.minimum(m + s**2 / 2, 700.0)) * stats.norm.cdf((m + s**2) / safe) - stats.norm.cdf(m / safe)
        point = np.maximum(np.expm1(np.minimum(m, 700.0)), 0.0)
    else:
        mean = m * stats.norm.cdf(m / safe) + s * stats.norm.pdf(m / safe)
        point = np.maximum(m, 0.0)
    mean = np.where(s > 0, mean, point)
    return np.maximum(mean, 0.0), np.maximum(quantiles, 0.0)


# ----------------------------------------------------------------------------------------
# ETS


class _SmoothedETSResults(ETSResults):
    """ETS results without a covariance matrix, for fits and for re-smoothing.

    ``ETSResults`` computes the numerical (complex-step) Hessian of the likelihood as soon as
    it is built: 85% of the cost of ``ETSModel.smooth``, which a backtest calls for every unit
    at every origin between refits, and a large share of each fit (``ETSModel.fit`` builds its
    results with ``smooth`` after the optimisation, so the estimates are unchanged). Forecasts
    only simulate from the parameters and states, so the standard errors are left undefined
    (NaN) instead.
    """

    @property
    def cov_params_approx(self):
        return np.full((self.k_params, self.k_params), np.nan)


class _ETSSmoother(ETSModel):
    """``ETSModel`` whose ``smooth`` returns :class:`_SmoothedETSResults`."""

    @property
    def _res_classes(self):
        return {"fit": (_SmoothedETSResults, ETSResultsWrapper)}


@register
class ETS(Forecaster):
    """Exponential smoothing per unit (statsmodels ``ETSModel``) on ``log1p(y)``.

    Method: additive errors, additive trend (``trend="add"``, damped when ``damped_trend``)
    or no trend (``trend=None``), no seasonality; smoothing parameters and initial states by
    maximum likelihood (L-BFGS, at most ``maxiter`` iterations). With ``log1p=False`` the
    model is fitted to the counts themselves.

    Predictive distribution: ``n_samples`` future paths per unit simulated from the fitted
    state-space model with errors drawn from the unit's in-sample one-step residuals
    (residual bootstrap: ``ETSResults.simulate`` with resampled residuals) on the log
    scale, back-transformed with ``expm1`` and set to 0 where negative. The mean is the
    average of the back-transformed paths (not ``expm1`` of the log-scale mean, which would
    be biased low); quantiles are their empirical quantiles. Draws are seeded per unit from
    ``random_state`` and the unit name.

    ``update`` re-runs the smoother on the longer history with the fitted parameters
    (``ETSModel.smooth``).

    Fallbacks (``fallbacks_``): a unit with no events is predicted 0 with certainty; a unit
    with fewer than 24 months, or whose fit fails or does not converge, gets a random walk on
    the log scale (paths = last value + sums of bootstrapped one-step changes), i.e. ETS with
    smoothing level 1.

    Parameters
    ----------
    trend : {"add", None}
    damped_trend : bool
    log1p : bool
        Model ``log1p(y)`` (True) or ``y``.
    n_samples : int
        Simulated paths per unit.
    maxiter : int
        Iteration cap of the likelihood maximisation.
    random_state : int
        Seed of the bootstrap.
    """

    name = "ets"
    summary = "Damped-trend exponential smoothing per unit on log1p counts, residual-bootstrap intervals."
    min_months = 24
    cost = 6

    def __init__(self, trend: str | None = "add", damped_trend: bool = True, log1p: bool = True,
                 n_samples: int = 1000, maxiter: int = 200, random_state: int = 0) -> None:
        self.trend = trend
        self.damped_trend = damped_trend
        self.log1p = log1p
        self.n_samples = n_samples
        self.maxiter = maxiter
        self.random_state = random_state

    def _check(self) -> None:
        _check_choice(self.name, "trend", self.trend, ("add", None))
        _check_int(self.name, "n_samples", self.n_samples, 1)
        _check_int(self.name, "maxiter", self.maxiter, 1)
        _check_int(self.name, "random_state", self.random_state, 0)

    def _model(self, z: np.ndarray, *, smoother: bool = False) -> ETSModel:
        damped = bool(self.damped_trend) and self.trend is not None
        return (_ETSSmoother if smoother else ETSModel)(z, error="add", trend=self.trend, damped_trend=damped,
                                                        seasonal=None)

    def _transform(self, counts: np.ndarray) -> np.ndarray:
        return np.log1p(counts) if self.log1p else counts

    @_one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, _ = count_matrix(history)
        z = self._transform(counts)
        self.params_: dict[str, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        self.unit_states_: dict[str, tuple] = {}
        for j, unit in enumerate(units):
            if not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
                self.fallbacks_[unit] = "no events in the history: predicted 0"
                continue
            if len(z) < self.min_months:
                self._random_walk(unit, z[:, j], f"only {len(z)} months (< {self.min_months})")
                continue
            try:
                # The smoother model: the same estimates without the Hessian that forecasts never use.
                result = _guarded(lambda: self._model(z[:, j], smoother=True).fit(disp=False,
                                                                                 maxiter=int(self.maxiter)))
                if not (np.all(np.isfinite(result.params)) and np.isfinite(result.llf)):
                    raise _EstimationFailed("non-finite estimates")
            except _EstimationFailed as exc:
                self._random_walk(unit, z[:, j], f"ETS fit failed ({exc})")
                continue
            self.params_[unit] = np.asarray(result.params)
            self.unit_states_[unit] = ("ets", result)

    def _random_walk(self, unit: str, z: np.ndarray, why: str) -> None:
        self.unit_states_[unit] = ("rw", z[-1], np.diff(z))
        self.fallbacks_[unit] = f"{why}: random walk on the log scale with bootstrapped changes"

    @_one_blas_thread
    def _update(self, history: pd.DataFrame) -> None:
        counts, units, _ = count_matrix(history)
        _check_same_units(self.name, list(self.unit_states_), units)
        z = self._transform(counts)
        for j, unit in enumerate(units):
            if unit in self.params_:
                try:
                    result = _guarded(lambda: self._model(z[:, j], smoother=True).smooth(self.params_[unit]))
                except _EstimationFailed as exc:
                    self._random_walk(unit, z[:, j], f"smoothing with the fitted parameters failed ({exc})")
                    continue
                self.unit_states_[unit] = ("ets", result)
            elif not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
            else:
                if self.unit_states_[unit][0] == "zero":
                    self._random_walk(unit, z[:, j], "no events when fitted, so no ETS parameters")
                else:
                    self.unit_states_[unit] = ("rw", z[-1, j], np.diff(z[:, j]))

    @_one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        n = int(self.n_samples)
        units = list(self.unit_states_)
        mean = np.zeros((len(units), horizon))
        quantiles = np.zeros((len(units), horizon, len(QUANTILES)))
        for i, unit in enumerate(units):
            state = self.unit_states_[unit]
            if state[0] == "zero":
                continue
            rng = _unit_rng(self.random_state, unit)
            if state[0] == "ets":
                # Bootstrapped residuals drawn here (rather than random_errors="bootstrap") so
                # the seeding does not depend on the statsmodels version's rng argument.
                errors = rng.choice(np.asarray(state[1].resid), size=(horizon, n))
                paths = np.asarray(state[1].simulate(horizon, anchor="end", repetitions=n,
                                                     random_errors=errors)).reshape(horizon, n)
            else:
                _, last, steps = state
                steps = steps if len(steps) else np.zeros(1)
                paths = last + np.cumsum(rng.choice(steps, size=(horizon, n)), axis=0)
            draws = np.maximum(np.expm1(np.minimum(paths, 700.0)) if self.log1p else paths, 0.0)
            mean[i] = draws.mean(axis=1)
            quantiles[i] = sample_quantiles(draws)
        return grid_frame(units, self.origin_, mean, quantiles)


# ----------------------------------------------------------------------------------------
# SARIMAX


class _LogAR1:
    """AR(1) with intercept and covariates by ordinary least squares: the SARIMAX fallback.

    ``z[t] = c + phi * z[t-1] + x[t] @ b + e[t]``, ``e ~ N(0, sigma2)``, fitted on
    t = 1..T-1 with ``numpy.linalg.lstsq`` (always succeeds); ``phi`` is clipped to
    [-0.99, 0.99] so that forecasts stay stable. Covariates are left out when there are too
    few months to estimate them.
    """

    def __init__(self, z: np.ndarray, x: np.ndarray) -> None:
        n, k = len(z) - 1, x.shape[1]
        self.use_x = n > k + 3
        if n < 2:
            self.c, self.phi, self.b = float(z.mean()), 0.0, np.zeros(k)
            self.sigma2 = float(z.var()) if len(z) > 1 else 0.0
            return
        design = np.column_stack([np.ones(n), z[:-1], x[1:] if self.use_x else np.zeros((n, 0))])
        coef, *_ = np.linalg.lstsq(design, z[1:], rcond=None)
        self.c, self.phi = float(coef[0]), float(np.clip(coef[1], -0.99, 0.99))
        self.b = coef[2:] if self.use_x else np.zeros(k)
        resid = z[1:] - self.c - self.phi * z[:-1] - x[1:] @ self.b
        self.sigma2 = float(resid @ resid / max(n - design.shape[1], 1))

    def forecast(self, last: float, x_future: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of z at the next len(x_future) months."""
        h = len(x_future)
        mean, var = np.empty(h), np.empty(h)
        m, v = last, 0.0
        for k in range(h):
            m = self.c + self.phi * m + x_future[k] @ self.b
            v = self.phi**2 * v + self.sigma2
            mean[k], var[k] = m, v
        return mean, var


def _fit_sarimax(model: SARIMAX, maxiter: int):
    """``model.fit(disp=False, maxiter=maxiter)`` without what forecasts do not use.

    The estimates are those of ``fit`` (same optimiser, same start, same convergence
    warning); the results come from the Kalman filter alone with no parameter covariance
    (``cov_type="none"``) instead of the smoother plus an outer-product-of-gradients
    covariance, which cost most of a fit here. Forecasts depend only on the parameters and
    the filtered state at the end of the sample, so they are unchanged, and ``apply`` on
    these results (the backtest's updates) then filters as well instead of smoothing.
    """
    params = model.fit(disp=False, maxiter=maxiter, cov_type="none", return_params=True)
    return model.filter(params, transformed=True, includes_fixed=False, cov_type="none")


@register
class Sarimax(Forecaster):
    """SARIMAX per unit on ``log1p(y)`` with the covariates as regressors.

    Method: statsmodels ``SARIMAX(log1p(y), exog, order, seasonal_order, trend)`` by maximum
    likelihood (Kalman filter, L-BFGS with at most ``maxiter`` iterations). The regressors are
    every covariate column of the history, standardised with means and standard deviations
    computed from the history only (constant columns dropped); without covariates it is a
    plain ARIMA. Covariates enter at the target month, so forecasts need their values there
    (``future``: a scenario, or by default the last known values held).

    Predictive distribution: the model's Gaussian forecast distribution on the log scale
    (``get_forecast``: mean ``m`` and variance ``v`` given the fitted parameters),
    back-transformed exactly rather than by simulation: quantiles ``expm1(m + z_q sqrt(v))``
    and the mean ``E[expm1(Z)]`` of the log-normal, both censored at 0
    (:func:`censored_normal_summary`). No random draws, so no seed.

    ``update`` re-filters the longer history with the fitted parameters
    (``results.apply(endog, exog=..., refit=False)``).

    Fallbacks (``fallbacks_``): a unit with no events is predicted 0; a unit with fewer than
    24 months, or whose fit fails or does not converge, gets the AR(1) + covariates model
    fitted by least squares (:class:`_LogAR1`, seasonal terms dropped).

    Parameters
    ----------
    order : tuple of 3 ints
    seasonal_order : tuple of 4 ints
    trend : {"c", "n", "t", "ct"}
        Deterministic trend of statsmodels (``"c"``: intercept).
    log1p : bool
        Model ``log1p(y)`` (True) or ``y``.
    maxiter : int
        Iteration cap of the likelihood maximisation.
    """

    name = "sarimax"
    summary = "SARIMAX per unit on log1p counts with standardised covariates at the target month."
    uses_covariates = True
    uses_future_covariates = True
    min_months = 24
    cost = 20

    def __init__(self, order: tuple[int, int, int] = (1, 0, 0),
                 seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0), trend: str = "c", log1p: bool = True,
                 maxiter: int = 50) -> None:
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.log1p = log1p
        self.maxiter = maxiter

    def _spec(self) -> tuple[tuple, tuple]:
        order, seasonal = tuple(self.order), tuple(self.seasonal_order)
        for name, value, size in (("order", order, 3), ("seasonal_order", seasonal, 4)):
            whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in value)
            if len(value) != size or not whole:
                raise ModelError(f"{self.name}: {name} must be {size} whole numbers >= 0, got {value!r}")
        _check_choice(self.name, "trend", self.trend, ("c", "n", "t", "ct"))
        _check_int(self.name, "maxiter", self.maxiter, 1)
        return order, seasonal

    def _transform(self, counts: np.ndarray) -> np.ndarray:
        return np.log1p(counts) if self.log1p else counts

    @_one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        order, seasonal = self._spec()
        counts, units, months = count_matrix(history)
        columns = [c for c in history.columns if c not in ("unit", "month", "y")]
        self.exog_columns_, self.exog_mean_, self.exog_sd_ = _covariate_scaling(history, columns, self.name)
        exog = _covariate_array(history, self.exog_columns_, self.exog_mean_, self.exog_sd_, units, months)
        z = self._transform(counts)
        self.params_: dict[str, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        self.unit_states_: dict[str, tuple] = {}
        for j, unit in enumerate(units):
            x = exog[:, j, :]
            if not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
                self.fallbacks_[unit] = "no events in the history: predicted 0"
                continue
            if len(z) < self.min_months:
                self._least_squares(unit, z[:, j], x, f"only {len(z)} months (< {self.min_months})")
                continue
            try:
                result = _guarded(lambda: _fit_sarimax(SARIMAX(z[:, j], exog=x if x.shape[1] else None,
                                                               order=order, seasonal_order=seasonal,
                                                               trend=self.trend), int(self.maxiter)))
                if not (np.all(np.isfinite(result.params)) and np.isfinite(result.llf)):
                    raise _EstimationFailed("non-finite estimates")
            except _EstimationFailed as exc:
                self._least_squares(unit, z[:, j], x, f"SARIMAX fit failed ({exc})")
                continue
            self.params_[unit] = np.asarray(result.params)
            self.unit_states_[unit] = ("sarimax", result)

    def _least_squares(self, unit: str, z: np.ndarray, x: np.ndarray, why: str) -> None:
        self.unit_states_[unit] = ("ar1", _LogAR1(z, x), z[-1])
        self.fallbacks_[unit] = f"{why}: AR(1) with covariates by least squares"

    @_one_blas_thread
    def _update(self, history: pd.DataFrame) -> None:
        counts, units, months = count_matrix(history)
        _check_same_units(self.name, list(self.unit_states_), units)
        missing = [c for c in self.exog_columns_ if c not in history]
        if missing:
            raise ModelError(f"{self.name}: update history lacks covariate(s) {', '.join(missing)} it was fitted with")
        exog = _covariate_array(history, self.exog_columns_, self.exog_mean_, self.exog_sd_, units, months)
        z = self._transform(counts)
        for j, unit in enumerate(units):
            x = exog[:, j, :]
            state = self.unit_states_[unit]
            if state[0] == "sarimax":
                try:
                    result = _guarded(lambda: state[1].apply(z[:, j], exog=x if x.shape[1] else None, refit=False))
                except _EstimationFailed as exc:
                    self._least_squares(unit, z[:, j], x, f"re-filtering with the fitted parameters failed ({exc})")
                    continue
                self.unit_states_[unit] = ("sarimax", result)
            elif state[0] == "ar1":
                self.unit_states_[unit] = ("ar1", state[1], z[-1, j])
            elif counts[:, j].any():
                self._least_squares(unit, z[:, j], x, "no events when fitted, so no SARIMAX parameters")

    @_one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        units = list(self.unit_states_)
        x_future = _future_covariates(future, self.exog_columns_, self.exog_mean_, self.exog_sd_, units,
                                      self.origin_, horizon, self.name)
        m = np.zeros((len(units), horizon))
        v = np.zeros((len(units), horizon))
        zero = np.zeros(len(units), dtype=bool)
        for i, unit in enumerate(units):
            state = self.unit_states_[unit]
            x = x_future[:, i, :]
            if state[0] == "zero":
                zero[i] = True
            elif state[0] == "sarimax":
                fc = state[1].get_forecast(horizon, exog=x if x.shape[1] else None)
                m[i], v[i] = np.asarray(fc.predicted_mean), np.asarray(fc.var_pred_mean)
            else:
                m[i], v[i] = state[1].forecast(state[2], x)
        mean, quantiles = censored_normal_summary(m, v, bool(self.log1p))
        mean[zero], quantiles[zero] = 0.0, 0.0
        return grid_frame(units, self.origin_, mean, quantiles)


# ----------------------------------------------------------------------------------------
# Direct count regressions (nb_glm, hurdle)

#: Columns of :func:`direct_features` before the covariates.
DIRECT_FEATURES = ("log1p_y", "log1p_mean3", "log1p_mean12", "log1p_neighbour_mean", "log1p_national_total")


@lru_cache(maxsize=8)
def _gazetteer_neighbours(path: str | None) -> dict[str, tuple[str, ...]]:
    return {unit: tuple(nbs) for unit, nbs in load_gazetteer(path).neighbours().items()}


def neighbour_weights(units: list[str], gazetteer: str | None = None, *,
                      sparse_matrix: bool = False) -> tuple[np.ndarray, dict[str, str]]:
    """Row-normalised neighbour matrix W of shape (n_units, n_units): ``W @ y`` = neighbours' mean.

    Neighbours are read from the gazetteer (the bundled Iraq one when ``gazetteer`` is None).
    A unit that is not in the gazetteer, or none of whose neighbours is in the panel, gets
    the national mean instead (``W[i] = 1 / n_units``).

    ``sparse_matrix=True`` returns W as a ``scipy.sparse.csr_array`` with the same values:
    the dense matrix grows with the square of the number of units (98 MB and a
    3,500 x 3,500 product per feature build at 3,500 units), the sparse one with the number
    of neighbour pairs.

    Returns
    -------
    (W, source)
        ``source`` maps each unit to ``"gazetteer"`` or ``"national mean"``.
    """
    neighbours = _gazetteer_neighbours(None if gazetteer is None else str(gazetteer))
    index = {u: i for i, u in enumerate(units)}
    n_units = len(units)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    source = {}
    for i, unit in enumerate(units):
        present = [index[n] for n in neighbours.get(unit, ()) if n in index]
        if present:
            # As W[i, present] = 1 / len(present) would: a name listed twice counts twice in
            # the divisor but fills its cell once.
            cols.append(np.unique(np.asarray(present, dtype=np.int64)))
            vals.append(np.full(len(cols[-1]), 1.0 / len(present)))
            source[unit] = "gazetteer"
        else:
            cols.append(np.arange(n_units, dtype=np.int64))
            vals.append(np.full(n_units, 1.0 / n_units))
            source[unit] = "national mean"
        rows.append(np.full(len(cols[-1]), i, dtype=np.int64))
    flat = [np.concatenate(part) if part else np.zeros(0, dtype=dtype)
            for part, dtype in ((vals, float), (rows, np.int64), (cols, np.int64))]
    weights = sparse.csr_array((flat[0], (flat[1], flat[2])), shape=(n_units, n_units))
    return (weights if sparse_matrix else weights.toarray()), source


def _trailing_mean(counts: np.ndarray, window: int) -> np.ndarray:
    """Mean of months t-window+1..t for every t (fewer months at the start), shape as counts."""
    cum = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(counts, axis=0)])
    t = np.arange(len(counts))
    lo = np.maximum(t - window + 1, 0)
    return (cum[t + 1] - cum[lo]) / (t + 1 - lo)[:, None]


def direct_features(counts: np.ndarray, weights: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """Features known at the end of month t, for every month and unit.

    Parameters
    ----------
    counts
        (n_months, n_units) counts.
    weights
        (n_units, n_units) neighbour matrix from :func:`neighbour_weights` (dense or sparse).
    covariates
        (n_months, n_units, n_covariates) standardised covariates at t.

    Returns
    -------
    numpy.ndarray
        Shape (n_months, n_units, 5 + n_covariates): :data:`DIRECT_FEATURES` (``log1p`` of
        y[t], of the mean of y[t-2..t], of the mean of y[t-11..t], of the neighbours' mean
        y[t], and of the national total y[t]), then the covariates. Each row uses months
        <= t only, so the features are prefix-invariant.
    """
    n_months, n_units = counts.shape
    national = np.broadcast_to(counts.sum(axis=1, keepdims=True), counts.shape)
    neighbour_mean = (np.asarray((weights @ counts.T).T) if sparse.issparse(weights)
                      else counts @ weights.T)
    parts = [counts, _trailing_mean(counts, 3), _trailing_mean(counts, 12), neighbour_mean, national]
    logged = np.log1p(np.stack(parts, axis=-1))
    return np.concatenate([logged, covariates.reshape(n_months, n_units, -1)], axis=-1)


def _harmonics(months) -> np.ndarray:
    """Month-of-year harmonics (sin, cos) of target months, shape (n, 2).

    ``months`` is best a ``PeriodIndex`` (as :func:`count_matrix` gives): a list or object
    array of ``Period`` objects is converted one element at a time, which at 3,500 units
    cost more than the model fit.
    """
    moy = pd.PeriodIndex(months, freq="M").month.to_numpy(dtype=float)
    angle = 2 * np.pi * moy / 12
    return np.column_stack([np.sin(angle), np.cos(angle)])


class _DirectCountModel(Forecaster):
    """Pooled direct-strategy count regression shared by ``nb_glm`` and ``hurdle``.

    For horizon h the response is y[t + h] and the regressors are :func:`direct_features` at
    t, the month-of-year harmonics of the target month t + h, and either unit indicators
    (``unit_effects``) or an intercept. Training rows are the months t from the 12th month of
    the history (so the 12-month mean covers a full window) to T - h (so the target month
    t + h is at most the origin T: no row looks past the history). Horizons 1..``max_horizon``
    are fitted by ``fit``; a longer horizon is fitted the first time it is predicted, on the
    same fit-time history, so ``update`` never changes an estimate.

    Subclasses implement ``_estimate(h, x, y, target_months, unit_index, units) -> dict``
    (one horizon's fit, stored in ``coefs_[h]``) and ``_distribution(h, at_origin,
    target_month, units) -> (mean, quantiles)``.
    """

    uses_covariates = True
    uses_future_covariates = False
    cost = 9
    first_row = 11  # 0-based index of the first training month: the 12-month mean is full
    min_rows = 12  # months of training rows required per horizon

    def _check(self) -> None:
        _check_int(self.name, "max_horizon", self.max_horizon, 1)
        _check_int(self.name, "maxiter", self.maxiter, 1)

    @_one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, months = count_matrix(history)
        # Guard against explosive extrapolation of the log-linear fit (seen on the IBC panel,
        # where lagged log counts beyond the training range pushed means above 10^4): no mean
        # may exceed _CAP_FACTOR times the largest monthly count of the history.
        self.max_eta_ = float(np.log(_CAP_FACTOR * (counts.max() + 1.0)))
        need = self.first_row + int(self.max_horizon) + self.min_rows
        if len(counts) < need:
            raise ModelError(
                f"{self.name}: needs at least {need} months of history for max_horizon="
                f"{self.max_horizon} (a full 12-month window, then {self.min_rows} training months "
                f"for the longest horizon), got {len(counts)} ({months[0]}..{months[-1]})"
            )
        columns = [c for c in history.columns if c not in ("unit", "month", "y")]
        scaling = _covariate_scaling(history, columns, self.name)
        self.covariate_columns_, self.covariate_mean_, self.covariate_sd_ = scaling
        self.weights_, self.neighbour_source_ = neighbour_weights(units, self.gazetteer, sparse_matrix=True)
        self.feature_names_ = [*DIRECT_FEATURES, *self.covariate_columns_]
        covs = _covariate_array(history, *scaling, units, months)
        self._train_ = (direct_features(counts, self.weights_, covs), counts, months, units)
        self.coefs_: dict[int, dict] = {}
        self.fallbacks_: dict[str, str] = {}
        self._notes_: dict[str, dict[str, list[int]]] = {}
        for h in range(1, int(self.max_horizon) + 1):
            self._fit_horizon(h)

    def _design(self, features: np.ndarray, target_months, unit_index: np.ndarray, n_units: int,
                unit_effects: bool) -> np.ndarray:
        """Regressors of rows (n_rows, n_features) -> design matrix (n_rows, n_columns).

        Column-major: statsmodels' NB Hessian and IRLS weighting walk the design column by
        column, and on a row-major design of 3,500 units (700,000 rows) every column pass
        strode through the whole matrix, which made the fit grow faster than the rows.
        """
        parts = [features, _harmonics(target_months)]
        if unit_effects:
            parts.append(np.eye(n_units)[unit_index])
        else:
            parts.insert(0, np.ones((len(features), 1)))
        return np.asfortranarray(np.column_stack(parts))

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
        self.coefs_[h] = self._estimate(h, x, y, target_months, unit_index, units)

    @staticmethod
    def _select(design: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Drop the unit-indicator columns (the last n_units) of units not in ``units`` (bool)."""
        n_units = len(units)
        return np.asfortranarray(design[:, np.r_[np.ones(design.shape[1] - n_units, dtype=bool), units]])

    def _note(self, key: str, reason: str, h: int) -> None:
        """Record in ``fallbacks_[key]`` that ``reason`` applied at horizon h."""
        horizons = self._notes_.setdefault(key, {}).setdefault(reason, [])
        horizons.append(h)
        self.fallbacks_[key] = "; ".join(
            f"{why} (horizon{'s' if len(hs) > 1 else ''} {', '.join(map(str, sorted(hs)))})"
            for why, hs in self._notes_[key].items()
        )

    def _update(self, history: pd.DataFrame) -> None:
        _, units, _ = count_matrix(history)
        _check_same_units(self.name, self._train_[3], units)
        missing = [c for c in self.covariate_columns_ if c not in history]
        if missing:
            raise ModelError(f"{self.name}: update history lacks covariate(s) {', '.join(missing)} it was fitted with")

    @_one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        # Features at the origin come from the current history (longer after update); the
        # coefficients and the standardisation stay those of the fit.
        counts, units, months = count_matrix(self.history_)
        covs = _covariate_array(self.history_, self.covariate_columns_, self.covariate_mean_, self.covariate_sd_,
                                units, months)
        at_origin = direct_features(counts, self.weights_, covs)[-1]  # (n_units, n_features)
        mean = np.zeros((len(units), horizon))
        quantiles = np.zeros((len(units), horizon, len(QUANTILES)))
        targets = future_months(self.origin_, horizon)
        for h in range(1, horizon + 1):
            if h not in self.coefs_:
                self._fit_horizon(h)
            mean[:, h - 1], quantiles[:, h - 1] = self._distribution(h, at_origin, targets[h - 1], units)
        return grid_frame(units, self.origin_, mean, quantiles)


def _level_only_beta(design: np.ndarray, y: np.ndarray, unit_index: np.ndarray, keep_units: np.ndarray,
                     unit_effects: bool) -> np.ndarray:
    """Coefficients of the last-resort count model: each unit's mean (or the overall mean).

    The design is ``[features, harmonics, indicators of kept units]`` with unit effects,
    ``[1, features, harmonics]`` without; every coefficient but the level ones is 0.
    """
    beta = np.zeros(design.shape[1])
    if unit_effects:
        kept = np.flatnonzero(keep_units)
        sums = np.bincount(unit_index, weights=y, minlength=len(keep_units))[kept]
        n = np.bincount(unit_index, minlength=len(keep_units))[kept]
        beta[-len(kept):] = np.log(np.maximum(sums / n, 1e-12))
    else:
        beta[0] = np.log(max(float(y.mean()), 1e-12))
    return beta


@register
class NegBinGLM(_DirectCountModel):
    """Pooled negative binomial regression, one per horizon (direct strategy).

    Method: for each horizon h, ``y[t + h] ~ NB2(mu, alpha)`` with
    ``log mu = X[t] @ b``, where ``X`` holds :func:`direct_features` at t (lagged counts,
    3- and 12-month means, neighbours' mean, national total, covariates at t: all known at the
    origin, so no future covariates are needed), month-of-year harmonics of the target month
    and unit effects (or an intercept). ``b`` and ``alpha`` by maximum likelihood
    (statsmodels discrete ``NegativeBinomial``, Newton from the Poisson GLM estimate, at most
    ``maxiter`` iterations), on training rows whose target month is at most the origin.

    Predictive distribution: NB2 with mean ``mu`` at the origin's features and the estimated
    ``alpha`` of that horizon; quantiles exact (``scipy.stats.nbinom``).

    Fallbacks (``fallbacks_``): with unit effects, a unit without any event among a
    horizon's training targets has no finite effect and is predicted 0 at that horizon. When
    the NB maximum likelihood fails or does not converge, that horizon uses the Poisson GLM
    coefficients (IRLS) with ``alpha`` from
    :func:`~forecast.models.baselines.cameron_trivedi_alpha`; when the Poisson GLM fails too,
    each unit's mean training target (the overall mean without unit effects) with that
    ``alpha``.

    Parameters
    ----------
    max_horizon : int
        Horizons fitted by ``fit`` (longer ones are fitted when first predicted).
    unit_effects : bool
        Unit indicators instead of a common intercept.
    gazetteer : str or None
        Gazetteer CSV giving the neighbours (None: the bundled Iraq gazetteer). Units not in
        it use the national mean as their neighbours' mean.
    maxiter : int
        Iteration cap of each maximum likelihood fit.
    min_alpha : float
        Floor of the dispersion.
    """

    name = "nb_glm"
    summary = "Pooled negative binomial regression per horizon on lagged counts, neighbours, season and covariates."

    def __init__(self, max_horizon: int = 6, unit_effects: bool = True, gazetteer: str | None = None,
                 maxiter: int = 100, min_alpha: float = 0.01) -> None:
        self.max_horizon = max_horizon
        self.unit_effects = unit_effects
        self.gazetteer = gazetteer
        self.maxiter = maxiter
        self.min_alpha = min_alpha

    def _check(self) -> None:
        super()._check()
        if not _is_real(self.min_alpha, 0.0) or self.min_alpha == 0:
            raise ModelError(f"{self.name}: min_alpha must be > 0, got {self.min_alpha!r}")

    def _estimate(self, h, x, y, target_months, unit_index, units) -> dict:
        n_units = len(units)
        unit_effects = bool(self.unit_effects)
        keep_units = np.ones(n_units, dtype=bool)
        if unit_effects:
            events = np.bincount(unit_index, weights=y, minlength=n_units)
            keep_units = events > 0
            for u in np.flatnonzero(~keep_units):
                self._note(units[u], "no events among the training targets: predicted 0", h)
        rows = keep_units[unit_index]
        design = self._design(x[rows], target_months[rows], unit_index[rows], n_units, unit_effects)
        if unit_effects:
            design = self._select(design, keep_units)
            if not keep_units.any():
                return {"beta": np.zeros(design.shape[1]), "alpha": float(self.min_alpha), "keep_units": keep_units,
                        "last_target": target_months[-1]}
        y = y[rows]
        maxiter = int(self.maxiter)
        min_alpha = float(self.min_alpha)
        try:
            poisson = _guarded(lambda: GLM(y, design, family=families.Poisson()).fit(maxiter=maxiter))
            if not np.all(np.isfinite(poisson.params)):
                raise _EstimationFailed("non-finite estimates")
        except _EstimationFailed as exc:
            beta = _level_only_beta(design, y, unit_index[rows], keep_units, unit_effects)
            self._note(f"horizon {h}", f"Poisson GLM failed ({exc}): "
                       f"{'unit' if unit_effects else 'overall'} mean with moment alpha", h)
        else:
            try:
                nb = _guarded(lambda: NegativeBinomial(y, design, loglike_method="nb2").fit(
                    start_params=np.r_[poisson.params, 0.5], method="newton", maxiter=maxiter, disp=False))
                params = np.asarray(nb.params)
                if not (np.all(np.isfinite(params)) and params[-1] > 0):
                    raise _EstimationFailed("non-finite estimates or alpha <= 0")
                return {"beta": params[:-1], "alpha": max(float(params[-1]), min_alpha), "keep_units": keep_units,
                        "last_target": target_months[-1]}
            except _EstimationFailed as exc:
                beta = np.asarray(poisson.params)
                self._note(f"horizon {h}", f"NB maximum likelihood failed ({exc}): Poisson GLM with moment alpha", h)
        mu = np.exp(np.clip(design @ beta, -_MAX_ETA, _MAX_ETA))
        alpha = float(cameron_trivedi_alpha(y[:, None], mu[:, None], min_alpha)[0])
        return {"beta": beta, "alpha": alpha, "keep_units": keep_units, "last_target": target_months[-1]}

    def _distribution(self, h, at_origin, target_month, units):
        fit = self.coefs_[h]
        n_units = len(units)
        keep = fit["keep_units"]
        design = self._design(at_origin, [target_month] * n_units, np.arange(n_units), n_units, bool(self.unit_effects))
        if self.unit_effects:
            design = self._select(design, keep)
        mu = np.where(keep, np.exp(np.clip(design @ fit["beta"], -_MAX_ETA, self.max_eta_)), 0.0)
        q = negbin_quantiles(mu, fit["alpha"])
        q[~keep] = 0.0
        return mu, q


def _truncated_poisson_mean(positive_mean: float) -> float:
    """The Poisson mean mu whose zero-truncated mean ``mu / (1 - exp(-mu))`` is ``positive_mean``."""
    if positive_mean <= 1 + 1e-9:
        return 1e-9  # all positive counts are 1: the truncated distribution is a point mass at 1
    return optimize.brentq(lambda mu: mu / -np.expm1(-mu) - positive_mean, 1e-9, positive_mean)


def hurdle_summary(p_positive: np.ndarray, mu: np.ndarray, alpha: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and exact quantiles of a hurdle distribution.

    ``P(Y = 0) = 1 - pi``; ``P(Y = k) = pi * f(k) / (1 - f(0))`` for k >= 1, with ``f`` the
    NB2(mu, alpha) pmf (Poisson(mu) when ``alpha`` is None). The quantile at level q is 0
    when ``q <= 1 - pi``, else the smallest ``k >= 1`` with
    ``P(X > k) <= (1 - r) P(X > 0)``, ``r = (q - (1 - pi)) / pi`` (computed with survival
    functions for precision). The mean is ``pi * mu / (1 - f(0))``.

    Shapes: ``p_positive`` and ``mu`` (n,); returns mean (n,) and quantiles (n, len(QUANTILES)).
    """
    pi = np.clip(np.asarray(p_positive, dtype=float), 0.0, 1.0)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    if alpha is None:
        dist = stats.poisson(mu[:, None])
        positive = -np.expm1(-mu)
    else:
        n = 1.0 / alpha
        dist = stats.nbinom(n, (n / (n + mu))[:, None])
        positive = -np.expm1(-np.log1p(alpha * mu) / alpha)
    # For a tiny mu the truncated distribution is a point mass at 1 (mu / P(X > 0) -> 1).
    tiny = positive < 1e-10
    safe_positive = np.where(tiny, 1.0, positive)
    levels = np.asarray(QUANTILES)[None, :]
    r = np.clip((levels - (1 - pi[:, None])) / np.where(pi > 0, pi, 1.0)[:, None], 0.0, 1.0)
    k = dist.isf((1 - r) * safe_positive[:, None])
    k = np.where(tiny[:, None], 1.0, np.maximum(k, 1.0))
    quantiles = np.where(levels <= 1 - pi[:, None], 0.0, k)
    mean = pi * np.where(tiny, 1.0, mu / safe_positive)
    return mean, quantiles


@register
class Hurdle(_DirectCountModel):
    """Two-part hurdle model, one per horizon (direct strategy), for mostly quiet units.

    Method: on the features of ``nb_glm`` (:func:`direct_features` at t, harmonics of the
    target month), for each horizon h

    * zero part: pooled logit GLM for ``P(y[t + h] > 0)`` (statsmodels ``GLM`` binomial,
      IRLS), with unit effects when ``unit_effects``;
    * count part: zero-truncated NB2 for ``y[t + h]`` given ``y[t + h] > 0`` (statsmodels
      ``TruncatedLFNegativeBinomialP``, BFGS from the Poisson estimate, at most ``maxiter``
      iterations), with an intercept instead of unit effects: a unit whose few positive
      counts are all 1 would push its effect to minus infinity, and the lagged-count features
      already carry the unit's level.

    Predictive distribution: the hurdle mixture of the two parts at the origin's features;
    mean and quantiles exact (:func:`hurdle_summary`).

    Fallbacks (``fallbacks_``): with unit effects, a unit whose training targets for a
    horizon are all zero gets ``P(y > 0) = 0`` (all quantiles 0) and one with all targets
    positive gets ``P(y > 0) = 1`` (a logit effect would be infinite). When the logit fails
    or does not converge: the logit without unit effects, then the share of positive
    training targets (per unit with unit effects). When the truncated NB fails: the
    truncated Poisson, then a constant truncated Poisson matching the mean of the positive
    training targets.

    Parameters
    ----------
    max_horizon, unit_effects, gazetteer, maxiter
        As for ``nb_glm``.
    """

    name = "hurdle"
    summary = "Pooled hurdle model per horizon: logit for any event, truncated negative binomial for the count."

    def __init__(self, max_horizon: int = 6, unit_effects: bool = True, gazetteer: str | None = None,
                 maxiter: int = 100) -> None:
        self.max_horizon = max_horizon
        self.unit_effects = unit_effects
        self.gazetteer = gazetteer
        self.maxiter = maxiter

    def _estimate(self, h, x, y, target_months, unit_index, units) -> dict:
        fit = self._zero_part(h, x, y > 0, target_months, unit_index, units)
        pos = y > 0
        fit.update(self._count_part(h, x[pos], y[pos], target_months[pos], unit_index[pos], len(units)))
        fit["last_target"] = target_months[-1]
        return fit

    def _zero_part(self, h, x, positive, target_months, unit_index, units) -> dict:
        """Logit of P(y > 0); falls back to no unit effects, then to observed shares."""
        n_units = len(units)
        maxiter = int(self.maxiter)
        positive = positive.astype(float)
        counts = np.bincount(unit_index, minlength=n_units)
        share = np.bincount(unit_index, weights=positive, minlength=n_units) / np.maximum(counts, 1)
        unit_effects = bool(self.unit_effects)
        fixed = np.full(n_units, np.nan)  # P(y > 0) of units left out of the logit
        if unit_effects:
            for u in np.flatnonzero((share == 0) | (share == 1)):
                fixed[u] = share[u]
                self._note(units[u], f"training targets all {'zero' if share[u] == 0 else 'positive'}: "
                                     f"P(y > 0) = {share[u]:g}", h)
        free = np.isnan(fixed)
        if not free.any():
            return {"zero_beta": np.zeros(0), "zero_effects": False, "fixed": fixed, "free": free}
        rows = free[unit_index]
        design = self._design(x[rows], target_months[rows], unit_index[rows], n_units, unit_effects)
        if unit_effects:
            design = self._select(design, free)
        try:
            logit = _guarded(lambda: GLM(positive[rows], design, family=families.Binomial()).fit(maxiter=maxiter))
            if not np.all(np.isfinite(logit.params)):
                raise _EstimationFailed("non-finite estimates")
            return {"zero_beta": np.asarray(logit.params), "zero_effects": unit_effects, "fixed": fixed, "free": free}
        except _EstimationFailed as exc:
            first = exc
        if unit_effects:
            try:
                design = self._design(x, target_months, unit_index, n_units, False)
                logit = _guarded(lambda: GLM(positive, design, family=families.Binomial()).fit(maxiter=maxiter))
                if not np.all(np.isfinite(logit.params)):
                    raise _EstimationFailed("non-finite estimates")
                self._note(f"horizon {h}", f"logit with unit effects failed ({first}): logit without unit effects", h)
                return {"zero_beta": np.asarray(logit.params), "zero_effects": False,
                        "fixed": np.full(n_units, np.nan), "free": np.ones(n_units, dtype=bool)}
            except _EstimationFailed:
                pass
        shares = share if unit_effects else np.full(n_units, positive.mean())
        self._note(f"horizon {h}", f"logit failed ({first}): P(y > 0) = share of positive training targets", h)
        return {"zero_beta": np.zeros(0), "zero_effects": False, "fixed": shares, "free": np.zeros(n_units, dtype=bool)}

    def _count_part(self, h, x, y, target_months, unit_index, n_units) -> dict:
        """Zero-truncated NB2; falls back to truncated Poisson, then to a constant mean."""
        maxiter = int(self.maxiter)
        design = self._design(x, target_months, unit_index, n_units, False)
        if len(y) == 0:
            beta = np.zeros(design.shape[1])
            beta[0] = np.log(_truncated_poisson_mean(1.0))
            self._note(f"horizon {h}", "no positive training targets: a count, if any, is 1", h)
            return {"count_beta": beta, "alpha": None}
        try:
            start = np.r_[_guarded(lambda: GLM(y, design, family=families.Poisson()).fit(maxiter=maxiter)).params, 0.5]
            # BFGS with the analytic score; statsmodels' Newton step would use a numerical
            # Hessian, about 15 times slower here, and the covariance is not needed.
            nb = _guarded(lambda: TruncatedLFNegativeBinomialP(y, design, p=2).fit(
                start_params=start, method="bfgs", maxiter=maxiter, disp=False, skip_hessian=True))
            params = np.asarray(nb.params)
            if not (np.all(np.isfinite(params)) and params[-1] > 1e-8):
                raise _EstimationFailed("non-finite estimates or alpha <= 0")
            return {"count_beta": params[:-1], "alpha": float(params[-1])}
        except _EstimationFailed as exc:
            first = exc
        try:
            tp = _guarded(lambda: TruncatedLFPoisson(y, design).fit(
                method="bfgs", maxiter=maxiter, disp=False, skip_hessian=True))
            if not np.all(np.isfinite(tp.params)):
                raise _EstimationFailed("non-finite estimates")
            self._note(f"horizon {h}", f"truncated NB failed ({first}): truncated Poisson", h)
            return {"count_beta": np.asarray(tp.params), "alpha": None}
        except _EstimationFailed as exc:
            beta = np.zeros(design.shape[1])
            beta[0] = np.log(_truncated_poisson_mean(float(y.mean())))
            self._note(f"horizon {h}", f"truncated NB and Poisson failed ({exc}): truncated Poisson with "
                                       "the mean of the positive training targets", h)
            return {"count_beta": beta, "alpha": None}

    def _distribution(self, h, at_origin, target_month, units):
        fit = self.coefs_[h]
        n_units = len(units)
        months = [target_month] * n_units
        index = np.arange(n_units)
        p = np.asarray(fit["fixed"], dtype=float).copy()
        if fit["free"].any():
            zero_design = self._design(at_origin, months, index, n_units, fit["zero_effects"])
            if fit["zero_effects"]:
                zero_design = self._select(zero_design, fit["free"])
            eta = np.clip(zero_design @ fit["zero_beta"], -_MAX_ETA, _MAX_ETA)
            p = np.where(fit["free"], 1.0 / (1.0 + np.exp(-eta)), p)
        count_design = self._design(at_origin, months, index, n_units, False)
        mu = np.exp(np.clip(count_design @ fit["count_beta"], -_MAX_ETA, self.max_eta_))
        return hurdle_summary(p, mu, fit["alpha"])


# ----------------------------------------------------------------------------------------
# Croston / TSB

#: Variants of :func:`intermittent_recursion`.
INTERMITTENT_METHODS = ("croston", "sba", "tsb")


def intermittent_recursion(counts: np.ndarray, method: str, alpha: float, beta: float,
                           size0: np.ndarray, prob0: np.ndarray) -> np.ndarray:
    """One-step forecasts of Croston's method, SBA or TSB, vectorised over units.

    Parameters
    ----------
    counts
        (n_months, n_units).
    method
        ``"croston"`` (Croston 1972): on a month with events the size ``z += alpha (y - z)``
        and the interval ``x += beta (q - x)``, where q counts the months since the previous
        event (1 for consecutive months; the first interval counts from month 0 as 1);
        forecast ``z / x``. ``"sba"`` (Syntetos and Boylan 2005): Croston times
        ``1 - beta / 2``. ``"tsb"`` (Teunter, Syntetos and Babai 2011): every month the
        probability ``p += beta (1[y > 0] - p)``; on a month with events ``z += alpha (y - z)``;
        forecast ``p z``.
    alpha, beta
        Smoothing constants of size and of interval (Croston, SBA) or probability (TSB).
    size0, prob0
        (n_units,) initial size and probability of an event (Croston's interval starts at
        ``1 / prob0``); a unit with ``prob0 = 0`` has forecast 0 until its first event.

    Returns
    -------
    numpy.ndarray
        Shape (n_months + 1, n_units): row t is the forecast of month t made after months
        0..t-1 (row 0 from the initial states, the last row the forecast after the history).
    """
    counts = np.asarray(counts, dtype=float)
    n_months, n_units = counts.shape
    z = np.asarray(size0, dtype=float).copy()
    p = np.asarray(prob0, dtype=float).copy()
    out = np.empty((n_months + 1, n_units))
    if method == "tsb":
        for t in range(n_months):
            out[t] = p * z
            event = counts[t] > 0
            p += beta * (event - p)
            z = np.where(event, z + alpha * (counts[t] - z), z)
        out[n_months] = p * z
        return out
    factor = 1 - beta / 2 if method == "sba" else 1.0
    interval = np.divide(1.0, p, out=np.full(n_units, np.inf), where=p > 0)
    since = np.ones(n_units)
    for t in range(n_months):
        out[t] = np.divide(factor * z, interval, out=np.zeros(n_units), where=np.isfinite(interval))
        event = counts[t] > 0
        # A unit's first event (infinite interval) sets the interval to the months waited.
        updated = np.where(np.isfinite(interval), interval + beta * (since - interval), since)
        interval = np.where(event, updated, interval)
        z = np.where(event, z + alpha * (counts[t] - z), z)
        since = np.where(event, 1.0, since + 1.0)
    out[n_months] = np.divide(factor * z, interval, out=np.zeros(n_units), where=np.isfinite(interval))
    return out


@register
class Croston(Forecaster):
    """Croston's method, SBA or TSB for intermittent series, per unit.

    Method: the recursion of :func:`intermittent_recursion`, implemented here in NumPy and
    vectorised over units (statsmodels has no Croston). Initial states from the fit history:
    size = mean of the unit's positive counts, probability = share of months with events
    (interval = its inverse). The point forecast is flat over horizons.

    Predictive distribution: negative binomial around the point forecast with a per-unit
    dispersion estimated from the in-sample one-step forecasts (months 1..T-1) by
    :func:`~forecast.models.baselines.cameron_trivedi_alpha`, floored at
    ``min_dispersion``; the same at every horizon (the method has no model of how
    uncertainty grows with the horizon).

    ``update`` re-runs the recursion on the longer history from the fitted initial states,
    keeping the dispersion.

    Parameters
    ----------
    method : {"tsb", "croston", "sba"}
    alpha : float
        Smoothing of the event size, in (0, 1].
    beta : float
        Smoothing of the event probability (TSB) or inter-event interval (Croston, SBA).
    min_dispersion : float
        Floor of the NB dispersion.
    """

    name = "croston"
    summary = "Croston / SBA / TSB smoothing of event size and frequency, negative binomial intervals."

    def __init__(self, method: str = "tsb", alpha: float = 0.1, beta: float = 0.1,
                 min_dispersion: float = 0.01) -> None:
        self.method = method
        self.alpha = alpha
        self.beta = beta
        self.min_dispersion = min_dispersion

    def _check(self) -> None:
        _check_choice(self.name, "method", self.method, INTERMITTENT_METHODS)
        for name in ("alpha", "beta"):
            if not _is_real(getattr(self, name), 0.0, 1.0) or getattr(self, name) == 0:
                raise ModelError(f"{self.name}: {name} must be in (0, 1], got {getattr(self, name)!r}")
        if not _is_real(self.min_dispersion, 0.0) or self.min_dispersion == 0:
            raise ModelError(f"{self.name}: min_dispersion must be > 0, got {self.min_dispersion!r}")

    def _run(self, counts: np.ndarray) -> np.ndarray:
        return intermittent_recursion(counts, self.method, float(self.alpha), float(self.beta), self.size0_,
                                      self.prob0_)

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, _ = count_matrix(history)
        events = counts > 0
        n_events = events.sum(axis=0)
        self.size0_ = np.divide(np.where(events, counts, 0).sum(axis=0), n_events, out=np.zeros(len(units)),
                                where=n_events > 0)
        self.prob0_ = n_events / len(counts)
        path = self._run(counts)
        if len(counts) > 1:
            self.dispersion_ = cameron_trivedi_alpha(counts[1:], path[1:-1], float(self.min_dispersion))
        else:
            self.dispersion_ = np.full(len(units), float(self.min_dispersion))
        self.forecast_ = path[-1]

    def _update(self, history: pd.DataFrame) -> None:
        counts, units, _ = count_matrix(history)
        _check_same_units(self.name, self.units_, units)
        self.forecast_ = self._run(counts)[-1]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        q = negbin_quantiles(self.forecast_, self.dispersion_)
        mean = np.repeat(self.forecast_[:, None], horizon, axis=1)
        return grid_frame(self.units_, self.origin_, mean, np.repeat(q[:, None, :], horizon, axis=1))
