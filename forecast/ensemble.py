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
from forecast.evaluation.backtest import BacktestDesign, run_backtest
from forecast.evaluation.scores import crps
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
from forecast.schema import QUANTILE_COLUMNS, QUANTILES

DEFAULT_MEMBERS = ("ses_negbin", "locf_negbin", "moving_average", "hist_bootstrap", "croston")
WEIGHTINGS = ("inverse", "crps", "best", "equal")
#: Forecast rows of the in-history backtest held at once (origins are run in chunks of this).
SCORED_ROWS_PER_CHUNK = 1_000_000


@register
class Ensemble(Forecaster):
    """Weighted quantile average of member models, weights per horizon from their in-history backtest."""

    name = "ensemble"
    summary = "weighted quantile average of members, weights per horizon from their recent backtest CRPS"
    uses_covariates = True
    cost = 3  # its in-history backtest of cheap members; the members' own fits are shared

    def __init__(self, members: tuple[str, ...] = DEFAULT_MEMBERS, weighting: str = "inverse",
                 power: float = 10.0, eval_months: int = 36, eval_step: int = 1, eval_horizon: int = 6,
                 min_eval_history: int = 6):
        self.members = members
        self.weighting = weighting
        self.power = power
        self.eval_months = eval_months
        self.eval_step = eval_step
        self.eval_horizon = eval_horizon
        self.min_eval_history = min_eval_history

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
            scored = self._in_history_scores(history.rename(columns={"y": "incidents"}), factories, design)
            by_h = scored.groupby(["horizon", "model"])["crps"].mean().unstack("model")
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
                "no in-history backtest, equal weights")
        self.horizon_scores_ = scores
        self.horizon_weights_ = horizon_weights(scores, self.weighting, float(self.power), scored)
        overall = self.horizon_weights_.mean(axis=0)
        self.weights_ = overall / overall.sum()
        self.models_ = {m: factories[m]().fit(history) for m in self.member_names()}
        for model in self.models_.values():
            # Fit the members' horizons up to eval_horizon now, inside the memo (a direct
            # model fits a horizon when first asked for it, on the fit-time history, so the
            # estimates are those a later predict would make).
            model.predict(self.eval_horizon, None if not model.uses_future_covariates else
                          hold_last_value(history, self.eval_horizon))

    def _in_history_scores(self, panel: pd.DataFrame, factories: dict, design: BacktestDesign) -> pd.DataFrame:
        """Every member's CRPS at every in-history origin and horizon (rows with a known target).

        Each member is fitted afresh at every in-history origin (what it would forecast had it
        been fitted there), and the origins are backtested a few at a time, keeping only the
        scores (and, for ``"crps"`` weighting, the quantiles), so memory stays at a few
        origins' forecasts however many units there are.
        """
        origins = design.origins()
        n_units = max(int(panel["unit"].nunique()), 1)
        per_chunk = max(1, SCORED_ROWS_PER_CHUNK // (n_units * int(self.eval_horizon) * len(factories)))
        keep = ["horizon", "model", "crps"]
        if self.weighting == "crps":
            keep = ["unit", "origin", "horizon", "model", "y", *QUANTILE_COLUMNS, "crps"]
        parts = []
        for i in range(0, len(origins), per_chunk):
            chunk = origins[i:i + per_chunk]
            part = BacktestDesign(start=chunk[0], end=chunk[-1], step=design.step, horizon=design.horizon,
                                  refit_every=1)
            bt = run_backtest(panel, factories, part, target="incidents", progress=False)
            bt = bt[bt["y"].notna()]
            parts.append(bt.assign(crps=crps(bt))[keep])
        return pd.concat(parts, ignore_index=True)

    def _update(self, history: pd.DataFrame) -> None:
        for model in self.models_.values():
            model.update(history)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        mean = None
        quantiles = None
        frame = None
        table = self.horizon_weights_
        for name, model in self.models_.items():
            pred = model.predict(horizon, future if model.uses_future_covariates else None)
            steps = np.minimum(pred["horizon"].to_numpy(dtype=int), len(table)) - 1
            w = table[name].to_numpy(dtype=float)[steps]
            mean = w * pred["mean"].to_numpy() if mean is None else mean + w * pred["mean"].to_numpy()
            q = pred[list(QUANTILE_COLUMNS)].to_numpy()
            quantiles = w[:, None] * q if quantiles is None else quantiles + w[:, None] * q
            frame = pred
        return prediction_frame(frame["unit"], frame["month"], frame["horizon"], mean, quantiles)


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
