"""A count regression that uses covariates at the target months, so it responds to scenarios.

``nb_glm`` and the tree models only use covariates as known at the origin: a scenario for the
months ahead cannot move their forecasts. ``nb_glmx`` is ``nb_glm``'s pooled direct negative
binomial regression with the covariates entered twice:

* as known at the origin T (their values at T, T-1, ..., T-max(lags)), which carries the
  information about the current situation that the covariate history holds; and
* at the target month T+h, lagged by each of ``lags`` (``x[T+h-l]`` for every ``l`` in
  ``lags`` with ``T+h-l > T``): the months ahead, filled from a scenario (or the last known
  value held).

Because the origin values are in the regression, the coefficients of the target-month terms
are estimated from how counts moved when covariates *changed* after the origin, not from
the covariates' level. In the synthetic demo data that matters: troop levels and the
insurgency's overall level rose and fell together, and a regression on the level alone
attributes much of that common movement to the troops. On the demo data the target-month
terms recover the generator's troop effect within a factor of about two
(``tests/test_scenario.py``); they remain correlations in historical data, not causal
effects (``ops_tempo``, which reacts to violence, gets an upward-biased coefficient).

Parameter uncertainty is kept: :meth:`NegBinGLMX.scenario_draws` returns predictive means
under draws of the coefficients from their estimated sampling distribution, the same draws
for every scenario, which :mod:`forecast.scenario` turns into the uncertainty of scenario
differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.graph import unit_graph

from forecast.models.absorbed import draw_params, fit_with_effects
from forecast.models.base import Forecaster, ModelError, future_months, negbin_quantiles, register
from forecast.models.baselines import cameron_trivedi_alpha, count_matrix, grid_frame
from forecast.models.common import EstimationFailed, covariate_scaling, fit_progress, future_covariates, guarded
from forecast.models.count_design import DIRECT_FEATURES, FIT_ADVICE, direct_features, harmonics, neighbour_weights
from forecast.models.memory import check_memory
from forecast.schema import QUANTILES

# Linear predictors are clipped below at this value so that exp() stays finite.
_MIN_ETA = -30.0
#: No mean may exceed this multiple of the history's largest monthly count (as in nb_glm):
#: log-linear extrapolation beyond the training range can otherwise explode.
_CAP_FACTOR = 3.0


#: Warnings that make an nb_glmx fit a failure: any, not only non-convergence, because a
#: HessianInversionWarning means the covariance the scenario bands need is unusable.
_FAIL_ON = (Warning,)


@register
class NegBinGLMX(Forecaster):
    """Pooled negative binomial regression per horizon with covariates at the target months.

    Method: for each horizon h, ``y[t + h] ~ NB2(mu, alpha)`` with ``log mu`` linear in
    :func:`~forecast.models.count_design.direct_features` at t (lagged counts, 3- and 12-month
    means, neighbours' mean, national total), month-of-year harmonics of the target month,
    unit effects, every covariate at t, t-1, ..., t-max(lags) (known at the origin), and every
    covariate at ``t + h - l`` for each ``l`` in ``lags`` with ``l < h`` (after the origin: a
    scenario's months). Covariates are standardised with the history's means and standard
    deviations; constant ones are dropped. ``b`` and ``alpha`` by maximum likelihood
    (Newton from the Poisson GLM estimate, unit effects absorbed rather than indicator
    columns: :func:`~forecast.models.absorbed.fit_with_effects`), on training rows whose
    target month is at most the origin.

    Predictive distribution: NB2 with mean ``mu`` at the origin's features and the given
    future covariates, and the horizon's ``alpha``; quantiles exact. The mean is capped at
    3 x the history's largest monthly count.

    Scenario draws (:meth:`scenario_draws`): coefficients drawn from the normal approximation
    of their sampling distribution (the inverse Hessian of the NB likelihood); the same draws
    for every future, so differences between scenarios reflect the uncertainty of the
    coefficients.

    Fallbacks (``fallbacks_``): a unit without any event among a horizon's training targets
    is predicted 0 at that horizon. When the NB fit fails, the Poisson GLM with
    Pearson-scaled covariance and moment ``alpha``; when that fails too, each unit's mean
    with no covariate effect, and that horizon does not respond to scenarios (recorded).

    Parameters
    ----------
    lags : tuple of int
        Lags (months) at which covariates at target months enter; 0 = the target month itself.
    max_horizon : int
        Horizons fitted by ``fit`` (longer ones are fitted when first predicted).
    maxiter : int
        Iteration cap of each maximum likelihood fit.
    min_alpha : float
        Floor of the dispersion.
    """

    name = "nb_glmx"
    summary = ("Pooled negative binomial regression per horizon with covariates at the target months "
               "(distributed lags); responds to scenarios.")
    uses_covariates = True
    uses_future_covariates = True
    cost = 12
    min_rows = 12  # months of training rows required per horizon

    def __init__(self, lags: tuple[int, ...] = (0, 1, 2), max_horizon: int = 6, maxiter: int = 100,
                 min_alpha: float = 0.01) -> None:
        self.lags = lags
        self.max_horizon = max_horizon
        self.maxiter = maxiter
        self.min_alpha = min_alpha

    # -- checks ----------------------------------------------------------------------------

    def _check(self) -> tuple[int, ...]:
        lags = self.lags
        if isinstance(lags, (int, np.integer)) and not isinstance(lags, bool):
            lags = (int(lags),)
        ok = isinstance(lags, (tuple, list)) and len(lags) > 0 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in lags)
        if not ok or len(set(lags)) != len(lags):
            raise ModelError(f"{self.name}: lags must be distinct whole numbers >= 0, e.g. (0, 1, 2); got {self.lags!r}")
        for key, minimum in (("max_horizon", 1), ("maxiter", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ModelError(f"{self.name}: {key} must be a whole number >= {minimum}, got {value!r}")
        if isinstance(self.min_alpha, bool) or not isinstance(self.min_alpha, (int, float)) or not self.min_alpha > 0:
            raise ModelError(f"{self.name}: min_alpha must be a number > 0, got {self.min_alpha!r}")
        return tuple(sorted(int(v) for v in lags))

    # -- fitting ---------------------------------------------------------------------------

    def _fit(self, history: pd.DataFrame) -> None:
        lags = self._check()
        counts, units, months = count_matrix(history)
        self.lags_ = lags
        self.first_row_ = max(11, max(lags))
        need = self.first_row_ + int(self.max_horizon) + self.min_rows + 1
        if len(counts) < need:
            raise ModelError(
                f"{self.name}: needs at least {need} months of history for max_horizon={self.max_horizon} "
                f"and lags {lags}, got {len(counts)} ({months[0]}..{months[-1]})")
        self.max_eta_ = float(np.log(_CAP_FACTOR * (counts.max() + 1.0)))
        columns, means, sds = covariate_scaling(
            history, [c for c in history.columns if c not in ("unit", "month", "y")], self.name)
        n_columns = len(DIRECT_FEATURES) + 2 + len(columns) * (len(lags) + max(lags) + 1)
        check_memory(self.name, "design", counts.size, n_columns, copies=6, advice=FIT_ADVICE)
        #: Covariates whose values at target months move the forecast (constant ones are dropped).
        self.scenario_covariates_ = columns
        self.covariate_mean_ = np.asarray(means, dtype=float)
        self.covariate_sd_ = np.asarray(sds, dtype=float)
        graph = unit_graph(history)
        self.weights_, self.neighbour_source_ = neighbour_weights(units, graph.neighbours if graph else None,
                                                                 sparse_matrix=True)
        x = self._standardise(history, units, months)
        self._train_ = (direct_features(counts, self.weights_, np.zeros((*counts.shape, 0))), x, counts, months, units)
        self.coefs_: dict[int, dict] = {}
        self.fallbacks_: dict[str, str] = {}
        with threadpool_limits(limits=1, user_api="blas"):
            for h in fit_progress(range(1, int(self.max_horizon) + 1), self.name, len(units), "horizons"):
                self.coefs_[h] = self._fit_horizon(h)

    def _standardise(self, frame: pd.DataFrame, units: list[str], months: pd.PeriodIndex) -> np.ndarray:
        """Standardised covariates, shape (n_months, n_units, n_covariates); missing -> 0 (the mean)."""
        out = np.zeros((len(months), len(units), len(self.scenario_covariates_)))
        for k, col in enumerate(self.scenario_covariates_):
            table = frame.pivot(index="month", columns="unit", values=col).reindex(index=months, columns=units)
            out[:, :, k] = (table.to_numpy(dtype=float) - self.covariate_mean_[k]) / self.covariate_sd_[k]
        return np.nan_to_num(out, nan=0.0)

    def _future_lags(self, h: int) -> list[int]:
        return [lag for lag in self.lags_ if lag < h]

    def column_names(self, h: int) -> list[str]:
        """Names of the design columns at horizon ``h`` (before dropping units without events)."""
        self._check_fitted()
        return self._column_names(h)

    def _column_names(self, h: int) -> list[str]:
        covs = self.scenario_covariates_
        names = [*DIRECT_FEATURES, "sin_month", "cos_month"]
        names += [f"{c}_target_lag{lag}" for lag in self._future_lags(h) for c in covs]
        names += [f"{c}_origin_lag{k}" for k in range(max(self.lags_) + 1) for c in covs]
        return names + [f"unit[{u}]" for u in self._train_[4]]

    def _design(self, h: int, features: np.ndarray, x_all: np.ndarray, t: np.ndarray,
                target_months, n_units: int) -> np.ndarray:
        """Design rows for origins ``t`` (rows ordered (t, unit)).

        ``x_all`` holds standardised covariates for months 0..max(t)+h (history, then the
        future), shape (n_months, n_units, k).
        """
        n = len(t) * n_units
        parts = [features[t].reshape(n, -1), np.repeat(harmonics(target_months), n_units, axis=0)]
        for lag in self._future_lags(h):
            parts.append(x_all[t + h - lag].reshape(n, -1))
        for k in range(max(self.lags_) + 1):
            parts.append(x_all[t - k].reshape(n, -1))
        # Column-major, as the fits read it. The unit effects are absorbed, never columns
        # (see forecast.models.absorbed): indicator columns made memory quadratic in units.
        return np.asfortranarray(np.column_stack(parts))

    def _fit_horizon(self, h: int) -> dict:
        features, x, counts, months, units = self._train_
        last = len(counts) - 1 - h
        t = np.arange(self.first_row_, last + 1)
        if len(t) < self.min_rows:
            raise ModelError(
                f"{self.name}: horizon {h} needs at least {self.first_row_ + h + self.min_rows} months of fit "
                f"history, got {len(counts)}; refit on a longer history or ask for a shorter horizon")
        n_units = len(units)
        design = self._design(h, features, x, t, months[t + h], n_units)
        y = counts[t + h].reshape(-1)
        unit_index = np.tile(np.arange(n_units), len(t))
        keep = np.bincount(unit_index, weights=y, minlength=n_units) > 0
        for u in np.flatnonzero(~keep):
            self._note(units[u], f"no events among the training targets: predicted 0 (horizon {h})")
        rows = keep[unit_index]
        design, y = np.asfortranarray(design[rows]), y[rows]
        n_kept = int(keep.sum())
        groups = (np.cumsum(keep) - 1)[unit_index[rows]]
        maxiter, min_alpha = int(self.maxiter), float(self.min_alpha)
        fit = {"keep": keep, "effects_fit": None, "scale": 1.0}
        if not keep.any():
            return {**fit, "beta": np.zeros(design.shape[1]), "cov": None, "alpha": min_alpha}
        try:
            poisson = guarded(lambda: fit_with_effects(design, y, groups, n_kept, "poisson", maxiter=maxiter),
                              _FAIL_ON)
            if not np.all(np.isfinite(poisson.params())):
                raise EstimationFailed("non-finite estimates")
            if poisson.aliased:
                names = self._column_names(h)
                self._note(f"horizon {h}", "left out as aliased with the unit effects or the columns before them "
                           f"(coefficient 0): {', '.join(names[j] for j in poisson.aliased)}")
        except EstimationFailed as exc:
            # Level only: each unit's mean target, no covariate effect.
            sums = np.bincount(groups, weights=y, minlength=n_kept)
            n = np.bincount(groups, minlength=n_kept)
            beta = np.r_[np.zeros(design.shape[1]), np.log(np.maximum(sums / n, 1e-12))]
            self._note(f"horizon {h}", f"Poisson GLM failed ({exc}): unit means, no covariate effect, "
                                       "does not respond to scenarios")
            mu = np.exp(design @ beta[:design.shape[1]] + beta[design.shape[1]:][groups])
            alpha = float(cameron_trivedi_alpha(y[:, None], mu[:, None], min_alpha)[0])
            return {**fit, "beta": beta, "cov": None, "alpha": alpha}
        try:
            nb = guarded(lambda: fit_with_effects(design, y, groups, n_kept, "nb2", maxiter=maxiter, start=poisson,
                                                  start_alpha=0.5), _FAIL_ON)
            params = np.r_[nb.params(), nb.alpha]
            cov = guarded(nb.dense_cov, _FAIL_ON)
            if not (np.all(np.isfinite(params)) and params[-1] > 0 and np.all(np.isfinite(cov))):
                raise EstimationFailed("non-finite estimates or alpha <= 0")
            return {**fit, "beta": params[:-1], "cov": cov, "alpha": max(float(params[-1]), min_alpha),
                    "effects_fit": nb}
        except (EstimationFailed, np.linalg.LinAlgError) as exc:
            self._note(f"horizon {h}", f"NB maximum likelihood failed ({exc}): Poisson GLM with moment alpha")
        beta = poisson.params()
        eta = design @ poisson.beta + poisson.effects[groups]
        mu = np.exp(np.clip(eta, _MIN_ETA, self.max_eta_))
        alpha = float(cameron_trivedi_alpha(y[:, None], mu[:, None], min_alpha)[0])
        # Pearson-scaled covariance (statsmodels' scale="X2"): chi2 / residual degrees of freedom.
        fitted = np.exp(eta)
        scale = float(np.sum((y - fitted) ** 2 / fitted) / max(len(y) - len(beta), 1))
        return {**fit, "beta": beta, "cov": poisson.dense_cov(scale), "alpha": alpha, "effects_fit": poisson,
                "scale": scale}

    def _note(self, key: str, reason: str) -> None:
        self.fallbacks_[key] = f"{self.fallbacks_[key]}; {reason}" if key in self.fallbacks_ else reason

    def _update(self, history: pd.DataFrame) -> None:
        # Parameters and standardisation stay those of the fit; predict conditions on history_.
        _, units, _ = count_matrix(history)
        if units != list(self._train_[4]):
            raise ModelError(f"{self.name}: update needs the units the model was fitted on; refit instead")
        missing = [c for c in self.scenario_covariates_ if c not in history]
        if missing:
            raise ModelError(f"{self.name}: update history lacks covariate(s) {', '.join(missing)} it was fitted with")

    # -- prediction ------------------------------------------------------------------------

    def _future_array(self, future: pd.DataFrame | None, units: list[str], horizon: int) -> np.ndarray:
        """Standardised covariates at the target months from ``future``, shape (horizon, n_units, k)."""
        return future_covariates(future, list(self.scenario_covariates_), self.covariate_mean_,
                                  self.covariate_sd_, units, self.origin_, horizon, self.name)

    def _origin_state(self):
        """Features and covariates of the current history (longer after update)."""
        counts, units, months = count_matrix(self.history_)
        features = direct_features(counts, self.weights_, np.zeros((*counts.shape, 0)))
        return features, self._standardise(self.history_, units, months), units

    def _designs(self, horizon: int, futures: list[pd.DataFrame | None]) -> tuple[list[str], dict[int, list]]:
        """Per horizon, the design at the origin (n_units rows, kept columns) for every future."""
        features, x_hist, units = self._origin_state()
        n_units = len(units)
        origin = len(features) - 1
        targets = future_months(self.origin_, horizon)
        out: dict[int, list] = {}
        x_futures = [self._future_array(f, units, horizon) for f in futures]
        for h in range(1, horizon + 1):
            if h not in self.coefs_:
                with threadpool_limits(limits=1, user_api="blas"):
                    self.coefs_[h] = self._fit_horizon(h)
            designs = []
            for x_future in x_futures:
                x_all = np.concatenate([x_hist, x_future], axis=0)
                design = self._design(h, features, x_all, np.array([origin]), targets[h - 1:h], n_units)
                designs.append(design)
            out[h] = designs
        return units, out

    def _mean(self, h: int, design: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Means of the units (design rows) under coefficients ``beta = [dense, kept units' effects]``."""
        keep = self.coefs_[h]["keep"]
        if not keep.any():
            return np.zeros(len(design))
        p = design.shape[1]
        eta = design @ beta[:p] + beta[p:][np.maximum(np.cumsum(keep) - 1, 0)]
        return np.where(keep, np.exp(np.clip(eta, _MIN_ETA, self.max_eta_)), 0.0)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        units, designs = self._designs(horizon, [future])
        mean = np.zeros((len(units), horizon))
        quantiles = np.zeros((len(units), horizon, len(QUANTILES)))
        for h in range(1, horizon + 1):
            fit = self.coefs_[h]
            mu = self._mean(h, designs[h][0], fit["beta"])
            q = negbin_quantiles(mu, fit["alpha"])
            q[~fit["keep"]] = 0.0
            mean[:, h - 1], quantiles[:, h - 1] = mu, q
        return grid_frame(units, self.origin_, mean, quantiles)

    def scenario_draws(self, horizon: int, futures: list[pd.DataFrame], n_draws: int = 1000,
                       seed: int = 0) -> np.ndarray:
        """Predictive means under coefficient draws, the same draws for every future.

        Parameters
        ----------
        horizon
            Months ahead.
        futures
            Covariates at the target months (``unit, month, <covariates>``), one frame per scenario.
        n_draws
            Draws of the coefficients from ``N(beta_hat, cov_hat)``.
        seed
            Seed; draws at horizon h use the stream ``[seed, h]``.

        Returns
        -------
        numpy.ndarray
            Shape (len(futures), n_draws, n_units, horizon); units in sorted order (``units_``).
            A horizon without a usable covariance repeats the point estimate.
        """
        self._check_fitted()
        units, designs = self._designs(int(horizon), list(futures))
        out = np.zeros((len(futures), int(n_draws), len(units), int(horizon)))
        for h in range(1, int(horizon) + 1):
            fit = self.coefs_[h]
            beta = fit["beta"]
            if fit["cov"] is None or fit.get("effects_fit") is None:
                draws = np.broadcast_to(beta, (int(n_draws), len(beta)))
            else:
                rng = np.random.default_rng([int(seed), h])
                # The dense coefficients from their marginal, the unit effects given them:
                # the joint normal approximation without a units x units covariance.
                draws = draw_params(fit["effects_fit"], int(n_draws), rng, fit["scale"])
            keep = fit["keep"]
            for s, design in enumerate(designs[h]):
                if not keep.any():
                    continue
                p = design.shape[1]
                effects = draws[:, p:][:, np.maximum(np.cumsum(keep) - 1, 0)]
                eta = np.clip(draws[:, :p] @ design.T + effects, _MIN_ETA, self.max_eta_)  # (n_draws, n_units)
                out[s, :, :, h - 1] = np.where(keep, np.exp(eta), 0.0)
        return out

    def covariate_effects(self) -> pd.DataFrame:
        """Fitted target-month coefficients per horizon, in the covariates' own units.

        Returns
        -------
        pandas.DataFrame
            ``horizon, covariate, lag, coef, se``: change of ``log E[y]`` per unit of the
            covariate ``lag`` months before the target month (holding the origin's values).
        """
        self._check_fitted()
        rows = []
        for h, fit in sorted(self.coefs_.items()):
            base = len(DIRECT_FEATURES) + 2
            k = len(self.scenario_covariates_)
            for j, lag in enumerate(self._future_lags(h)):
                for c, col in enumerate(self.scenario_covariates_):
                    i = base + j * k + c
                    se = np.sqrt(fit["cov"][i, i]) if fit["cov"] is not None else np.nan
                    sd = self.covariate_sd_[c]
                    rows.append({"horizon": h, "covariate": col, "lag": lag, "coef": fit["beta"][i] / sd,
                                 "se": se / sd})
        return pd.DataFrame(rows, columns=["horizon", "covariate", "lag", "coef", "se"])
