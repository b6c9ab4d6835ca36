"""Ensemble: members combined with weights from their own recent backtest scores.

At every fit the ensemble runs a small rolling-origin backtest of its members *inside* the
history it is given (origins from ``eval_months`` before the origin, every ``eval_step``
months, scored only on target months up to the origin), turns each member's mean CRPS into a
weight, then fits every member on the whole history. Forecasts are the weighted average of the
members' means and of their quantiles (quantile averaging, "Vincentization", which keeps the
quantiles monotone). The weights therefore come from data up to the origin only.

It sits above :mod:`forecast.evaluation` (not in :mod:`forecast.models`) because it is built
on the rolling-origin backtest: the models never import the evaluation that judges them.

Weighting (``weighting``): ``"inverse"`` (weight proportional to CRPS ** -power, the
default; ``power`` sharpens the preference for the members that have been doing best),
``"best"`` (all weight on the member with the lowest CRPS) or ``"equal"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import forecast.models  # noqa: F401  (registers the member models)
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
from forecast.schema import QUANTILE_COLUMNS

DEFAULT_MEMBERS = ("random_forest", "croston", "ets", "moving_average", "locf_negbin")


@register
class Ensemble(Forecaster):
    """Weighted quantile average of member models, weights from their in-sample backtest."""

    name = "ensemble"
    summary = "weighted quantile average of members, weights from their recent backtest CRPS"
    uses_covariates = True
    cost = 20  # its in-history backtest; the members' own fits are shared

    def __init__(self, members: tuple[str, ...] = DEFAULT_MEMBERS, weighting: str = "inverse",
                 power: float = 4.0, eval_months: int = 24, eval_step: int = 3, eval_horizon: int = 6):
        self.members = members
        self.weighting = weighting
        self.power = power
        self.eval_months = eval_months
        self.eval_step = eval_step
        self.eval_horizon = eval_horizon

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
        if self.weighting not in ("inverse", "best", "equal"):
            raise ModelError(f"ensemble: weighting must be inverse, best or equal, got {self.weighting!r}")
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
        for name in ("eval_months", "eval_step", "eval_horizon"):
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
        origin = history["month"].max()
        first = history["month"].min()
        start = max(origin - self.eval_months, first + 24)
        end = origin - 1
        if self.weighting == "equal" or len(self.member_names()) == 1 or start > end:
            scores = pd.Series(1.0, index=list(self.member_names()))
        else:
            design = BacktestDesign(start=start, end=end, step=self.eval_step, horizon=self.eval_horizon,
                                    refit_every=10**6)
            panel = history.rename(columns={"y": "incidents"})
            bt = run_backtest(panel, factories, design, target="incidents", progress=False)
            bt = bt[bt["y"].notna()]
            scores = bt.assign(crps=crps(bt)).groupby("model")["crps"].mean().reindex(list(self.member_names()))
        if self.weighting == "best":
            weights = (scores == scores.min()).astype(float)
        elif self.weighting == "inverse":
            weights = np.maximum(scores, 1e-9) ** -float(self.power)
        else:
            weights = pd.Series(1.0, index=scores.index)
        self.member_scores_ = scores
        self.weights_ = weights / weights.sum()
        self.models_ = {m: factories[m]().fit(history) for m in self.member_names()}
        for model in self.models_.values():
            # Fit the members' horizons up to eval_horizon now, inside the memo (a direct
            # model fits a horizon when first asked for it, on the fit-time history, so the
            # estimates are those a later predict would make).
            model.predict(self.eval_horizon, None if not model.uses_future_covariates else
                          hold_last_value(history, self.eval_horizon))

    def _update(self, history: pd.DataFrame) -> None:
        for model in self.models_.values():
            model.update(history)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        mean = None
        quantiles = None
        frame = None
        for name, model in self.models_.items():
            pred = model.predict(horizon, future if model.uses_future_covariates else None)
            w = self.weights_[name]
            mean = w * pred["mean"].to_numpy() if mean is None else mean + w * pred["mean"].to_numpy()
            q = pred[list(QUANTILE_COLUMNS)].to_numpy()
            quantiles = w * q if quantiles is None else quantiles + w * q
            frame = pred
        return prediction_frame(frame["unit"], frame["month"], frame["horizon"], mean, quantiles)
