"""SARIMAX per unit on log1p counts, with covariates, and the log-AR(1) fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecast.models.base import (
    Forecaster,
    ModelError,
    register,
)
from forecast.models.baselines import count_matrix, grid_frame
from forecast.models.common import (
    EstimationFailed,
    censored_normal_summary,
    check_choice,
    check_int,
    check_same_units,
    covariate_array,
    covariate_scaling,
    fit_progress,
    future_covariates,
    guarded,
    one_blas_thread,
)


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
        check_choice(self.name, "trend", self.trend, ("c", "n", "t", "ct"))
        check_int(self.name, "maxiter", self.maxiter, 1)
        return order, seasonal

    def _transform(self, counts: np.ndarray) -> np.ndarray:
        return np.log1p(counts) if self.log1p else counts

    @one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        order, seasonal = self._spec()
        counts, units, months = count_matrix(history)
        columns = [c for c in history.columns if c not in ("unit", "month", "y")]
        self.exog_columns_, self.exog_mean_, self.exog_sd_ = covariate_scaling(history, columns, self.name)
        exog = covariate_array(history, self.exog_columns_, self.exog_mean_, self.exog_sd_, units, months)
        z = self._transform(counts)
        self.params_: dict[str, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        self.unit_states_: dict[str, tuple] = {}
        for j, unit in fit_progress(enumerate(units), self.name, len(units), total=len(units)):
            x = exog[:, j, :]
            if not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
                self.fallbacks_[unit] = "no events in the history: predicted 0"
                continue
            if len(z) < self.min_months:
                self._least_squares(unit, z[:, j], x, f"only {len(z)} months (< {self.min_months})")
                continue
            try:
                result = guarded(lambda: _fit_sarimax(SARIMAX(z[:, j], exog=x if x.shape[1] else None,
                                                               order=order, seasonal_order=seasonal,
                                                               trend=self.trend), int(self.maxiter)))
                if not (np.all(np.isfinite(result.params)) and np.isfinite(result.llf)):
                    raise EstimationFailed("non-finite estimates")
            except EstimationFailed as exc:
                self._least_squares(unit, z[:, j], x, f"SARIMAX fit failed ({exc})")
                continue
            self.params_[unit] = np.asarray(result.params)
            self.unit_states_[unit] = ("sarimax", result)

    def _least_squares(self, unit: str, z: np.ndarray, x: np.ndarray, why: str) -> None:
        self.unit_states_[unit] = ("ar1", _LogAR1(z, x), z[-1])
        self.fallbacks_[unit] = f"{why}: AR(1) with covariates by least squares"

    @one_blas_thread
    def _update(self, history: pd.DataFrame) -> None:
        counts, units, months = count_matrix(history)
        check_same_units(self.name, list(self.unit_states_), units)
        missing = [c for c in self.exog_columns_ if c not in history]
        if missing:
            raise ModelError(f"{self.name}: update history lacks covariate(s) {', '.join(missing)} it was fitted with")
        exog = covariate_array(history, self.exog_columns_, self.exog_mean_, self.exog_sd_, units, months)
        z = self._transform(counts)
        for j, unit in enumerate(units):
            x = exog[:, j, :]
            state = self.unit_states_[unit]
            if state[0] == "sarimax":
                try:
                    result = guarded(lambda: state[1].apply(z[:, j], exog=x if x.shape[1] else None, refit=False))
                except EstimationFailed as exc:
                    self._least_squares(unit, z[:, j], x, f"re-filtering with the fitted parameters failed ({exc})")
                    continue
                self.unit_states_[unit] = ("sarimax", result)
            elif state[0] == "ar1":
                self.unit_states_[unit] = ("ar1", state[1], z[-1, j])
            elif counts[:, j].any():
                self._least_squares(unit, z[:, j], x, "no events when fitted, so no SARIMAX parameters")

    @one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        units = list(self.unit_states_)
        x_future = future_covariates(future, self.exog_columns_, self.exog_mean_, self.exog_sd_, units,
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
