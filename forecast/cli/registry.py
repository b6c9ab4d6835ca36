"""``forecast registry list|promote``: the MLflow Model Registry."""

from __future__ import annotations

import click

from forecast.cli.common import TRACKING_HELP, user_errors
from forecast.evaluation.leaderboard import exact_table
from forecast.jobs.experiments import registered_models
from forecast.tracking import promote, resolve_tracking_uri


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
