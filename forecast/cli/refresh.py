"""``forecast refresh`` (the scheduled job) and ``forecast ledger show|score``.

Exit codes of ``forecast refresh`` are :class:`forecast.refresh.ExitCode` (0 refreshed or
nothing new, 1 configuration or unexpected error, 2 bad command line, 3 bad input data,
4 no champion and no fallback, 5 another refresh running, 6 tracking server unreachable,
7 ledger unreachable). Log lines go to stderr with ISO 8601 UTC timestamps; the one-line
outcome goes to stdout (:func:`forecast.refresh.configure_logging`).
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from forecast.cli.common import month_option
from forecast.cli.crash import crash_log, first_line
from forecast.config import ConfigError
from forecast.errors import describe_os_error
from forecast.jobs.ledger import SCORE_KEYS, backup_ledger, issue_rows, issues_table, open_ledger
from forecast.ledger import Ledger, LedgerError
from forecast.refresh import ExitCode, RefreshError, configure_logging, log, run_refresh

_CONFIG_HELP = "Refresh configuration (TOML); see deploy/refresh.toml."


@click.command("refresh")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help=_CONFIG_HELP)
@click.option("--force", is_flag=True,
              help="Refresh even without a new complete month (the ledger still takes only forecasts it lacks).")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: [tracking] uri of the configuration, else $MLFLOW_TRACKING_URI, "
                   "else ./mlflow.db).")
@click.option("--new-ledger", is_flag=True,
              help="Start a new ledger when none is found although this outputs folder issued forecasts before "
                   "(refused without it: the history would split).")
@click.pass_context
def refresh(ctx: click.Context, config_path: Path, force: bool, tracking_uri: str | None, new_ledger: bool) -> None:
    """Bring the forecasts up to date: build the panel, forecast with the champion, score, report, log."""
    configure_logging()
    try:
        result = run_refresh(config_path, force=force, tracking_uri=tracking_uri, new_ledger=new_ledger)
    except RefreshError as exc:
        log.error("%s (exit code %d: %s)", exc, int(exc.code), exc.code.name.lower())
        ctx.exit(int(exc.code))
    except OSError as exc:
        # An outputs folder that cannot be written (read-only, full, a file in the way): say
        # where, not how; the ledger's own writes are one transaction and stay as they were.
        log.error("%s; nothing more was issued (exit code %d: %s)", describe_os_error(exc), int(ExitCode.ERROR),
                  ExitCode.ERROR.name.lower())
        ctx.exit(int(ExitCode.ERROR))
    except Exception as exc:  # noqa: BLE001 - an unexpected failure: the traceback goes to a file
        log.error("unexpected error (%s: %s); nothing was issued (the ledger is unchanged). The details are in %s: "
                  "please include it in a bug report", type(exc).__name__, first_line(exc), crash_log())
        ctx.exit(int(ExitCode.ERROR))
    click.echo(result.message)


# ----------------------------------------------------------------------------------------
# The ledger


def _open(config_path: Path | None, ledger: str | None) -> Ledger:
    if ledger is None and config_path is None:
        raise click.UsageError("give --ledger (a SQLite file or database URL) or --config (a refresh configuration)")
    try:
        return open_ledger(config_path, ledger)
    except (ConfigError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from None


def _ledger_options(fn):
    fn = click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                      help=_CONFIG_HELP + " The ledger is the one it names.")(fn)
    fn = click.option("--ledger", default=None,
                      help="Ledger: a SQLite file or a database URL (postgresql://USER@HOST:PORT/DB).")(fn)
    return fn


@click.group("ledger")
def ledger_group() -> None:
    """What the refresh job issued, and how it did."""


def _fmt(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


@ledger_group.command("show")
@_ledger_options
@click.option("--origin", default=None, help="Show the forecast rows of this origin (YYYY-MM) instead of the issues.")
@click.option("--unit", default=None, help="With --origin: only this unit.")
@click.option("--model", default=None, help="Only forecasts of this model name.")
def ledger_show(config_path, ledger, origin, unit, model) -> None:
    """List the issues (origin, model version, forecasts, actuals so far), or one issue's rows."""
    origin_p = month_option(origin, "--origin")
    with _open(config_path, ledger) as store:
        frame = store.forecasts(model=model, origin=origin_p, scores=True)
        click.echo(f"ledger: {store.url}")
        if frame.empty:
            click.echo("nothing issued" + (f" for origin {origin_p}" if origin_p else "") + " yet")
            return
        if origin_p is not None:
            rows = issue_rows(frame, unit)
            if rows.empty:
                raise click.ClickException(f"no forecasts for unit {unit!r} at origin {origin_p}")
            click.echo(_fmt(rows))
            return
        click.echo(_fmt(issues_table(frame)))


@ledger_group.command("score")
@_ledger_options
@click.option("--by", "by", default="model,model_version,horizon", show_default=True,
              help=f"Comma-separated grouping columns, from {', '.join(SCORE_KEYS)}.")
def ledger_score(config_path, ledger, by) -> None:
    """How the issued forecasts did: CRPS, MAE and interval coverage of those with actuals."""
    keys = [k.strip() for k in by.split(",") if k.strip()]
    bad = [k for k in keys if k not in SCORE_KEYS]
    if bad or not keys:
        raise click.BadParameter(f"{', '.join(bad) or '(empty)'}: choose from {', '.join(SCORE_KEYS)}", param_hint="--by")
    with _open(config_path, ledger) as store:
        table = store.scores(by=keys)
        click.echo(f"ledger: {store.url}")
    if table.empty:
        click.echo("nothing issued yet")
        return
    if "origin" in table:
        table["origin"] = table["origin"].astype(str)
    click.echo(_fmt(table))
    if int(table["scored"].sum()) == 0:
        click.echo("no actuals yet: forecasts are scored by the refresh after their target month arrives")


@ledger_group.command("verify")
@_ledger_options
def ledger_verify(config_path, ledger) -> None:
    """Check the ledger read-only (file, integrity, tables, the checksums of its rows and their anchor) and count
    what it holds; exit 7 when a check fails."""
    try:
        store = open_ledger(config_path, ledger) if (ledger or config_path) else None
    except LedgerError as exc:
        if str(exc).startswith("no ledger at"):  # nothing to verify: a usage matter, not a failed check
            raise click.ClickException(str(exc)) from None
        # A ledger that fails its checks (damaged, changed behind the triggers, its seals or
        # anchor gone) exits as the refresh would on it: 7.
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(int(ExitCode.LEDGER)) from None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if store is None:
        raise click.UsageError("give --ledger (a SQLite file or database URL) or --config (a refresh configuration)")
    with store:
        counts = store.counts()
        click.echo(f"ledger: {store.url}: ok ({counts['refreshes']} refreshes, {counts['forecasts']} forecasts, "
                   f"{counts['outcomes']} scored actuals)")
        click.echo(f"anchor: {store.anchor.path}: {store.anchored} of {counts['refreshes']} refreshes anchored, "
                   f"signed with {store.anchor.key_path}")


@ledger_group.command("backup")
@_ledger_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Backup file to write (default: <ledger>.<UTC time>.backup beside it).")
def ledger_backup(config_path, ledger, out) -> None:
    """Copy a SQLite ledger with SQLite's online backup API (safe while a refresh reads it)."""
    if ledger is None and config_path is None:
        raise click.UsageError("give --ledger (a SQLite file) or --config (a refresh configuration)")
    try:
        written = backup_ledger(config_path, ledger, out)
    except (ConfigError, LedgerError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup: {written}")
