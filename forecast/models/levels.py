"""Two level models that are members of the combination (:mod:`forecast.ensemble`).

* ``long_run_mean``: each unit's mean over its last ``window`` months (five years by
  default), negative binomial with the unit's maximum-likelihood dispersion around it. In a
  steady regime the long mean is the best estimate of the level; after a change it is the
  slowest to follow, which is why it is a member and not a model to use alone.
* ``ses_trend``: the level of ``ses_negbin`` moved by the panel's recent national trend,
  damped. Conflict counts fall and rise for months at a time (an offensive, a surge); a
  level carried forward then lags behind every month, and the national trend over the last
  ``months`` months, shared by every unit, says which way the counts are moving with less
  noise than a unit's own. Damping (``damping``) and a cap on the trend (``cap``) keep a short
  spell from being extrapolated far.

Both are vectorised over units (a fit is a few passes over the months x units count matrix)
and work from 2 months of history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.models.base import Forecaster, ModelError, negbin_quantiles, register
from forecast.models.baselines import count_matrix, grid_frame
from forecast.models.params import check_int, is_real
from forecast.models.smoothing import SesNegbin, negbin_ml_alpha


@register
class LongRunMean(Forecaster):
    """The unit's mean over its last ``window`` months; negative binomial around it.

    The dispersion is the maximum-likelihood NB2 value of the window's counts around their
    mean (:func:`~forecast.models.smoothing.negbin_ml_alpha`), the same at every horizon.

    Parameters
    ----------
    window : int
        Months averaged (all months when the history is shorter).
    min_alpha : float
        Bottom of the dispersion grid.
    """

    name = "long_run_mean"
    summary = "Mean of each unit's last 60 months, negative binomial with its maximum-likelihood dispersion."
    min_months = 2

    def __init__(self, window: int = 60, min_alpha: float = 0.001) -> None:
        self.window = window
        self.min_alpha = min_alpha

    def _check(self) -> None:
        check_int(self.name, "window", self.window, 1)
        if not is_real(self.min_alpha, 0.0) or not float(self.min_alpha) > 0:
            raise ModelError(f"{self.name}: min_alpha must be a number > 0, got {self.min_alpha!r}")

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, _, _ = count_matrix(history)
        recent = counts[-int(self.window):]
        self.mean_ = recent.mean(axis=0)
        self.alpha_ = negbin_ml_alpha(recent, np.broadcast_to(self.mean_, recent.shape), float(self.min_alpha))

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        mean = np.repeat(self.mean_[:, None], horizon, axis=1)
        q = negbin_quantiles(self.mean_, self.alpha_)
        q[self.mean_ <= 0] = 0.0
        return grid_frame(self.units_, self.origin_, mean, np.repeat(q[:, None, :], horizon, axis=1))


def national_growth(levels: np.ndarray, months: int, cap: float, floor: float) -> np.ndarray:
    """The national level's growth per month over the last ``months`` months, at every month.

    ``levels`` is (n_months, n_units); the national level is their sum. At month t the growth
    is ``((N_t + floor) / (N_(t-months) + floor)) ** (1 / months)``, its ``months``-month
    product capped to ``[1 / cap, cap]``; 1 where t < ``months``. Shape (n_months,).
    """
    national = np.asarray(levels, dtype=float).sum(axis=1)
    growth = np.ones(len(national))
    if len(national) > months:
        ratio = (national[months:] + floor) / (national[:-months] + floor)
        growth[months:] = np.clip(ratio, 1.0 / cap, cap) ** (1.0 / months)
    return growth


@register
class SesTrend(Forecaster):
    """``ses_negbin``'s level times the damped national trend; NB per unit and horizon.

    The mean at horizon h is ``level_T * g ** (phi + phi**2 + ... + phi**h)``, with ``g`` the
    national growth per month over the last ``months`` months (:func:`national_growth`) and
    ``phi`` = ``damping``: the trend fades, and its total effect is bounded by
    ``g ** (phi / (1 - phi))``. The dispersion of each unit and horizon is the
    maximum-likelihood value for the unit's own h-step errors of these trended means over
    the fit months of ``ses_negbin`` (so a trend that has misled before widens the interval).

    Parameters
    ----------
    months : int
        Months over which the national trend is measured.
    damping : float
        Share of the trend carried to each further month, in [0, 1] (0: no trend).
    cap : float
        Largest change of the national level over ``months`` months that is followed
        (and its inverse, the largest fall), >= 1.
    floor : float
        Added to the national levels before the ratio, so that a panel near zero has no trend.
    """

    name = "ses_trend"
    summary = "Exponential smoothing level moved by the damped national trend of the last 6 months; NB."
    min_months = 2

    def __init__(self, months: int = 6, damping: float = 0.8, cap: float = 1.5, floor: float = 0.5) -> None:
        self.months = months
        self.damping = damping
        self.cap = cap
        self.floor = floor

    def _check(self) -> None:
        check_int(self.name, "months", self.months, 1)
        if not is_real(self.damping, 0.0, 1.0):
            raise ModelError(f"{self.name}: damping must be a number from 0 to 1, got {self.damping!r}")
        if not is_real(self.cap, 1.0, 1e6):
            raise ModelError(f"{self.name}: cap must be a number >= 1, got {self.cap!r}")
        if not is_real(self.floor, 0.0) or not float(self.floor) > 0:
            raise ModelError(f"{self.name}: floor must be a number > 0, got {self.floor!r}")

    def trend_exponent(self, h: int) -> float:
        """``phi + phi**2 + ... + phi**h``: the power of the monthly growth at horizon ``h``."""
        return float(sum(float(self.damping) ** i for i in range(1, h + 1)))

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        self.base_ = SesNegbin().fit(history[["unit", "month", "y"]])
        self.fallbacks_ = dict(self.base_.fallbacks_)
        levels = np.maximum(self.base_.levels_, 0.0)  # (n_months, n_units)
        self.levels_ = levels
        self.growth_ = national_growth(levels, int(self.months), float(self.cap), float(self.floor))
        self.mean_ = levels[-1]
        self.dispersion_: dict[int, np.ndarray] = {}

    def horizon_dispersion(self, h: int) -> np.ndarray:
        """Per-unit NB dispersion of the h-step errors of the trended means over the fit months."""
        counts = self.base_.counts_
        n = len(counts)
        h_used = max(1, min(h, n - self.base_.first_))
        if h_used not in self.dispersion_:
            start = self.base_.first_ - 1
            mu = self.levels_[start:n - h_used] * (self.growth_[start:n - h_used] ** self.trend_exponent(h_used))[:, None]
            self.dispersion_[h_used] = negbin_ml_alpha(counts[start + h_used:], mu, self.base_.min_alpha)
        return self.dispersion_[h_used]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        factors = np.array([self.growth_[-1] ** self.trend_exponent(h) for h in range(1, horizon + 1)])
        mean = self.mean_[:, None] * factors[None, :]  # (n_units, horizon)
        quantiles = np.stack([negbin_quantiles(mean[:, h - 1], self.horizon_dispersion(h))
                              for h in range(1, horizon + 1)], axis=1)
        quantiles[mean <= 0] = 0.0
        return grid_frame(self.units_, self.origin_, mean, quantiles)
