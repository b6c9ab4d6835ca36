"""Parameters of the synthetic data-generating process, and the process they set.

:class:`SyntheticConfig` holds every parameter; the default tables it starts from (the Iraqi
unit effects and the regime, troop and Syria knots) sit beside it. This docstring is the
documentation of the process: :func:`features.synthetic.sample.write_sample` quotes its
sections below, up to the one on reproducibility, in the README of the demo data (so keep the
section titles out of this paragraph).

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

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def parse_month(field_name: str, text: str) -> pd.Period:
    """The month ``"YYYY-MM"`` of the field ``field_name`` of a SyntheticConfig, or a ValueError."""
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
        start, end = parse_month("start", self.start), parse_month("end", self.end)
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
