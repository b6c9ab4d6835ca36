"""Benchmarks every other model must beat (ViEWS / ACLED CAST style).

* ``zero``: nothing happens.
* ``locf_poisson`` / ``locf_negbin``: last observed value carried forward.
* ``seasonal_naive``: the value one season (12 months) before the target month.
* ``moving_average``: mean of the last few months.
* ``hist_bootstrap``: the empirical distribution of the last 12 months (the ViEWS
  prediction-challenge benchmark).

All of them are vectorised over units: a fit is a few array operations on the
(months x units) count matrix, well under a millisecond per unit. They have no parameters
worth keeping between backtest origins, so ``update`` refits (the base-class default), which
costs no more than re-conditioning would.

The helpers :func:`count_matrix`, :func:`grid_frame` and :func:`cameron_trivedi_alpha` are
shared with :mod:`forecast.models.counts`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.models.base import (
    Forecaster,
    ModelError,
    future_months,
    negbin_quantiles,
    poisson_quantiles,
    prediction_frame,
    register,
    wide,
)
from forecast.models.params import check_int
from forecast.schema import QUANTILES

#: Distributions a count baseline can put around its point forecast.
DISTRIBUTIONS = ("poisson", "negbin")


# ----------------------------------------------------------------------------------------
# Shared helpers


def count_matrix(history: pd.DataFrame, column: str = "y", *,
                 missing: bool = False) -> tuple[np.ndarray, list[str], pd.PeriodIndex]:
    """The history as a float array of shape (n_months, n_units), with its units and months.

    ``missing=True`` (models that support missing months) keeps NaN values, which are months no
    source covers; a unit-month without a row is an error either way.

    Raises
    ------
    ModelError
        When the history is not a complete unit x month grid (a unit lacks a month, or a
        month is missing for every unit): the models index months by position.
    """
    fast = _sorted_grid(history, column, missing)
    if fast is not None:
        return fast
    table = wide(history, column)
    months = pd.period_range(table.index.min(), table.index.max(), freq="M")
    if len(months) != len(table):
        gaps = months.difference(table.index)
        raise ModelError(
            f"history skips month(s) {', '.join(map(str, gaps[:5]))}; models need every month "
            "from the first to the last (explicit zeros)"
        )
    holes = table.isna()
    if missing:
        # Only a unit-month without a row is a hole: NaN values are missing months, kept.
        rows = history.groupby(["month", "unit"], observed=True).size().unstack(fill_value=0)
        holes = rows.reindex(index=months, columns=table.columns, fill_value=0) == 0
    if holes.to_numpy().any():
        unit = holes.any().idxmax()
        month = holes[unit].idxmax()
        raise ModelError(
            f"history is not a complete unit x month grid: unit {unit!r} has no row (or a "
            f"missing {column!r}) for {month}; add the month with an explicit value"
        )
    return table.to_numpy(dtype=float), [str(u) for u in table.columns], months


def _sorted_grid(history: pd.DataFrame, column: str,
                 missing: bool = False) -> tuple[np.ndarray, list[str], pd.PeriodIndex] | None:
    """:func:`count_matrix` by reshaping, when the rows are a complete grid sorted by unit then
    month (as models keep their histories) with no missing value; None otherwise."""
    n = len(history)
    units = history["unit"].to_numpy(dtype=object)
    if n == 0:
        return None
    try:
        starts = np.r_[0, np.flatnonzero(units[1:] != units[:-1]) + 1]
        if len(starts) > 1 and not np.all(units[starts[1:]] > units[starts[:-1]]):
            return None
    except TypeError:
        return None
    n_units = len(starts)
    if n % n_units or not np.all(np.diff(np.r_[starts, n]) == n // n_units):
        return None
    ordinals = history["month"].array.asi8.reshape(n_units, n // n_units)
    if not (np.all(ordinals == ordinals[0]) and np.all(np.diff(ordinals[0]) == 1)):
        return None
    values = history[column].to_numpy(dtype=float, na_value=np.nan).reshape(n_units, -1).T
    if not missing and np.isnan(values).any():
        return None
    months = pd.PeriodIndex.from_ordinals(ordinals[0], freq="M")
    return np.ascontiguousarray(values), [str(u) for u in units[starts]], months


def grid_frame(units: list[str], origin: pd.Period, mean: np.ndarray, quantiles: np.ndarray) -> pd.DataFrame:
    """:func:`~forecast.models.base.prediction_frame` from per-unit, per-horizon arrays.

    Parameters
    ----------
    units
        The n units, in the order of the first axis of ``mean`` and ``quantiles``.
    origin
        Last month seen; rows are for origin+1 .. origin+H.
    mean
        Shape (n_units, H).
    quantiles
        Shape (n_units, H, len(QUANTILES)).
    """
    mean = np.asarray(mean, dtype=float)
    n_units, horizon = mean.shape
    months = future_months(origin, horizon)
    return prediction_frame(
        units=np.repeat(np.asarray(units, dtype=object), horizon),
        months=np.tile(np.asarray(months), n_units),
        horizons=np.tile(np.arange(1, horizon + 1), n_units),
        mean=mean.reshape(-1),
        quantiles=np.asarray(quantiles, dtype=float).reshape(n_units * horizon, len(QUANTILES)),
    )


def cameron_trivedi_alpha(y: np.ndarray, mu: np.ndarray, min_alpha: float) -> np.ndarray:
    """Negative binomial dispersion from observed counts and their predicted means, per column.

    The NB2 variance is ``Var y = mu + alpha * mu**2``, so ``E[(y - mu)**2 - y] = alpha * mu**2``.
    The estimate is the least-squares slope of Cameron and Trivedi's (1990) auxiliary
    regression of ``((y - mu)**2 - y) / mu`` on ``mu`` without intercept::

        alpha = sum((y - mu)**2 - y) / sum(mu**2)

    over the rows of each column, floored at ``min_alpha`` (a negative value means
    under-dispersion, which the NB cannot represent; a column with ``mu`` all zero gets
    ``min_alpha``).

    Parameters
    ----------
    y, mu
        Arrays of shape (n_obs, n_units); NaN rows are ignored.
    min_alpha
        Floor of the estimate.

    Returns
    -------
    numpy.ndarray
        Shape (n_units,).
    """
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    num = np.nansum((y - mu) ** 2 - y, axis=0)
    den = np.nansum(mu**2, axis=0)
    alpha = np.divide(num, den, out=np.full(num.shape, float(min_alpha)), where=den > 0)
    return np.maximum(alpha, min_alpha)


def _check_distribution(model: str, value: str) -> str:
    if value not in DISTRIBUTIONS:
        raise ModelError(f"{model}: distribution must be one of {', '.join(DISTRIBUTIONS)}, got {value!r}")
    return value


def _check_min_alpha(model: str, value) -> float:
    if isinstance(value, (bool, str)) or not float(value) > 0:
        raise ModelError(f"{model}: min_alpha must be > 0, got {value!r}")
    return float(value)


def _repeat_horizons(values: np.ndarray, horizon: int) -> np.ndarray:
    """Per-unit values (n_units, ...) -> (n_units, horizon, ...)."""
    return np.repeat(np.asarray(values)[:, None, ...], horizon, axis=1)


# ----------------------------------------------------------------------------------------
# Models


@register
class Zero(Forecaster):
    """Predicts no events anywhere: every quantile and the mean are 0.

    The benchmark of "nothing happens". In mostly quiet units it is hard to beat on absolute
    error, which is why every model is compared with it.
    """

    name = "zero"
    summary = "No events: mean and every quantile are 0."

    def __init__(self) -> None:
        pass

    def _fit(self, history: pd.DataFrame) -> None:
        count_matrix(history)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        n = len(self.units_)
        return grid_frame(self.units_, self.origin_, np.zeros((n, horizon)), np.zeros((n, horizon, len(QUANTILES))))


class _LastValue(Forecaster):
    """Shared by the two persistence models: the last observed count of each unit."""

    def _fit(self, history: pd.DataFrame) -> None:
        counts, _, _ = count_matrix(history)
        self.last_ = counts[-1]


@register
class LocfPoisson(_LastValue):
    """Last observed count carried forward, with a Poisson predictive distribution.

    Mean at every horizon = the unit's count in the origin month; quantiles are those of
    Poisson(mean), so a unit with 0 events last month is predicted 0 with certainty.
    """

    name = "locf_poisson"
    summary = "Last observed count as the mean at every horizon, Poisson distribution."

    def __init__(self) -> None:
        pass

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        q = poisson_quantiles(self.last_)
        mean = _repeat_horizons(self.last_, horizon)
        return grid_frame(self.units_, self.origin_, mean, _repeat_horizons(q, horizon))


@register
class LocfNegbin(_LastValue):
    """Last observed count carried forward, with a negative binomial predictive distribution.

    Mean at every horizon = the unit's count in the origin month. The dispersion ``alpha``
    (``Var = mu + alpha * mu**2``) is estimated per unit from its one-step changes in the last
    ``window`` months, treating last month's count as the mean of this month's
    (:func:`cameron_trivedi_alpha` with ``y = y[t]``, ``mu = y[t-1]``), floored at ``min_alpha``.
    With fewer than ``window + 1`` months all available changes are used. The same
    distribution is used at every horizon (persistence does not widen with the horizon).

    Parameters
    ----------
    window : int
        Number of recent one-step changes used for ``alpha``.
    min_alpha : float
        Floor of ``alpha`` (near-Poisson when the recent changes are small).
    """

    name = "locf_negbin"
    summary = "Last observed count as the mean, negative binomial with per-unit dispersion from recent changes."

    def __init__(self, window: int = 24, min_alpha: float = 0.01) -> None:
        self.window = window
        self.min_alpha = min_alpha

    def _check(self) -> None:
        check_int(self.name, "window", self.window, 1)
        _check_min_alpha(self.name, self.min_alpha)

    def _fit(self, history: pd.DataFrame) -> None:
        window = check_int(self.name, "window", self.window, 1)
        min_alpha = _check_min_alpha(self.name, self.min_alpha)
        counts, _, _ = count_matrix(history)
        self.last_ = counts[-1]
        recent = counts[-(window + 1):]
        self.alpha_ = cameron_trivedi_alpha(recent[1:], recent[:-1], min_alpha)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        q = negbin_quantiles(self.last_, self.alpha_)
        mean = _repeat_horizons(self.last_, horizon)
        return grid_frame(self.units_, self.origin_, mean, _repeat_horizons(q, horizon))


@register
class SeasonalNaive(Forecaster):
    """The count in the same month of the last season observed.

    The mean for target month ``T + h`` is ``y[T + h - season * k]`` with the smallest
    ``k >= 1`` that makes it an observed month (``k = 1`` for ``h <= season``). Around it a
    Poisson or negative binomial distribution (``distribution``); the NB dispersion is
    estimated per unit from the last ``window`` seasonal changes, treating ``y[t - season]``
    as the mean of ``y[t]`` (:func:`cameron_trivedi_alpha`), floored at ``min_alpha``.

    Parameters
    ----------
    season : int
        Season length in months.
    distribution : {"poisson", "negbin"}
    window : int
        Number of recent seasonal changes used for the NB dispersion.
    min_alpha : float
        Floor of the NB dispersion.

    Raises
    ------
    ModelError
        At fit, when the history is shorter than one season.
    """

    name = "seasonal_naive"
    summary = "Count in the same month one season earlier, Poisson or negative binomial distribution."

    def __init__(self, season: int = 12, distribution: str = "poisson", window: int = 24,
                 min_alpha: float = 0.01) -> None:
        self.season = season
        self.distribution = distribution
        self.window = window
        self.min_alpha = min_alpha

    def _check(self) -> None:
        check_int(self.name, "season", self.season, 1)
        check_int(self.name, "window", self.window, 1)
        _check_distribution(self.name, self.distribution)
        _check_min_alpha(self.name, self.min_alpha)

    def _fit(self, history: pd.DataFrame) -> None:
        season = check_int(self.name, "season", self.season, 1)
        window = check_int(self.name, "window", self.window, 1)
        distribution = _check_distribution(self.name, self.distribution)
        min_alpha = _check_min_alpha(self.name, self.min_alpha)
        counts, _, months = count_matrix(history)
        if len(counts) < season:
            raise ModelError(
                f"{self.name}: needs at least one season ({season} months) of history, got "
                f"{len(counts)} ({months[0]}..{months[-1]}); start later or lower season"
            )
        self.last_season_ = counts[-season:]  # (season, n_units): months T-season+1 .. T
        if distribution == "negbin":
            recent = counts[-(window + season):]
            if len(recent) > season:
                self.alpha_ = cameron_trivedi_alpha(recent[season:], recent[:-season], min_alpha)
            else:
                self.alpha_ = np.full(counts.shape[1], min_alpha)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        season = len(self.last_season_)
        # Target T + h maps to row (h - 1) mod season of the last observed season.
        rows = (np.arange(horizon)) % season
        mean = self.last_season_[rows].T  # (n_units, horizon)
        flat = mean.reshape(-1)
        if self.distribution == "negbin":
            q = negbin_quantiles(flat, np.repeat(self.alpha_, horizon))
        else:
            q = poisson_quantiles(flat)
        return grid_frame(self.units_, self.origin_, mean, q)


@register
class MovingAverage(Forecaster):
    """Mean of the last ``window`` months, with a negative binomial distribution.

    The dispersion is the method-of-moments estimate from the same window,
    ``alpha = (s**2 - m) / m**2`` with ``m`` the window mean and ``s**2`` its sample variance
    (ddof 1), floored at ``min_alpha``. Same distribution at every horizon.

    Parameters
    ----------
    window : int
        Months averaged (all months when the history is shorter).
    min_alpha : float
        Floor of the dispersion.
    """

    name = "moving_average"
    summary = "Mean of the last months, negative binomial with method-of-moments dispersion."

    def __init__(self, window: int = 6, min_alpha: float = 0.01) -> None:
        self.window = window
        self.min_alpha = min_alpha

    def _check(self) -> None:
        check_int(self.name, "window", self.window, 1)
        _check_min_alpha(self.name, self.min_alpha)

    def _fit(self, history: pd.DataFrame) -> None:
        window = check_int(self.name, "window", self.window, 1)
        min_alpha = _check_min_alpha(self.name, self.min_alpha)
        counts, _, _ = count_matrix(history)
        recent = counts[-window:]
        self.mean_ = recent.mean(axis=0)
        var = recent.var(axis=0, ddof=1) if len(recent) > 1 else np.zeros(recent.shape[1])
        excess = var - self.mean_
        alpha = np.divide(excess, self.mean_**2, out=np.full(excess.shape, min_alpha), where=self.mean_ > 0)
        self.alpha_ = np.maximum(alpha, min_alpha)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        q = negbin_quantiles(self.mean_, self.alpha_)
        mean = _repeat_horizons(self.mean_, horizon)
        return grid_frame(self.units_, self.origin_, mean, _repeat_horizons(q, horizon))


@register
class HistBootstrap(Forecaster):
    """The empirical distribution of the unit's last ``window`` months, at every horizon.

    As the ViEWS prediction-challenge benchmark: the quantiles are ``numpy.quantile`` (linear
    interpolation) of the last ``window`` counts and the mean is their mean. With a shorter
    history all months are used.

    Parameters
    ----------
    window : int
        Months in the empirical distribution.
    """

    name = "hist_bootstrap"
    summary = "Empirical distribution of the last 12 months of each unit (ViEWS benchmark)."

    def __init__(self, window: int = 12) -> None:
        self.window = window

    def _check(self) -> None:
        check_int(self.name, "window", self.window, 1)

    def _fit(self, history: pd.DataFrame) -> None:
        window = check_int(self.name, "window", self.window, 1)
        counts, _, _ = count_matrix(history)
        recent = counts[-window:]
        self.mean_ = recent.mean(axis=0)
        self.quantiles_ = np.quantile(recent, QUANTILES, axis=0).T  # (n_units, n_quantiles)

    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        return grid_frame(
            self.units_, self.origin_, _repeat_horizons(self.mean_, horizon), _repeat_horizons(self.quantiles_, horizon)
        )
