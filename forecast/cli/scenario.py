"""``forecast scenario run``: forecasts under covariate scenarios (see :mod:`forecast.scenario`)."""

from __future__ import annotations

from pathlib import Path

import click

from forecast.cli.common import GAZETTEER_HELP, TRACKING_HELP, month_option, parse_params, user_errors
from forecast.jobs.scenarios import run_scenario_files
from forecast.schema import MAX_HORIZON


@click.group("scenario")
def scenario() -> None:
    """Project forecasts under covariate scenarios (what if troop levels change?)."""


@scenario.command("run")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--model", "model_name", required=True,
              help="Model name (see 'forecast models'); only models using covariates at target months respond.")
@click.option("--scenarios", "scenario_list", required=True,
              help="Comma-separated scenario files (TOML, see experiments/scenarios/README.md).")
@click.option("--horizon", type=click.IntRange(1, MAX_HORIZON), default=6, show_default=True, help="Months ahead to project.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for forecasts.csv, differences.csv, national.csv and paths.csv.")
@click.option("--origin", default=None,
              help="Last month the model may use (YYYY-MM; default: the panel's data vintage).")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--param", "params", multiple=True, help="Model hyperparameter KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help=GAZETTEER_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draws behind the difference bands.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--no-track", is_flag=True, help="Do not log the runs to MLflow.")
def scenario_run(panel_path, model_name, scenario_list, horizon, out_dir, origin, target, params, gazetteer, seed,
                 tracking_uri, no_track) -> None:
    """Forecast under every scenario from one fitted model, with differences from the baseline."""
    files = [f.strip() for f in scenario_list.split(",") if f.strip()]
    if not files:
        raise click.BadParameter("give at least one scenario file", param_hint="--scenarios")
    model_params = parse_params(params, qualified=False)
    origin_p = month_option(origin, "--origin")
    with user_errors():
        run = run_scenario_files(panel_path, model=model_name, scenario_files=files, out_dir=out_dir,
                                     horizon=horizon, origin=origin_p, target=target, params=model_params,
                                     gazetteer=gazetteer, seed=seed, tracking_uri=tracking_uri, track=not no_track,
                                     echo=click.echo)
    click.echo(run.summary())
