"""Croston, SBA and TSB for intermittent series (``croston``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.models.base import (
    Forecaster,
    ModelError,
    negbin_quantiles,
    register,
)
from forecast.models.baselines import cameron_trivedi_alpha, count_matrix, grid_frame
from forecast.models.common import check_choice, check_same_units, is_real

#: Variants of :func:`intermittent_recursion`.
INTERMITTENT_METHODS = ("croston", "sba", "tsb")


def intermittent_recursion(counts: np.ndarray, method: str, alpha: float, beta: float,
                           size0: np.ndarray, prob0: np.ndarray) -> np.ndarray:
    """One-step forecasts of Croston's method, SBA or TSB, vectorised over units.

    Parameters
    ----------
    counts
        (n_months, n_units).
    method
        ``"croston"`` (Croston 1972): on a month with events the size ``z += alpha (y - z)``
        and the interval ``x += beta (q - x)``, where q counts the months since the previous
        event (1 for consecutive months; the first interval counts from month 0 as 1);
        forecast ``z / x``. ``"sba"`` (Syntetos and Boylan 2005): Croston times
        ``1 - beta / 2``. ``"tsb"`` (Teunter, Syntetos and Babai 2011): every month the
        probability ``p += beta (1[y > 0] - p)``; on a month with events ``z += alpha (y - z)``;
        forecast ``p z``.
    alpha, beta
        Smoothing constants of size and of interval (Croston, SBA) or probability (TSB).
    size0, prob0
        (n_units,) initial size and probability of an event (Croston's interval starts at
        ``1 / prob0``); a unit with ``prob0 = 0`` has forecast 0 until its first event.

    Returns
    -------
    numpy.ndarray
        Shape (n_months + 1, n_units): row t is the forecast of month t made after months
        0..t-1 (row 0 from the initial states, the last row the forecast after the history).
    """
    counts = np.asarray(counts, dtype=float)
    n_months, n_units = counts.shape
    z = np.asarray(size0, dtype=float).copy()
    p = np.asarray(prob0, dtype=float).copy()
    out = np.empty((n_months + 1, n_units))
    if method == "tsb":
        for t in range(n_months):
            out[t] = p * z
            event = counts[t] > 0
            p += beta * (event - p)
            z = np.where(event, z + alpha * (counts[t] - z), z)
        out[n_months] = p * z
        return out
    factor = 1 - beta / 2 if method == "sba" else 1.0
    interval = np.divide(1.0, p, out=np.full(n_units, np.inf), where=p > 0)
    since = np.ones(n_units)
    for t in range(n_months):
        out[t] = np.divide(factor * z, interval, out=np.zeros(n_units), where=np.isfinite(interval))
        event = counts[t] > 0
        # A unit's first event (infinite interval) sets the interval to the months waited.
        updated = np.where(np.isfinite(interval), interval + beta * (since - interval), since)
        interval = np.where(event, updated, interval)
        z = np.where(event, z + alpha * (counts[t] - z), z)
        since = np.where(event, 1.0, since + 1.0)
    out[n_months] = np.divide(factor * z, interval, out=np.zeros(n_units), where=np.isfinite(interval))
    return out


@register
class Croston(Forecaster):
    """Croston's method, SBA or TSB for intermittent series, per unit.

    Method: the recursion of :func:`intermittent_recursion`, implemented here in NumPy and
    vectorised over units (statsmodels has no Croston). Initial states from the fit history:
    size = mean of the unit's positive counts, probability = share of months with events
    (interval = its inverse). The point forecast is flat over horizons.

    Predictive distribution: negative binomial around the point forecast with a per-unit
    dispersion estimated from the in-sample one-step forecasts (months 1..T-1) by
    :func:`~forecast.models.baselines.cameron_trivedi_alpha`, floored at
    ``min_dispersion``; the same at every horizon (the method has no model of how
    uncertainty grows with the horizon).

    ``update`` re-runs the recursion on the longer history from the fitted initial states,
    keeping the dispersion.

    Parameters
    ----------
    method : {"tsb", "croston", "sba"}
    alpha : float
        Smoothing of the event size, in (0, 1].
    beta : float
        Smoothing of the event probability (TSB) or inter-event interval (Croston, SBA).
    min_dispersion : float
        Floor of the NB dispersion.
    """

    name = "croston"
    summary = "Croston / SBA / TSB smoothing of event size and frequency, negative binomial intervals."

    def __init__(self, method: str = "tsb", alpha: float = 0.1, beta: float = 0.1,
                 min_dispersion: float = 0.01) -> None:
        self.method = method
        self.alpha = alpha
        self.beta = beta
        self.min_dispersion = min_dispersion

    def _check(self) -> None:
        check_choice(self.name, "method", self.method, INTERMITTENT_METHODS)
        for name in ("alpha", "beta"):
            if not is_real(getattr(self, name), 0.0, 1.0) or getattr(self, name) == 0:
                raise ModelError(f"{self.name}: {name} must be in (0, 1], got {getattr(self, name)!r}")
        if not is_real(self.min_dispersion, 0.0) or self.min_dispersion == 0:
            raise ModelError(f"{self.name}: min_dispersion must be > 0, got {self.min_dispersion!r}")

    def _run(self, counts: np.ndarray) -> np.ndarray:
        return intermittent_recursion(counts, self.method, float(self.alpha), float(self.beta), self.size0_,
                                      self.prob0_)

    def _fit(self, history: pd.DataFrame) -> None:
        self._check()
        counts, units, _ = count_matrix(history)
        events = counts > 0
        n_events = events.sum(axis=0)
        self.size0_ = np.divide(np.where(events, counts, 0).sum(axis=0), n_events, out=np.zeros(len(units)),
                                where=n_events > 0)
        self.prob0_ = n_events / len(counts)
        path = self._run(counts)
        if len(counts) > 1:
            self.dispersion_ = cameron_trivedi_alpha(counts[1:], path[1:-1], float(self.min_dispersion))
        else:
            self.dispersion_ = np.full(len(units), float(self.min_dispersion))
        self.forecast_ = path[-1]

    def _update(self, history: pd.DataFrame) -> None:
        counts, units, _ = count_matrix(history)
        check_same_units(self.name, self.units_, units)
        self.forecast_ = self._run(counts)[-1]

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        q = negbin_quantiles(self.forecast_, self.dispersion_)
        mean = np.repeat(self.forecast_[:, None], horizon, axis=1)
        return grid_frame(self.units_, self.origin_, mean, np.repeat(q[:, None, :], horizon, axis=1))
