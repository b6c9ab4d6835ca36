"""The pooled direct count regressions: the negative binomial GLM (``nb_glm``) and the hurdle model
(``hurdle``).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.discrete.truncated_model import TruncatedLFNegativeBinomialP, TruncatedLFPoisson
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from forecast.models.base import (
    ModelError,
    negbin_quantiles,
    register,
)
from forecast.models.absorbed import fit_with_effects
from forecast.models.baselines import cameron_trivedi_alpha
from forecast.models.common import MAX_ETA, EstimationFailed, guarded, is_real
from forecast.models.count_design import DirectCountModel
from forecast.schema import QUANTILES


def _level_only_beta(n_dense: int, y: np.ndarray, groups: np.ndarray | None, n_groups: int) -> np.ndarray:
    """Coefficients of the last-resort count model: each unit's mean (or the overall mean).

    The layout is ``[dense columns, one effect per kept unit]`` with unit effects
    (``groups``: each row's kept-unit index), ``[1, features, harmonics]`` without; every
    coefficient but the level ones is 0.
    """
    if groups is not None:
        sums = np.bincount(groups, weights=y, minlength=n_groups)
        n = np.bincount(groups, minlength=n_groups)
        return np.r_[np.zeros(n_dense), np.log(np.maximum(sums / np.maximum(n, 1), 1e-12))]
    beta = np.zeros(n_dense)
    beta[0] = np.log(max(float(y.mean()), 1e-12))
    return beta


@register
class NegBinGLM(DirectCountModel):
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
    maxiter : int
        Iteration cap of each maximum likelihood fit.
    min_alpha : float
        Floor of the dispersion.
    """

    name = "nb_glm"
    summary = "Pooled negative binomial regression per horizon on lagged counts, neighbours, season and covariates."

    def __init__(self, max_horizon: int = 6, unit_effects: bool = True, maxiter: int = 100,
                 min_alpha: float = 0.01) -> None:
        self.max_horizon = max_horizon
        self.unit_effects = unit_effects
        self.maxiter = maxiter
        self.min_alpha = min_alpha

    def _check(self) -> None:
        super()._check()
        if not is_real(self.min_alpha, 0.0) or self.min_alpha == 0:
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
        design = self._design(x[rows], target_months[rows], unit_effects)
        fit = {"keep_units": keep_units, "last_target": target_months[-1]}
        n_kept = int(keep_units.sum())
        groups = self._groups(keep_units)[unit_index[rows]] if unit_effects else None
        if unit_effects and not n_kept:
            return {**fit, "beta": np.zeros(design.shape[1]), "alpha": float(self.min_alpha)}
        y = y[rows]
        maxiter = int(self.maxiter)
        min_alpha = float(self.min_alpha)
        if unit_effects:
            # Unit effects absorbed (no indicator columns): the same maximum likelihood
            # estimates as statsmodels' GLM and NegativeBinomial on indicator columns.
            poisson_fit = lambda: fit_with_effects(design, y, groups, n_kept, "poisson", maxiter=maxiter)  # noqa: E731
        else:
            poisson_fit = lambda: GLM(y, design, family=families.Poisson()).fit(maxiter=maxiter)  # noqa: E731
        try:
            poisson = guarded(poisson_fit)
            start = poisson.params() if unit_effects else np.asarray(poisson.params)
            if not np.all(np.isfinite(start)):
                raise EstimationFailed("non-finite estimates")
            if unit_effects and poisson.aliased:
                names = [*self.feature_names_, "month of year (sin)", "month of year (cos)"]
                self._note(f"horizon {h}", "left out as aliased with the unit effects or the columns before them "
                           f"(coefficient 0): {', '.join(names[j] for j in poisson.aliased)}", h)
        except EstimationFailed as exc:
            beta = _level_only_beta(design.shape[1], y, groups, n_kept)
            self._note(f"horizon {h}", f"Poisson GLM failed ({exc}): "
                       f"{'unit' if unit_effects else 'overall'} mean with moment alpha", h)
        else:
            try:
                if unit_effects:
                    nb = guarded(lambda: fit_with_effects(design, y, groups, n_kept, "nb2", maxiter=maxiter,
                                                          start=poisson, start_alpha=0.5))
                    params = np.r_[nb.params(), nb.alpha]
                else:
                    nb = guarded(lambda: NegativeBinomial(y, design, loglike_method="nb2").fit(
                        start_params=np.r_[start, 0.5], method="newton", maxiter=maxiter, disp=False))
                    params = np.asarray(nb.params)
                if not (np.all(np.isfinite(params)) and params[-1] > 0):
                    raise EstimationFailed("non-finite estimates or alpha <= 0")
                return {**fit, "beta": params[:-1], "alpha": max(float(params[-1]), min_alpha)}
            except EstimationFailed as exc:
                beta = start
                self._note(f"horizon {h}", f"NB maximum likelihood failed ({exc}): Poisson GLM with moment alpha", h)
        mu = np.exp(np.clip(self._linear(design, beta, groups), -MAX_ETA, MAX_ETA))
        alpha = float(cameron_trivedi_alpha(y[:, None], mu[:, None], min_alpha)[0])
        return {**fit, "beta": beta, "alpha": alpha}

    def _distribution(self, h, at_origin, target_month, units):
        fit = self.coefs_[h]
        n_units = len(units)
        keep = fit["keep_units"]
        design = self._design(at_origin, [target_month] * n_units, bool(self.unit_effects))
        if not keep.any():
            return np.zeros(n_units), np.zeros((n_units, len(QUANTILES)))
        groups = self._groups(keep) if self.unit_effects else None
        eta = self._linear(design, fit["beta"], groups)
        mu = np.where(keep, np.exp(np.clip(eta, -MAX_ETA, self.max_eta_)), 0.0)
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
class Hurdle(DirectCountModel):
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
    max_horizon, unit_effects, maxiter
        As for ``nb_glm``.
    """

    name = "hurdle"
    summary = "Pooled hurdle model per horizon: logit for any event, truncated negative binomial for the count."

    def __init__(self, max_horizon: int = 6, unit_effects: bool = True, maxiter: int = 100) -> None:
        self.max_horizon = max_horizon
        self.unit_effects = unit_effects
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
        design = self._design(x[rows], target_months[rows], unit_effects)
        if unit_effects:
            # Unit effects absorbed: the logit GLM's estimates without indicator columns.
            groups = self._groups(free)[unit_index[rows]]
            logit_fit = lambda: fit_with_effects(design, positive[rows], groups, int(free.sum()),  # noqa: E731
                                                 "binomial", maxiter=maxiter).params()
        else:
            logit_fit = lambda: GLM(positive[rows], design, family=families.Binomial()).fit(maxiter=maxiter).params  # noqa: E731
        try:
            params = np.asarray(guarded(logit_fit))
            if not np.all(np.isfinite(params)):
                raise EstimationFailed("non-finite estimates")
            return {"zero_beta": params, "zero_effects": unit_effects, "fixed": fixed, "free": free}
        except EstimationFailed as exc:
            first = exc
        if unit_effects:
            try:
                design = self._design(x, target_months, False)
                logit = guarded(lambda: GLM(positive, design, family=families.Binomial()).fit(maxiter=maxiter))
                if not np.all(np.isfinite(logit.params)):
                    raise EstimationFailed("non-finite estimates")
                self._note(f"horizon {h}", f"logit with unit effects failed ({first}): logit without unit effects", h)
                return {"zero_beta": np.asarray(logit.params), "zero_effects": False,
                        "fixed": np.full(n_units, np.nan), "free": np.ones(n_units, dtype=bool)}
            except EstimationFailed:
                pass
        shares = share if unit_effects else np.full(n_units, positive.mean())
        self._note(f"horizon {h}", f"logit failed ({first}): P(y > 0) = share of positive training targets", h)
        return {"zero_beta": np.zeros(0), "zero_effects": False, "fixed": shares, "free": np.zeros(n_units, dtype=bool)}

    def _count_part(self, h, x, y, target_months, unit_index, n_units) -> dict:
        """Zero-truncated NB2; falls back to truncated Poisson, then to a constant mean."""
        maxiter = int(self.maxiter)
        design = self._design(x, target_months, False)
        if len(y) == 0:
            beta = np.zeros(design.shape[1])
            beta[0] = np.log(_truncated_poisson_mean(1.0))
            self._note(f"horizon {h}", "no positive training targets: a count, if any, is 1", h)
            return {"count_beta": beta, "alpha": None}
        try:
            start = np.r_[guarded(lambda: GLM(y, design, family=families.Poisson()).fit(maxiter=maxiter)).params, 0.5]
            # BFGS with the analytic score; statsmodels' Newton step would use a numerical
            # Hessian, about 15 times slower here, and the covariance is not needed.
            nb = guarded(lambda: TruncatedLFNegativeBinomialP(y, design, p=2).fit(
                start_params=start, method="bfgs", maxiter=maxiter, disp=False, skip_hessian=True))
            params = np.asarray(nb.params)
            if not (np.all(np.isfinite(params)) and params[-1] > 1e-8):
                raise EstimationFailed("non-finite estimates or alpha <= 0")
            return {"count_beta": params[:-1], "alpha": float(params[-1])}
        except EstimationFailed as exc:
            first = exc
        try:
            tp = guarded(lambda: TruncatedLFPoisson(y, design).fit(
                method="bfgs", maxiter=maxiter, disp=False, skip_hessian=True))
            if not np.all(np.isfinite(tp.params)):
                raise EstimationFailed("non-finite estimates")
            self._note(f"horizon {h}", f"truncated NB failed ({first}): truncated Poisson", h)
            return {"count_beta": np.asarray(tp.params), "alpha": None}
        except EstimationFailed as exc:
            beta = np.zeros(design.shape[1])
            beta[0] = np.log(_truncated_poisson_mean(float(y.mean())))
            self._note(f"horizon {h}", f"truncated NB and Poisson failed ({exc}): truncated Poisson with "
                                       "the mean of the positive training targets", h)
            return {"count_beta": beta, "alpha": None}

    def _distribution(self, h, at_origin, target_month, units):
        fit = self.coefs_[h]
        n_units = len(units)
        months = [target_month] * n_units
        p = np.asarray(fit["fixed"], dtype=float).copy()
        if fit["free"].any():
            zero_design = self._design(at_origin, months, fit["zero_effects"])
            groups = self._groups(fit["free"]) if fit["zero_effects"] else None
            eta = np.clip(self._linear(zero_design, fit["zero_beta"], groups), -MAX_ETA, MAX_ETA)
            p = np.where(fit["free"], 1.0 / (1.0 + np.exp(-eta)), p)
        count_design = self._design(at_origin, months, False)
        mu = np.exp(np.clip(count_design @ fit["count_beta"], -MAX_ETA, self.max_eta_))
        return hurdle_summary(p, mu, fit["alpha"])
