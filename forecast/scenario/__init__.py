"""Scenario projections: forecasts under alternative covariate paths, and their differences.

A *scenario* says how covariates (troop levels, operations tempo, ...) evolve after the
forecast origin; the scenario files in ``experiments/scenarios/`` are described in the README
there. One model is fitted once at the origin and predicts every scenario; each scenario is
compared with the *baseline* (every covariate held at its last known value, the default of
``forecast predict``).

Which models respond
--------------------
Only a model that uses covariate values at the target months (``uses_future_covariates``,
e.g. ``nb_glmx`` or ``sarimax``) and was fitted with covariates can respond. Any other model
is *scenario-blind*: its forecasts are computed and returned for every scenario (they are
identical), but no differences are reported (``differences`` has no rows,
``responsive`` is False, ``blind_models`` lists every registered blind model), because a
difference of zero from a model that cannot see the scenario is not evidence of no effect.
Likewise a scenario that changes only covariates the model does not use (for instance one that
was constant in the history and dropped) gets no difference rows and a note.

Uncertainty of the differences
------------------------------
The point difference (``mean``) is the difference of the two forecasts' predictive means. Its
band (``q05``, ``q50``, ``q95``) comes from draws that are *paired* across scenarios:

* Models with ``scenario_draws(horizon, futures, n_draws, seed)`` (``nb_glmx``): draws of the
  regression coefficients from the normal approximation of their sampling distribution,
  the same draws under every scenario. Each draw gives the expected count under the baseline
  and under the scenario; the band is the spread of their difference, so it reflects the
  uncertainty of the covariate coefficients (and of the level they multiply). Count noise is
  not added: it is not part of what the scenario changes.
* Other responsive models (``sarimax``): common random numbers. The same uniform draw ``u``
  (one per unit and draw) is passed through both predictive distributions (their quantile
  functions, interpolated linearly between the reported quantiles and held flat beyond
  q05/q95), and the band is the spread of ``Q_scenario(u) - Q_baseline(u)``. It reflects how
  the shift scales with the uncertain level, not the uncertainty of the coefficients;
  ``ScenarioResult.method`` says which method was used.

National totals (``ScenarioResult.national``) sum the units within each draw, so the band of
the total keeps the correlation between units.

These are conditional projections from correlations in historical data, not causal
estimates: they say how the model's forecasts move when its inputs move.
"""

from __future__ import annotations

from forecast.scenario.run import (
    DIFFERENCE_COLUMNS,
    METHOD_CRN,
    METHOD_DRAWS,
    NATIONAL_COLUMNS,
    ScenarioResult,
    blind_models,
    run_scenarios,
    run_scenarios_fitted,
    summary_text,
)
from forecast.scenario.spec import BASELINE, OPERATIONS, Change, Scenario, load_scenario
from forecast.scenario.track import TRACKING_EXPERIMENT, track_scenarios

__all__ = [
    "BASELINE",
    "DIFFERENCE_COLUMNS",
    "METHOD_CRN",
    "METHOD_DRAWS",
    "NATIONAL_COLUMNS",
    "OPERATIONS",
    "TRACKING_EXPERIMENT",
    "Change",
    "Scenario",
    "ScenarioResult",
    "blind_models",
    "load_scenario",
    "run_scenarios",
    "run_scenarios_fitted",
    "summary_text",
    "track_scenarios",
]
