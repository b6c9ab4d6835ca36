"""``forecast refresh``, the scheduled job.

Exit codes of ``forecast refresh`` are :class:`forecast.refresh.ExitCode` (0 refreshed or
nothing new, 1 configuration or unexpected error, 2 bad command line, 3 bad input data,
4 no champion and no fallback, 5 another refresh running, 6 tracking server unreachable,
7 ledger unreachable). Log lines go to stderr with ISO 8601 UTC timestamps; the one-line
outcome goes to stdout (:func:`forecast.refresh.configure_logging`).
"""

from __future__ import annotations

from pathlib import Path

import click

from forecast.cli.common import CONFIG_HELP
from forecast.cli.crash import crash_log
from forecast.errors import ExitCode, RefreshError, describe_os_error, first_line
from forecast.refresh import configure_logging, log, run_refresh



@click.command("refresh")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help=CONFIG_HELP)
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
