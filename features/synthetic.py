"""Seeded synthetic conflict data: a known data-generating process, raw UCDP GED-style events.

Real event data cannot tell whether a model recovers an effect, because nobody knows the true
effect. This module simulates monthly incident counts per admin-1 unit from a documented
process with known parameters, then expands them into one row per incident in the UCDP GED
CSV layout, so the whole pipeline (reader, name matching, panel, features, models, scenarios)
can be run end to end on data whose truth is known. The demo files in ``data/sample/`` are
written by :func:`write_sample` with the default :class:`SyntheticConfig`; a test regenerates
them and compares bytes, so they cannot drift from this code.

Public functions
----------------
* :func:`simulate_panel` -> ``(counts, covariates)``: the unit x month panel with the latent
  log-intensity, and the national covariates.
* :func:`simulate_events` -> ``(events, covariates)``: the same panel expanded into events
  (columns :data:`UCDP_GED_COLUMNS`).
* :func:`national_components` -> the latent national series (regime, season, Syria).
* :func:`synthetic_gazetteer` -> a lattice gazetteer of any size, for scale benchmarks.
* :func:`write_sample` -> writes the demo CSVs and their README.

Data-generating process
-----------------------
Months ``t`` run from ``start - burn_in_months`` to ``end``; the burn-in months are simulated
and dropped so that the AR(1) term, the contagion terms and the lagged covariates are settled
when the published data begin. Unit ``i`` has log-intensity::

    eta[t, i] = alpha[i]
              + regime[t]
              + season[t]
              + beta_troops * us_troops[t - troops_lag] / 10,000
              + beta_ops    * ops_tempo[t - ops_lag]
              + gamma_neighbours * log1p(mean of y[t-1, j] over the neighbours j of i)
              + gamma_syria * syria[t-1] * (1 if unit i borders Syria else 0)
              + u[t, i]

    u[t, i] = ar_phi * u[t-1, i] + ar_sd * e[t, i],      e ~ N(0, 1)
    y[t, i] ~ NegBin(mean = exp(eta[t, i]), dispersion = nb_dispersion)
    deaths[t, i] ~ NegBin(mean = deaths_per_incident_mean * y[t, i],
                          dispersion = deaths_dispersion * y[t, i])

so ``Var y = mu + mu^2 / nb_dispersion``, and the deaths of a unit-month are the sum of
``y[t, i]`` independent per-incident NegBin(``deaths_per_incident_mean``,
``deaths_dispersion``) draws (geometric-like for a dispersion near 1). ``u`` starts from its
stationary distribution. The simulation is recursive in ``t`` (contagion and the reaction of
``ops_tempo`` use last month's simulated counts) and vectorised over units.

* ``alpha[i] = base_log_rate + effect[i]``: ``effect`` is looked up by unit name in
  ``unit_effects`` (high for Baghdad, Anbar, Ninewa, Diyala, Salah ad Din, Kirkuk; very low
  for Duhok, Erbil, Sulaymaniyah, Muthanna); a unit not in the table (any synthetic
  gazetteer) draws ``effect ~ N(synthetic_unit_effect_mean, synthetic_unit_effect_sd)``.
* ``regime[t]``: national insurgency level, a smooth curve through ``regime_knots``
  (decimal year, level), with cosine interpolation between knots (so the curve is flat at
  every knot) and held constant before the first and after the last knot. The default knots
  give a surge in 2006-2007, a decline 2008-2011, a second surge with IS in 2014-2016 and a
  decline from 2017. They are calendar dates, so any ``start`` / ``end`` works.
* ``season[t] = seasonal_amplitude * cos(2 pi (month_of_year - seasonal_peak_month) / 12)``.
* ``us_troops[t]``: national number of US troops in Iraq, ``troops_knots`` (decimal year,
  thousands) interpolated linearly, times ``exp(troops_noise_sd * z[t])`` (unit rotations),
  rounded to whole troops: about 130-160k in 2004-2007, a surge to about 165k in 2007, the
  drawdown 2008-2011 to 0 at the end of 2011, 0 in 2012 to mid-2014, 3,000-5,200 from late 2014
  to 2020 and 2,500 afterwards.
* ``ops_tempo[t] = clip(ops_intercept + ops_regime * regime[t] + ops_react * log1p(ybar[t-1])
  + ops_sd * z'[t], 0, 100)`` rounded to 0.1, where ``ybar[t-1]`` is last month's mean count
  per unit: an index of coalition and government operations (air strikes, raids) that is high
  in surges and reacts to last month's violence. It is therefore endogenous, as real
  operations are; its effect on ``eta`` is on the lagged value ``ops_tempo[t - ops_lag]``, and
  a regression of counts on it is biased upwards by that reaction unless the model conditions
  on past violence.
* ``syria[t]``: latent intensity of the Syrian war (0 before 2011, rising from 2012, peak
  2014-2016, lower after 2018), ``syria_knots`` with the same cosine interpolation. It enters
  only units whose ``borders`` include ``Syria``, at lag one month. It is not published as a
  covariate (it is "unobserved"); :func:`national_components` returns it.

The covariates published with the data (``covariates``: ``month, us_troops, ops_tempo``) are
exactly the rounded values the process used, so a model that builds ``us_troops_lag2`` and
``ops_tempo_lag1`` from them sees the true regressors.

True covariate effects
----------------------
:data:`TRUE_EFFECTS` (and :meth:`SyntheticConfig.true_effects` for another configuration)
gives the coefficients on the log-intensity:

* ``us_troops_per_10k_lag2`` = ``beta_troops``: change in ``log E[y[t, i]]`` per 10,000 US
  troops in month ``t - 2`` (the ``us_troops`` column divided by 10,000, lagged 2 months).
  The default -0.10 means 10,000 more troops lower expected incidents two months later by
  about 9.5 %, other terms held fixed.
* ``ops_tempo_lag1`` = ``beta_ops``: change in ``log E[y[t, i]]`` per index point of
  ``ops_tempo`` in month ``t - 1``. The default +0.010 means +10 points raise expected
  incidents a month later by about 10.5 %.

These are direct effects: holding last month's counts fixed. Through contagion and the
reaction of ``ops_tempo`` a sustained change in troops moves violence by more than
``beta_troops`` in the long run. The national regime confounds every national covariate
(troop numbers were highest when the insurgency was strongest). With the default parameters a
Poisson GLM of ``incidents`` on unit fixed effects, ``us_troops / 10,000`` lagged 2 and
``ops_tempo`` lagged 1 estimates about half of ``beta_troops``, while ``ops_tempo``, which
tracks the regime, takes an upward-biased coefficient of about +0.05; adding the true
``regime + season + gamma_syria * syria`` from :func:`national_components` as an offset
recovers ``beta_troops`` within about 15 %. ``tests/test_synthetic.py`` checks both.

Event expansion
---------------
Each unit-month with ``y`` incidents becomes ``y`` events: a uniformly drawn day of the month
(``date_start == date_end``, ``date_prec`` 1); deaths split among the events by the
conditional distribution of independent NegBin draws given their sum (Dirichlet-multinomial
with parameter ``deaths_dispersion``), so per unit-month ``sum(best) == deaths`` exactly;
``deaths_a + deaths_b + deaths_civilians + deaths_unknown == best``; ``low <= best <= high``.
``type_of_violence`` is 1 (state-based), 2 (non-state) or 3 (one-sided) with probabilities
``violence_type_probs``; the dyad depends on the year (al-Qaida in Iraq, Ansar al-Islam and
al-Mahdi Army before 2013, IS from 2013). As in the GED codebook, ``side_a`` of one-sided
events is the perpetrator and ``side_b`` is ``Civilians``. ``adm_1`` is ``"<spelling>
province"`` with the spelling drawn from the unit's canonical name and Latin-script aliases
(not codes or the capital), sometimes with UCDP's double space before ``province``, so readers
exercise name matching; coordinates are the unit's capital plus ``coordinate_jitter_deg``
normal noise.

Reproducibility
---------------
Everything is drawn from ``numpy.random.default_rng([seed, stream])`` with one stream per
component, so the panel does not change when only the event expansion changes, and a longer
``end`` leaves earlier months unchanged. NumPy does not promise identical draws across
versions for every distribution; if an upgrade changes the sample, regenerate it with
``write_sample("data/sample")`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from features.atomic import write_bytes_atomically
from features.gazetteer import Gazetteer, load_gazetteer, normalise_name, split_list

#: Column layout of the events frame and of ``ucdp_ged_demo.csv`` (a subset of the GED
#: codebook columns, in codebook order).
UCDP_GED_COLUMNS = (
    "id",
    "year",
    "active_year",
    "type_of_violence",
    "conflict_new_id",
    "conflict_name",
    "dyad_new_id",
    "dyad_name",
    "side_a_new_id",
    "side_a",
    "side_b_new_id",
    "side_b",
    "number_of_sources",
    "source_article",
    "where_prec",
    "where_coordinates",
    "adm_1",
    "adm_2",
    "latitude",
    "longitude",
    "geom_wkt",
    "priogrid_gid",
    "country",
    "country_id",
    "iso3",
    "region",
    "event_clarity",
    "date_prec",
    "date_start",
    "date_end",
    "deaths_a",
    "deaths_b",
    "deaths_civilians",
    "deaths_unknown",
    "low",
    "best",
    "high",
)

#: Columns of the counts frame returned by :func:`simulate_panel`.
PANEL_COLUMNS = ("unit", "month", "incidents", "deaths", "log_intensity")
#: Columns of the covariates frame (national, one row per month).
COVARIATE_COLUMNS = ("month", "us_troops", "ops_tempo")

SAMPLE_FILES = {
    "events": "ucdp_ged_demo.csv",
    "covariates": "covariates_demo.csv",
    "readme": "README.md",
}

# Log-scale unit effects of the Iraqi governorates, relative to base_log_rate. The ordering
# follows where the insurgency was fought (the Sunni triangle and Baghdad, then Kirkuk and the
# mixed south-centre); the Kurdish region and Muthanna saw almost nothing.
_IRAQ_UNIT_EFFECTS = (
    ("Baghdad", 1.3),
    ("Anbar", 1.0),
    ("Ninewa", 1.0),
    ("Diyala", 0.8),
    ("Salah ad Din", 0.8),
    ("Kirkuk", 0.3),
    ("Babil", -0.1),
    ("Basra", -0.4),
    ("Wasit", -0.9),
    ("Maysan", -1.2),
    ("Dhi Qar", -1.1),
    ("Qadisiyah", -1.3),
    ("Najaf", -1.3),
    ("Karbala", -1.4),
    ("Muthanna", -2.8),
    ("Sulaymaniyah", -2.4),
    ("Erbil", -2.6),
    ("Duhok", -3.0),
)

# (decimal year, level). Levels are on the log scale before the troop effect, which is why
# 2004-2008 sit high: with ~140k troops the troop term takes about 1.4 off.
_REGIME_KNOTS = (
    (2002.0, -1.0),
    (2003.5, 1.0),
    (2004.5, 1.6),
    (2006.0, 2.1),
    (2007.0, 2.4),
    (2007.6, 2.4),
    (2008.6, 1.8),
    (2010.0, 1.2),
    (2011.5, 0.4),
    (2012.5, 0.1),
    (2013.5, 0.4),
    (2014.6, 0.9),
    (2016.2, 0.8),
    (2017.6, 0.2),
    (2019.0, -0.4),
    (2021.0, -0.7),
    (2024.0, -0.9),
)

# (decimal year, thousands of US troops). Shaped like the DoD / Brookings history: surge for
# the December 2005 election, the 2007 surge, drawdown to zero on 18 December 2011, return
# against IS from mid-2014.
_TROOPS_KNOTS = (
    (2003.0, 0.0),
    (2003.3, 150.0),
    (2004.0, 130.0),
    (2004.9, 150.0),
    (2005.9, 160.0),
    (2006.4, 130.0),
    (2007.0, 135.0),
    (2007.5, 165.0),
    (2007.9, 165.0),
    (2008.6, 145.0),
    (2009.0, 140.0),
    (2009.9, 110.0),
    (2010.65, 50.0),
    (2011.6, 45.0),
    (2011.96, 0.0),
    (2014.45, 0.0),
    (2014.95, 3.0),
    (2016.0, 4.5),
    (2017.0, 5.2),
    (2019.5, 5.2),
    (2020.7, 3.0),
    (2021.0, 2.5),
)

# (decimal year, level in [0, 1]).
_SYRIA_KNOTS = (
    (2011.0, 0.0),
    (2012.0, 0.3),
    (2013.0, 0.8),
    (2014.5, 1.0),
    (2016.5, 1.0),
    (2018.5, 0.5),
    (2020.0, 0.3),
    (2024.0, 0.2),
)


def _parse_month(field_name: str, text: str) -> pd.Period:
    try:
        if len(str(text)) != 7:
            raise ValueError
        return pd.Period(str(text), freq="M")
    except ValueError:
        raise ValueError(
            f"SyntheticConfig.{field_name} must be a month 'YYYY-MM', got {text!r}"
        ) from None


@dataclass(frozen=True)
class SyntheticConfig:
    """All parameters of the synthetic data-generating process.

    The formulas are in the module docstring; each attribute names the symbol it sets.

    Attributes
    ----------
    start, end : str
        First and last published month, ``"YYYY-MM"``.
    seed : int
        Seed of every random stream.
    burn_in_months : int
        Months simulated before ``start`` and dropped; at least the largest covariate lag.
    base_log_rate : float
        Common intercept of ``alpha``.
    unit_effects : tuple of (str, float)
        Unit name -> effect added to ``base_log_rate`` (default: the 18 Iraqi governorates).
    synthetic_unit_effect_mean, synthetic_unit_effect_sd : float
        Normal distribution of the effect of a unit not in ``unit_effects``.
    regime_knots : tuple of (float, float)
        (decimal year, level) knots of the national regime.
    seasonal_amplitude : float
        Amplitude of the seasonal cosine on the log scale.
    seasonal_peak_month : int
        Month of the year (1-12) with the seasonal peak.
    beta_troops : float
        Effect on ``eta`` per 10,000 US troops, ``troops_lag`` months earlier.
    troops_lag : int
        Lag in months of the troop effect.
    beta_ops : float
        Effect on ``eta`` per point of ``ops_tempo``, ``ops_lag`` months earlier.
    ops_lag : int
        Lag in months of the operations effect.
    gamma_neighbours : float
        Contagion: effect of ``log1p`` of the neighbours' mean count last month.
    gamma_syria : float
        Cross-border contagion: effect of last month's ``syria`` on units bordering Syria.
    ar_phi, ar_sd : float
        AR(1) coefficient and innovation standard deviation of the unit term ``u``.
    nb_dispersion : float
        Negative binomial dispersion ``r`` of the counts (larger = closer to Poisson).
    deaths_per_incident_mean, deaths_dispersion : float
        Mean and NB dispersion of deaths per incident.
    troops_knots : tuple of (float, float)
        (decimal year, thousands of troops) knots of the US troop level.
    troops_noise_sd : float
        Standard deviation of the multiplicative log-normal troop noise.
    syria_knots : tuple of (float, float)
        (decimal year, level) knots of the latent Syrian war intensity.
    ops_intercept, ops_regime, ops_react, ops_sd : float
        ``ops_tempo`` = intercept + ops_regime * regime + ops_react * log1p(last month's mean
        count per unit) + ops_sd * noise, clipped to [0, 100].
    violence_type_probs : tuple of 3 floats
        Probabilities of ``type_of_violence`` 1, 2 and 3 for an event.
    coordinate_jitter_deg : float
        Standard deviation in degrees of event coordinates around the unit's capital.
    first_event_id : int
        ``id`` of the first event; ids are consecutive in date order.
    """

    start: str = "2004-01"
    end: str = "2024-12"
    seed: int = 20240601
    burn_in_months: int = 24
    base_log_rate: float = -1.1
    unit_effects: tuple[tuple[str, float], ...] = _IRAQ_UNIT_EFFECTS
    synthetic_unit_effect_mean: float = -0.3
    synthetic_unit_effect_sd: float = 1.0
    regime_knots: tuple[tuple[float, float], ...] = _REGIME_KNOTS
    seasonal_amplitude: float = 0.15
    seasonal_peak_month: int = 7
    beta_troops: float = -0.10
    troops_lag: int = 2
    beta_ops: float = 0.010
    ops_lag: int = 1
    gamma_neighbours: float = 0.25
    gamma_syria: float = 0.6
    ar_phi: float = 0.7
    ar_sd: float = 0.25
    nb_dispersion: float = 2.0
    deaths_per_incident_mean: float = 3.0
    deaths_dispersion: float = 0.8
    troops_knots: tuple[tuple[float, float], ...] = _TROOPS_KNOTS
    troops_noise_sd: float = 0.05
    syria_knots: tuple[tuple[float, float], ...] = _SYRIA_KNOTS
    ops_intercept: float = 20.0
    ops_regime: float = 12.0
    ops_react: float = 15.0
    ops_sd: float = 6.0
    violence_type_probs: tuple[float, float, float] = (0.80, 0.05, 0.15)
    coordinate_jitter_deg: float = 0.1
    first_event_id: int = 1_000_001

    def __post_init__(self) -> None:
        start, end = _parse_month("start", self.start), _parse_month("end", self.end)
        if end < start:
            raise ValueError(f"SyntheticConfig: end {self.end!r} is before start {self.start!r}")
        for name in ("troops_lag", "ops_lag"):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0, got {getattr(self, name)}")
        need = max(self.troops_lag, self.ops_lag, 1)
        if self.burn_in_months < need:
            raise ValueError(
                f"SyntheticConfig.burn_in_months is {self.burn_in_months}; it must be at least "
                f"{need} (the largest covariate lag) so published months never use missing lags"
            )
        if not -1.0 < self.ar_phi < 1.0:
            raise ValueError(f"SyntheticConfig.ar_phi must lie in (-1, 1), got {self.ar_phi}")
        for name in ("nb_dispersion", "deaths_dispersion", "deaths_per_incident_mean"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SyntheticConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("ar_sd", "troops_noise_sd", "ops_sd", "synthetic_unit_effect_sd",
                     "coordinate_jitter_deg"):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.seasonal_peak_month <= 12:
            raise ValueError(
                f"SyntheticConfig.seasonal_peak_month must be 1-12, got {self.seasonal_peak_month}"
            )
        for name in ("regime_knots", "troops_knots", "syria_knots"):
            years = [k[0] for k in getattr(self, name)]
            if not years or any(b <= a for a, b in zip(years, years[1:])):
                raise ValueError(
                    f"SyntheticConfig.{name} needs at least one knot and strictly increasing "
                    f"years, got {years}"
                )
        probs = np.asarray(self.violence_type_probs, dtype=float)
        if probs.shape != (3,) or (probs < 0).any() or not math.isclose(probs.sum(), 1.0):
            raise ValueError(
                "SyntheticConfig.violence_type_probs must be 3 non-negative numbers summing "
                f"to 1, got {self.violence_type_probs}"
            )
        # Contagion and the reaction of operations feed last month's counts back into this
        # month's intensity; with a combined elasticity of 1 or more the process explodes.
        feedback = self.gamma_neighbours + max(self.beta_ops * self.ops_react, 0.0)
        if feedback >= 1.0:
            raise ValueError(
                "SyntheticConfig: gamma_neighbours + beta_ops * ops_react is "
                f"{feedback:.3g}; it must be below 1 or the simulated counts explode"
            )

    def true_effects(self) -> dict[str, float]:
        """Covariate effects on the log-intensity, keyed by the regressor they apply to.

        Returns
        -------
        dict
            ``us_troops_per_10k_lag{troops_lag}``: ``beta_troops`` per 10,000 troops;
            ``ops_tempo_lag{ops_lag}``: ``beta_ops`` per index point.
        """
        return {
            f"us_troops_per_10k_lag{self.troops_lag}": self.beta_troops,
            f"ops_tempo_lag{self.ops_lag}": self.beta_ops,
        }


#: Covariate effects of the default configuration (see "True covariate effects" above).
TRUE_EFFECTS: dict[str, float] = SyntheticConfig().true_effects()


# --------------------------------------------------------------------------- calendar series


def _calendar(config: SyntheticConfig) -> pd.PeriodIndex:
    """Every simulated month, burn-in included."""
    start = _parse_month("start", config.start) - config.burn_in_months
    return pd.period_range(start, _parse_month("end", config.end), freq="M")


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


def _rng(config: SyntheticConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream])


# One stream per component: changing how one part draws leaves the others unchanged.
_STREAM_UNITS, _STREAM_TROOPS, _STREAM_OPS, _STREAM_AR, _STREAM_COUNTS, _STREAM_DEATHS = range(6)
_STREAM_EVENTS = 10


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
    noise = _rng(config, _STREAM_TROOPS).standard_normal(len(months))
    return np.rint(level * np.exp(config.troops_noise_sd * noise)).astype(np.int64)


# --------------------------------------------------------------------------- gazetteers


def synthetic_gazetteer(n_units: int, seed: int = 0, *, contiguity: str = "rook") -> pd.DataFrame:
    """A gazetteer of ``n_units`` units on a square-ish lattice, for scale benchmarks.

    Parameters
    ----------
    n_units : int
        Number of units (at least 1).
    seed : int
        Seed of the jitter of the capitals' coordinates.
    contiguity : {"rook", "queen"}
        Lattice neighbours sharing an edge (rook) or also a corner (queen).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`features.gazetteer.GAZETTEER_COLUMNS`. Unit ``k`` (1-based) is
        ``name`` ``"Unit 000k"``, ``unit_id`` ``"SYN-000k"``, country ``"Synthetica"``, at
        lattice position ``(tile_row, tile_col)`` filled row by row. ``neighbours`` lists the
        lattice neighbours' ids (symmetric); units in column 0 border ``Syria`` (so the
        cross-border term applies), units in row 0 ``Turkey`` and units in the last column
        ``Iran``. ``aliases`` hold ``"Unit k"`` and ``"Unit-000k"`` so readers exercise name
        matching. Write it with ``to_csv(path, index=False)`` and read it back with
        :func:`features.gazetteer.load_gazetteer`.
    """
    if int(n_units) != n_units or n_units < 1:
        raise ValueError(
            f"synthetic_gazetteer: n_units must be a positive integer, got {n_units!r}"
        )
    if contiguity not in ("rook", "queen"):
        raise ValueError(
            f"synthetic_gazetteer: contiguity must be 'rook' or 'queen', got {contiguity!r}"
        )
    n = int(n_units)
    width = len(str(n)) if n > 9999 else 4
    n_cols = math.ceil(math.sqrt(n))
    k = np.arange(n)
    rows, cols = k // n_cols, k % n_cols
    ids = np.array([f"SYN-{i + 1:0{width}d}" for i in k], dtype=object)

    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if contiguity == "queen":
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    neighbour_lists: list[list[str]] = [[] for _ in k]
    for dr, dc in steps:
        r2, c2 = rows + dr, cols + dc
        j = r2 * n_cols + c2
        ok = (r2 >= 0) & (c2 >= 0) & (c2 < n_cols) & (j < n)
        for a, b in zip(k[ok], j[ok]):
            neighbour_lists[a].append(b)
    neighbours = ["|".join(ids[sorted(js)]) for js in neighbour_lists]

    last_col = np.minimum(n_cols, n - rows * n_cols) - 1
    borders = []
    for r, c, lc in zip(rows, cols, last_col):
        b = []
        if c == 0:
            b.append("Syria")
        if r == 0:
            b.append("Turkey")
        if c == lc:
            b.append("Iran")
        borders.append("|".join(b))

    # A 0.1-degree lattice from the north-west corner of a box the size of Iraq's; the
    # jitter keeps capitals off a perfect grid without leaving their cell.
    rng = np.random.default_rng(seed)
    lat = 37.0 - 0.1 * rows + rng.uniform(-0.03, 0.03, n)
    lon = 39.0 + 0.1 * cols + rng.uniform(-0.03, 0.03, n)
    number = k + 1
    return pd.DataFrame(
        {
            "unit_id": ids,
            "name": [f"Unit {i:0{width}d}" for i in number],
            "name_ar": "",
            "country": "Synthetica",
            "aliases": [f"Unit {i}|Unit-{i:0{width}d}" for i in number],
            "capital": [f"Town {i:0{width}d}" for i in number],
            "capital_lat": np.round(lat, 4),
            "capital_lon": np.round(lon, 4),
            "neighbours": neighbours,
            "borders": borders,
            "tile_row": rows,
            "tile_col": cols,
        }
    )


def _units_frame(gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None) -> pd.DataFrame:
    if gazetteer is None or isinstance(gazetteer, (str, os.PathLike)):
        return load_gazetteer(gazetteer).units
    if isinstance(gazetteer, Gazetteer):
        return gazetteer.units
    if isinstance(gazetteer, pd.DataFrame):
        missing = [c for c in ("unit_id", "name", "neighbours", "borders") if c not in gazetteer]
        if missing:
            raise ValueError(
                f"gazetteer frame is missing column(s) {', '.join(missing)}; pass a frame "
                "like synthetic_gazetteer() returns or a Gazetteer"
            )
        return gazetteer.reset_index(drop=True)
    raise TypeError(
        "gazetteer must be a Gazetteer, a DataFrame, a path or None, "
        f"got {type(gazetteer).__name__}"
    )


def _neighbour_mean_matrix(units: pd.DataFrame) -> sparse.csr_matrix:
    """Sparse (n_units, n_units) matrix W with W @ y = mean of y over each unit's neighbours."""
    position = {uid: i for i, uid in enumerate(units["unit_id"])}
    rows, cols = [], []
    for i, cell in enumerate(units["neighbours"]):
        for uid in split_list(cell):
            if uid not in position:
                raise ValueError(
                    f"gazetteer unit {units['name'].iat[i]!r}: unknown neighbour id {uid!r}"
                )
            rows.append(i)
            cols.append(position[uid])
    n = len(units)
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # a neighbour listed twice still counts once
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros(n), where=degree > 0)
    return sparse.diags(inv) @ adj


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class _Simulation:
    """Arrays of one simulation, published months only; shapes (n_months, n_units)."""

    months: pd.PeriodIndex
    units: pd.DataFrame
    incidents: np.ndarray
    deaths: np.ndarray
    log_intensity: np.ndarray
    us_troops: np.ndarray  # (n_months,)
    ops_tempo: np.ndarray  # (n_months,)


def _simulate(config: SyntheticConfig, gazetteer) -> _Simulation:
    units = _units_frame(gazetteer)
    names = units["name"].astype(str).to_numpy()
    n_units = len(names)
    months = _calendar(config)
    n_total = len(months)
    x = _decimal_year(months)

    effects = dict(config.unit_effects)
    drawn = _rng(config, _STREAM_UNITS).normal(
        config.synthetic_unit_effect_mean, config.synthetic_unit_effect_sd, n_units
    )
    alpha = config.base_log_rate + np.array(
        [effects.get(name, d) for name, d in zip(names, drawn)], dtype=float
    )
    borders_syria = np.array(["Syria" in split_list(b) for b in units["borders"]], dtype=float)
    w = _neighbour_mean_matrix(units)

    regime = _cosine_interp(x, config.regime_knots)
    season = _season(months, config)
    syria = _cosine_interp(x, config.syria_knots)
    troops = _us_troops(months, config)
    ops_noise = _rng(config, _STREAM_OPS).standard_normal(n_total)
    # Innovations drawn as one (n_total, n_units) block, row by row, so extending `end`
    # appends rows and leaves earlier months unchanged.
    innov = _rng(config, _STREAM_AR).standard_normal((n_total, n_units))
    rng_counts = _rng(config, _STREAM_COUNTS)

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
    deaths = _rng(config, _STREAM_DEATHS).negative_binomial(size, k / (k + m))
    deaths = np.where(y > 0, deaths, 0).astype(np.int64)

    keep = slice(config.burn_in_months, None)
    return _Simulation(
        months=months[keep],
        units=units,
        incidents=y[keep],
        deaths=deaths[keep],
        log_intensity=eta[keep],
        us_troops=troops[keep],
        ops_tempo=ops[keep],
    )


def _covariates_frame(sim: _Simulation) -> pd.DataFrame:
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
        Parameters of the process (see the module docstring).
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
    sim = _simulate(config, gazetteer)
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
    return counts, _covariates_frame(sim)


# --------------------------------------------------------------------------- events

# (type_of_violence, first year, last year, weight, conflict_new_id, conflict_name, dyad_new_id,
#  dyad_name, side_a_new_id, side_a, side_b_new_id, side_b). Ids are UCDP's where the actor
# exists; UCDP codes al-Qaida in Iraq and IS as one actor (234), named here by period.
_DYADS = (
    (1, None, 2012, 0.70, 259, "Iraq: Government", 524, "Government of Iraq - al-Qaida in Iraq",
     116, "Government of Iraq", 234, "al-Qaida in Iraq"),
    (1, None, 2008, 0.20, 259, "Iraq: Government", 13891, "Government of Iraq - al-Mahdi Army",
     116, "Government of Iraq", 5659, "al-Mahdi Army"),
    (1, None, 2014, 0.10, 259, "Iraq: Government", 523, "Government of Iraq - Ansar al-Islam",
     116, "Government of Iraq", 233, "Ansar al-Islam"),
    (1, 2013, None, 0.95, 259, "Iraq: Government", 524, "Government of Iraq - IS",
     116, "Government of Iraq", 234, "IS"),
    (2, None, 2012, 1.00, 4580, "Ansar al-Islam - PUK", 5190, "Ansar al-Islam - PUK",
     233, "Ansar al-Islam", 261, "PUK"),
    (2, 2013, None, 1.00, 13265, "IS - JRTN", 14152, "IS - JRTN", 234, "IS", 4359, "JRTN"),
    (3, None, 2012, 0.80, 506, "al-Qaida in Iraq - Civilians", 973, "al-Qaida in Iraq - Civilians",
     234, "al-Qaida in Iraq", 1, "Civilians"),
    (3, None, 2008, 0.20, 13132, "al-Mahdi Army - Civilians", 13943, "al-Mahdi Army - Civilians",
     5659, "al-Mahdi Army", 1, "Civilians"),
    (3, 2013, None, 1.00, 506, "IS - Civilians", 973, "IS - Civilians", 234, "IS", 1, "Civilians"),
)
_DYAD_FIELDS = (
    "conflict_new_id", "conflict_name", "dyad_new_id", "dyad_name",
    "side_a_new_id", "side_a", "side_b_new_id", "side_b",
)
# Share of an event's deaths that are (side a, side b, civilians, unknown), by type.
_DEATH_SHARES = {1: (0.30, 0.40, 0.15, 0.15), 2: (0.45, 0.45, 0.0, 0.10), 3: (0.0, 0.0, 0.90, 0.10)}
# Country -> (iso3, country_id as Gleditsch-Ward code, region), as in the GED.
_COUNTRIES = {"Iraq": ("IRQ", 645, "Middle East")}
_OTHER_COUNTRY = ("SYN", 999, "Middle East")
_CODE = re.compile(r"[A-Z]+-?[0-9][A-Z0-9-]*")


def _localise(value: object, country: str) -> object:
    """A dyad field with the Iraqi government renamed to the gazetteer's country."""
    if country == "Iraq" or not isinstance(value, str):
        return value
    return value.replace("Government of Iraq", f"Government of {country}").replace(
        "Iraq: Government", f"{country}: Government"
    )


def _adm1_spellings(row) -> list[str]:
    """Spellings of a unit that a UCDP-like export could print as its province.

    The canonical name and the Latin-script aliases, without P-codes (``IQG01``) and without
    the capital city's names (``Ramadi``, ``Baquba``), which are not province names.
    """
    name_key = normalise_name(row.name)
    capital_key = normalise_name(row.capital) if str(row.capital).strip() else ""
    out: list[str] = []
    for spelling in [row.name, *split_list(row.aliases)]:
        words = str(spelling).split()
        # "Anbar province" and "Anbar" both become "Anbar"; " province" is appended later.
        while words and words[-1].lower() in ("province", "governorate"):
            words.pop()
        text = " ".join(words)
        key = normalise_name(text)
        # Only where the capital's name differs from the province's (Ramadi, not Basra).
        like_capital = (
            capital_key
            and capital_key != name_key
            and key != name_key
            and difflib.SequenceMatcher(None, key, capital_key).ratio() >= 0.85
        )
        if (
            not text
            or text in out
            or like_capital
            or _CODE.fullmatch(text)
            or any("\u0600" <= c <= "\u06ff" for c in text)  # Arabic script
        ):
            continue
        out.append(text)
    return out or [str(row.name)]


def _allocate(totals: np.ndarray, group_of_event: np.ndarray, weights: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Split each group's total among its events, multinomially with the given weights.

    ``group_of_event`` must be sorted and consecutive (0, 0, 1, 2, 2, 2, ...); ``totals`` has
    one entry per group. Returns one count per event; each group's counts sum to its total.
    """
    n_groups = len(totals)
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64)
    group_sum = np.bincount(group_of_event, weights=weights, minlength=n_groups)
    frac = weights / group_sum[group_of_event]
    cum = np.cumsum(frac)
    first = np.searchsorted(group_of_event, np.arange(n_groups))
    before = np.concatenate([[0.0], cum])[first]
    # Position of each event's upper edge inside [g, g + 1); the last edge is exactly g + 1
    # so rounding can never hand an item to the next group.
    edge = group_of_event + (cum - before[group_of_event])
    last = np.r_[first[1:], len(group_of_event)] - 1
    edge[last] = np.arange(n_groups) + 1.0
    items = np.repeat(np.arange(n_groups), totals) + rng.random(int(totals.sum()))
    owner = np.searchsorted(edge, items, side="right")
    return np.bincount(owner, minlength=len(group_of_event)).astype(np.int64)


def _events_from_simulation(sim: _Simulation, config: SyntheticConfig) -> pd.DataFrame:
    rng = _rng(config, _STREAM_EVENTS)
    units = sim.units
    y = sim.incidents
    t_cell, i_cell = np.nonzero(y)  # month-major, then gazetteer order
    n_per_cell = y[t_cell, i_cell]
    deaths_cell = sim.deaths[t_cell, i_cell]
    n_events = int(n_per_cell.sum())
    cell = np.repeat(np.arange(len(t_cell)), n_per_cell)
    t_ev, i_ev = t_cell[cell], i_cell[cell]

    days_in_month = sim.months.days_in_month.to_numpy()
    day = 1 + (rng.random(n_events) * days_in_month[t_ev]).astype(np.int64)

    # Per-incident NB deaths conditioned on their sum are Dirichlet-multinomial: gamma weights,
    # then a multinomial split of the cell's total.
    weights = rng.gamma(config.deaths_dispersion, size=n_events)
    best = _allocate(deaths_cell, cell, weights, rng)

    vtype = rng.choice(np.array([1, 2, 3]), size=n_events, p=np.asarray(config.violence_type_probs))
    year = sim.months.year.to_numpy()[t_ev]
    dyad = np.full(n_events, -1)
    # Years in which the set of active dyads changes; between two of them the candidates of a
    # violence type are fixed.
    cuts = sorted(
        {d[1] for d in _DYADS if d[1] is not None} | {d[2] + 1 for d in _DYADS if d[2] is not None}
    )
    bounds = [-np.inf, *cuts, np.inf]
    for v in (1, 2, 3):
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            span = (vtype == v) & (year >= lo) & (year < hi)
            if not span.any():
                continue
            cands = [
                j for j, d in enumerate(_DYADS)
                if d[0] == v and (d[1] is None or d[1] <= lo) and (d[2] is None or d[2] >= hi - 1)
            ]
            p = np.array([_DYADS[j][3] for j in cands])
            chosen = rng.choice(len(cands), size=int(span.sum()), p=p / p.sum())
            dyad[span] = np.array(cands)[chosen]

    # Deaths by side: sequential binomials with the type's shares.
    shares = np.array([_DEATH_SHARES[v] for v in (1, 2, 3)])[vtype - 1]  # (n_events, 4)
    parts = np.zeros((n_events, 4), dtype=np.int64)
    left = best.copy()
    remaining_share = np.ones(n_events)
    for k in range(3):
        p = np.divide(shares[:, k], remaining_share, out=np.zeros(n_events),
                      where=remaining_share > 1e-12)
        parts[:, k] = rng.binomial(left, np.clip(p, 0.0, 1.0))
        left -= parts[:, k]
        remaining_share -= shares[:, k]
    parts[:, 3] = left

    uncertain = rng.random(n_events) < 0.3
    low = np.where(uncertain, best - rng.binomial(best, 0.25), best)
    high = np.where(uncertain, best + rng.poisson(0.3 * best + 0.5), best)

    spellings = [_adm1_spellings(row) for row in units.itertuples(index=False)]
    n_spell = np.array([len(s) for s in spellings])
    offset = np.r_[0, np.cumsum(n_spell)[:-1]]
    flat = np.array([s for ss in spellings for s in ss], dtype=object)
    pick = offset[i_ev] + (rng.random(n_events) * n_spell[i_ev]).astype(np.int64)
    # UCDP itself writes some names with two spaces before "province" ("Maysān  province").
    sep = np.where(rng.random(n_events) < 0.1, "  ", " ").astype(object)
    adm_1 = flat[pick] + sep + "province"

    lat0 = pd.to_numeric(units["capital_lat"], errors="coerce").to_numpy(dtype=float)
    lon0 = pd.to_numeric(units["capital_lon"], errors="coerce").to_numpy(dtype=float)
    placeless = units["name"][np.isnan(lat0) | np.isnan(lon0)]
    if len(placeless):
        raise ValueError(
            "simulate_events places events around each unit's capital, but "
            f"{', '.join(map(str, placeless[:5]))} ha{'s' if len(placeless) == 1 else 've'} "
            "no capital_lat / capital_lon in the gazetteer"
        )
    lat = np.round(lat0[i_ev] + config.coordinate_jitter_deg * rng.standard_normal(n_events), 4)
    lon = np.round(lon0[i_ev] + config.coordinate_jitter_deg * rng.standard_normal(n_events), 4)
    # PRIO-GRID: 0.5-degree cells numbered row by row from (-90, -180), starting at 1.
    priogrid = (np.floor((lat + 90) / 0.5) * 720 + np.floor((lon + 180) / 0.5) + 1).astype(np.int64)
    where_prec = rng.choice(np.array([1, 2, 3]), size=n_events, p=[0.6, 0.25, 0.15])
    n_sources = 1 + rng.poisson(0.7, n_events)
    clarity = np.where(rng.random(n_events) < 0.95, 1, 2)

    country_names, country_of_unit = np.unique(units["country"].astype(str).to_numpy(),
                                               return_inverse=True)
    c_ev = country_of_unit[i_ev]
    info = [_COUNTRIES.get(c, _OTHER_COUNTRY) for c in country_names]

    # Sort by date, then unit, then draw order; ids follow that order so that "sorted by
    # date_start, then id" is the file order.
    order = np.lexsort((np.arange(n_events), i_ev, day, t_ev))
    month_str = np.asarray(sim.months.strftime("%Y-%m"), dtype=object)
    day_str = np.array([f"-{d:02d}" for d in range(32)], dtype=object)
    date = (month_str[t_ev] + day_str[day])[order]

    # (n_countries, n_dyads) per field: outside Iraq the government is the gazetteer's country.
    dyad_table = {
        f: np.array(
            [[_localise(d[4 + j], c) for d in _DYADS] for c in country_names],
            dtype=np.int64 if f.endswith("_id") else object,
        )
        for j, f in enumerate(_DYAD_FIELDS)
    }
    frame = {
        "id": config.first_event_id + np.arange(n_events, dtype=np.int64),
        "year": year[order],
        "active_year": np.ones(n_events, dtype=np.int64),
        "type_of_violence": vtype[order],
    }
    for f in _DYAD_FIELDS:
        frame[f] = dyad_table[f][c_ev, dyad][order]
    frame |= {
        "number_of_sources": n_sources[order],
        "source_article": "",
        "where_prec": where_prec[order],
        "where_coordinates": units["capital"].astype(str).to_numpy()[i_ev][order],
        "adm_1": adm_1[order],
        "adm_2": "",
        "latitude": lat[order],
        "longitude": lon[order],
        "geom_wkt": np.char.mod("POINT (%.4f ", lon[order]).astype(object)
        + np.char.mod("%.4f)", lat[order]).astype(object),
        "priogrid_gid": priogrid[order],
        "country": country_names.astype(object)[c_ev][order],
        "country_id": np.array([x[1] for x in info], dtype=np.int64)[c_ev][order],
        "iso3": np.array([x[0] for x in info], dtype=object)[c_ev][order],
        "region": np.array([x[2] for x in info], dtype=object)[c_ev][order],
        "event_clarity": clarity[order],
        "date_prec": np.ones(n_events, dtype=np.int64),
        "date_start": date,
        "date_end": date,
        "deaths_a": parts[order, 0],
        "deaths_b": parts[order, 1],
        "deaths_civilians": parts[order, 2],
        "deaths_unknown": parts[order, 3],
        "low": low[order],
        "best": best[order],
        "high": high[order],
    }
    return pd.DataFrame(frame, columns=list(UCDP_GED_COLUMNS))


def simulate_events(
    config: SyntheticConfig = SyntheticConfig(),
    gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the panel and expand it into one UCDP GED-style row per incident.

    Parameters
    ----------
    config : SyntheticConfig
    gazetteer : Gazetteer, DataFrame, path or None
        As for :func:`simulate_panel`.

    Returns
    -------
    events : pandas.DataFrame
        Columns :data:`UCDP_GED_COLUMNS`, sorted by ``date_start`` then ``id``. Grouped by
        unit (``adm_1`` matched through the gazetteer) and month of ``date_start``, the event
        count and the sum of ``best`` equal ``incidents`` and ``deaths`` of
        :func:`simulate_panel` for the same arguments.
    covariates : pandas.DataFrame
        As for :func:`simulate_panel`.
    """
    sim = _simulate(config, gazetteer)
    return _events_from_simulation(sim, config), _covariates_frame(sim)


# --------------------------------------------------------------------------- sample files


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_sample(
    out_dir: str | os.PathLike,
    config: SyntheticConfig = SyntheticConfig(),
    gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Write the demo event file, its covariates and a README describing them.

    Parameters
    ----------
    out_dir : path
        Directory to write to (created if missing).
    config : SyntheticConfig
    gazetteer : Gazetteer, DataFrame, path or None
        As for :func:`simulate_panel`.

    Returns
    -------
    dict
        ``{"events": out_dir/ucdp_ged_demo.csv, "covariates": out_dir/covariates_demo.csv,
        "readme": out_dir/README.md}``. Each file is written atomically (a temporary file in
        ``out_dir``, then ``os.replace``); CSVs are UTF-8 without an index.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events, covariates = simulate_events(config, gazetteer)
    blobs = {
        "events": _csv_bytes(events),
        "covariates": _csv_bytes(covariates[list(COVARIATE_COLUMNS)]),
    }
    blobs["readme"] = _render_readme(config, gazetteer, events, covariates, blobs).encode("utf-8")
    paths = {key: out / SAMPLE_FILES[key] for key in blobs}
    write_bytes_atomically({paths[key]: data for key, data in blobs.items()})
    return paths


def _docstring_as_markdown() -> str:
    """The module docstring from "Data-generating process" up to "Reproducibility", in Markdown.

    The README quotes the docstring instead of repeating it, so the two cannot disagree.
    """
    doc = __doc__ or ""
    text = doc[doc.index("Data-generating process") : doc.index("Reproducibility")]
    lines = text.rstrip().splitlines()
    out: list[str] = []
    for k, line in enumerate(lines):
        if set(line) == {"-"} and k > 0 and len(line) == len(lines[k - 1]):
            out[-1] = "## " + out[-1]  # an RST section underline
            out.append("")
            continue
        out.append(line)
    md = "\n".join(out) + "\n"
    md = re.sub(r":(?:func|data|meth|class|mod):`~?([^`]+)`", r"`\1`", md)
    return md.replace("::\n", ":\n")


def _render_readme(config: SyntheticConfig, gazetteer, events: pd.DataFrame,
                   covariates: pd.DataFrame, blobs: dict[str, bytes]) -> str:
    if gazetteer is None:
        units = "the bundled Iraq gazetteer (`data/reference/iraq_governorates.csv`)"
    elif isinstance(gazetteer, Gazetteer):
        units = f"the {len(gazetteer.units):,} units of the gazetteer `{Path(gazetteer.path).name}`"
    elif isinstance(gazetteer, pd.DataFrame):
        units = f"{len(gazetteer):,} units of a gazetteer frame (e.g. `synthetic_gazetteer`)"
    else:
        units = f"the units of the gazetteer `{Path(gazetteer).name}`"
    # The unit written in the most ways, to show what readers must normalise.
    spelled = events["adm_1"].str.replace(r"\s+", " ", regex=True)
    variety = spelled.groupby(events["where_coordinates"]).agg(lambda s: sorted(set(s)))
    shown = max(variety, key=len, default=[])[:5]
    examples = ", ".join(f"`{a}`" for a in shown) or "none"
    rows = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple) and value and isinstance(value[0], tuple):
            shown = "; ".join(f"{a}: {b:g}" for a, b in value)
        else:
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
        rows.append(f"| `{f.name}` | {shown} |")
    effects = "\n".join(f"| `{k}` | {v:+.3f} |" for k, v in config.true_effects().items())
    note = ""
    if config != SyntheticConfig():
        note = "\n**Generated with a non-default configuration.**\n"
    per_year = events.groupby("year").size()
    years = ", ".join(f"{y} {n:,}" for y, n in per_year.items())
    files = SAMPLE_FILES
    return f"""# Synthetic demo data (UCDP GED layout)

**Synthetic, not real.** Written by `features.synthetic.write_sample("data/sample")` from the
process described below; `tests/test_synthetic.py` regenerates these files and fails if they
differ by one byte, so change `features/synthetic.py` and rerun the command instead of editing
them by hand.
{note}
| file | rows | bytes | content |
|---|---|---|---|
| `{files['events']}` | {len(events):,} | {len(blobs['events']):,} | one simulated incident per row, in the UCDP GED codebook columns `{', '.join(UCDP_GED_COLUMNS)}` |
| `{files['covariates']}` | {len(covariates):,} | {len(blobs['covariates']):,} | national monthly covariates `{', '.join(COVARIATE_COLUMNS)}` |

Units: {units}.
Months {config.start} to {config.end}, seed {config.seed}: {len(events):,} events and {int(events['best'].sum()):,} deaths (`best`).
Events per year: {years}.

Read the events like a GED download (`--format ucdp`). `adm_1` deliberately mixes spellings of
each unit, some with UCDP's two spaces before `province`, and every one resolves through the
gazetteer; for example
{examples}.
The panel the events were expanded from, with the latent log-intensity, is
`features.synthetic.simulate_panel()`; the latent national series are
`features.synthetic.national_components()`.

## True covariate effects

| regressor | coefficient on log E[incidents] |
|---|---|
{effects}

## Parameters (`SyntheticConfig`)

| parameter | value |
|---|---|
{chr(10).join(rows)}

{_docstring_as_markdown()}"""
