"""The ``forecast`` command line.

Exit codes: 0 success; 1 bad input data or configuration (a message names the file, row,
column and value); 2 bad command-line usage.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from features.covariates import FILL_POLICIES, read_covariates
from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.panel import build_panel, write_panel
from features.sources import FORMATS, EventFilters, read_events

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_EVENTS = REPO_ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
DEMO_COVARIATES = REPO_ROOT / "data" / "sample" / "covariates_demo.csv"


def _date(text: str | None, *, end: bool = False) -> pd.Timestamp | None:
    """Parse YYYY-MM or YYYY-MM-DD; a month as an end bound means its last day."""
    if text is None:
        return None
    try:
        if len(text.strip()) == 7:
            period = pd.Period(text.strip(), freq="M")
            return period.end_time.normalize() if end else period.start_time
        return pd.Timestamp(pd.to_datetime(text.strip(), format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM or YYYY-MM-DD)") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="insurgency-forecast")
def main() -> None:
    """Forecast monthly insurgent activity per admin-1 unit."""


@main.group()
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
def data_build(events, fmt, covariates, fill, gazetteer, out, start, end, event_types, actor,
               coverage_end, keep_incomplete, encoding) -> None:
    """Read event files and write the unit x month panel, with a summary."""
    filters = EventFilters(
        start=_date(start), end=_date(end, end=True), event_types=tuple(event_types), actor=actor
    )
    try:
        summary = run_data_build(
            events=list(events), fmt=fmt, covariates=covariates, fill=fill, gazetteer=gazetteer,
            out=out, filters=filters, coverage_end=_date(coverage_end, end=True),
            keep_incomplete=keep_incomplete, encoding=encoding,
        )
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)


def run_data_build(*, events, fmt, covariates, fill, gazetteer, out, filters, coverage_end,
                   keep_incomplete, encoding) -> str:
    """Build and write a panel; return the summary text. Raises DataError on bad input."""
    if Path(out).suffix.lower() not in (".parquet", ".csv"):
        raise DataError(f"{out}: the panel must be written as .parquet or .csv")
    gaz = load_gazetteer(gazetteer)
    results = [
        read_events(path, format=fmt, gazetteer=gaz, filters=filters, encoding=encoding)
        for path in tqdm(events, desc="reading events", unit="file", disable=len(events) < 2)
    ]
    cov = None
    cov_notes: list[str] = []
    if covariates is not None:
        cov, cov_notes = read_covariates(covariates, gaz, encoding)
    build = build_panel(
        results, gaz, start=filters.start.to_period("M") if filters.start is not None else None,
        end=filters.end.to_period("M") if filters.end is not None else None,
        coverage_end=coverage_end, keep_incomplete=keep_incomplete, covariates=cov,
        covariate_source=str(covariates) if covariates else None, fill=fill,
    )
    build.notes.extend(cov_notes)
    paths = write_panel(build, out)
    return format_summary(build, paths)


def format_summary(build, paths) -> str:
    meta, panel = build.metadata, build.panel
    lines = [
        f"panel: {paths['panel']}",
        f"  units: {panel['unit'].nunique()}  months: {panel['month'].nunique()} "
        f"({meta['first_month']} .. {meta['last_month']})  data vintage: {meta['vintage']}",
        f"  totals: incidents {meta['totals']['incidents']:,}  deaths {meta['totals']['deaths']:,}",
    ]
    if meta["covariates"]:
        lines.append(
            f"  covariates: {', '.join(meta['covariates']['columns'])} "
            f"({meta['covariates']['scope']}, fill: {meta['covariates']['fill']})"
        )
    for src in meta["sources"]:
        lines.append(
            f"source: {src['path']} ({src['format']}): {src['rows']:,} rows, {src['events']:,} events "
            f"used, {src['quarantined']:,} quarantined, {src['filtered_out']:,} filtered out "
            f"(filters: {src['filters']})"
        )
    n_q = len(build.quarantine)
    if n_q:
        # Group reasons by their kind: values and row numbers differ from row to row.
        kinds = build.quarantine["reason"].str.replace(r"'[^']*'", "'...'", regex=True)
        top = kinds.str.replace(r"\d+", "N", regex=True).value_counts().head(4)
        reasons = "; ".join(f"{count:,} x {reason}" for reason, count in top.items())
        lines.append(f"quarantined: {n_q:,} row(s) -> {paths['quarantine']} ({reasons})")
    else:
        lines.append("quarantined: 0 rows")
    if meta["events_outside_panel"]:
        lines.append(f"events outside the panel months: {meta['events_outside_panel']:,}")
    lines.extend(f"note: {n}" for n in build.notes)
    lines.append(f"metadata: {paths['metadata']}")
    return "\n".join(lines)


@data.command("synthetic")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write ucdp_ged_demo.csv and covariates_demo.csv into.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the demo data's seed).")
@click.option("--units", type=int, default=None,
              help="Number of synthetic units on a lattice (default: Iraq's 18 governorates).")
@click.option("--start", default=None, help="First month (YYYY-MM).")
@click.option("--end", default=None, help="Last month (YYYY-MM).")
def data_synthetic(out_dir, seed, units, start, end) -> None:
    """Generate synthetic raw events (UCDP GED layout) and covariates with a known process."""
    from dataclasses import replace

    from features.synthetic import SyntheticConfig, synthetic_gazetteer, write_sample

    config = SyntheticConfig()
    changes = {k: v for k, v in {"seed": seed, "start": start, "end": end}.items() if v is not None}
    config = replace(config, **changes)
    gaz = None
    if units is not None:
        frame = synthetic_gazetteer(units, seed=config.seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        gaz_path = out_dir / "gazetteer.csv"
        frame.to_csv(gaz_path, index=False)
        gaz = load_gazetteer(gaz_path)
        click.echo(f"gazetteer: {gaz_path} ({units} units)")
    paths = write_sample(out_dir, config=config, gazetteer=gaz)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


@main.command("demo")
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("outputs/demo"), show_default=True,
              help="Where the demo writes its outputs.")
def demo(out_dir: Path) -> None:
    """Run the main job on the bundled synthetic demo data with the embedded defaults."""
    from features.synthetic import SyntheticConfig

    click.echo(f"demo: building the panel from {DEMO_EVENTS.relative_to(REPO_ROOT)}")
    # The generator covers every day of its last month, however few events fall in it.
    coverage_end = _date(SyntheticConfig().end, end=True)
    try:
        summary = run_data_build(
            events=[DEMO_EVENTS], fmt="ucdp", covariates=DEMO_COVARIATES, fill="error",
            gazetteer=None, out=out_dir / "panel.parquet", filters=EventFilters(),
            coverage_end=coverage_end, keep_incomplete=False, encoding=None,
        )
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)
    click.echo(
        "demo: done. This release builds the data layer only; forecasting, experiment "
        "tracking and the report are not implemented yet, so the demo stops after the panel."
    )
