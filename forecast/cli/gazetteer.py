"""``forecast gazetteer init``."""

from __future__ import annotations

from pathlib import Path

import click

from features.sources import FORMATS
from forecast.jobs.gazetteer import init_gazetteer
from forecast.cli.common import user_errors


@click.group()
def gazetteer() -> None:
    """Draft the gazetteer of admin-1 units for a new country or source."""


@gazetteer.command("init")
@click.option("--events", required=True, type=click.Path(path_type=Path),
              help="Event file whose admin-1 names the gazetteer is drafted from.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None,
              help="Force the event file format instead of detecting it from the columns.")
@click.option("--geojson", type=click.Path(path_type=Path), default=None,
              help="Admin-1 boundaries (OCHA COD-AB or geoBoundaries GeoJSON): adds centroids, "
                   "neighbours by shared border and a map outline.")
@click.option("--sheet", default=None,
              help="Sheet of an .xlsx event workbook to read (default: its largest).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Gazetteer CSV to write (the outline goes beside it as .geojson).")
def gazetteer_init(events, fmt, geojson, sheet, out) -> None:
    """Write a gazetteer drafted from the event file's admin-1 names, for you to review."""
    with user_errors():
        done = init_gazetteer(events=events, fmt=fmt, geojson=geojson, out=out, sheet=sheet)
    click.echo(done.summary())
