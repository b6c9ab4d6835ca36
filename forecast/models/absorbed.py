"""Count and binary regressions with unit effects absorbed: no dummy columns.

The pooled count models (``nb_glm``, ``hurdle``, ``nb_glmx``) have one effect per unit. As
dense indicator columns the design held n_rows x n_units numbers, quadratic in the units
(23 GB at 1,000 units, and the whole machine). Here the effects stay a vector: the linear
predictor of row i is ``x_i @ beta + a[g_i]``, and Newton's method is solved by blocks. The
negative Hessian is

    [[A,   B],
     [B^T, D]]      A: the dense parameters (beta, and log alpha for NB2), B: their cross
                    terms with the effects (p x G), D: diagonal (each effect only meets its
                    own rows),

so a step costs O(n_rows p^2 + G p) through the Schur complement ``S = A - B D^-1 B^T``, and
memory is the design's dense columns plus a few vectors per unit: linear in the units.

The estimates are the maximum likelihood estimates of the same models statsmodels fitted
with indicator columns (Poisson GLM, logit GLM, NB2 ``NegativeBinomial``), so forecasts agree
to the optimisers' tolerance (measured in ``docs/scale.md``). The covariance is kept as the
precision blocks; :func:`draw_params` samples from it without forming the G x G matrix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import digamma, gammaln, polygamma
from statsmodels.tools.sm_exceptions import ConvergenceWarning

#: The message statsmodels gives when a maximum likelihood fit stops at ``maxiter``.
NOT_CONVERGED = "Maximum Likelihood optimization failed to converge. Check mle_retvals"

_MAX_ETA = 30.0
FAMILIES = ("poisson", "binomial", "nb2")


@dataclass
class EffectsFit:
    """One fit: dense coefficients, one effect per group, NB2 dispersion (None otherwise).

    ``precision`` holds the negative Hessian at the estimate by blocks ``(A, B, D)`` over the
    dense parameters ``theta = (beta[, log alpha])`` and the effects.
    """

    beta: np.ndarray
    effects: np.ndarray
    alpha: float | None
    iterations: int
    precision: tuple[np.ndarray, np.ndarray, np.ndarray]
    #: Columns of ``x`` left out as aliased (see :func:`aliased_columns`); their ``beta`` is 0.
    aliased: tuple[int, ...] = ()

    def params(self) -> np.ndarray:
        """``[beta, effects]``: the layout of the coefficients of a design with indicator columns last."""
        return np.r_[self.beta, self.effects]

    def dense_cov(self, scale: float = 1.0) -> np.ndarray:
        """Covariance of ``beta`` (marginal over the effects and alpha): the inverse Schur complement."""
        A, B, D = self.precision
        S = A - (B / D) @ B.T
        cov = linalg.inv(S) * float(scale)
        p = len(self.beta)
        return cov[:p, :p]


class _Levels:
    """The distinct values of the responses and each row's index among them.

    NB2's log-likelihood and its derivatives in alpha need ``gammaln``, ``digamma`` and
    ``polygamma(1, .)`` of ``y + 1 / alpha`` on every row at every Newton step; the trigamma
    alone was 40% of an ``nb_glm`` fit at 3,500 units. Counts take few distinct values, so
    the functions are evaluated on those and gathered: the same numbers, row by row.
    """

    def __init__(self, y: np.ndarray) -> None:
        self.values, self.index = np.unique(y, return_inverse=True)

    def apply(self, func, r: float) -> np.ndarray:
        """``func(y + r)`` on every row."""
        return func(self.values + r)[self.index]


def _trigamma(x):
    return polygamma(1, x)


def _derivatives(family: str, y: np.ndarray, eta: np.ndarray, log_alpha: float, levels: _Levels | None = None):
    """Per-row log-likelihood terms and derivatives in eta (and log alpha for NB2).

    Returns (loglike_sum, d_eta, w, d_eta_rho, d_rho, d_rho_rho) where w = -d2 l / d eta2
    and rho = log alpha (the last three None outside NB2). ``levels`` (NB2): the
    :class:`_Levels` of ``y``.
    """
    if family == "poisson":
        mu = np.exp(eta)
        return float(np.sum(y * eta - mu)), y - mu, mu, None, None, None
    if family == "binomial":
        p = 1.0 / (1.0 + np.exp(-eta))
        return float(np.sum(y * eta - np.logaddexp(0.0, eta))), y - p, p * (1.0 - p), None, None, None
    alpha = float(np.exp(log_alpha))
    r = 1.0 / alpha
    levels = _Levels(y) if levels is None else levels
    mu = np.exp(eta)
    am = 1.0 + alpha * mu
    log_am = np.log1p(alpha * mu)
    ll = float(np.sum(levels.apply(gammaln, r) - gammaln(r) - (r + y) * log_am + y * log_alpha + y * eta))
    d_eta = (y - mu) / am
    w = mu * (1.0 + alpha * y) / am**2
    # derivatives in alpha, then chain rule to rho = log alpha
    dig = levels.apply(digamma, r) - digamma(r)
    trig = levels.apply(_trigamma, r) - polygamma(1, r)
    d_a = -(r**2) * dig + (r**2) * log_am + (y - mu) / (alpha * am)
    d_aa = (2 * r**3) * dig + (r**4) * trig - (2 * r**3) * log_am + (r**2) * mu / am \
        - (y - mu) * (1.0 + 2.0 * alpha * mu) / (alpha * am) ** 2
    d_eta_a = -(y - mu) * mu / am**2
    d_rho = float(np.sum(alpha * d_a))
    d_rho_rho = float(np.sum(alpha**2 * d_aa + alpha * d_a))
    return ll, d_eta, w, alpha * d_eta_a, d_rho, d_rho_rho


def _loglike(family: str, y, eta, log_alpha, levels: _Levels | None = None) -> float:
    if family == "poisson":
        return float(np.sum(y * eta - np.exp(eta)))
    if family == "binomial":
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    alpha = float(np.exp(log_alpha))
    r = 1.0 / alpha
    levels = _Levels(y) if levels is None else levels
    return float(np.sum(levels.apply(gammaln, r) - gammaln(r) - (r + y) * np.log1p(alpha * np.exp(eta))
                        + y * log_alpha + y * eta))


def _blocks(family, x, y, groups, n_groups, eta, log_alpha, levels=None):
    ll, d_eta, w, d_eta_rho, d_rho, d_rho_rho = _derivatives(family, y, eta, log_alpha, levels)
    xw = x * w[:, None]
    A = x.T @ xw
    g_beta = x.T @ d_eta
    B = np.empty((x.shape[1], n_groups))
    for j in range(x.shape[1]):
        B[j] = np.bincount(groups, weights=xw[:, j], minlength=n_groups)
    D = np.bincount(groups, weights=w, minlength=n_groups)
    g_a = np.bincount(groups, weights=d_eta, minlength=n_groups)
    if family == "nb2":
        c = -(x.T @ d_eta_rho)
        A = np.block([[A, c[:, None]], [c[None, :], np.array([[-d_rho_rho]])]])
        B = np.vstack([B, -np.bincount(groups, weights=d_eta_rho, minlength=n_groups)])
        g_theta = np.r_[g_beta, d_rho]
    else:
        g_theta = g_beta
    return ll, g_theta, g_a, A, B, D


#: A column whose variance within the groups, after the columns kept before it, is at most this
#: share of its own within-group variance is aliased.
ALIAS_TOL = 1e-9


def aliased_columns(x: np.ndarray, groups: np.ndarray, n_groups: int) -> list[int]:
    """Columns of ``x`` that the group effects and the columns before them determine exactly.

    A context column recorded only where a country's data are (its missing indicator constant
    within every unit), or two context series equal on every training row, make the Hessian
    singular. As R's ``glm`` does with aliased coefficients, such a column is left out (its
    coefficient 0). Found on the within-group Gram matrix (p x p, one pass over the rows) by
    Gram-Schmidt in column order.
    """
    p = x.shape[1]
    if p == 0:
        return []
    n = np.bincount(groups, minlength=n_groups).astype(float)
    sums = np.stack([np.bincount(groups, weights=x[:, j], minlength=n_groups) for j in range(p)])  # p x G
    gram = x.T @ x - (sums / np.maximum(n, 1.0)) @ sums.T
    kept: list[int] = []
    aliased = []
    for j in range(p):
        own = gram[j, j]
        if kept:
            k = np.array(kept)
            coef = linalg.lstsq(gram[np.ix_(k, k)], gram[k, j])[0]
            residual = own - gram[j, k] @ coef
        else:
            residual = own
        if not own > 0 or residual <= ALIAS_TOL * own:
            aliased.append(j)
        else:
            kept.append(j)
    return aliased


def fit_with_effects(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_groups: int, family: str, *,
                     maxiter: int = 100, tol: float = 1e-8, start: EffectsFit | None = None,
                     start_alpha: float = 0.5) -> EffectsFit:
    """Maximum likelihood of ``y_i ~ F(eta_i)``, ``eta_i = x_i @ beta + a[groups_i]`` by block Newton.

    Parameters
    ----------
    x
        (n_rows, p) dense regressors (no intercept: the effects are the levels).
    y
        (n_rows,) responses (counts; 0/1 for ``binomial``).
    groups
        (n_rows,) group of each row, 0..n_groups-1; every group needs at least one row.
    family
        ``"poisson"`` (log link), ``"binomial"`` (logit) or ``"nb2"`` (log link, variance
        ``mu + alpha mu^2``, alpha estimated).
    maxiter, tol
        Newton stops when no parameter moves more than ``tol``; when ``maxiter`` steps are
        not enough it warns ``ConvergenceWarning`` (as statsmodels does) and returns the
        last estimate.
    start
        A previous fit to start from (the Poisson fit for NB2, as statsmodels does), with
        ``start_alpha`` as the dispersion.

    Returns
    -------
    EffectsFit
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    groups = np.asarray(groups, dtype=np.int64)
    aliased = aliased_columns(x, groups, n_groups)
    if aliased:
        return _without_aliased(x, y, groups, n_groups, family, aliased, maxiter=maxiter, tol=tol, start=start,
                                start_alpha=start_alpha)
    p = x.shape[1]
    if start is not None:
        beta, effects = start.beta.astype(float).copy(), start.effects.astype(float).copy()
    else:
        beta = np.zeros(p)
        n = np.bincount(groups, minlength=n_groups)
        mean = np.bincount(groups, weights=y, minlength=n_groups) / np.maximum(n, 1)
        if family == "binomial":
            mean = np.clip(mean, 1e-3, 1 - 1e-3)
            effects = np.log(mean / (1 - mean))
        else:
            effects = np.log(np.maximum(mean, 1e-3))
    log_alpha = float(np.log(start_alpha)) if family == "nb2" else 0.0
    levels = _Levels(y) if family == "nb2" else None
    eta = np.clip(x @ beta + effects[groups], -_MAX_ETA, _MAX_ETA)
    iterations = 0
    converged = False
    while iterations < maxiter:
        iterations += 1
        ll, g_theta, g_a, A, B, D = _blocks(family, x, y, groups, n_groups, eta, log_alpha, levels)
        BD = B / D
        S = A - BD @ B.T
        rhs = g_theta - BD @ g_a
        try:
            d_theta = linalg.solve(S, rhs, assume_a="sym")
        except (linalg.LinAlgError, ValueError) as exc:
            raise np.linalg.LinAlgError(f"singular Hessian ({exc})") from exc
        d_a = (g_a - B.T @ d_theta) / D
        # Step halving on the log-likelihood: Newton from far away can overshoot.
        step = 1.0
        for _ in range(40):
            nb, na = beta + step * d_theta[:p], effects + step * d_a
            nr = log_alpha + step * d_theta[p] if family == "nb2" else log_alpha
            new_eta = np.clip(x @ nb + na[groups], -_MAX_ETA, _MAX_ETA)
            new_ll = _loglike(family, y, new_eta, nr, levels)
            if np.isfinite(new_ll) and new_ll >= ll - 1e-10 * (1.0 + abs(ll)):
                break
            step /= 2
        else:
            raise ArithmeticError("no step along the Newton direction increases the likelihood")
        moved = max(np.max(np.abs(step * d_theta), initial=0.0), np.max(np.abs(step * d_a), initial=0.0))
        beta, effects, log_alpha, eta = nb, na, nr, new_eta
        if not np.isfinite(moved):
            raise ArithmeticError("non-finite Newton step")
        if moved < tol:
            converged = True
            break
    if not converged:
        warnings.warn(NOT_CONVERGED, ConvergenceWarning, stacklevel=2)
    _, _, _, A, B, D = _blocks(family, x, y, groups, n_groups, eta, log_alpha, levels)
    alpha = float(np.exp(log_alpha)) if family == "nb2" else None
    return EffectsFit(beta=beta, effects=effects, alpha=alpha, iterations=iterations, precision=(A, B, D))


def draw_params(fit: EffectsFit, n_draws: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Draws of ``[beta, effects]`` from the normal approximation ``N(estimate, scale * precision^-1)``.

    The dense parameters are drawn from their marginal (inverse Schur complement), then the
    effects from their conditional distribution given them, ``a | theta ~ N(a_hat -
    D^-1 B^T (theta - theta_hat), D^-1)``: the joint distribution without the G x G matrix.
    Returns shape (n_draws, p + G); the NB2 dispersion is drawn and dropped.
    """
    A, B, D = fit.precision
    S = A - (B / D) @ B.T
    theta_hat = np.r_[fit.beta, np.log(fit.alpha)] if fit.alpha is not None else fit.beta
    cov = linalg.inv(S) * float(scale)
    cov = (cov + cov.T) / 2
    theta = rng.multivariate_normal(theta_hat, cov, size=int(n_draws), method="eigh")
    dev = theta - theta_hat
    noise = rng.standard_normal((int(n_draws), len(D))) * np.sqrt(float(scale) / D)
    effects = fit.effects - (dev @ B) / D + noise
    return np.hstack([theta[:, :len(fit.beta)], effects])


def _without_aliased(x, y, groups, n_groups, family, aliased, *, maxiter, tol, start, start_alpha) -> EffectsFit:
    """The fit on the columns that are not aliased, laid out over every column of ``x``:
    an aliased column's coefficient is 0, with a precision that keeps it there in draws."""
    p = x.shape[1]
    free = np.setdiff1d(np.arange(p), aliased)
    if start is not None:
        start = EffectsFit(beta=start.beta[free], effects=start.effects, alpha=start.alpha,
                           iterations=start.iterations, precision=start.precision)
    fit = fit_with_effects(np.ascontiguousarray(x[:, free]), y, groups, n_groups, family, maxiter=maxiter, tol=tol,
                           start=start, start_alpha=start_alpha)
    beta = np.zeros(p)
    beta[free] = fit.beta
    A, B, D = fit.precision
    theta = np.r_[free, np.arange(p, p + A.shape[0] - len(free))]  # the dense parameters kept (and log alpha)
    full = p + A.shape[0] - len(free)
    A_full = np.zeros((full, full))
    A_full[np.ix_(theta, theta)] = A
    A_full[aliased, aliased] = 1e12  # a coefficient fixed at 0: variance 1e-12
    B_full = np.zeros((full, B.shape[1]))
    B_full[theta] = B
    return EffectsFit(beta=beta, effects=fit.effects, alpha=fit.alpha, iterations=fit.iterations,
                      precision=(A_full, B_full, D), aliased=tuple(int(j) for j in aliased))
