"""The report job (``forecast report``): fit or load the model, backtest it against the benchmarks,
project scenarios, and hand the numbers to :mod:`forecast.report` to render.

:mod:`forecast.report` fits nothing and loads no model; everything a report needs that takes
a model is computed here (and, for the scheduled refresh, in :mod:`forecast.refresh.job`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from features.gazetteer import Gazetteer
from features.panel_files import panel_gazetteer, read_panel
from forecast.benchmarking import backtest_against_benchmarks, backtest_design, fresh_copy, provenance, used_covariates
from forecast.catalog import DEFAULT_MODEL, make_model
from forecast.evaluation.backtest import default_covariates, forecast_at, history_at
from forecast.jobs.registered import registered_at
from forecast.report import (
    DEFAULT_TIER_YEARS,
    ReportInputs,
    dataset_identity,
    find_previous_report,
    match_features,
    read_report_data,
    write_report,
)
from forecast.scenario import load_scenario, run_scenarios_fitted
from forecast.errors import ReportError

__all__ = ["check_overwrite", "focus_units", "make_report"]


def _load_geojson(path: str | Path, gazetteer: Gazetteer) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: GeoJSON file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable GeoJSON file ({exc})") from None
    try:
        match_features(data, gazetteer)  # fail before any model is fitted
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    return data


def focus_units(names: Sequence[str] | None, gazetteer: Gazetteer, panel_units) -> tuple[str, ...] | None:
    """The units a report focuses on, as canonical names (any spelling the gazetteer knows).

    Raises
    ------
    ReportError
        For a name the gazetteer does not know (with the closest known names) or a unit the
        panel does not have.
    """
    if names is None:
        return None
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise ReportError("--units names no unit; give names such as Anbar,Ninewa")
    have = set(map(str, panel_units))
    out = []
    for name in names:
        unit = gazetteer.match(name)
        if unit is None:
            raise ReportError(f"--units: unknown {gazetteer.unit_word} {name!r}; {gazetteer.suggest(name)}")
        if unit not in have:
            raise ReportError(f"--units: {unit} is not a {gazetteer.unit_word} of the panel "
                              f"(it has {', '.join(sorted(have)[:20])}{', ...' if len(have) > 20 else ''})")
        out.append(unit)
    return tuple(dict.fromkeys(out))


def check_overwrite(out: Path, target: str, force: bool) -> None:
    """Refuse to write a report of ``target`` over a report of another target (unless ``force``)."""
    if force or not out.is_file():
        return
    try:
        data = read_report_data(out)
    except ReportError:
        return  # not readable as a report: nothing of another target to protect
    theirs = (data or {}).get("target")
    if data is not None and (theirs or "incidents") != target:
        beside = out.with_name(f"{out.stem}-{target}{out.suffix}")
        raise ReportError(f"{out} is a report of {theirs or 'incidents'}; this report is of {target}, and writing it "
                          f"there would replace that report. Write it beside it (e.g. --out {beside}; leaving out "
                          "--out names it YYYY-MM-" + target + ".html), or pass --force to replace it")


def make_report(
    panel_path: str | Path,
    *,
    model: str | None = None,
    registry_model: str | None = None,
    tracking_uri: str | None = None,
    horizon: int = 6,
    scenario_files: Sequence[str | Path] = (),
    out: str | Path | None = None,
    pdf: bool = False,
    geojson: str | Path | None = None,
    backtest_months: int = 24,
    gazetteer: str | Path | None = None,
    params: dict | None = None,
    target: str = "incidents",
    units: Sequence[str] | None = None,
    tier_years: int = DEFAULT_TIER_YEARS,
    force: bool = False,
    issued: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Forecast from a panel with one model, score it, and write the analyst's report.

    Parameters
    ----------
    panel_path
        Panel file (``forecast data build``).
    model, registry_model
        At most one: a model name (fitted here on the whole panel; default
        :data:`forecast.catalog.DEFAULT_MODEL`) or a registry reference ``NAME@alias`` /
        ``NAME/version`` loaded from ``tracking_uri`` (refused when it was trained on another
        target).
    horizon
        Months ahead.
    scenario_files
        Scenario files (:func:`forecast.scenario.load_scenario`): adds the scenario section.
    out
        Report path (``.html``); default ``reports/YYYY-MM.html`` for the first forecast month
        (``reports/YYYY-MM-deaths.html`` for deaths). The numbers shown are written to the
        same path with ``.csv``. Earlier reports in the same folder provide "change since the
        previous report". A report of another target at ``out`` is not replaced unless ``force``.
    pdf
        Also print a PDF beside it with headless Chromium.
    geojson
        Admin-1 boundaries to draw instead of the tile grid.
    backtest_months
        Rolling origins of the backtest (0: none). The last origin is ``horizon`` months before
        the data vintage so every horizon has its actual.
    gazetteer, params, target
        Gazetteer CSV; hyperparameters of ``model``; panel column to forecast.
    units
        Units to focus the report on (any spelling the gazetteer knows); the national figures
        stay national.
    tier_years
        Years of the panel up to the origin whose unit-months set the tier bounds.
    issued
        Issue date shown (ISO); default today (UTC).
    n_jobs
        Backtest workers (default: 2 where two cores exist); results do not depend on it.
    echo
        Called with one line per step (the CLI passes ``click.echo``).

    Returns
    -------
    dict
        ``html``, ``csv`` (and ``pdf``) paths, and ``previous`` when an earlier report was compared.

    Raises
    ------
    features.errors.DataError, forecast.models.base.ModelError, forecast.tracking.TrackingError
        Bad panel, model, parameter, GeoJSON, scenario file, unit or registry reference; raised
        before anything is written.
    """
    say = echo or (lambda _text: None)
    if model is not None and registry_model is not None:
        raise ReportError("give either a model name or a registry model, not both")
    if int(horizon) != horizon or horizon < 1:
        raise ReportError(f"horizon must be a whole number >= 1, got {horizon!r}")
    if backtest_months < 0:
        raise ReportError(f"backtest_months must be >= 0, got {backtest_months!r}")
    if int(tier_years) != tier_years or tier_years < 1:
        raise ReportError(f"tier_years must be a whole number of years >= 1, got {tier_years!r}")
    params = dict(params or {})
    if registry_model is not None and params:
        raise ReportError("hyperparameters apply to a model fitted here, not to a registry model")
    gaz = panel_gazetteer(panel_path, gazetteer)
    panel, meta = read_panel(panel_path, gaz)
    origin = pd.Period(meta.get("vintage") or panel["month"].max(), freq="M")
    if origin not in set(panel["month"]):
        origin = panel["month"].max()
    panel = panel.loc[panel["month"] <= origin].reset_index(drop=True)
    default_name = f"{origin + 1}.html" if target == "incidents" else f"{origin + 1}-{target}.html"
    out = Path(out) if out is not None else Path("reports") / default_name
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"{out}: a report is written as .html")
    check_overwrite(out, target, force)
    focus = focus_units(units, gaz, panel["unit"].unique())
    geo = _load_geojson(geojson, gaz) if geojson is not None else None
    scenarios = [load_scenario(path, gaz) for path in scenario_files]

    # The model: fitted here on the whole panel, or loaded from the registry and conditioned on it.
    version_label, run_id = None, None
    if registry_model is not None:
        say(f"report: loading {registry_model} from the model registry")
        fitted, history, registered = registered_at(registry_model, tracking_uri, panel, origin, target)
        name, version_label, run_id = fitted.name, registered.label, registered.run_id
        covariates = list(fitted.covariates_)
        factory = fresh_copy(fitted)
    else:
        name = DEFAULT_MODEL if model in (None, "default") else model
        factory = (lambda: make_model(name, **params))
        fitted = factory()  # a bad name or parameter fails here, before any work
        covariates = default_covariates(panel)
        history = history_at(panel, origin, target, covariates)
    design = backtest_design(panel["month"].min(), origin, horizon, backtest_months,
                             units=panel["unit"].nunique()) if backtest_months else None
    if backtest_months and design is None:
        say(f"report: the panel is too short for a backtest ({panel['month'].nunique()} months)")

    with ThreadPoolExecutor(max_workers=1) as pool:
        # The final fit runs in a thread while the backtest's worker processes run: the two are
        # independent, and the fit is as long as the model's whole backtest (ensemble: ~10 s).
        if registry_model is None:
            say(f"report: fitting {name} on {panel['month'].min()} .. {origin}")
            final = pool.submit(fitted.fit, history)
        backtest = None
        if design is not None:
            backtest = backtest_against_benchmarks(panel, factory, name, design, target=target, covariates=covariates,
                                                   n_jobs=n_jobs, progress=progress, say=say)
        if registry_model is None:
            fitted = final.result()
    forecast = forecast_at(fitted, history, horizon, name=name)

    result = None
    if scenarios:
        say(f"report: projecting {len(scenarios)} scenario file(s)")
        result = run_scenarios_fitted(fitted, history, scenarios, horizon, seed=0, target=target, name=name,
                                      staleness=(meta.get("covariates") or {}).get("staleness"))

    previous = find_previous_report(out.parent, origin, target=target, exclude=out,
                                    dataset=dataset_identity(meta, panel["unit"].unique()))
    inputs = ReportInputs(
        panel=panel, meta=meta, forecast=forecast, model=name, model_version=version_label, backtest=backtest,
        previous=previous.forecast if previous else None, scenarios=result, gazetteer=gaz, geojson=geo,
        target=target, issued=issued, units=focus, tier_years=int(tier_years),
        model_covariates=used_covariates(fitted),
        provenance=provenance(fitted, panel_path, run_id=run_id, registered=version_label),
    )
    paths = write_report(inputs, out, pdf=pdf)
    if previous is not None:
        paths["previous"] = previous.path
    return paths
