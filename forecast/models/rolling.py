"""What a cheap model would forecast at many origins, from one pass over the count matrix.

A combination (:mod:`forecast.ensemble`) scores its members at every origin of a trailing
in-history window before each forecast: 36 origins x 6 members, each an ordinary fit and
predict on the history cut at that origin. For the members below the fit is a few array
operations, and nearly all of that cost was building and checking data frames; here the
forecasts of every origin come out of the count matrix directly, as arrays.

:func:`rolling_forecasts` returns exactly what ``fit(history cut at the origin).predict(h)``
returns (the same floating-point operations in the same order, then the clipping and sorting
of :func:`~forecast.models.base.prediction_frame`), which ``tests/test_rolling.py`` checks for
every model here at every origin of real and synthetic panels; it returns None for any other
model, or when a history is too short for the shortcut, and the caller fits the model.

Covered: ``hist_bootstrap``, ``moving_average``, ``locf_negbin``, ``long_run_mean``,
``ses_negbin`` and ``ses_trend``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from forecast.models.baselines import HistBootstrap, LocfNegbin, MovingAverage, cameron_trivedi_alpha
from forecast.models.base import Forecaster, negbin_quantiles
from forecast.models.levels import LongRunMean, SesTrend, national_growth
from forecast.models.smoothing import (
    INIT_MONTHS,
    ML_GRID_MAX,
    ML_GRID_POINTS,
    SMOOTHING_GRID,
    SesNegbin,
    negbin_ml_alpha,
)
from forecast.schema import QUANTILES

__all__ = ["rolling_forecasts"]


def rolling_forecasts(model: Forecaster, counts: np.ndarray, ends: Sequence[int],
                      horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The forecasts of ``model`` fitted on ``counts[:e + 1]`` for each ``e`` in ``ends``.

    Parameters
    ----------
    model
        An unfitted model; only its type and hyperparameters are used.
    counts
        The history as a (n_months, n_units) matrix (:func:`~forecast.models.baselines.count_matrix`).
    ends
        Row indices of the origins.
    horizon
        Months ahead.

    Returns
    -------
    (mean, quantiles) or None
        Shapes (n_origins, n_units, horizon) and (n_origins, n_units, horizon, 7); None when
        ``model`` has no shortcut here or a history is too short for it.
    """
    ends = [int(e) for e in ends]
    kind = type(model)
    if kind in (SesNegbin, SesTrend) and min(ends) + 1 < INIT_MONTHS:
        return None  # the level starts from fewer months than every longer history's
    compute = _SHORTCUTS.get(kind)
    if compute is None or not ends:
        return None
    mean, quantiles = compute(model, np.asarray(counts, dtype=float), ends, int(horizon))
    return np.clip(mean, 0.0, None), np.sort(np.clip(quantiles, 0.0, None), axis=-1)


def _same_every_horizon(mean: np.ndarray, quantiles: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-origin (n_origins, n_units) and (n_origins, n_units, 7) -> every horizon."""
    return (np.repeat(mean[:, :, None], horizon, axis=2),
            np.repeat(quantiles[:, :, None, :], horizon, axis=2))


def _hist_bootstrap(model: HistBootstrap, counts, ends, horizon):
    recent = [counts[:e + 1][-int(model.window):] for e in ends]
    mean = np.stack([r.mean(axis=0) for r in recent])
    quantiles = np.stack([np.quantile(r, QUANTILES, axis=0).T for r in recent])
    return _same_every_horizon(mean, quantiles, horizon)


def _moving_average(model: MovingAverage, counts, ends, horizon):
    means, quantiles = [], []
    min_alpha = float(model.min_alpha)
    for e in ends:
        recent = counts[:e + 1][-int(model.window):]
        mean = recent.mean(axis=0)
        var = recent.var(axis=0, ddof=1) if len(recent) > 1 else np.zeros(recent.shape[1])
        excess = var - mean
        alpha = np.divide(excess, mean**2, out=np.full(excess.shape, min_alpha), where=mean > 0)
        means.append(mean)
        quantiles.append(negbin_quantiles(mean, np.maximum(alpha, min_alpha)))
    return _same_every_horizon(np.stack(means), np.stack(quantiles), horizon)


def _locf_negbin(model: LocfNegbin, counts, ends, horizon):
    means, quantiles = [], []
    for e in ends:
        recent = counts[:e + 1][-(int(model.window) + 1):]
        alpha = cameron_trivedi_alpha(recent[1:], recent[:-1], float(model.min_alpha))
        means.append(counts[e])
        quantiles.append(negbin_quantiles(counts[e], alpha))
    return _same_every_horizon(np.stack(means), np.stack(quantiles), horizon)


def _long_run_mean(model: LongRunMean, counts, ends, horizon):
    means, quantiles = [], []
    for e in ends:
        recent = counts[:e + 1][-int(model.window):]
        mean = recent.mean(axis=0)
        q = negbin_quantiles(mean, negbin_ml_alpha(recent, np.broadcast_to(mean, recent.shape), float(model.min_alpha)))
        q[mean <= 0] = 0.0
        means.append(mean)
        quantiles.append(q)
    return _same_every_horizon(np.stack(means), np.stack(quantiles), horizon)


class _SesPaths:
    """The levels of every smoothing constant over the whole history, and each one's one-step
    squared errors, computed as :func:`~forecast.models.smoothing.one_step_errors` computes
    them, so that a history cut at any origin (of at least ``INIT_MONTHS`` months, whose
    level starts from the same months) picks the same constant and the same levels."""

    def __init__(self, counts: np.ndarray):
        alphas = np.asarray(SMOOTHING_GRID, dtype=float)[:, None]
        level = np.repeat(counts[:INIT_MONTHS].mean(axis=0)[None, :], len(alphas), axis=0)
        self.errors = np.empty((len(counts), len(alphas)))
        self.levels = np.empty((len(alphas), *counts.shape))  # (alphas, months, units)
        for t in range(len(counts)):
            self.errors[t] = ((counts[t] - level) ** 2).sum(axis=1)
            level = level + alphas * (counts[t] - level)
            self.levels[:, t] = level

    def fit(self, n: int, fit_months: int) -> tuple[int, int]:
        """Index of the smoothing constant and the first error month of ``ses_negbin`` on the
        first ``n`` months (its levels are ``self.levels[index, :n]``)."""
        first = max(INIT_MONTHS if n >= 2 * INIT_MONTHS else 1, n - int(fit_months))
        total = np.zeros(self.errors.shape[1])
        for t in range(first, n):  # one month at a time, as one_step_errors adds them
            total += self.errors[t]
        return int(np.argmin(total)), first


class _MlWindows:
    """:func:`~forecast.models.smoothing.negbin_ml_alpha` of many windows of the same pairs.

    The pairs are ``y[t]`` and ``mu[t]`` (rows t, columns units); a window is rows
    ``start..stop - 1``. The log-likelihood of every pair at every grid point is computed
    once, by the same expression as ``negbin_ml_alpha`` (so element by element the same
    floats), and a window's sums are those of its rows, added in the same order.
    """

    def __init__(self, y: np.ndarray, mu: np.ndarray, min_alpha: float):
        mu = np.maximum(mu, 1e-6)
        self.grid = np.geomspace(float(min_alpha), max(ML_GRID_MAX, float(min_alpha)), ML_GRID_POINTS)
        constant = gammaln(y + 1)
        self.ll = np.stack([gammaln(y + r) - gammaln(r) - constant + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))
                            for r in 1.0 / self.grid])  # (grid, rows, units)

    def alpha(self, start: int, stop: int) -> np.ndarray:
        best = np.full(self.ll.shape[2], self.grid[0])
        best_ll = np.full(self.ll.shape[2], -np.inf)
        for alpha, ll in zip(self.grid, self.ll[:, start:stop].sum(axis=1)):
            better = ll > best_ll
            best = np.where(better, alpha, best)
            best_ll = np.where(better, ll, best_ll)
        return best


class _Dispersions:
    """The per-unit dispersion of ``ses_negbin`` (or ``ses_trend``) at horizon ``h``, for every
    origin: the pairs ``(y[t + h], mean of t)`` of one smoothing constant are the same at every
    origin, only the window of rows moves."""

    def __init__(self, counts: np.ndarray, method: str, min_alpha: float):
        self.counts, self.method, self.min_alpha = counts, method, float(min_alpha)
        self.windows: dict = {}

    def get(self, key, means: np.ndarray, h: int, start: int, n: int) -> np.ndarray:
        """Dispersion of the pairs ``counts[t + h]``, ``means[t]`` for t in ``start..n - h - 1``."""
        if self.method != "ml":
            return cameron_trivedi_alpha(self.counts[start + h:n], means[start:n - h], self.min_alpha)
        if (key, h) not in self.windows:
            self.windows[key, h] = _MlWindows(self.counts[h:], means[:len(self.counts) - h], self.min_alpha)
        return self.windows[key, h].alpha(start, n - h)


def _ses_negbin(model: SesNegbin, counts, ends, horizon):
    paths = _SesPaths(counts)
    dispersions = _Dispersions(counts, model.dispersion, model.min_alpha)
    means, quantiles = [], []
    for e in ends:
        n = e + 1
        index, first = paths.fit(n, int(model.fit_months))
        mean = np.maximum(paths.levels[index, e], 0.0)
        clipped = np.maximum(paths.levels[index], 0.0)
        per_h = {}
        rows = []
        for h in range(1, horizon + 1):
            h_used = min(h, n - first)
            if h_used not in per_h:
                per_h[h_used] = dispersions.get(index, clipped, h_used, first - 1, n)
            rows.append(negbin_quantiles(mean, per_h[h_used]))
        q = np.stack(rows, axis=1)  # (units, horizon, 7)
        q[mean <= 0] = 0.0
        means.append(np.repeat(mean[:, None], horizon, axis=1))
        quantiles.append(q)
    return np.stack(means), np.stack(quantiles)


def _ses_trend(model: SesTrend, counts, ends, horizon):
    paths = _SesPaths(counts)
    base = SesNegbin()
    dispersions = _Dispersions(counts, "ml", base.min_alpha)
    trended: dict = {}
    means, quantiles = [], []
    for e in ends:
        n = e + 1
        index, first = paths.fit(n, int(base.fit_months))
        if index not in trended:
            # Growth at t uses levels up to t only, so one pass serves every origin.
            levels = np.maximum(paths.levels[index], 0.0)
            growth = national_growth(levels, int(model.months), float(model.cap), float(model.floor))
            trended[index] = (levels, growth)
        levels, growth = trended[index]
        per_h = {}
        mean = np.empty((counts.shape[1], horizon))
        rows = []
        for h in range(1, horizon + 1):
            mean[:, h - 1] = levels[e] * growth[e] ** model.trend_exponent(h)
            h_used = max(1, min(h, n - first))
            if h_used not in per_h:
                mu = levels * (growth ** model.trend_exponent(h_used))[:, None]
                per_h[h_used] = dispersions.get((index, h_used), mu, h_used, first - 1, n)
            rows.append(negbin_quantiles(mean[:, h - 1], per_h[h_used]))
        q = np.stack(rows, axis=1)
        q[mean <= 0] = 0.0
        means.append(mean)
        quantiles.append(q)
    return np.stack(means), np.stack(quantiles)


_SHORTCUTS = {
    HistBootstrap: _hist_bootstrap,
    MovingAverage: _moving_average,
    LocfNegbin: _locf_negbin,
    LongRunMean: _long_run_mean,
    SesNegbin: _ses_negbin,
    SesTrend: _ses_trend,
}
