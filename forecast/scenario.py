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

import copy
import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.gazetteer import Gazetteer, load_gazetteer
from forecast.config import ConfigError, Reader, kind, read_toml
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, QUANTILES

__all__ = [
    "BASELINE",
    "DIFFERENCE_COLUMNS",
    "NATIONAL_COLUMNS",
    "OPERATIONS",
    "Change",
    "Scenario",
    "ScenarioResult",
    "blind_models",
    "load_scenario",
    "run_scenarios",
    "run_scenarios_fitted",
    "summary_text",
]

#: What a ``[[change]]`` can do to a covariate's path.
OPERATIONS = {
    "set": "set to `value` from month `from` on",
    "scale": "multiply by `factor` from month `from` on",
    "ramp": "move in equal monthly steps to `value` (or to `factor` times the path), reaching it at `to`",
}
DIFFERENCE_COLUMNS = ("unit", "origin", "month", "horizon", "scenario", "mean", "q05", "q50", "q95")
NATIONAL_COLUMNS = ("origin", "month", "horizon", "scenario", "baseline_mean", "scenario_mean",
                    "mean", "q05", "q50", "q95")
PATH_COLUMNS = ("scenario", "unit", "month", "covariate", "value")
HISTORY_COLUMNS = ("unit", "month", "covariate", "value")
#: Paired draws behind every difference band.
N_DRAWS = 1000
#: Months of covariate history returned for charts.
HISTORY_MONTHS = 24
METHOD_DRAWS = "coefficient draws"
METHOD_CRN = "common random numbers"

_TOP_KEYS = ("name", "description", "rationale", "change")
_CHANGE_KEYS = ("covariate", "operation", "value", "factor", "from", "to", "units")
_BAND = (0.05, 0.50, 0.95)


# ----------------------------------------------------------------------------------------
# Scenario files


def _when(text: Any) -> tuple[str, Any] | None:
    """``"+3"`` -> ("after", 3); ``"2025-01"`` -> ("month", Period); anything else None."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if s.startswith("+") and s[1:].isdigit() and int(s[1:]) >= 1:
        return ("after", int(s[1:]))
    if re.fullmatch(r"\d{4}-\d{2}", s):
        try:
            return ("month", pd.Period(s, freq="M"))
        except ValueError:
            return None
    return None


def _at(when: tuple[str, Any], origin: pd.Period) -> pd.Period:
    return origin + when[1] if when[0] == "after" else when[1]


@dataclass(frozen=True)
class Change:
    """One change to one covariate's future path (a ``[[change]]`` table of a scenario file)."""

    #: The covariate, or alternative names of it: the first the panel has is used.
    covariate: tuple[str, ...]
    operation: str
    value: float | None = None
    factor: float | None = None
    #: First month changed: ``"+N"`` (N months after the origin) or ``"YYYY-MM"``.
    start: str = "+1"
    #: Month a ramp reaches its target (ramps only).
    end: str | None = None
    #: Canonical unit names; None = every unit (a national change).
    units: tuple[str, ...] | None = None
    #: Position of the table in the file (1-based), for error messages.
    index: int = 0

    def describe(self) -> str:
        target = f"{self.value:g}" if self.value is not None else f"x{self.factor:g}"
        what = {"set": "set to ", "scale": "", "ramp": "ramp to "}[self.operation] + target
        when = f"from {self.start}" + (f" to {self.end}" if self.end else " on")
        where = "all units" if self.units is None else ", ".join(self.units)
        return f"{' or '.join(self.covariate)}: {what} {when} ({where})"


@dataclass(frozen=True)
class Scenario:
    """A named set of covariate changes; no changes is the baseline (covariates held)."""

    name: str
    description: str
    rationale: str
    path: Path | None
    changes: tuple[Change, ...] = ()

    @property
    def is_baseline(self) -> bool:
        return not self.changes

    def as_dict(self) -> dict[str, Any]:
        """Plain values, e.g. to log as MLflow parameters."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "rationale": self.rationale,
                               "file": str(self.path) if self.path else ""}
        for c in self.changes:
            out[f"change{c.index}"] = c.describe()
        return out


#: The reference scenario added when none of the given scenarios is a baseline.
BASELINE = Scenario(
    name="baseline", description="Every covariate held at its last known value.",
    rationale="The reference the other scenarios are compared with (what 'forecast predict' assumes).",
    path=None,
)


def _number(r: Reader, key: str, *, minimum: float | None = None) -> float | None:
    value = r.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        r.fail(key, f"must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        r.fail(key, f"must be >= {minimum:g}, got {value!r}")
    return float(value)


def _month_key(r: Reader, key: str, default: str | None) -> str | None:
    value = r.get(key, default)
    if value is None:
        return None
    if _when(value) is None:
        r.fail(key, f"{value!r} is not a month; write \"YYYY-MM\" or \"+N\" (N >= 1 months after the "
                    f"forecast origin), as a quoted string, e.g. \"+1\" or \"2025-03\"")
    return value.strip()


def load_scenario(path: str | Path, gazetteer: Gazetteer | str | Path | None = None) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file (format: ``experiments/scenarios/README.md``).
    gazetteer
        Resolves the ``units`` of changes (default: the bundled Iraq gazetteer).

    Raises
    ------
    ConfigError
        Naming the file, the table (``[[change]] #2``), the key and the value: unknown keys
        (with the closest valid key), unknown operations and governorates (with suggestions),
        missing or contradictory keys, malformed months and numbers. Covariate names and
        months relative to the data are checked by :func:`run_scenarios` before any fitting.
    """
    path = Path(path)
    raw, _ = read_toml(path, "scenario file")
    top = Reader(path, "top level", raw, _TOP_KEYS)
    name = top.string("name")
    if not name or not name.strip():
        top.fail("name", "is required: a short name for the scenario, e.g. name = \"partial withdrawal\"")
    description = top.string("description")
    if description is None or not description.strip():
        top.fail("description", "is required: one or two sentences saying what the scenario assumes")
    rationale = top.string("rationale") or ""
    if "\n" in rationale.strip():
        top.fail("rationale", "must be one line (why this scenario is worth looking at)")
    entries = raw.get("change", [])
    if isinstance(entries, dict):
        top.fail("change", "write each change as a [[change]] table (two brackets), not [change]")
    if not isinstance(entries, list):
        top.fail("change", f"must be [[change]] tables, got {kind(entries)}")
    gaz = gazetteer if isinstance(gazetteer, Gazetteer) else load_gazetteer(gazetteer)
    changes = tuple(_read_change(path, i, entry, gaz) for i, entry in enumerate(entries, start=1))
    return Scenario(name=name.strip(), description=" ".join(description.split()), rationale=rationale.strip(),
                    path=path, changes=changes)


def _read_change(path: Path, index: int, entry: Any, gaz: Gazetteer) -> Change:
    r = Reader(path, f"[[change]] #{index}", entry, _CHANGE_KEYS)
    covariate = r.get("covariate")
    if covariate is None:
        r.fail("covariate", "is required: the panel column to change, e.g. covariate = \"us_troops\"")
    if isinstance(covariate, str):
        covariate = [covariate]
    if (not isinstance(covariate, list) or not covariate
            or not all(isinstance(c, str) and c.strip() for c in covariate)):
        r.fail("covariate", f"must be a column name or a list of alternative names, got {r.get('covariate')!r}")
    operation = r.string("operation", list(OPERATIONS))
    if operation is None:
        r.fail("operation", f"is required: one of {', '.join(OPERATIONS)}")
    value = _number(r, "value")
    factor = _number(r, "factor", minimum=0.0)
    if operation == "set":
        if value is None:
            r.fail("value", "is required for operation \"set\" (the covariate's value from `from` on)")
        for key in ("factor", "to"):
            if key in entry:
                r.fail(key, f"does not apply to operation \"set\"; use \"{'scale' if key == 'factor' else 'ramp'}\"")
    elif operation == "scale":
        if factor is None:
            r.fail("factor", "is required for operation \"scale\" (e.g. factor = 2 doubles the covariate)")
        for key in ("value", "to"):
            if key in entry:
                r.fail(key, f"does not apply to operation \"scale\"; use \"{'set' if key == 'value' else 'ramp'}\"")
    else:
        if (value is None) == (factor is None):
            r.fail(None, "a ramp needs exactly one of value (the level reached) or factor (the multiple of the "
                         "path reached)")
        if "to" not in entry:
            r.fail("to", "is required for operation \"ramp\": the month the target is reached (\"+N\" or \"YYYY-MM\")")
    start = _month_key(r, "from", "+1")
    end = _month_key(r, "to", None)
    if end is not None:
        a, b = _when(start), _when(end)
        if a[0] == b[0] and b[1] < a[1]:
            r.fail("to", f"{end!r} is before from {start!r}")
    units = r.units("units", lambda: gaz, "leave it out for a national change (every unit)")
    return Change(covariate=tuple(c.strip() for c in covariate), operation=operation, value=value, factor=factor,
                  start=start, end=end, units=units, index=index)


# ----------------------------------------------------------------------------------------
# Paths


@dataclass(frozen=True)
class _Resolved:
    """A change checked against the data: the covariate used and the months as periods."""

    change: Change
    covariate: str
    start: pd.Period
    end: pd.Period


def _where(scenario: Scenario, change: Change | None = None) -> str:
    where = f"{scenario.path}" if scenario.path else f"scenario {scenario.name!r}"
    return where + (f": [[change]] #{change.index}" if change is not None else "")


def _resolve(scenarios: Sequence[Scenario], covariates: list[str], units: list[str],
             origin: pd.Period) -> dict[str, list[_Resolved]]:
    """Check every scenario against the data before any work; name -> resolved changes."""
    names: dict[str, Scenario] = {}
    for s in scenarios:
        if s.name in names:
            raise ConfigError(f"{_where(s)}: two scenarios are named {s.name!r} "
                              f"({_where(names[s.name])} too); give one another name")
        names[s.name] = s
    out: dict[str, list[_Resolved]] = {}
    for s in scenarios:
        resolved = []
        for c in s.changes:
            where = _where(s, c)
            found = next((name for name in c.covariate if name in covariates), None)
            if found is None:
                if not covariates:
                    raise ConfigError(f"{where} key 'covariate': the panel has no covariates, so no scenario can "
                                      f"change {c.covariate[0]!r}; build the panel with --covariates")
                close = difflib.get_close_matches(c.covariate[0], covariates, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                named = (repr(c.covariate[0]) + " is not a covariate" if len(c.covariate) == 1 else
                         "none of " + ", ".join(map(repr, c.covariate)) + " is a covariate")
                raise ConfigError(f"{where} key 'covariate': {named} of the panel; {hint}"
                                  f"it has {', '.join(covariates)}")
            missing = [u for u in c.units or () if u not in units]
            if missing:
                raise ConfigError(f"{where} key 'units': {', '.join(missing)} not in the panel "
                                  f"(its units: {', '.join(units)})")
            start = _at(_when(c.start), origin)
            if start <= origin:
                raise ConfigError(f"{where} key 'from': {c.start} is not after the forecast origin {origin}; "
                                  "scenarios change the months after the origin only (use \"+N\" to stay relative)")
            end = _at(_when(c.end), origin) if c.end is not None else start
            if end < start:
                raise ConfigError(f"{where} key 'to': {c.end} ({end}) is before from {c.start} ({start})")
            resolved.append(_Resolved(c, found, start, end))
        out[s.name] = resolved
    return out


def _future(base: pd.DataFrame, changes: list[_Resolved]) -> pd.DataFrame:
    """Apply changes in file order to the held-last-value future ``base`` (unit, month, covariates)."""
    future = base.copy()
    months = future["month"]
    for r in changes:
        c = r.change
        # Weight of the target: 0 before `from`, equal steps up to 1 at `to`, 1 afterwards.
        steps = (r.end - r.start).n + 1
        k = np.array([(m - r.start).n + 1 for m in months], dtype=float)
        w = np.clip(k / steps, 0.0, 1.0)
        if c.units is not None:
            w = np.where(future["unit"].isin(c.units).to_numpy(), w, 0.0)
        current = future[r.covariate].to_numpy(dtype=float)
        if c.value is not None:
            future[r.covariate] = (1 - w) * current + w * c.value
        else:
            future[r.covariate] = current * (1 + w * (c.factor - 1))
    return future


def _long(frame: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    return frame.melt(id_vars=["unit", "month"], value_vars=covariates, var_name="covariate", value_name="value")


# ----------------------------------------------------------------------------------------
# Which models respond


def _responds_by_default(name: str) -> bool:
    from forecast.catalog import MODELS, make_model

    model = make_model(name)
    if bool(model.uses_future_covariates):
        return True
    # A combination (the ensemble) responds when one of its members does.
    members = getattr(model, "members", None) or ()
    return any(m in MODELS and bool(MODELS[m].uses_future_covariates) for m in members)


def blind_models() -> tuple[str, ...]:
    """Registered models (default parameters) that ignore covariates at target months."""
    from forecast.catalog import MODELS

    return tuple(sorted(n for n in MODELS if not _responds_by_default(n)))


def _used_covariates(model) -> list[str]:
    """Covariates whose target-month values can move the fitted model's forecasts."""
    if not bool(model.uses_future_covariates) or not model.covariates_:
        return []
    return list(getattr(model, "scenario_covariates_", model.covariates_))


# ----------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ScenarioResult:
    """Forecasts of one fitted model under several scenarios, and their differences.

    ``forecasts``: :data:`~forecast.schema.FORECAST_COLUMNS` + ``scenario``, one block per
    scenario, baseline first. ``differences``: :data:`DIFFERENCE_COLUMNS`, scenario minus
    baseline per unit and month (no baseline rows; none at all for a scenario-blind model).
    ``paths``: ``scenario, unit, month, covariate, value`` at the target months.
    ``history``: ``unit, month, covariate, value`` for the last months up to the origin.
    ``national``: :data:`NATIONAL_COLUMNS`, the differences of the national totals.
    """

    model: str
    baseline: str
    scenarios: tuple[Scenario, ...]
    forecasts: pd.DataFrame
    differences: pd.DataFrame
    paths: pd.DataFrame
    history: pd.DataFrame
    blind_models: tuple[str, ...]
    responsive: bool
    origin: pd.Period | None = None
    target: str = "incidents"
    national: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(NATIONAL_COLUMNS)))
    #: How the difference bands were computed (:data:`METHOD_DRAWS` or :data:`METHOD_CRN`), "" if blind.
    method: str = ""
    #: Things a reader must know (scenarios the model cannot see, model fallbacks).
    notes: tuple[str, ...] = ()


def run_scenarios(panel: pd.DataFrame, model_name: str, scenarios: Sequence[Scenario], horizon: int, *,
                  params: dict | None = None, target: str = "incidents", origin: pd.Period | None = None,
                  seed: int = 0) -> ScenarioResult:
    """Fit ``model_name`` once at ``origin`` and forecast every scenario from it.

    Parameters
    ----------
    panel
        A validated panel with covariates.
    model_name, params
        Registered model and hyperparameters.
    scenarios
        From :func:`load_scenario`. When none is a baseline (no changes), :data:`BASELINE`
        is added first.
    horizon
        Months ahead.
    target
        Panel column to forecast.
    origin
        Last month the model sees (default the panel's last month); later rows are ignored.
    seed
        Seed of the paired draws behind the difference bands.

    Raises
    ------
    ConfigError
        A scenario that does not fit the data (unknown covariate or unit, a month not after
        the origin, duplicate names), before anything is fitted.
    forecast.models.base.ModelError
        Unknown model or parameter, or a history the model cannot use.
    """
    from forecast.evaluation.backtest import default_covariates, history_at
    from forecast.catalog import make_model

    origin = panel["month"].max() if origin is None else pd.Period(origin, freq="M")
    model = make_model(model_name, **(params or {}))
    history = history_at(panel, origin, target)
    _resolve(_with_baseline(scenarios), default_covariates(panel), sorted(history["unit"].unique()), origin)
    model.fit(history)
    return run_scenarios_fitted(model, history, scenarios, horizon, seed=seed, target=target, name=model_name)


def _with_baseline(scenarios: Sequence[Scenario]) -> list[Scenario]:
    scenarios = list(scenarios)
    if not scenarios or not any(s.is_baseline for s in scenarios):
        if any(s.name == BASELINE.name for s in scenarios):
            s = next(s for s in scenarios if s.name == BASELINE.name)
            raise ConfigError(f"{_where(s)}: a scenario named {BASELINE.name!r} changes covariates; rename it, or "
                              "make it the baseline by removing its [[change]] tables")
        scenarios.insert(0, BASELINE)
    else:
        first = next(s for s in scenarios if s.is_baseline)
        scenarios.remove(first)
        scenarios.insert(0, first)
    return scenarios


def run_scenarios_fitted(forecaster, history: pd.DataFrame, scenarios: Sequence[Scenario], horizon: int, *,
                         seed: int = 0, target: str = "incidents", name: str | None = None) -> ScenarioResult:
    """Forecast every scenario from an already fitted model (e.g. one from the model registry).

    Parameters
    ----------
    forecaster
        A fitted :class:`~forecast.models.base.Forecaster`.
    history
        ``unit, month, y`` and covariates up to the origin. When it differs from the history
        the model was fitted on, a copy of the model is conditioned on it with ``update``
        (the fitted parameters are kept, nothing is refitted).
    scenarios, horizon, seed
        As for :func:`run_scenarios`.
    target
        Name of the forecast quantity, for labels.
    name
        Model name in the output (default ``forecaster.name``).
    """
    from forecast.evaluation.backtest import forecast_at
    from forecast.models.base import ModelError, check_history, covariate_columns, hold_last_value

    if int(horizon) != horizon or horizon < 1:
        raise ModelError(f"horizon must be a whole number >= 1, got {horizon!r}")
    horizon = int(horizon)
    name = name or forecaster.name
    model = forecaster
    fitted_cols = list(model.history_.columns)
    missing = [c for c in fitted_cols if c not in history]
    if missing:
        raise ModelError(f"{name}: the history lacks column(s) {', '.join(missing)} the model was fitted with")
    history = check_history(history[fitted_cols], name)
    if not history.equals(model.history_.reset_index(drop=True)):
        model = copy.deepcopy(model).update(history)
    origin = history["month"].max()
    scenarios = _with_baseline(scenarios)
    covariates = covariate_columns(history)
    units = sorted(history["unit"].unique())
    resolved = _resolve(scenarios, covariates, units, origin)

    held = hold_last_value(history, horizon)
    futures = [_future(held, resolved[s.name]) for s in scenarios]
    used = _used_covariates(model)
    responsive = bool(used)
    notes: list[str] = [f"{name} fallback: {k}: {v}" for k, v in sorted(getattr(model, "fallbacks_", {}).items())]

    frames = []
    for s, future in zip(scenarios, futures):
        f = forecast_at(model, history, horizon, name=name, scenario=future if responsive else None)
        frames.append(f.drop(columns="covariates").assign(scenario=s.name))
    forecasts = pd.concat(frames, ignore_index=True)[[*FORECAST_COLUMNS, "scenario"]]

    paths = pd.concat([_long(f, covariates).assign(scenario=s.name) for s, f in zip(scenarios, futures)],
                      ignore_index=True)[list(PATH_COLUMNS)] if covariates else pd.DataFrame(columns=list(PATH_COLUMNS))
    recent = history[history["month"] > origin - HISTORY_MONTHS]
    past = _long(recent, covariates)[list(HISTORY_COLUMNS)] if covariates else pd.DataFrame(columns=list(HISTORY_COLUMNS))
    for s in scenarios[1:]:
        for r in resolved[s.name]:
            if r.covariate != r.change.covariate[0]:
                notes.append(f"{s.name}: changes {r.covariate}, the first of {', '.join(r.change.covariate)} "
                             f"the panel has")
        national = [r.covariate for r in resolved[s.name] if r.change.units is not None
                    and (history.groupby("month")[r.covariate].nunique(dropna=False) <= 1).all()]
        for cov in dict.fromkeys(national):
            notes.append(f"{s.name}: {cov} is national in the history (one value per month); the per-governorate "
                         f"change applies the nationally estimated association to those governorates only")

    empty_diff = pd.DataFrame(columns=list(DIFFERENCE_COLUMNS))
    empty_nat = pd.DataFrame(columns=list(NATIONAL_COLUMNS))
    if not responsive:
        why = ("it does not use covariates at the target months" if not bool(model.uses_future_covariates)
               else "it was fitted without covariates that vary")
        notes.insert(0, f"{name} is scenario-blind ({why}): its forecasts are the same under every scenario and "
                        f"no differences are reported; models that respond: "
                        f"{', '.join(_responsive_names()) or 'none'}")
        return ScenarioResult(model=name, baseline=scenarios[0].name, scenarios=tuple(scenarios), forecasts=forecasts,
                              differences=empty_diff, paths=paths, history=past,
                              blind_models=blind_models(), responsive=False, origin=origin, target=target,
                              national=empty_nat, method="", notes=tuple(notes))

    # Scenarios whose changes reach no covariate the model uses get no difference rows.
    seen = []
    for s in scenarios[1:]:
        touched = {r.covariate for r in resolved[s.name]}
        if not touched & set(used):
            notes.append(f"{s.name}: changes only {', '.join(sorted(touched))}, which {name} does not use "
                         f"(it uses {', '.join(used)}); no differences reported")
            continue
        seen.append(s)
        base_f, f = futures[0], futures[scenarios.index(s)]
        if np.allclose(base_f[used].to_numpy(dtype=float), f[used].to_numpy(dtype=float)):
            notes.append(f"{s.name}: its covariate paths equal the baseline's within the {horizon}-month horizon")
    if not seen:
        return ScenarioResult(model=name, baseline=scenarios[0].name, scenarios=tuple(scenarios), forecasts=forecasts,
                              differences=empty_diff, paths=paths, history=past, blind_models=(), responsive=True,
                              origin=origin, target=target, national=empty_nat, method="", notes=tuple(notes))
    index = [0, *(scenarios.index(s) for s in seen)]
    means = np.stack([_grid(frames[i], units, horizon, "mean") for i in index])  # (S, U, H)
    draws, method = _paired_draws(model, frames, futures, index, units, horizon, seed)  # (S, D, U, H)
    differences, national = _summarise(means, draws, [scenarios[i].name for i in index], units, origin, horizon)
    return ScenarioResult(model=name, baseline=scenarios[0].name, scenarios=tuple(scenarios), forecasts=forecasts,
                          differences=differences, paths=paths, history=past, blind_models=(), responsive=True,
                          origin=origin, target=target, national=national, method=method, notes=tuple(notes))


def _responsive_names() -> list[str]:
    from forecast.catalog import MODELS

    return sorted(set(MODELS) - set(blind_models()))


def _grid(frame: pd.DataFrame, units: list[str], horizon: int, column: str) -> np.ndarray:
    """A forecast column as an array (n_units, horizon)."""
    table = frame.pivot(index="unit", columns="horizon", values=column).reindex(index=units, columns=range(1, horizon + 1))
    return table.to_numpy(dtype=float)


def _paired_draws(model, frames, futures, index, units, horizon, seed) -> tuple[np.ndarray, str]:
    """Draws of each scenario's predictive mean (or count), paired across scenarios: (S, D, U, H)."""
    if hasattr(model, "scenario_draws"):
        draws = model.scenario_draws(horizon, [futures[i] for i in index], N_DRAWS, seed)
        if list(model.units_) != units:
            order = [list(model.units_).index(u) for u in units]
            draws = draws[:, :, order, :]
        return draws, METHOD_DRAWS
    # Common random numbers: one uniform per draw, unit and horizon, shared by all scenarios.
    rng = np.random.default_rng([int(seed), 7])
    u = rng.uniform(size=(N_DRAWS, len(units), horizon))
    levels = np.asarray(QUANTILES)
    out = np.zeros((len(index), N_DRAWS, len(units), horizon))
    for k, i in enumerate(index):
        q = np.stack([_grid(frames[i], units, horizon, c) for c in QUANTILE_COLUMNS], axis=-1)  # (U, H, 7)
        for j in range(len(units)):
            for h in range(horizon):
                out[k, :, j, h] = np.interp(u[:, j, h], levels, q[j, h])
    return out, METHOD_CRN


def _summarise(means: np.ndarray, draws: np.ndarray, names: list[str], units: list[str], origin: pd.Period,
               horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    months = pd.period_range(origin + 1, origin + horizon, freq="M")
    rows, national = [], []
    for k in range(1, len(names)):
        point = means[k] - means[0]  # (U, H)
        diff = draws[k] - draws[0]  # (D, U, H)
        band = np.quantile(diff, _BAND, axis=0)  # (3, U, H)
        for j, unit in enumerate(units):
            for h in range(horizon):
                rows.append((unit, origin, months[h], h + 1, names[k], point[j, h], *band[:, j, h]))
        total = diff.sum(axis=1)  # (D, H)
        tband = np.quantile(total, _BAND, axis=0)
        for h in range(horizon):
            national.append((origin, months[h], h + 1, names[k], means[0, :, h].sum(), means[k, :, h].sum(),
                             point[:, h].sum(), *tband[:, h]))
    differences = pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS))
    return differences, pd.DataFrame(national, columns=list(NATIONAL_COLUMNS))


# ----------------------------------------------------------------------------------------
# Text


def summary_text(result: ScenarioResult, *, top: int = 5) -> str:
    """A readable summary: per scenario, the national difference at the horizon and the top units."""
    lines = [f"model {result.model}, origin {result.origin}, target {result.target}; baseline: {result.baseline}"]
    if not result.responsive:
        lines.append(f"SCENARIO-BLIND: {result.model} does not respond to covariate scenarios, so its forecasts "
                     f"are identical under every scenario and no differences are reported.")
        lines.append(f"  pick a model that responds: {', '.join(_responsive_names()) or 'none registered'}")
    else:
        lines.append(f"differences: scenario minus baseline, expected {result.target} per month "
                     f"(90% interval from {result.method}); conditional projections from correlations in "
                     "historical data, not causal estimates")
    h_max = int(result.forecasts["horizon"].max())
    for s in result.scenarios:
        if s.name == result.baseline:
            base = result.forecasts[(result.forecasts["scenario"] == s.name) & (result.forecasts["horizon"] == h_max)]
            lines.append(f"- {s.name}: national mean at horizon {h_max}: {base['mean'].sum():,.1f}")
            continue
        lines.append(f"- {s.name}: {s.description}")
        nat = result.national[(result.national["scenario"] == s.name) & (result.national["horizon"] == h_max)]
        if not len(nat):
            lines.append("    no difference reported (see notes)" if result.responsive else "    (scenario-blind)")
            continue
        r = nat.iloc[0]
        rel = r["mean"] / r["baseline_mean"] * 100 if r["baseline_mean"] > 0 else float("nan")
        lines.append(f"    national, horizon {h_max} ({r['month']}): {r['mean']:+,.2f} ({rel:+.1f}%), "
                     f"90% interval {r['q05']:+,.2f} to {r['q95']:+,.2f}")
        d = result.differences[(result.differences["scenario"] == s.name) & (result.differences["horizon"] == h_max)]
        d = d.reindex(d["mean"].abs().sort_values(ascending=False, kind="stable").index).head(top)
        shown = "; ".join(f"{u} {m:+,.2f} ({a:+,.2f} to {b:+,.2f})"
                          for u, m, a, b in zip(d["unit"], d["mean"], d["q05"], d["q95"]))
        lines.append(f"    largest by governorate: {shown}")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Tracking

#: MLflow experiment the scenario runs go to.
TRACKING_EXPERIMENT = "scenarios"
KIND_SCENARIO_MODEL = "scenario-model"
KIND_SCENARIO = "scenario"


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Period columns as ``YYYY-MM`` strings, for CSV files."""
    out = frame.copy()
    for col in ("origin", "month"):
        if col in out:
            out[col] = out[col].astype(str)
    return out


def track_scenarios(result: ScenarioResult, tracker, *, params: dict | None = None, panel: pd.DataFrame | None = None,
                    panel_source: str | None = None, panel_metadata: dict | None = None) -> tuple[str, dict[str, str]]:
    """Log a scenario run to MLflow: the model's run, one nested run per scenario.

    The parent run (``forecast.kind`` = ``scenario-model``) holds the model, its parameters,
    the origin and horizon, the panel as a dataset input and every scenario's forecasts; each
    child run (``forecast.kind`` = ``scenario``) holds its scenario file, its forecasts, paths
    and differences, and metrics per horizon: ``national_mean_h<H>`` (the scenario's national
    forecast) and, for a responsive model, ``national_diff_h<H>``, ``national_diff_q05_h<H>``
    and ``national_diff_q95_h<H>``. Scenario runs never appear in ``forecast experiment
    compare`` (which lists ``backtest`` runs only).

    Parameters
    ----------
    result
        From :func:`run_scenarios`.
    tracker
        A :class:`forecast.tracking.ExperimentTracker`.
    params
        The model's hyperparameters as given.

    Returns
    -------
    (parent run id, {scenario name: child run id})
    """
    import tempfile

    from forecast.tracking import log_batch

    horizon = int(result.forecasts["horizon"].max())
    run_params = {"model": result.model, "params": dict(params or {}), "origin": str(result.origin),
                  "horizon": horizon, "target": result.target, "scenarios": [s.name for s in result.scenarios],
                  "baseline": result.baseline, "difference_method": result.method or "none (scenario-blind)"}
    tags = {"forecast.kind": KIND_SCENARIO_MODEL, "forecast.model": result.model,
            "forecast.responsive": str(result.responsive).lower(), "forecast.origin": str(result.origin)}
    children: dict[str, str] = {}
    with tracker.parent_run(f"{result.model} @ {result.origin}", params=run_params, tags=tags, panel=panel,
                            panel_source=panel_source, panel_metadata=panel_metadata) as parent_id:
        client = tracker.client
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _text_frame(result.forecasts).to_csv(tmp / "forecasts.csv", index=False)
            (tmp / "summary.txt").write_text(summary_text(result) + "\n", encoding="utf-8")
            client.log_artifact(parent_id, str(tmp / "forecasts.csv"), "scenarios")
            client.log_artifact(parent_id, str(tmp / "summary.txt"), "scenarios")
        for s in result.scenarios:
            with tracker.child_run(s.name, s.as_dict(), model=result.model) as child:
                metrics: dict[str, float] = {}
                fc = result.forecasts[result.forecasts["scenario"] == s.name]
                for h, total in fc.groupby("horizon")["mean"].sum().items():
                    metrics[f"national_mean_h{int(h)}"] = float(total)
                nat = result.national[result.national["scenario"] == s.name]
                for row in nat.itertuples(index=False):
                    metrics[f"national_diff_h{int(row.horizon)}"] = float(row.mean)
                    metrics[f"national_diff_q05_h{int(row.horizon)}"] = float(row.q05)
                    metrics[f"national_diff_q95_h{int(row.horizon)}"] = float(row.q95)
                child_tags = {"forecast.kind": KIND_SCENARIO, "forecast.scenario": s.name,
                              "forecast.baseline": str(s.name == result.baseline).lower(),
                              "forecast.responsive": str(result.responsive).lower()}
                log_batch(client, child.run_id, metrics=metrics, tags=child_tags)
                with tempfile.TemporaryDirectory() as tmp:
                    tmp = Path(tmp)
                    files = {
                        "forecasts.csv": fc,
                        "paths.csv": result.paths[result.paths["scenario"] == s.name],
                        "differences.csv": result.differences[result.differences["scenario"] == s.name],
                        "national.csv": nat,
                    }
                    for filename, frame in files.items():
                        _text_frame(frame).to_csv(tmp / filename, index=False)
                        client.log_artifact(child.run_id, str(tmp / filename), "scenario")
                if s.path is not None:
                    client.log_artifact(child.run_id, str(s.path), "config")
                children[s.name] = child.run_id
    return parent_id, children
