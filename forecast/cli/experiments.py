"""``forecast experiment run|compare`` and ``forecast registry list|promote`` (MLflow)."""

from __future__ import annotations

from pathlib import Path

import click

from forecast.cli.common import TRACKING_HELP, user_errors
from forecast.evaluation.leaderboard import exact_table
from forecast.jobs.experiments import leaderboard_runs, run_experiment


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
