"""``forecast demo``: the main job on the bundled demo data (:func:`forecast.run_demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from forecast.cli.common import TRACKING_HELP, user_errors
from forecast.jobs.demo import run_demo


@click.command("demo")
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("outputs/demo"), show_default=True,
              help="Where the demo writes its outputs.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def demo(out_dir: Path, tracking_uri: str | None) -> None:
    """Run the main job on the bundled synthetic demo data with the embedded defaults."""
    with user_errors():
        run_demo(out_dir, tracking_uri=tracking_uri, echo=click.echo)
