"""``forecast data build|synthetic``."""

from __future__ import annotations

from pathlib import Path

import click

from features.covariates import FILL_POLICIES, parse_fill
from features.sources import FORMATS, EventFilters
from forecast.cli.common import date_option, user_errors
from forecast.panelfile import read_panel_file
from features.panel import EventFile, PanelSpec
from forecast.jobs.data import SYNTHETIC_LAYOUTS, make_panel, make_synthetic


@click.group()
def data() -> None:
    """Build the monthly panel from raw event files."""


@data.command("build")
@click.option("--events", "events", multiple=True, type=click.Path(path_type=Path),
              help="Event file (CSV, or a .zip holding one CSV). Repeat for several sources.")
@click.option("--spec", type=click.Path(path_type=Path), default=None,
              help="Panel file (TOML: target sources, context series, covariates, gazetteer) instead of --events.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None,
              help="Force the event file format instead of detecting it from the columns.")
@click.option("--covariates", type=click.Path(path_type=Path), default=None,
              help="Monthly covariates CSV: month[, unit], one column per covariate.")
@click.option("--fill", "fills", multiple=True, metavar="[NAME=]POLICY",
              help=f"Months a covariate has no value for: {', '.join(FILL_POLICIES)} (default error); "
                   "NAME=POLICY for one covariate (repeatable), e.g. --fill keep --fill us_troops=linear.")
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
@click.option("--sheet", default=None,
              help="Sheet of .xlsx event workbooks to read (default: the largest); the summary names the sheet read.")
def data_build(events, spec, fmt, covariates, fills, gazetteer, out, start, end, event_types, actor,
               coverage_end, keep_incomplete, encoding, date_format, sheet) -> None:
    """Read event files (or a panel file's sources) and write the unit x month panel, with a summary."""
    if spec is not None:
        given = [name for name, value in (("--events", events), ("--format", fmt), ("--covariates", covariates),
                                          ("--fill", fills), ("--sheet", sheet),
                                          ("--gazetteer", gazetteer), ("--start", start), ("--end", end),
                                          ("--event-type", event_types), ("--actor", actor),
                                          ("--coverage-end", coverage_end)) if value]
        if given:
            raise click.UsageError(f"--spec names the sources and options; {', '.join(given)} cannot be added to it "
                                   "(edit the panel file instead)")
        with user_errors():
            panel_spec, _ = read_panel_file(spec)
            built = make_panel(panel_spec, out)
        click.echo(built.summary())
        return
    if not events:
        raise click.UsageError("give the event files (--events FILE, repeatable) or a panel file (--spec FILE)")
    filters = EventFilters(
        start=date_option(start), end=date_option(end, end=True), event_types=tuple(event_types), actor=actor
    )
    with user_errors():
        fill = parse_fill(fills)
    panel_spec = PanelSpec(events=tuple(EventFile(path, fmt) for path in events), gazetteer=gazetteer,
                           covariates=covariates, fill=fill, filters=filters,
                           coverage_end=date_option(coverage_end, end=True), keep_incomplete=keep_incomplete,
                           encoding=encoding, date_format=date_format, sheet=sheet)
    with user_errors():
        built = make_panel(panel_spec, out)
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
