"""Shared pieces of the statistical models: guarded statsmodels fits (:class:`EstimationFailed`,
:func:`guarded`), one BLAS thread per fit, per-unit seeds, covariate
standardisation and the Gaussian log-scale summary.

Every model states in its docstring how its predictive distribution (mean and quantiles) is
obtained. Estimation is capped (``maxiter``) and guarded: when statsmodels raises, warns that it did
not converge, or returns non-finite estimates, the model falls back to a simpler, documented
estimate for that unit (or horizon) instead of failing, and records it in the fitted attribute
``fallbacks_`` (what fell back -> why and to what). Warnings raised inside statsmodels are caught
there and never reach the caller.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from forecast.models.base import (
    ModelError,
    future_months,
)
# The parameter checks live with the declared types (``ses_negbin`` needs them without the
# statsmodels this module imports); the models import them from here too.
from forecast.models.params import check_choice, check_int, is_real  # noqa: F401
from forecast.schema import QUANTILES

_Z = stats.norm.ppf(QUANTILES)  # standard normal quantiles at the reported levels


# Linear predictors of the count regressions are clipped here so that exp() stays finite.
MAX_ETA = 30.0


#: Direct count models never forecast a mean above this multiple of the history's largest count.
CAP_FACTOR = 3.0


class EstimationFailed(Exception):
    """statsmodels raised, did not converge, or returned non-finite estimates."""


def guarded(fit, fail_on: tuple[type[Warning], ...] = (ConvergenceWarning,)):
    """Run ``fit()`` (build and fit a statsmodels model); raise :class:`EstimationFailed`
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
            raise EstimationFailed(f"{type(exc).__name__}: {exc}") from exc
    for w in caught:
        if issubclass(w.category, fail_on) and not issubclass(w.category, RuntimeWarning):
            first = str(w.message).splitlines()[0]
            raise EstimationFailed(f"did not converge ({first})" if issubclass(w.category, ConvergenceWarning)
                                    else first)
    return result


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread(method):
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


#: Fits over at least this many units show a progress bar, with the time left, on a terminal.
PROGRESS_MIN_UNITS = 200


def fit_progress(items, model: str, n_units: int, what: str = "units", total: int | None = None):
    """``items`` wrapped in a tqdm bar (elapsed time, rate and the time left) for a long fit.

    Shown only on a terminal (tqdm's ``disable=None``) and for ``n_units`` >=
    :data:`PROGRESS_MIN_UNITS`; it clears itself when done (``leave=False``).
    """
    return tqdm(items, desc=f"{model}: fitting {what}", unit=what.rstrip("s") or "item", total=total,
                disable=None if n_units >= PROGRESS_MIN_UNITS else True, leave=False, mininterval=1.0)


def unit_rng(random_state: int, unit: str) -> np.random.Generator:
    """A generator per (seed, unit): a unit's draws do not depend on which other units exist."""
    return np.random.default_rng([int(random_state), zlib.crc32(str(unit).encode("utf-8"))])


def check_same_units(model: str, fitted: list[str], units: list[str]) -> None:
    if units != list(fitted):
        extra = sorted(set(units) - set(fitted))
        lacking = sorted(set(fitted) - set(units))
        detail = "; ".join(part for part in (f"new: {', '.join(extra)}" if extra else "",
                                             f"missing: {', '.join(lacking)}" if lacking else "") if part)
        raise ModelError(f"{model}: update needs the units the model was fitted on ({detail}); refit instead")


def covariate_scaling(history: pd.DataFrame, columns: list[str],
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


def covariate_array(frame: pd.DataFrame, columns: list[str], means: np.ndarray, sds: np.ndarray,
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


def future_covariates(future: pd.DataFrame | None, columns: list[str], means: np.ndarray, sds: np.ndarray,
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
    return covariate_array(rows, columns, means, sds, units, months)


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


#: Floor on predicted means (counts per unit-month) when estimating the NB dispersion.
MEAN_FLOOR = 0.05
#: Search range of log(alpha) for the dispersion estimate (1e-6 is practically Poisson).
LOG_ALPHA_BOUNDS = (float(np.log(1e-6)), float(np.log(1e3)))


def negbin_dispersion(y: np.ndarray, mu: np.ndarray, mean_floor: float = MEAN_FLOOR) -> float:
    """Maximum-likelihood ``alpha`` of NegBin(mean ``mu``, variance ``mu + alpha mu^2``) for ``y``.

    ``mu`` is floored at ``mean_floor``; ``alpha`` is searched on a log scale in [1e-6, 1e3].
    """
    y = np.asarray(y, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), mean_floor)

    def negative_loglik(log_alpha: float) -> float:
        r = np.exp(-log_alpha)  # NB size, 1 / alpha
        ll = (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1.0)
              + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu)))
        return -float(ll.sum())

    res = optimize.minimize_scalar(negative_loglik, bounds=LOG_ALPHA_BOUNDS, method="bounded",
                                   options={"xatol": 1e-4})
    return float(np.exp(res.x))
