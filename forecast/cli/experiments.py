"""``forecast experiment run|compare`` and ``forecast registry list|promote`` (MLflow)."""

from __future__ import annotations

from pathlib import Path

import click

from forecast.cli.common import TRACKING_HELP, user_errors
from forecast.jobs.experiments import exact_table, leaderboard_runs, registered_models, run_experiment
from forecast.tracking import promote, resolve_tracking_uri


@click.group()
def experiment() -> None:
    """Run declarative experiment files, tracked in MLflow."""


@experiment.command("run")
@click.argument("experiment_file", type=click.Path(path_type=Path))
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--register", "register_as", default=None,
              help="Register the final model of the best-scoring model under this registered-model name.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Also write forecasts and scores to this folder.")
def experiment_run(experiment_file, tracking_uri, register_as, out_dir) -> None:
    """Backtest every model of an experiment file: one parent run, one nested run per model."""
    with user_errors():
        result = run_experiment(experiment_file, tracking_uri=tracking_uri, register_as=register_as,
                                    out_dir=out_dir, echo=click.echo)
    click.echo(result.summary())


@experiment.command("compare")
@click.argument("name", required=False)
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def experiment_compare(name, tracking_uri) -> None:
    """Leaderboard of the model runs of one experiment (or of all), best CRPS first."""
    with user_errors():
        board = leaderboard_runs(name, tracking_uri=tracking_uri)
    if board.empty:
        click.echo("no tracked model runs yet")
        return
    cols = [c for c in ("experiment", "label", "model", "crps", "crps_skill", "mae", "coverage90", "status", "start_time")
            if c in board]
    click.echo(exact_table(board[cols]))


@click.group()
def registry() -> None:
    """The MLflow Model Registry: list versions, promote a champion."""


@registry.command("list")
@click.argument("registered_name", required=False)
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def registry_list(registered_name, tracking_uri) -> None:
    """Versions of a registered model (of every one without a name), with aliases and backtest CRPS."""
    with user_errors():
        table = registered_models(registered_name, tracking_uri=tracking_uri)
    if table.empty:
        click.echo("no registered models yet")
        return
    click.echo(exact_table(table.drop(columns=["run_id", "backtest_run_id"]) if registered_name is None else table))


@registry.command("promote")
@click.argument("registered_name")
@click.option("--version", "version", required=True, help="Model version to consider for the champion alias.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def registry_promote(registered_name, version, tracking_uri) -> None:
    """Give a version the 'champion' alias if its backtest CRPS beats the champion's, else 'challenger'."""
    with user_errors():
        decision = promote(registered_name, version, resolve_tracking_uri(tracking_uri))
    click.echo(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)
