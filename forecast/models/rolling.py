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

:func:`rolling_blocks` gives the same forecasts a block of units at a time, so that memory is
bounded by the block, not the panel: what the models pool across units (the smoothing
constant of ``ses_negbin``, the national trend of ``ses_trend``) is computed once from every
unit, the rest (levels, the dispersions' likelihood grids, the quantiles) block by block. Every
unit's numbers are computed element by element as in the whole panel, so the blocks put
together are the forecasts of the whole panel, bit for bit.

Covered: ``hist_bootstrap``, ``moving_average``, ``locf_negbin``, ``long_run_mean``,
``ses_negbin`` and ``ses_trend``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
    smoothed_levels,
)
from forecast.schema import QUANTILES

__all__ = ["BLOCK_UNITS", "rolling_blocks", "rolling_forecasts"]

#: Units per block of :func:`rolling_blocks`. A block's dispersion likelihoods (40 grid points
#: x about 100 months x these units, per horizon and smoothing constant) take about 8 MB; at
#: 13,000 units, blocks of 250 took the default model's predict from 1.67 GB peak to 1.23 GB
#: against blocks of 1,000 (the panel load's own peak is 1.1 GB), at no cost in CPU.
BLOCK_UNITS = 250

Blocks = Iterator[tuple[slice, np.ndarray, np.ndarray]]


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
    counts = np.asarray(counts, dtype=float)
    blocks = rolling_blocks(model, counts, ends, horizon, block_units=max(1, counts.shape[1]))
    if blocks is None:
        return None
    parts = list(blocks)
    if not parts:  # no units
        return (np.empty((len(ends), 0, int(horizon))), np.empty((len(ends), 0, int(horizon), len(QUANTILES))))
    return parts[0][1], parts[0][2]


def rolling_blocks(model: Forecaster, counts: np.ndarray, ends: Sequence[int], horizon: int,
                   block_units: int = BLOCK_UNITS) -> Blocks | None:
    """:func:`rolling_forecasts` of ``block_units`` units (columns of ``counts``) at a time.

    Returns None where :func:`rolling_forecasts` does, else an iterator of ``(columns, mean,
    quantiles)``: ``columns`` a slice of the units, ``mean`` and ``quantiles`` shaped as
    :func:`rolling_forecasts`'s with that block's units. Only one block's arrays (and the
    quantities pooled across units) are held at a time.
    """
    ends = [int(e) for e in ends]
    kind = type(model)
    if kind in (SesNegbin, SesTrend) and ends and min(ends) + 1 < INIT_MONTHS:
        return None  # the level starts from fewer months than every longer history's
    compute = _SHORTCUTS.get(kind)
    if compute is None or not ends:
        return None
    if isinstance(block_units, bool) or not isinstance(block_units, (int, np.integer)) or block_units < 1:
        raise ValueError(f"rolling_blocks: block_units must be a whole number >= 1, got {block_units!r}")
    counts = np.asarray(counts, dtype=float)
    pool = _POOLED.get(kind)
    pooled = None if pool is None else pool(model, counts, ends)
    return _blocks(compute, model, counts, ends, int(horizon), pooled, int(block_units))


def _blocks(compute, model, counts, ends, horizon, pooled, block_units) -> Blocks:
    n_units = counts.shape[1]
    for first in range(0, n_units, block_units):
        columns = slice(first, min(first + block_units, n_units))
        mean, quantiles = compute(model, counts[:, columns], ends, horizon, pooled)
        yield columns, np.clip(mean, 0.0, None), np.sort(np.clip(quantiles, 0.0, None), axis=-1)


def _same_every_horizon(mean: np.ndarray, quantiles: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-origin (n_origins, n_units) and (n_origins, n_units, 7) -> every horizon."""
    return (np.repeat(mean[:, :, None], horizon, axis=2),
            np.repeat(quantiles[:, :, None, :], horizon, axis=2))


def _hist_bootstrap(model: HistBootstrap, counts, ends, horizon, pooled):
    recent = [counts[:e + 1][-int(model.window):] for e in ends]
    mean = np.stack([r.mean(axis=0) for r in recent])
    quantiles = np.stack([np.quantile(r, QUANTILES, axis=0).T for r in recent])
    return _same_every_horizon(mean, quantiles, horizon)


def _moving_average(model: MovingAverage, counts, ends, horizon, pooled):
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


def _locf_negbin(model: LocfNegbin, counts, ends, horizon, pooled):
    means, quantiles = [], []
    for e in ends:
        recent = counts[:e + 1][-(int(model.window) + 1):]
        alpha = cameron_trivedi_alpha(recent[1:], recent[:-1], float(model.min_alpha))
        means.append(counts[e])
        quantiles.append(negbin_quantiles(counts[e], alpha))
    return _same_every_horizon(np.stack(means), np.stack(quantiles), horizon)


def _long_run_mean(model: LongRunMean, counts, ends, horizon, pooled):
    window = int(model.window)
    low = max(0, min(ends) + 1 - window)
    likelihood = _MeanWindows(counts[low:max(ends) + 1], float(model.min_alpha), low)
    means, quantiles = [], []
    for e in ends:
        start = max(0, e + 1 - window)  # the rows of counts[:e + 1][-window:]
        mean = counts[start:e + 1].mean(axis=0)
        q = negbin_quantiles(mean, likelihood.alpha(start, e + 1, mean))
        q[mean <= 0] = 0.0
        means.append(mean)
        quantiles.append(q)
    return _same_every_horizon(np.stack(means), np.stack(quantiles), horizon)


class _MeanWindows:
    """:func:`~forecast.models.smoothing.negbin_ml_alpha` of windows of the counts around
    each window's own mean (``long_run_mean``'s dispersion at every origin).

    The terms of the log-likelihood that do not involve the mean (the three ``gammaln``, most
    of its cost) are computed once per row and grid point for every window; the rest per
    window, by the same expression as ``negbin_ml_alpha`` (on the window's mean, which is the
    same number in every row), so element by element the same floats, added in the same order.
    """

    def __init__(self, y: np.ndarray, min_alpha: float, offset: int):
        self.y, self.offset = y, offset
        self.grid = np.geomspace(float(min_alpha), max(ML_GRID_MAX, float(min_alpha)), ML_GRID_POINTS)
        constant = gammaln(y + 1)
        self.fixed = np.empty((len(self.grid), *y.shape))  # (grid, rows, units)
        for i, r in enumerate(1.0 / self.grid):
            self.fixed[i] = gammaln(y + r) - gammaln(r) - constant

    def alpha(self, start: int, stop: int, mean: np.ndarray) -> np.ndarray:
        rows = slice(start - self.offset, stop - self.offset)
        y = self.y[rows]
        mu = np.maximum(mean, 1e-6)
        best = np.full(len(mu), self.grid[0])
        best_ll = np.full(len(mu), -np.inf)
        for alpha, r, fixed in zip(self.grid, 1.0 / self.grid, self.fixed):
            ll = (fixed[rows] + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))).sum(axis=0)
            better = ll > best_ll
            best = np.where(better, alpha, best)
            best_ll = np.where(better, ll, best_ll)
        return best


def _smoothing_fits(counts: np.ndarray, ends: list[int], fit_months: int) -> list[tuple[int, int]]:
    """For each origin, the index of the smoothing constant ``ses_negbin`` picks on the first
    ``e + 1`` months (pooled over every unit) and its first error month.

    The one-step squared errors are summed over units month by month as
    :func:`~forecast.models.smoothing.one_step_errors` sums them, for every constant at once
    (memory: constants x units), and a history cut at an origin (of at least ``INIT_MONTHS``
    months, whose level starts from the same months) adds the same months' sums.
    """
    alphas = np.asarray(SMOOTHING_GRID, dtype=float)[:, None]
    level = np.repeat(counts[:INIT_MONTHS].mean(axis=0)[None, :], len(alphas), axis=0)
    errors = np.empty((len(counts), len(alphas)))
    for t in range(len(counts)):
        errors[t] = ((counts[t] - level) ** 2).sum(axis=1)
        level = level + alphas * (counts[t] - level)
    fits = []
    for e in ends:
        n = e + 1
        first = max(INIT_MONTHS if n >= 2 * INIT_MONTHS else 1, n - int(fit_months))
        total = np.zeros(len(alphas))
        for t in range(first, n):  # one month at a time, as one_step_errors adds them
            total += errors[t]
        fits.append((int(np.argmin(total)), first))
    return fits


def _ses_pooled(model: SesNegbin, counts, ends):
    return _smoothing_fits(counts, ends, int(model.fit_months))


def _trend_pooled(model: SesTrend, counts, ends):
    """The smoothing fits of the base ``ses_negbin`` and, per constant used, the national
    growth of its levels (a sum over every unit, as the model's fit sums them)."""
    fits = _smoothing_fits(counts, ends, int(SesNegbin().fit_months))
    growth = {}
    for index in sorted({index for index, _ in fits}):
        levels = np.maximum(smoothed_levels(counts, SMOOTHING_GRID[index]), 0.0)
        growth[index] = national_growth(levels, int(model.months), float(model.cap), float(model.floor))
    return fits, growth


class _MlWindows:
    """:func:`~forecast.models.smoothing.negbin_ml_alpha` of many windows of the same pairs.

    ``ll`` is the log-likelihood (grid, rows, units) of every pair at every point of ``grid``
    for rows ``offset..``, computed by the same expression as ``negbin_ml_alpha`` (so element
    by element the same floats); a window is rows ``start..stop - 1``, and its sums are those
    of its rows, added in the same order.
    """

    def __init__(self, ll: np.ndarray, grid: np.ndarray, offset: int):
        self.ll, self.grid, self.offset = ll, grid, offset

    def alpha(self, start: int, stop: int) -> np.ndarray:
        best = np.full(self.ll.shape[2], self.grid[0])
        best_ll = np.full(self.ll.shape[2], -np.inf)
        for alpha, ll in zip(self.grid, self.ll[:, start - self.offset:stop - self.offset].sum(axis=1)):
            better = ll > best_ll
            best = np.where(better, alpha, best)
            best_ll = np.where(better, ll, best_ll)
        return best


class _Dispersions:
    """The per-unit dispersion of ``ses_negbin`` (or ``ses_trend``) at horizon ``h``, for every
    origin: the pairs ``(y[t + h], mean of t)`` of one smoothing constant are the same at every
    origin, only the window of rows moves. Windows start at row ``low`` or later and end by
    row ``high``, at horizons up to ``horizon``: only those rows' likelihoods are computed.

    The likelihood's terms in the counts alone (two ``gammaln``, most of its cost) are computed
    once for every key and horizon; with ``same_means`` (the means of a key are the same at
    every horizon: ``ses_negbin``'s levels) so are its terms in the means alone.
    """

    def __init__(self, counts: np.ndarray, method: str, min_alpha: float, low: int, high: int, horizon: int,
                 same_means: bool = False):
        self.counts, self.method, self.min_alpha = counts, method, float(min_alpha)
        self.low, self.high, self.same_means = low, high, same_means
        self.grid = np.geomspace(self.min_alpha, max(ML_GRID_MAX, self.min_alpha), ML_GRID_POINTS)
        self.first_y, self.last_y = low + 1, min(high + horizon, len(counts))  # rows of y at h = 1..horizon
        self.y_terms: tuple | None = None
        self.mean_terms: dict = {}
        self.windows: dict = {}

    def get(self, key, means: np.ndarray, h: int, start: int, n: int) -> np.ndarray:
        """Dispersion of the pairs ``counts[t + h]``, ``means[t]`` for t in ``start..n - h - 1``."""
        if self.method != "ml":
            return cameron_trivedi_alpha(self.counts[start + h:n], means[start:n - h], self.min_alpha)
        if (key, h) not in self.windows:
            self.windows[key, h] = _MlWindows(self._likelihood(key, means, h), self.grid, self.low)
        return self.windows[key, h].alpha(start, n - h)

    def _likelihood(self, key, means: np.ndarray, h: int) -> np.ndarray:
        """``negbin_ml_alpha``'s log-likelihood (grid, rows, units) of the pairs ``counts[t + h]``,
        ``means[t]`` for t in ``low..high - 1``: ``gammaln(y + r) - gammaln(r) - gammaln(y + 1)
        + r * log(r / (r + mu)) + y * log(mu / (r + mu))``, term by term in that order."""
        rates = 1.0 / self.grid
        if self.y_terms is None:
            y = self.counts[self.first_y:self.last_y]
            gamma = np.empty((len(rates), *y.shape))
            for i, r in enumerate(rates):
                gamma[i] = gammaln(y + r)
            self.y_terms = gamma, gammaln(y + 1)
        gamma, constant = self.y_terms
        high = min(self.high, len(self.counts) - h)
        rows, y_rows = slice(0, high - self.low), slice(self.low + h - self.first_y, high + h - self.first_y)
        y = self.counts[self.low + h:high + h]
        if self.same_means and key in self.mean_terms:
            rate_terms, log_shares = self.mean_terms[key]
        else:
            mu = np.maximum(means[self.low:self.high if self.same_means else high], 1e-6)
            rate_terms, log_shares = np.empty((len(rates), *mu.shape)), np.empty((len(rates), *mu.shape))
            for i, r in enumerate(rates):
                rate_terms[i] = r * np.log(r / (r + mu))
                log_shares[i] = np.log(mu / (r + mu))
            if self.same_means:
                self.mean_terms[key] = rate_terms, log_shares
        ll = np.empty((len(rates), *y.shape))
        for i, r in enumerate(rates):
            ll[i] = gamma[i, y_rows] - gammaln(r) - constant[y_rows] + rate_terms[i, rows] + y * log_shares[i, rows]
        return ll


class _LevelsBySmoothing(dict):
    """The smoothed levels of ``counts`` (clipped at 0) per index of ``SMOOTHING_GRID``, each made once."""

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__()
        self.counts = counts

    def __missing__(self, index: int) -> np.ndarray:
        self[index] = np.maximum(smoothed_levels(self.counts, SMOOTHING_GRID[index]), 0.0)
        return self[index]


def _ses_negbin(model: SesNegbin, counts, ends, horizon, fits):
    dispersions = _Dispersions(counts, model.dispersion, model.min_alpha,
                               min(first for _, first in fits) - 1, max(ends), horizon, same_means=True)
    levels = _LevelsBySmoothing(counts)
    means, quantiles = [], []
    for e, (index, first) in zip(ends, fits):
        n = e + 1
        clipped = levels[index]
        mean = clipped[e]
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


def _ses_trend(model: SesTrend, counts, ends, horizon, pooled):
    fits, growths = pooled
    dispersions = _Dispersions(counts, "ml", SesNegbin().min_alpha, min(first for _, first in fits) - 1, max(ends),
                               horizon)
    levels = _LevelsBySmoothing(counts)
    means, quantiles = [], []
    for e, (index, first) in zip(ends, fits):
        n = e + 1
        level, growth = levels[index], growths[index]
        per_h = {}
        mean = np.empty((counts.shape[1], horizon))
        rows = []
        for h in range(1, horizon + 1):
            mean[:, h - 1] = level[e] * growth[e] ** model.trend_exponent(h)
            h_used = max(1, min(h, n - first))
            if h_used not in per_h:
                mu = level * (growth ** model.trend_exponent(h_used))[:, None]
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
#: What a model pools across units, computed once from the whole panel before the blocks.
_POOLED = {SesNegbin: _ses_pooled, SesTrend: _trend_pooled}
