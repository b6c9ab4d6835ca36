"""Calibration of count forecasts: the non-randomised PIT of Czado, Gneiting and Held (2009).

The probability integral transform ``F(y)`` of a calibrated continuous forecast is uniform.
For counts it is not (``F`` jumps at every integer), and the randomised PIT, a uniform draw
between ``F(y - 1)`` and ``F(y)``, adds noise. Czado, Gneiting and Held (2009, *Biometrics*
65(4), "Predictive model assessment for count data") use instead the *conditional* PIT
distribution of each forecast-observation pair,

    F(u | y) = 0                                    u <= F(y - 1)
               (u - F(y - 1)) / (F(y) - F(y - 1))   F(y - 1) < u < F(y)
               1                                    u >= F(y)

and average it over the rows: ``Fbar(u) = mean_i F_i(u | y_i)``. For calibrated forecasts
``Fbar(u) = u``; the histogram of ``Fbar`` over ``bins`` equal bins (heights
``f_j = Fbar(j / J) - Fbar((j - 1) / J)``) is flat, U-shaped when the forecasts are too
narrow, hump-shaped when too wide, and tilted when they are biased.

The distance from uniform reported here (:func:`pit_distance`) is the total variation between
that histogram and the flat one, ``0.5 * sum_j |f_j - 1 / J|``: the share of probability that
would have to move to make it flat (0 is calibrated; at most ``1 - 1 / J``).

F(y) from the forecast frame
----------------------------
A forecast frame holds a mean and 7 quantiles, not a CDF. The CDF is read from the
quantiles the way the escalation probability reads it
(:func:`forecast.evaluation.escalation.predictive_cdf`: linear between quantiles, the highest
level where quantiles tie, exponential tails), and the count CDF at ``y`` is that curve at
``y + 1/2``:

    F(y) = G(y + 1/2),   F(y - 1) = G(y - 1/2)   (0 for y = 0).

Why the half: the models' quantiles are quantiles of count distributions, whole numbers, and
a quantile ``q_k = c`` at level ``tau_k`` says only that ``F(c - 1) < tau_k <= F(c)``. ``G``
jumps to ``tau_k`` at ``c`` (the least the quantiles allow for ``F(c)``) and reaches the next
level at the next quantile; half-way between the two integers it sits in the middle of the
range the quantiles allow. Read at ``y`` itself, every ``F(y)`` would be the least value
possible and calibrated forecasts would look biased: on 20,000 Poisson draws with the true
Poisson quantiles (means 0.3, 3, 30 and a gamma mixture), the distance is about 0.11, 0.05,
0.04 and 0.02 with the half against 0.24, 0.15, 0.07 and 0.08 without, while a forecast with
twice the true mean scores 0.14-0.90 (``tests/test_calibration.py``). The mean column is not used:
it does not give the shape of the distribution, and the quantiles do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.evaluation.escalation import predictive_cdf, require_columns
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["PIT_BINS", "pit_bounds", "pit_coverage", "pit_curve", "pit_distance", "pit_histogram"]

#: Bins of the PIT histogram.
PIT_BINS = 10


def pit_bounds(frame: pd.DataFrame) -> np.ndarray:
    """``F(y - 1)`` and ``F(y)`` of each row's count forecast (see the module docstring).

    Parameters
    ----------
    frame
        A backtest frame: the quantile columns and ``y``.

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        Columns ``F(y - 1)``, ``F(y)``; NaN where ``y`` is missing.
    """
    require_columns(frame, [*QUANTILE_COLUMNS, "y"], "pit")
    y = frame["y"].to_numpy(dtype=float)
    q = frame[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)
    upper = predictive_cdf(q, y + 0.5)
    lower = np.where(y - 0.5 < 0, 0.0, predictive_cdf(q, y - 0.5))
    return np.column_stack([lower, upper])


def pit_curve(frame: pd.DataFrame, u) -> np.ndarray:
    """``Fbar(u)``: the mean over rows (with an actual) of the conditional PIT distribution.

    Returns an array of the shape of ``u``; NaN when no row has an actual.
    """
    bounds = pit_bounds(frame)
    bounds = bounds[~np.isnan(bounds).any(axis=1)]
    u = np.asarray(u, dtype=float)
    if len(bounds) == 0:
        return np.full(u.shape, np.nan)
    lower, upper = bounds[:, :1], bounds[:, 1:]
    flat = u.reshape(1, -1)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.clip((flat - lower) / width, 0.0, 1.0)
    # A row whose observed count had no mass (F(y) = F(y - 1)) steps from 0 to 1 there.
    cdf = np.where(width > 0, inside, (flat >= upper).astype(float))
    return cdf.mean(axis=0).reshape(u.shape)


def pit_histogram(frame: pd.DataFrame, bins: int = PIT_BINS) -> np.ndarray:
    """Heights ``f_j`` of the non-randomised PIT histogram over ``bins`` equal bins (they sum to 1)."""
    return np.diff(pit_curve(frame, np.linspace(0.0, 1.0, int(bins) + 1)))


def pit_distance(frame: pd.DataFrame, bins: int = PIT_BINS) -> float:
    """Total variation between the PIT histogram and the flat one: 0 calibrated, at most ``1 - 1/bins``."""
    heights = pit_histogram(frame, bins)
    return float(0.5 * np.abs(heights - 1.0 / int(bins)).sum())


def pit_coverage(frame: pd.DataFrame, level: float) -> float:
    """The central ``level`` interval's coverage for counts: ``Fbar((1 + level)/2) - Fbar((1 - level)/2)``.

    The share of the conditional PIT mass inside the central interval of probability
    ``level``. Unlike the share of counts inside ``[q25, q75]``, it does not count a month of
    0 as covered by an interval that is the single point 0 with all its weight: on integer
    counts the closed interval of two quantiles holds more than its nominal probability.
    """
    low, high = pit_curve(frame, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(high - low)
