"""The simulation of the synthetic process: calendar series, national components, the panel.

The formulas are in the docstring of :mod:`features.synthetic.config`. :func:`simulate` runs
the recursion and returns a :class:`Simulation`; :func:`simulate_panel` publishes it as the
unit x month panel, and :func:`national_components` returns the latent national series.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.gazetteer import Gazetteer, split_list
from features.synthetic.config import SyntheticConfig, parse_month
from features.synthetic.gazetteer import neighbour_mean_matrix, units_frame

#: Columns of the counts frame returned by :func:`simulate_panel`.
PANEL_COLUMNS = ("unit", "month", "incidents", "deaths", "log_intensity")
#: Columns of the covariates frame (national, one row per month).
COVARIATE_COLUMNS = ("month", "us_troops", "ops_tempo")


# --------------------------------------------------------------------------- calendar series


def _calendar(config: SyntheticConfig) -> pd.PeriodIndex:
    """Every simulated month, burn-in included."""
    start = parse_month("start", config.start) - config.burn_in_months
    return pd.period_range(start, parse_month("end", config.end), freq="M")


def _decimal_year(months: pd.PeriodIndex) -> np.ndarray:
    # Mid-month, so January 2007 is 2007.04 and a knot at 2007.0 lies between Dec and Jan.
    return months.year.to_numpy() + (months.month.to_numpy() - 0.5) / 12.0


def _cosine_interp(x: np.ndarray, knots: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Smooth curve through the knots: flat at each knot, constant outside them."""
    kx = np.array([k[0] for k in knots], dtype=float)
    ky = np.array([k[1] for k in knots], dtype=float)
    if len(kx) == 1:
        return np.full(len(x), ky[0])
    xc = np.clip(x, kx[0], kx[-1])
    seg = np.clip(np.searchsorted(kx, xc, side="right") - 1, 0, len(kx) - 2)
    s = (xc - kx[seg]) / (kx[seg + 1] - kx[seg])
    w = (1.0 - np.cos(np.pi * s)) / 2.0
    return ky[seg] + (ky[seg + 1] - ky[seg]) * w


def _linear_interp(x: np.ndarray, knots: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.interp(x, [k[0] for k in knots], [k[1] for k in knots])


def stream_rng(config: SyntheticConfig, stream: int) -> np.random.Generator:
    """The random generator of one component's stream: ``default_rng([config.seed, stream])``."""
    return np.random.default_rng([config.seed, stream])


# One stream per component: changing how one part draws leaves the others unchanged.
_STREAM_UNITS, _STREAM_TROOPS, _STREAM_OPS, _STREAM_AR, _STREAM_COUNTS, _STREAM_DEATHS = range(6)
STREAM_EVENTS = 10


def national_components(config: SyntheticConfig = SyntheticConfig()) -> pd.DataFrame:
    """The latent national series of the process, for the published months.

    Parameters
    ----------
    config : SyntheticConfig

    Returns
    -------
    pandas.DataFrame
        ``month`` (``"YYYY-MM"``), ``regime``, ``season`` and ``syria`` (the values entering
        ``eta`` at that month; ``syria`` enters the following month). These are deterministic
        functions of the calendar; they are the "unobserved" national truth that a model
        must otherwise approximate.
    """
    months = _calendar(config)[config.burn_in_months :]
    x = _decimal_year(months)
    return pd.DataFrame(
        {
            "month": months.strftime("%Y-%m"),
            "regime": _cosine_interp(x, config.regime_knots),
            "season": _season(months, config),
            "syria": _cosine_interp(x, config.syria_knots),
        }
    )


def _season(months: pd.PeriodIndex, config: SyntheticConfig) -> np.ndarray:
    m = months.month.to_numpy()
    return config.seasonal_amplitude * np.cos(2 * np.pi * (m - config.seasonal_peak_month) / 12)


def _us_troops(months: pd.PeriodIndex, config: SyntheticConfig) -> np.ndarray:
    level = 1000.0 * _linear_interp(_decimal_year(months), config.troops_knots)
    noise = stream_rng(config, _STREAM_TROOPS).standard_normal(len(months))
    return np.rint(level * np.exp(config.troops_noise_sd * noise)).astype(np.int64)



# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class Simulation:
    """Arrays of one simulation, published months only; shapes (n_months, n_units)."""

    months: pd.PeriodIndex
    units: pd.DataFrame
    incidents: np.ndarray
    deaths: np.ndarray
    log_intensity: np.ndarray
    us_troops: np.ndarray  # (n_months,)
    ops_tempo: np.ndarray  # (n_months,)


def simulate(config: SyntheticConfig, gazetteer) -> Simulation:
    """Run the process over burn-in and published months; return the published months."""
    units = units_frame(gazetteer)
    names = units["name"].astype(str).to_numpy()
    n_units = len(names)
    months = _calendar(config)
    n_total = len(months)
    x = _decimal_year(months)

    effects = dict(config.unit_effects)
    drawn = stream_rng(config, _STREAM_UNITS).normal(
        config.synthetic_unit_effect_mean, config.synthetic_unit_effect_sd, n_units
    )
    alpha = config.base_log_rate + np.array(
        [effects.get(name, d) for name, d in zip(names, drawn)], dtype=float
    )
    borders_syria = np.array(["Syria" in split_list(b) for b in units["borders"]], dtype=float)
    w = neighbour_mean_matrix(units)

    regime = _cosine_interp(x, config.regime_knots)
    season = _season(months, config)
    syria = _cosine_interp(x, config.syria_knots)
    troops = _us_troops(months, config)
    ops_noise = stream_rng(config, _STREAM_OPS).standard_normal(n_total)
    # Innovations drawn as one (n_total, n_units) block, row by row, so extending `end`
    # appends rows and leaves earlier months unchanged.
    innov = stream_rng(config, _STREAM_AR).standard_normal((n_total, n_units))
    rng_counts = stream_rng(config, _STREAM_COUNTS)

    # Lagged index, clamped at the first simulated month: only burn-in months reach the clamp.
    def lagged(t: int, lag: int) -> int:
        return max(t - lag, 0)

    national = regime + season  # (n_total,)
    y = np.zeros((n_total, n_units), dtype=np.int64)
    eta = np.zeros((n_total, n_units))
    ops = np.zeros(n_total)
    r = config.nb_dispersion
    stationary_sd = config.ar_sd / math.sqrt(1.0 - config.ar_phi**2)
    u = stationary_sd * innov[0]
    y_prev = np.zeros(n_units)
    for t in range(n_total):
        if t > 0:
            u = config.ar_phi * u + config.ar_sd * innov[t]
        raw_ops = (
            config.ops_intercept
            + config.ops_regime * regime[t]
            + config.ops_react * np.log1p(y_prev.mean())
            + config.ops_sd * ops_noise[t]
        )
        ops[t] = min(max(round(raw_ops, 1), 0.0), 100.0)
        eta_t = (
            alpha
            + national[t]
            + config.beta_troops * troops[lagged(t, config.troops_lag)] / 10_000.0
            + config.beta_ops * ops[lagged(t, config.ops_lag)]
            + config.gamma_neighbours * np.log1p(w @ y_prev)
            + config.gamma_syria * syria[lagged(t, 1)] * borders_syria
            + u
        )
        mu = np.exp(eta_t)
        y[t] = rng_counts.negative_binomial(r, r / (r + mu))
        eta[t] = eta_t
        y_prev = y[t].astype(float)

    # Sum of y independent NB(mean m, dispersion k) draws is NB(mean y*m, dispersion y*k);
    # cells with y = 0 are drawn too (then zeroed) so the stream stays aligned by month.
    k = config.deaths_dispersion
    m = config.deaths_per_incident_mean
    size = np.maximum(y, 1) * k
    deaths = stream_rng(config, _STREAM_DEATHS).negative_binomial(size, k / (k + m))
    deaths = np.where(y > 0, deaths, 0).astype(np.int64)

    keep = slice(config.burn_in_months, None)
    return Simulation(
        months=months[keep],
        units=units,
        incidents=y[keep],
        deaths=deaths[keep],
        log_intensity=eta[keep],
        us_troops=troops[keep],
        ops_tempo=ops[keep],
    )


def covariates_frame(sim: Simulation) -> pd.DataFrame:
    """The published covariates of a simulation: ``month, us_troops, ops_tempo``."""
    return pd.DataFrame(
        {
            "month": sim.months.strftime("%Y-%m"),
            "us_troops": sim.us_troops,
            "ops_tempo": sim.ops_tempo,
        }
    )


def simulate_panel(
    config: SyntheticConfig = SyntheticConfig(),
    gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the unit x month panel and the national covariates.

    Parameters
    ----------
    config : SyntheticConfig
        Parameters of the process (see :mod:`features.synthetic.config`).
    gazetteer : Gazetteer, DataFrame, path or None
        The units: the bundled Iraq gazetteer when None, a path to a gazetteer CSV, a loaded
        :class:`~features.gazetteer.Gazetteer`, or a frame like :func:`synthetic_gazetteer`.

    Returns
    -------
    counts : pandas.DataFrame
        One row per unit and month (gazetteer order, then month): ``unit`` (canonical name),
        ``month`` (``"YYYY-MM"``), ``incidents`` and ``deaths`` (int64), ``log_intensity``
        (the latent ``eta``, float).
    covariates : pandas.DataFrame
        One row per month: ``month``, ``us_troops`` (int64), ``ops_tempo`` (float, 0-100).
    """
    sim = simulate(config, gazetteer)
    n_months, n_units = sim.incidents.shape
    # Arrays are (month, unit); transposing makes the rows unit-major.
    counts = pd.DataFrame(
        {
            "unit": np.repeat(sim.units["name"].astype(str).to_numpy(), n_months),
            "month": np.tile(np.asarray(sim.months.strftime("%Y-%m")), n_units),
            "incidents": sim.incidents.T.ravel(),
            "deaths": sim.deaths.T.ravel(),
            "log_intensity": sim.log_intensity.T.ravel(),
        }
    )
    return counts, covariates_frame(sim)

