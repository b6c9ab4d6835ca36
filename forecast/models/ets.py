"""ETS per unit (statsmodels' ETSModel with a smoother that skips covariances forecasts never use).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults, ETSResultsWrapper

from forecast.models.base import (
    Forecaster,
    register,
    sample_quantiles,
)
from forecast.models.baselines import count_matrix, grid_frame
from forecast.models.common import (
    EstimationFailed,
    check_choice,
    check_int,
    check_same_units,
    fit_progress,
    guarded,
    one_blas_thread,
    unit_rng,
)
from forecast.models.workers import unit_jobs
from forecast.schema import QUANTILES

#: Fits of at least this many units are spread over :func:`~forecast.models.workers.unit_jobs`
#: processes (starting the workers costs about a second; 200 unit fits take 6-15 s).
PARALLEL_MIN_UNITS = 200
#: Chunks per process: units differ in cost, and smaller chunks even out the workers' ends.
CHUNKS_PER_JOB = 4


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
    with fewer than 24 months, or whose fit fails or does not converge, gets the empirical
    distribution of its last ``RECENT_MONTHS`` months (each future month drawn from them with
    replacement). A random walk on the log scale (last value plus bootstrapped changes) was
    the fallback before: its back-transformed mean grows without bound with the horizon, and
    on the UCDP panel cut to 12 months before each origin it forecast 5.2 times the incidents
    recorded (``benchmarks/skill.py``).

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
    #: Months of the recent history the fallback resamples.
    RECENT_MONTHS = 12

    def __init__(self, trend: str | None = "add", damped_trend: bool = True, log1p: bool = True,
                 n_samples: int = 1000, maxiter: int = 200, random_state: int = 0) -> None:
        self.trend = trend
        self.damped_trend = damped_trend
        self.log1p = log1p
        self.n_samples = n_samples
        self.maxiter = maxiter
        self.random_state = random_state

    def _check(self) -> None:
        check_choice(self.name, "trend", self.trend, ("add", None))
        check_int(self.name, "n_samples", self.n_samples, 1)
        check_int(self.name, "maxiter", self.maxiter, 1)
        check_int(self.name, "random_state", self.random_state, 0)

    def _model(self, z: np.ndarray, *, smoother: bool = False) -> ETSModel:
        damped = bool(self.damped_trend) and self.trend is not None
        return (_ETSSmoother if smoother else ETSModel)(z, error="add", trend=self.trend, damped_trend=damped,
                                                        seasonal=None)

    def _transform(self, counts: np.ndarray) -> np.ndarray:
        return np.log1p(counts) if self.log1p else counts

    @one_blas_thread
    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, _ = count_matrix(history)
        z = self._transform(counts)
        self.params_: dict[str, np.ndarray] = {}
        self.fallbacks_: dict[str, str] = {}
        self.unit_states_: dict[str, tuple] = {}
        to_fit = np.flatnonzero(counts.any(axis=0)) if len(z) >= self.min_months else np.zeros(0, dtype=int)
        jobs = max(min(unit_jobs(), len(to_fit)), 1) if len(units) >= PARALLEL_MIN_UNITS else 1
        # The units are independent: fitted in other processes they give the same estimates,
        # which come back as parameters; the states are rebuilt here with the smoother (0.5 ms
        # a unit, against 30-80 ms a fit), exactly as the fit left them.
        outcomes = self._fit_parallel(z, to_fit, units, jobs) if jobs > 1 else {}
        serial = fit_progress(enumerate(units), self.name, len(units), total=len(units))
        for j, unit in serial if jobs == 1 else enumerate(units):
            if not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
                self.fallbacks_[unit] = "no events in the history: predicted 0"
                continue
            if len(z) < self.min_months:
                self._recent(unit, z[:, j], f"only {len(z)} months (< {self.min_months})")
                continue
            kind, value = outcomes[j] if jobs > 1 else self._fit_unit(z[:, j])
            if kind == "params":
                try:
                    value = guarded(lambda: self._model(z[:, j], smoother=True).smooth(value))
                    kind = "ets"
                except EstimationFailed as exc:
                    kind, value = "failed", str(exc)
            if kind == "failed":
                self._recent(unit, z[:, j], f"ETS fit failed ({value})")
                continue
            self.params_[unit] = np.asarray(value.params)
            self.unit_states_[unit] = ("ets", value)

    def _fit_unit(self, z: np.ndarray) -> tuple[str, object]:
        """``("ets", results)`` of one unit's fit, or ``("failed", why)``."""
        try:
            # The smoother model: the same estimates without the Hessian that forecasts never use.
            result = guarded(lambda: self._model(z, smoother=True).fit(disp=False, maxiter=int(self.maxiter)))
            if not (np.all(np.isfinite(result.params)) and np.isfinite(result.llf)):
                raise EstimationFailed("non-finite estimates")
        except EstimationFailed as exc:
            return "failed", str(exc)
        return "ets", result

    def _fit_parallel(self, z: np.ndarray, to_fit: np.ndarray, units: list[str], jobs: int) -> dict[int, tuple]:
        """Unit index -> ``("params", estimates)`` or ``("failed", why)``, fitted in ``jobs`` processes."""
        chunks = [c for c in np.array_split(to_fit, min(len(to_fit), jobs * CHUNKS_PER_JOB)) if len(c)]
        out: dict[int, tuple] = {}
        bar = fit_progress(iter(()), self.name, len(units), total=len(to_fit))
        parallel = Parallel(n_jobs=jobs, return_as="generator")
        for chunk, results in zip(chunks, parallel(delayed(_fit_chunk)(self.get_params(), z[:, c]) for c in chunks)):
            out.update(zip(chunk.tolist(), results))
            bar.update(len(chunk))
        bar.close()
        return out

    def _recent(self, unit: str, z: np.ndarray, why: str) -> None:
        self.unit_states_[unit] = ("recent", z[-self.RECENT_MONTHS:])
        self.fallbacks_[unit] = f"{why}: the last {min(len(z), self.RECENT_MONTHS)} months resampled"

    @one_blas_thread
    def _update(self, history: pd.DataFrame) -> None:
        counts, units, _ = count_matrix(history)
        check_same_units(self.name, list(self.unit_states_), units)
        z = self._transform(counts)
        for j, unit in enumerate(units):
            if unit in self.params_:
                try:
                    result = guarded(lambda: self._model(z[:, j], smoother=True).smooth(self.params_[unit]))
                except EstimationFailed as exc:
                    self._recent(unit, z[:, j], f"smoothing with the fitted parameters failed ({exc})")
                    continue
                self.unit_states_[unit] = ("ets", result)
            elif not counts[:, j].any():
                self.unit_states_[unit] = ("zero",)
            else:
                if self.unit_states_[unit][0] == "zero":
                    self._recent(unit, z[:, j], "no events when fitted, so no ETS parameters")
                else:
                    self.unit_states_[unit] = ("recent", z[-self.RECENT_MONTHS:, j])

    @one_blas_thread
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        n = int(self.n_samples)
        units = list(self.unit_states_)
        mean = np.zeros((len(units), horizon))
        quantiles = np.zeros((len(units), horizon, len(QUANTILES)))
        for i, unit in enumerate(units):
            state = self.unit_states_[unit]
            if state[0] == "zero":
                continue
            rng = unit_rng(self.random_state, unit)
            if state[0] == "ets":
                # Bootstrapped residuals drawn here (rather than random_errors="bootstrap") so
                # the seeding does not depend on the statsmodels version's rng argument.
                errors = rng.choice(np.asarray(state[1].resid), size=(horizon, n))
                paths = np.asarray(state[1].simulate(horizon, anchor="end", repetitions=n,
                                                     random_errors=errors)).reshape(horizon, n)
            else:
                paths = rng.choice(np.asarray(state[1]), size=(horizon, n))
            draws = np.maximum(np.expm1(np.minimum(paths, 700.0)) if self.log1p else paths, 0.0)
            mean[i] = draws.mean(axis=1)
            quantiles[i] = sample_quantiles(draws)
        return grid_frame(units, self.origin_, mean, quantiles)


def _fit_chunk(params: dict, z: np.ndarray) -> list[tuple]:
    """In a worker process: per column of ``z``, ``("params", estimates)`` or ``("failed", why)``."""
    model = ETS(**params)
    return one_blas_thread(_fit_columns)(model, z)


def _fit_columns(model: ETS, z: np.ndarray) -> list[tuple]:
    out = []
    for k in range(z.shape[1]):
        kind, value = model._fit_unit(z[:, k])
        out.append(("params", np.asarray(value.params)) if kind == "ets" else (kind, value))
    return out
