"""The ``forecast`` command line: thin click commands over the jobs of :mod:`forecast.jobs`.

One module per command group parses the options, calls the jobs and turns its errors into
messages and exit codes (:mod:`forecast.cli.common`). Nothing else imports the CLI.

Exit codes: 0 success; 1 bad input data or configuration (a message names the file, row,
column and value); 2 bad command-line usage; ``forecast refresh`` has its own (see
:class:`forecast.refresh.ExitCode`).

The command modules are imported when their command runs, not for ``forecast --help``: the
list below gives each command's module and its one-line help, so the top-level help needs
neither pandas nor the models (``tests/test_cli.py`` checks the lines match the commands).
"""

from __future__ import annotations

import importlib

import click

from forecast.cli.crash import crash_log
from forecast.errors import first_line
from forecast.errors import describe_os_error
from forecast.limits import bound_mlflow_http

#: command -> (module:attribute, one-line help shown by ``forecast --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("forecast.cli.forecasting:backtest_command",
                 "Rolling-origin backtest of several models, with a score table and a leaderboard."),
    "data": ("forecast.cli.data:data", "Build the monthly panel from raw event files."),
    "demo": ("forecast.cli.demo:demo", "Run the main job on the bundled synthetic demo data with the embedded defaults."),
    "experiment": ("forecast.cli.experiments:experiment", "Run declarative experiment files, tracked in MLflow."),
    "gazetteer": ("forecast.cli.gazetteer:gazetteer",
                  "Draft the gazetteer of admin-1 units for a new country or source."),
    "ledger": ("forecast.cli.ledger:ledger_group", "What the refresh job issued, and how it did."),
    "models": ("forecast.cli.forecasting:list_models", "List the registered models and what they use."),
    "predict": ("forecast.cli.forecasting:predict_command", "Forecast every unit for the months after the origin."),
    "refresh": ("forecast.cli.refresh:refresh",
                "Bring the forecasts up to date: build the panel, forecast with the champion, score, report, log."),
    "registry": ("forecast.cli.registry:registry", "The MLflow Model Registry: list versions, promote a champion."),
    "report": ("forecast.cli.report:report",
               "Write the analyst's report: headline, threat map, ranked table, fan charts, skill, data and method."),
    "scenario": ("forecast.cli.scenario:scenario",
                 "Project forecasts under covariate scenarios (what if troop levels change?)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[cmd_name][0].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        """Run the command with MLflow's HTTP retries bounded, and no traceback for the user.

        The commands turn what a user can get wrong into messages themselves; what is left is
        an unreadable or unwritable path (shown with the path) or a bug, whose traceback goes to
        a log file that the message names.
        """
        bound_mlflow_http()
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OSError as exc:
            raise click.ClickException(describe_os_error(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the last handler: a bug, logged for the report
            raise click.ClickException(f"unexpected error ({type(exc).__name__}: {first_line(exc)}); nothing more was "
                                       f"done. The details are in {crash_log()}: please include it in a bug report") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="insurgency-forecast")
def main() -> None:
    """Forecast monthly insurgent activity per admin-1 unit."""
