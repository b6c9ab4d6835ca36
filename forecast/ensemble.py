"""Ensemble: members combined with weights per horizon from their own recent backtest scores.

At every fit the ensemble runs a rolling-origin backtest of its members *inside* the history
it is given (origins from ``eval_months`` before the origin, every ``eval_step`` months,
scored only on target months up to the origin), turns each member's mean CRPS *at each
horizon* into a weight for that horizon, then fits every member on the whole history.
Forecasts at horizon h are the h-weighted average of the members' means and of their
quantiles (quantile averaging, "Vincentization", which keeps the quantiles monotone and makes
the mean the mean of the same distribution). A horizon past ``eval_horizon`` takes the weights
of ``eval_horizon``. The weights therefore come from data up to the origin only.

The default members are the cheap, vectorised ones that between them cover both regimes of
conflict counts: the recent level (``locf_negbin``; ``ses_negbin``, whose pooled smoothing
constant says how persistent the panel is), short means (``moving_average``), the empirical
distribution of recent months (``hist_bootstrap``) and intermittent demand (``croston``).
They were chosen on the early ("tune") windows of ``benchmarks/skill.py``; heavier members
(the random forest, ETS) did not improve them there and cost most of the fit
(``docs/models.md``). On those windows ``ses_negbin`` alone scored better than the ensemble,
so it, not the ensemble, is the default model (:data:`forecast.catalog.DEFAULT_MODEL`).

Short histories: in-history origins need ``min_eval_history`` months before them. With fewer
months than that plus one, there is no in-history backtest and the members get equal weights;
``notes_`` says which was done.

It sits above :mod:`forecast.evaluation` (not in :mod:`forecast.models`) because it is built
on the rolling-origin backtest: the models never import the evaluation that judges them.

Weighting (``weighting``), each per horizon: ``"inverse"`` (weight proportional to
CRPS ** -power, the default; ``power`` sharpens the preference for the members that have been
doing best), ``"crps"`` (the convex weights that minimise the combination's own in-history
CRPS, a linear programme solved by HiGHS through ``scipy.optimize.linprog``), ``"best"`` (all
weight on the member with the lowest CRPS) or ``"equal"``. On the tune windows ``"crps"``
scored worse than ``"inverse"`` (its weights fit the in-history months too closely).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

import forecast.models  # noqa: F401  (the registry the members are made from)
from forecast.evaluation.backtest import BacktestDesign
from forecast.evaluation.escalation import predictive_cdf
from forecast.evaluation.scores import crps_from_quantiles
from forecast.models.base import (
    FitCache,
    Forecaster,
    ModelError,
    active_fit_cache,
    fit_cache,
    hold_last_value,
    make_model,
    prediction_frame,
    register,
)
from forecast.models.baselines import count_matrix
from forecast.models.rolling import BLOCK_UNITS, rolling_blocks
from forecast.schema import QUANTILE_COLUMNS, QUANTILES

DEFAULT_MEMBERS = ("ses_negbin", "locf_negbin", "moving_average", "hist_bootstrap", "croston")
WEIGHTINGS = ("inverse", "crps", "best", "equal")
#: How the weighted members become one distribution.
POOLINGS = ("vincent", "linear")


@register
class Ensemble(Forecaster):
    """Weighted quantile average of member models, weights per horizon from their in-history backtest."""

    name = "ensemble"
    summary = "weighted quantile average of members, weights per horizon from their recent backtest CRPS"
    uses_covariates = True
    cost = 3  # its in-history backtest of cheap members; the members' own fits are shared
    #: Units scored at a time in the in-history backtest (memory, not a hyperparameter: any
    #: value gives the same weights and forecasts).
    block_units = BLOCK_UNITS

    def __init__(self, members: tuple[str, ...] = DEFAULT_MEMBERS, weighting: str = "inverse",
                 power: float = 10.0, eval_months: int = 36, eval_step: int = 1, eval_horizon: int = 6,
                 min_eval_history: int = 6, prior: str | None = None, prior_origins: float = 6.0,
                 pooling: str = "vincent", half_life: float | None = None):
        self.members = members
        self.weighting = weighting
        self.power = power
        self.eval_months = eval_months
        self.eval_step = eval_step
        self.eval_horizon = eval_horizon
        self.min_eval_history = min_eval_history
        self.prior = prior
        self.prior_origins = prior_origins
        self.pooling = pooling
        self.half_life = half_life

    @property
    def uses_future_covariates(self) -> bool:  # type: ignore[override]
        return any(getattr(m, "uses_future_covariates", False) for m in getattr(self, "models_", {}).values())

    def member_names(self) -> tuple[str, ...]:
        """``members`` as a tuple of names: a string is read as comma-separated names (``"zero,ets"``)."""
        if isinstance(self.members, str):
            return tuple(m.strip() for m in self.members.split(",") if m.strip())
        return tuple(self.members)

    def shared_fits(self) -> list[Forecaster]:
        """The members: the ensemble fits each of them on the histories they are backtested on."""
        try:
            return [make_model(m) for m in self.member_names()]
        except (ModelError, TypeError):
            return []  # reported by fit, with the offending member named

    def _check(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ModelError(f"ensemble: weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if not self.member_names():
            raise ModelError("ensemble: needs at least one member")
        if "ensemble" in self.member_names():
            raise ModelError("ensemble: cannot be its own member")
        for member in self.member_names():
            try:
                make_model(member)  # an unknown member is named here, before any fit
            except ModelError as exc:
                raise ModelError(f"ensemble: member {member!r}: {exc}") from None
        if self.pooling not in POOLINGS:
            raise ModelError(f"ensemble: pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.prior is not None and self.prior not in self.member_names():
            raise ModelError(f"ensemble: prior {self.prior!r} must be one of the members "
                             f"({', '.join(self.member_names())})")
        half = self.half_life
        if half is not None and (isinstance(half, bool) or not isinstance(half, (int, float, np.integer, np.floating))
                                 or not 0 < half <= 1e6):
            raise ModelError(f"ensemble: half_life must be a number of months > 0 or none, got {half!r}")
        origins = self.prior_origins
        if isinstance(origins, bool) or not isinstance(origins, (int, float, np.integer, np.floating)) or not (
                0 <= origins <= 1e6):
            raise ModelError(f"ensemble: prior_origins must be a number >= 0, got {origins!r}")
        power = self.power
        if isinstance(power, bool) or not isinstance(power, (int, float, np.integer, np.floating)) or not (
                0 <= power <= 100):
            raise ModelError(f"ensemble: power must be a number from 0 to 100, got {power!r}")
        for name in ("eval_months", "eval_step", "eval_horizon", "min_eval_history"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ModelError(f"ensemble: {name} must be a whole number >= 1, got {value!r}")

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        if active_fit_cache() is None:
            # A fit on its own (``forecast predict``): memoise inside it too, so that the
            # members' fits at the start of the in-history backtest are not repeated by the
            # final fits (a tree model's calibration regressor at the origin is its final
            # regressor of the fit ``eval_months`` earlier).
            with fit_cache(FitCache()):
                return self._fit(history)
        factories = {m: (lambda m=m: make_model(m)) for m in self.member_names()}
        members = list(self.member_names())
        horizons = range(1, int(self.eval_horizon) + 1)
        origin = history["month"].max()
        first = history["month"].min()
        start = max(origin - int(self.eval_months), first + (int(self.min_eval_history) - 1))
        end = origin - 1
        self.fallbacks_: dict[str, str] = {}
        scores = pd.DataFrame(1.0, index=pd.Index(horizons, name="horizon"), columns=members)
        self.member_scores_ = pd.Series(1.0, index=members)
        scored = None
        if self.weighting != "equal" and len(members) > 1 and start <= end:
            design = BacktestDesign(start=start, end=end, step=self.eval_step, horizon=self.eval_horizon)
            scored = self._in_history_scores(history, factories, design)
            by_h = recent_scores(scored, origin, self.half_life)
            # A horizon no in-history month reaches yet (a short history) takes the scores of
            # the longest one that has them.
            scores = by_h.reindex(index=horizons, columns=members).ffill().fillna(1.0)
            scores.index.name = "horizon"
            self.member_scores_ = scored.groupby("model")["crps"].mean().reindex(members)
            n_origins = len(design.origins())
            if n_origins * int(self.eval_step) < int(self.eval_months):
                self.fallbacks_["weights"] = (
                    f"{len(history['month'].unique())} months of history: in-history backtest on "
                    f"{n_origins} origin(s) from {start}, not {self.eval_months} months")
        elif self.weighting != "equal" and len(members) > 1:
            self.fallbacks_["weights"] = (
                f"{len(history['month'].unique())} months of history (< {int(self.min_eval_history) + 1}): "
                f"no in-history backtest, {'equal weights' if self.prior is None else 'all weight on ' + self.prior}")
        self.horizon_scores_ = scores
        self.horizon_weights_ = horizon_weights(scores, self.weighting, float(self.power), scored)
        if self.prior is not None and self.weighting != "equal":
            self.horizon_weights_ = toward_prior(self.horizon_weights_, scored, self.prior, float(self.prior_origins))
        overall = self.horizon_weights_.mean(axis=0)
        self.weights_ = overall / overall.sum()
        self.models_ = {m: factories[m]().fit(history) for m in self.member_names()}
        for model in self.models_.values():
            # Fit the members' horizons up to eval_horizon now, inside the memo (a direct
            # model fits a horizon when first asked for it, on the fit-time history, so the
            # estimates are those a later predict would make).
            model.predict(self.eval_horizon, None if not model.uses_future_covariates else
                          hold_last_value(history, self.eval_horizon))

    def _in_history_scores(self, history: pd.DataFrame, factories: dict, design: BacktestDesign) -> pd.DataFrame:
        """Every member's CRPS at every in-history origin and horizon (targets in the history).

        Each member is scored as if fitted afresh at every in-history origin on the history
        cut there (what it would have forecast then). The cheap members' forecasts at all
        origins come from one pass over the count matrix
        (:func:`forecast.models.rolling.rolling_blocks`, equal to their fits), ``block_units``
        units at a time, each block scored and dropped before the next; any other member is
        fitted and asked at each origin (inside a backtest the fit cache shares those fits
        between the ensemble's consecutive origins).

        One row per origin, horizon and member, ``crps`` the mean over units (every such group
        has every unit, so means of these rows are means of the units' rows). With ``"crps"``
        weighting, whose linear programme needs each unit's quantiles, one row per unit
        instead, with ``unit``, ``y`` and the quantile columns (and memory for all of them).
        """
        counts, units, months = count_matrix(history)
        origins = design.origins()
        ends = [o.ordinal - months[0].ordinal for o in origins]
        horizon = int(design.horizon)
        known = np.array([[e + h < len(counts) for h in range(1, horizon + 1)] for e in ends])  # (origins, horizon)
        targets = np.zeros((len(ends), horizon, len(units)))  # y at each origin and horizon (0 where unknown)
        for k, e in enumerate(ends):
            seen = counts[e + 1:e + 1 + horizon]
            targets[k, :len(seen)] = seen
        per_row = self.weighting == "crps"
        block = max(1, len(units)) if per_row else max(1, int(self.block_units))
        parts = []
        for name, factory in factories.items():
            model = factory()
            blocks = None if model.uses_covariates else rolling_blocks(model, counts, ends, horizon, block)
            if blocks is None:
                blocks = [(slice(0, len(units)), None, _fitted_quantiles(factory, history, origins, len(units), horizon))]
            crps = np.empty((len(ends), horizon, len(units)))
            for columns, _, q in blocks:  # q: (origins, block units, horizon, levels)
                y = targets[:, :, columns].transpose(0, 2, 1)
                scores = crps_from_quantiles(y.reshape(-1), q.reshape(-1, len(QUANTILES)))
                crps[:, :, columns] = scores.reshape(y.shape).transpose(0, 2, 1)
                if per_row:
                    parts.append(_unit_rows(name, np.asarray(units, dtype=object)[columns], origins, known, y, q,
                                            crps[:, :, columns]))
            if not per_row:
                k, h = np.nonzero(known)
                parts.append(pd.DataFrame({
                    "origin": pd.PeriodIndex.from_ordinals(np.array([o.ordinal for o in origins])[k], freq="M"),
                    "horizon": h + 1, "model": name, "crps": crps[k, h].mean(axis=1)}))
        return pd.concat(parts, ignore_index=True)

    def _update(self, history: pd.DataFrame) -> None:
        for model in self.models_.values():
            model.update(history)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        table = self.horizon_weights_
        weights, means, quantiles = [], [], []
        frame = None
        for name, model in self.models_.items():
            frame = model.predict(horizon, future if model.uses_future_covariates else None)
            steps = np.minimum(frame["horizon"].to_numpy(dtype=int), len(table)) - 1
            weights.append(table[name].to_numpy(dtype=float)[steps])
            means.append(frame["mean"].to_numpy(dtype=float))
            quantiles.append(frame[list(QUANTILE_COLUMNS)].to_numpy(dtype=float))
        w = np.stack(weights)  # (members, rows)
        mean = (w * np.stack(means)).sum(axis=0)  # the mean of the mixture, and of the Vincentized average
        q = np.stack(quantiles)  # (members, rows, levels)
        combined = linear_pool(q, w) if self.pooling == "linear" else (w[:, :, None] * q).sum(axis=0)
        return prediction_frame(frame["unit"], frame["month"], frame["horizon"], mean, combined)


def _fitted_quantiles(factory, history: pd.DataFrame, origins: list, n_units: int, horizon: int) -> np.ndarray:
    """Quantiles (origins, units, horizon, levels) of a member fitted afresh at each origin."""
    out = []
    for o in origins:
        cut = history[history["month"] <= o].reset_index(drop=True)
        fitted = factory().fit(cut)
        future = hold_last_value(cut, horizon) if fitted.uses_future_covariates and fitted.covariates_ else None
        pred = fitted.predict(horizon, future)
        out.append(pred[list(QUANTILE_COLUMNS)].to_numpy().reshape(n_units, horizon, len(QUANTILES)))
    return np.stack(out)


def _unit_rows(name: str, units: np.ndarray, origins: list, known: np.ndarray, y: np.ndarray, q: np.ndarray,
               crps: np.ndarray) -> pd.DataFrame:
    """One row per unit, origin and known horizon of a block of ``units``: ``y`` (origins,
    units, horizon), ``q`` the quantiles (origins, units, horizon, levels), ``crps`` (origins,
    horizon, units)."""
    k, u, h = np.nonzero(np.broadcast_to(known[:, None, :], y.shape))
    frame = pd.DataFrame({"unit": units[u],
                          "origin": pd.PeriodIndex.from_ordinals(np.array([o.ordinal for o in origins])[k], freq="M"),
                          "horizon": h + 1, "model": name, "y": y[k, u, h]})
    frame[list(QUANTILE_COLUMNS)] = q[k, u, h]
    frame["crps"] = crps[k, h, u]
    return frame


#: Members of ``combination``: the 12-month bootstrap and the long-run mean (the steady
#: regime), the smoothed level and its trend (a regime that moves), the last value and the
#: 6-month mean (the benchmarks that win on persistent and on noisy panels).
COMBINATION_MEMBERS = ("ses_negbin", "ses_trend", "locf_negbin", "moving_average", "hist_bootstrap", "long_run_mean")


@register
class Combination(Ensemble):
    """The ensemble with the settings chosen on the windows of ``benchmarks/skill.py``.

    Members :data:`COMBINATION_MEMBERS`; weights per horizon from CRPS ** -10 over the
    in-history origins of the last 36 months, moved toward ``ses_negbin`` while few of them
    have been scored (``prior_origins``); the members are pooled as a mixture
    (:func:`linear_pool`). The weights follow the recent regime: in a steady one the
    bootstrap and the long-run mean score best and take the weight, after a fall the level
    models do.
    """

    name = "combination"
    summary = ("mixture of the smoothed level, its trend, the benchmarks and the long-run mean, "
               "weights per horizon from the last 36 months' in-history CRPS")

    @property
    def uses_covariates(self) -> bool:  # type: ignore[override]
        """Whether a member uses covariates (none of the default members does)."""
        try:
            return any(make_model(m).uses_covariates for m in self.member_names())
        except (ModelError, TypeError):
            return True  # an unknown member: fit names it

    def __init__(self, members: tuple[str, ...] = COMBINATION_MEMBERS, weighting: str = "inverse",
                 power: float = 10.0, eval_months: int = 36, eval_step: int = 1, eval_horizon: int = 6,
                 min_eval_history: int = 6, prior: str | None = "ses_negbin", prior_origins: float = 6.0,
                 pooling: str = "linear", half_life: float | None = 3.0):
        super().__init__(members=members, weighting=weighting, power=power, eval_months=eval_months,
                         eval_step=eval_step, eval_horizon=eval_horizon, min_eval_history=min_eval_history,
                         prior=prior, prior_origins=prior_origins, pooling=pooling, half_life=half_life)


def horizon_weights(scores: pd.DataFrame, weighting: str, power: float,
                    scored: pd.DataFrame | None) -> pd.DataFrame:
    """Weights (horizon x member, rows summing to 1) from the members' in-history CRPS by horizon.

    ``scored`` is the in-history backtest with a ``crps`` column (None when there was none:
    equal weights); ``"crps"`` weighting solves its linear programme on those rows.
    """
    if scored is None or weighting == "equal":
        return pd.DataFrame(1.0 / scores.shape[1], index=scores.index, columns=scores.columns)
    if weighting == "best":
        raw = scores.eq(scores.min(axis=1), axis=0).astype(float)
    elif weighting == "inverse":
        # CRPS ** -power in logs, so that a power of 100 or a CRPS near 0 cannot overflow.
        logs = np.log(np.maximum(scores.to_numpy(dtype=float), 1e-12))
        raw = pd.DataFrame(np.exp(-power * (logs - logs.min(axis=1, keepdims=True))),
                           index=scores.index, columns=scores.columns)
    else:
        members = list(scores.columns)
        rows = []
        for h in scores.index:
            at_h = scored[scored["horizon"] == min(h, int(scored["horizon"].max()))]
            wide_q = {m: at_h[at_h["model"] == m].sort_values(["unit", "origin"]) for m in members}
            y = wide_q[members[0]]["y"].to_numpy(dtype=float)
            q = np.stack([wide_q[m][list(QUANTILE_COLUMNS)].to_numpy(dtype=float) for m in members], axis=1)
            rows.append(crps_weights(q, y))
        raw = pd.DataFrame(rows, index=scores.index, columns=members)
    return raw.div(raw.sum(axis=1), axis=0)


def recent_scores(scored: pd.DataFrame, origin: pd.Period, half_life: float | None) -> pd.DataFrame:
    """Mean in-history CRPS by horizon (rows) and member (columns), recent months weighted up.

    A row scored on target month ``m = origin_row + horizon`` weighs ``0.5 ** ((T - m) /
    half_life)`` at the fit origin T (all alike when ``half_life`` is None): after a change of
    regime the months since weigh as much as the older ones, however long the window.
    """
    if half_life is None:
        return scored.groupby(["horizon", "model"])["crps"].mean().unstack("model")
    months = scored["origin"].array.asi8 + scored["horizon"].to_numpy()
    weight = 0.5 ** ((origin.ordinal - months) / float(half_life))
    frame = scored[["horizon", "model"]].assign(weighted=scored["crps"].to_numpy() * weight, weight=weight)
    sums = frame.groupby(["horizon", "model"])[["weighted", "weight"]].sum()
    return (sums["weighted"] / sums["weight"]).unstack("model")


def toward_prior(weights: pd.DataFrame, scored: pd.DataFrame | None, prior: str, origins: float) -> pd.DataFrame:
    """Weights moved toward all weight on ``prior`` where few in-history origins scored them.

    At horizon h with ``n_h`` in-history origins scored (none without an in-history
    backtest), the weights are ``lambda * w + (1 - lambda) * e_prior`` with
    ``lambda = n_h / (n_h + origins)``: with a short history the weights of a few origins
    are noise, and the member the model trusts a priori takes their place.
    """
    counts = pd.Series(0.0, index=weights.index)
    if scored is not None and len(scored):
        seen = scored.groupby("horizon")["origin"].nunique() if "origin" in scored else scored.groupby("horizon").size()
        counts = seen.reindex(weights.index).ffill().fillna(0.0).astype(float)
    share = (counts / (counts + origins)).to_numpy() if origins > 0 else np.ones(len(counts))
    prior_weights = pd.DataFrame(0.0, index=weights.index, columns=weights.columns)
    prior_weights[prior] = 1.0
    return weights.mul(share, axis=0) + prior_weights.mul(1.0 - share, axis=0)


def linear_pool(quantiles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Quantiles of the mixture ``sum_m w_m F_m`` of count distributions given by their quantiles.

    ``quantiles`` is (n_members, n_rows, n_levels), ``weights`` (n_members, n_rows). Each
    member's CDF is read from its quantiles as the calibration scores read it (the count CDF
    at k is :func:`~forecast.evaluation.escalation.predictive_cdf` at k + 1/2), and the
    mixture's quantile at level tau is the least whole number k with ``F(k) >= tau``, found by
    bisection between -1 and the largest member q95 (where every member's CDF, and so the
    mixture's, is at least 0.95). Unlike the quantile average it keeps the mass of members
    that disagree (a level that has fallen and one that has not) instead of splitting the
    difference.
    """
    n_members, n_rows, n_levels = quantiles.shape
    out = np.empty((n_rows, n_levels))
    top = np.ceil(np.nanmax(quantiles[:, :, -1], axis=0))

    def cdf(k: np.ndarray) -> np.ndarray:
        return sum(weights[m] * predictive_cdf(quantiles[m], k + 0.5) for m in range(n_members))

    for j, tau in enumerate(QUANTILES):
        low, high = np.full(n_rows, -1.0), top.copy()  # F(low) < tau <= F(high)
        while np.any(high - low > 1):
            middle = np.floor((low + high) / 2.0)
            enough = cdf(middle) >= tau - 1e-12
            high = np.where(enough, middle, high)
            low = np.where(enough, low, middle)
        out[:, j] = high
    return out


def crps_weights(quantiles: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Convex member weights minimising the mean quantile CRPS of the weighted quantile average.

    ``quantiles`` is (n_rows, n_members, n_levels), ``y`` (n_rows,). The CRPS of the 7
    quantiles is a sum of pinball losses, linear in the weights but for the kinks, so the
    problem is the linear programme of quantile regression with the weights on the simplex:
    minimise ``sum_r sum_k tau_k u_rk + (1 - tau_k) v_rk`` subject to
    ``y_r - sum_m w_m q_rmk = u_rk - v_rk``, ``u, v, w >= 0``, ``sum_m w_m = 1``. Equal weights
    when there are no rows or the solver fails.
    """
    n, k, levels = quantiles.shape
    if n == 0:
        return np.full(k, 1.0 / k)
    tau = np.repeat(np.asarray(QUANTILES, dtype=float)[None, :], n, axis=0).reshape(-1)  # row-major (r, level)
    x = sparse.csr_matrix(quantiles.transpose(0, 2, 1).reshape(n * levels, k))
    eye = sparse.identity(n * levels, format="csr")
    a_eq = sparse.vstack([sparse.hstack([x, eye, -eye]),
                          sparse.csr_matrix(np.r_[np.ones(k), np.zeros(2 * n * levels)][None, :])]).tocsr()
    b_eq = np.r_[np.repeat(np.asarray(y, dtype=float), levels), 1.0]
    cost = np.r_[np.zeros(k), tau, 1.0 - tau] / (n * levels)
    solved = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if not solved.success:
        return np.full(k, 1.0 / k)
    return np.maximum(solved.x[:k], 0.0)
