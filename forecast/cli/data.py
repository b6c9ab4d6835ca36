"""``forecast data build|synthetic``."""

from __future__ import annotations

from pathlib import Path

import click

from features.covariates import FILL_POLICIES
from features.sources import FORMATS, EventFilters
from forecast.cli.common import date_option, user_errors
from features.panel import EventFile, PanelSpec
from forecast.jobs.data import SYNTHETIC_LAYOUTS, make_panel, make_synthetic


@click.group()
def data() -> None:
    """Build the monthly panel from raw event files."""


@data.command("build")
@click.option("--events", "events", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Event file (CSV, or a .zip holding one CSV). Repeat for several sources.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None,
              help="Force the event file format instead of detecting it from the columns.")
@click.option("--covariates", type=click.Path(path_type=Path), default=None,
              help="Monthly covariates CSV: month[, unit], one column per covariate.")
@click.option("--fill", type=click.Choice(list(FILL_POLICIES)), default="error", show_default=True,
              help="What to do with months a covariate has no value for.")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help="Gazetteer CSV of the admin-1 units (default: Iraq's 18 governorates).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Panel file to write (.parquet or .csv).")
@click.option("--start", default=None, help="Keep events from this month/day on (YYYY-MM[-DD]).")
@click.option("--end", default=None, help="Keep events up to this month/day (YYYY-MM[-DD]).")
@click.option("--event-type", "event_types", multiple=True,
              help="Keep only this event type (repeatable), e.g. 'Battles' or UCDP's 1/state-based.")
@click.option("--actor", default=None, help="Keep only events naming this actor (whole words, any case), e.g. 'IS'.")
@click.option("--coverage-end", default=None,
              help="Last day the sources cover (default: their last event date).")
@click.option("--keep-incomplete", is_flag=True, help="Keep a trailing month the sources cover only partly.")
@click.option("--encoding", default=None, help="Encoding of the event files when not UTF-8/UTF-16 (e.g. cp1256).")
@click.option("--date-format", default=None,
              help="strftime form of the event files' dates when ambiguous, e.g. '%d/%m/%Y'.")
def data_build(events, fmt, covariates, fill, gazetteer, out, start, end, event_types, actor,
               coverage_end, keep_incomplete, encoding, date_format) -> None:
    """Read event files and write the unit x month panel, with a summary."""
    filters = EventFilters(
        start=date_option(start), end=date_option(end, end=True), event_types=tuple(event_types), actor=actor
    )
    spec = PanelSpec(events=tuple(EventFile(path, fmt) for path in events), gazetteer=gazetteer,
                     covariates=covariates, fill=fill, filters=filters,
                     coverage_end=date_option(coverage_end, end=True), keep_incomplete=keep_incomplete,
                     encoding=encoding, date_format=date_format)
    with user_errors():
        built = make_panel(spec, out)
    click.echo(built.summary())


@data.command("synthetic")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write ucdp_ged_demo.csv and covariates_demo.csv into.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the demo data's seed).")
@click.option("--units", type=int, default=None,
              help="Number of synthetic units on a lattice (default: Iraq's 18 governorates).")
@click.option("--start", default=None, help="First month (YYYY-MM).")
@click.option("--end", default=None, help="Last month (YYYY-MM).")
@click.option("--layout", type=click.Choice(SYNTHETIC_LAYOUTS), default="ucdp", show_default=True,
              help="acled: also write the events as an ACLED export (acled_export_demo.csv).")
def data_synthetic(out_dir, seed, units, start, end, layout) -> None:
    """Generate synthetic raw events (UCDP GED layout) and covariates with a known process."""
    with user_errors():
        written = make_synthetic(out_dir, seed=seed, units=units, start=start, end=end, layout=layout)
    click.echo(written.summary())
