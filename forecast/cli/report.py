"""``forecast report``: the analyst's monthly report (HTML, optionally PDF)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from forecast.cli.common import parse_params, user_errors
from forecast.evaluation.backtest import BacktestDesign
from forecast.jobs.report import make_report
from forecast.report import DEFAULT_TIER_YEARS, ReportWarning
from forecast.schema import MAX_HORIZON, TARGETS


def _scenario_files(values: tuple[str, ...]) -> list[Path]:
    """``--scenario`` values: repeatable, each may also be a comma-separated list."""
    return [Path(part.strip()) for value in values for part in value.split(",") if part.strip()]


def _units(value: str | None) -> list[str] | None:
    """``--units A,B,...``: the names, or None for every unit."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter("names no unit; give names such as Anbar,Ninewa", param_hint="--units")
    return names


@click.command("report")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build'.")
@click.option("--model", "model_name", default=None,
              help="Model to fit on the whole panel (see 'forecast models'; default: the recommended model).")
@click.option("--registry-model", default=None,
              help="Registered model to use instead of fitting one: NAME@ALIAS (e.g. demo-incidents@champion) "
                   "or NAME/VERSION.")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI of the registry (default: $MLFLOW_TRACKING_URI, else MLflow's local "
                   "SQLite store).")
@click.option("--horizon", type=click.IntRange(1, MAX_HORIZON), default=BacktestDesign.horizon, show_default=True,
              help="Months ahead to forecast.")
@click.option("--scenario", "scenarios", multiple=True,
              help="Scenario file (TOML) to project; repeatable or comma-separated. Adds the scenario section.")
@click.option("--geojson", type=click.Path(path_type=Path), default=None,
              help="Admin-1 boundaries (GeoJSON) for the map instead of the tile grid.")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help="Gazetteer CSV: unit names, neighbours and tile positions (default: the one the panel was built "
                   "with, while its file is there, else Iraq's 18 governorates).")
@click.option("--backtest-months", type=click.IntRange(0, None), default=24, show_default=True,
              help="Forecast origins in the backtest of the model against the benchmarks (0: no backtest).")
@click.option("--param", "params", multiple=True, help="Hyperparameter KEY=VALUE of --model (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report to write (.html; default reports/YYYY-MM.html for the first forecast month). Earlier "
                   "reports in its folder give the change since the previous report.")
@click.option("--pdf", is_flag=True, help="Also print the report to a PDF beside it (needs Chromium).")
@click.option("--target", type=click.Choice(TARGETS), default="incidents", show_default=True,
              help="Panel column to forecast and report: incident counts, or deaths (fatalities). Without --out a "
                   "deaths report is named YYYY-MM-deaths.html.")
@click.option("--units", "units", default=None,
              help="Comma-separated units to focus on, e.g. Anbar,Ninewa,Kirkuk (any spelling the gazetteer knows): "
                   "the tables, charts and headline show only these; the national figures stay national.")
@click.option("--tier-years", type=click.IntRange(1, None), default=DEFAULT_TIER_YEARS, show_default=True,
              help="Years of the panel up to the data vintage whose monthly counts set the threat-tier bounds.")
@click.option("--force", is_flag=True,
              help="Write over an existing report of another target at --out (refused without it).")
def report(panel_path, model_name, registry_model, tracking_uri, horizon, scenarios, geojson, gazetteer,
           backtest_months, params, out, pdf, target, units, tier_years, force) -> None:
    """Write the analyst's report: headline, threat map, ranked table, fan charts, skill, data and method."""
    if model_name is not None and registry_model is not None:
        raise click.UsageError("give --model or --registry-model, not both")
    parsed = parse_params(params, qualified=False)
    if parsed and registry_model is not None:
        raise click.UsageError("--param sets hyperparameters of --model; a --registry-model is already fitted")
    with user_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReportWarning)
        paths = make_report(
            panel_path, model=model_name, registry_model=registry_model, tracking_uri=tracking_uri,
            horizon=horizon, scenario_files=_scenario_files(scenarios), out=out, pdf=pdf, geojson=geojson,
            backtest_months=backtest_months, gazetteer=gazetteer, params=parsed, target=target,
            units=_units(units), tier_years=tier_years, force=force, progress=True, echo=click.echo,
        )
    for w in caught:
        if issubclass(w.category, ReportWarning):
            click.echo(f"warning: {w.message}", err=True)
        else:  # not ours: shown as Python would have shown it
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if "previous" in paths:
        click.echo(f"compared with the previous report: {paths['previous']}")
    click.echo(f"report: {paths['html']}")
    click.echo(f"numbers: {paths['csv']}")
    if "pdf" in paths:
        click.echo(f"pdf: {paths['pdf']}")
