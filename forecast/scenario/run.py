"""Running scenarios: one model fitted at the origin forecasts every scenario, and the paired
draws behind the differences from the baseline (the method is in :mod:`forecast.scenario`)."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.catalog import MODELS, make_model
from forecast.evaluation.backtest import default_covariates, forecast_at, history_at
from forecast.models.base import ModelError, check_history, covariate_columns, hold_last_value
from forecast.scenario.spec import BASELINE, Change, Scenario, month_at, parse_when
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, QUANTILES
from forecast.errors import ConfigError

__all__ = ["DIFFERENCE_COLUMNS", "NATIONAL_COLUMNS", "ScenarioResult", "blind_models", "run_scenarios",
           "run_scenarios_fitted", "summary_text"]

DIFFERENCE_COLUMNS = ("unit", "origin", "month", "horizon", "scenario", "mean", "q05", "q50", "q95")
NATIONAL_COLUMNS = ("origin", "month", "horizon", "scenario", "baseline_mean", "scenario_mean",
                    "mean", "q05", "q50", "q95")
PATH_COLUMNS = ("scenario", "unit", "month", "covariate", "value")
HISTORY_COLUMNS = ("unit", "month", "covariate", "value")
#: Paired draws behind every difference band.
N_DRAWS = 1000
#: Months of covariate history returned for charts.
HISTORY_MONTHS = 24
#: A covariate not observed in this many months before the origin is stale: a scenario moving it is warned.
STALE_AFTER = 3
METHOD_DRAWS = "coefficient draws"
METHOD_CRN = "common random numbers"

_BAND = (0.05, 0.50, 0.95)


# ----------------------------------------------------------------------------------------
# Paths


@dataclass(frozen=True)
class _Resolved:
    """A change checked against the data: the covariate used and the months as periods."""

    change: Change
    covariate: str
    start: pd.Period
    end: pd.Period
    until: pd.Period | None = None


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
            start = month_at(parse_when(c.start), origin)
            if start <= origin:
                raise ConfigError(f"{where} key 'from': {c.start} is not after the forecast origin {origin}; "
                                  "scenarios change the months after the origin only (use \"+N\" to stay relative)")
            end = month_at(parse_when(c.end), origin) if c.end is not None else start
            if end < start:
                raise ConfigError(f"{where} key 'to': {c.end} ({end}) is before from {c.start} ({start})")
            until = month_at(parse_when(c.until), origin) if c.until is not None else None
            if until is not None and until < max(start, end):
                raise ConfigError(f"{where} key 'until': {c.until} ({until}) is before "
                                  f"{'to' if end > start else 'from'} ({max(start, end)}); until is the last month "
                                  "changed")
            resolved.append(_Resolved(c, found, start, end, until))
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
        if r.until is not None:
            w = np.where(np.array([m > r.until for m in months]), 0.0, w)
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
    model = make_model(name)
    if bool(model.uses_future_covariates):
        return True
    # A combination (the ensemble) responds when one of its members does.
    members = getattr(model, "members", None) or ()
    return any(m in MODELS and bool(MODELS[m].uses_future_covariates) for m in members)


def blind_models() -> tuple[str, ...]:
    """Registered models (default parameters) that ignore covariates at target months."""
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
    #: Registered models that respond to scenarios (filled when this one does not).
    responders: tuple[str, ...] = ()


def run_scenarios(panel: pd.DataFrame, model_name: str, scenarios: Sequence[Scenario], horizon: int, *,
                  params: dict | None = None, target: str = "incidents", origin: pd.Period | None = None,
                  seed: int = 0, staleness: dict | None = None) -> ScenarioResult:
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
    staleness
        The panel metadata's record of each covariate's last observed month
        (``meta["covariates"]["staleness"]``): a scenario that moves a covariate not observed
        in the last :data:`STALE_AFTER` months before the origin gets a warning in its notes.

    Raises
    ------
    ConfigError
        A scenario that does not fit the data (unknown covariate or unit, a month not after
        the origin, duplicate names), before anything is fitted.
    forecast.models.base.ModelError
        Unknown model or parameter, or a history the model cannot use.
    """
    origin = panel["month"].max() if origin is None else pd.Period(origin, freq="M")
    model = make_model(model_name, **(params or {}))
    history = history_at(panel, origin, target)
    _resolve(_with_baseline(scenarios), default_covariates(panel), sorted(history["unit"].unique()), origin)
    model.fit(history)
    return run_scenarios_fitted(model, history, scenarios, horizon, seed=seed, target=target, name=model_name,
                                staleness=staleness)


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
                         seed: int = 0, target: str = "incidents", name: str | None = None,
                         staleness: dict | None = None) -> ScenarioResult:
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
    staleness
        As for :func:`run_scenarios`.
    """
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
    notes[:0] = stale_warnings(scenarios[1:], resolved, staleness, origin)
    for s in scenarios[1:]:
        for r in resolved[s.name]:
            if r.covariate != r.change.covariate[0]:
                absent = r.change.covariate[:r.change.covariate.index(r.covariate)]
                notes.append(f"{s.name}: the change names {' or '.join(r.change.covariate)}, the first the panel "
                             f"has; the panel has no {' or '.join(absent)}, so it changes {r.covariate}")
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
                              national=empty_nat, method="", notes=tuple(notes),
                              responders=tuple(_responsive_names()))

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


def stale_warnings(scenarios: Sequence[Scenario], resolved: dict, staleness: dict | None,
                   origin: pd.Period) -> list[str]:
    """A warning for each scenario that moves a covariate last observed more than STALE_AFTER months before the origin."""
    out = []
    for s in scenarios:
        for cov in dict.fromkeys(r.covariate for r in resolved[s.name]):
            info = (staleness or {}).get(cov)
            if not info:
                continue
            last = info.get("last_observed")
            age = (origin - pd.Period(last, freq="M")).n if last else None
            if age is not None and age <= STALE_AFTER:
                continue
            when = f"last recorded {last}, {age} months before the origin {origin}" if last else "never recorded"
            out.append(f"warning: {s.name} moves {cov}, {when}: its values since are filled ({info.get('fill')}), "
                       "not recorded, so this projection moves a number nobody observed")
    return out


def _responsive_names() -> list[str]:
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
        band = f" (90% interval from {result.method})" if result.method else ""
        lines.append(f"differences: scenario minus baseline, expected {result.target} per month{band}; "
                     "conditional projections from correlations in historical data, not causal estimates")
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
    lines.extend(n if n.startswith("warning:") else f"note: {n}" for n in result.notes)
    return "\n".join(lines)


