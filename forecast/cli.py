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
from forecast.evaluation.backtest import BacktestDesign

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_EVENTS = REPO_ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
DEMO_COVARIATES = REPO_ROOT / "data" / "sample" / "covariates_demo.csv"
DEMO_EXPERIMENT = REPO_ROOT / "experiments" / "full.toml"
DEMO_REGISTERED_MODEL = "demo-incidents"
#: A model that responds to scenarios (covariates at target months), and the shipped scenarios.
DEMO_SCENARIO_MODEL = "nb_glmx"
DEMO_SCENARIOS = tuple(REPO_ROOT / "experiments" / "scenarios" / f"{name}.toml"
                       for name in ("baseline", "partial_withdrawal", "full_withdrawal", "ops_surge"))
_TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's local SQLite store)."


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
@click.option("--tracking-uri", default=None, help=_TRACKING_HELP)
@click.pass_context
def demo(ctx: click.Context, out_dir: Path, tracking_uri: str | None) -> None:
    """Run the main job on the bundled synthetic demo data with the embedded defaults."""
    from features.synthetic import SyntheticConfig
    from forecast.catalog import DEFAULT_MODEL

    click.echo(f"demo: 1/6 building the panel from {DEMO_EVENTS.relative_to(REPO_ROOT)}")
    # The generator covers every day of its last month, however few events fall in it.
    coverage_end = _date(SyntheticConfig().end, end=True)
    panel = out_dir / "panel.parquet"
    try:
        summary = run_data_build(
            events=[DEMO_EVENTS], fmt="ucdp", covariates=DEMO_COVARIATES, fill="error",
            gazetteer=None, out=panel, filters=EventFilters(),
            coverage_end=coverage_end, keep_incomplete=False, encoding=None,
        )
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)
    click.echo("\ndemo: 2/6 running experiments/full.toml (every model, tracked in MLflow)")
    ref = run_experiment_file(DEMO_EXPERIMENT, tracking_uri, DEMO_REGISTERED_MODEL, out_dir / "experiment")
    ctx.invoke(registry_promote, registered_name=DEMO_REGISTERED_MODEL, version=ref.version,
               tracking_uri=tracking_uri)
    click.echo(f"\ndemo: 3/6 forecasting the next 6 months with the default model ({DEFAULT_MODEL})")
    ctx.invoke(predict, panel_path=panel, model_name="default", horizon=6, origin=None, target="incidents",
               covariate_list=None, params=(), gazetteer=None, out=out_dir / "forecast.csv")

    click.echo(f"\ndemo: 4/6 scenario projections with {DEMO_SCENARIO_MODEL} (covariates at target months)")
    ctx.invoke(main.get_command(ctx, "scenario").get_command(ctx, "run"), panel_path=panel,
               model_name=DEMO_SCENARIO_MODEL, scenario_list=",".join(str(p) for p in DEMO_SCENARIOS),
               horizon=6, out_dir=out_dir / "scenarios", origin=None, target="incidents", params=(),
               gazetteer=None, seed=0, tracking_uri=tracking_uri, no_track=False)

    click.echo(f"\ndemo: 5/6 the analyst's report from models:/{DEMO_REGISTERED_MODEL}@champion")
    from forecast.report import ReportError, make_report
    from forecast.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    try:
        paths = make_report(panel, registry_model=f"{DEMO_REGISTERED_MODEL}@champion", tracking_uri=uri,
                            out=out_dir / "reports" / f"{pd.Period(SyntheticConfig().end, 'M') + 1}.html",
                            echo=click.echo)
    except (ReportError, DataError) as exc:
        raise click.ClickException(str(exc)) from None
    report_path = paths["html"]

    click.echo("\ndemo: 6/6 a scheduled-refresh cycle (forecast refresh) with its forecast ledger")
    from forecast.cli_refresh import configure_logging
    from forecast.refresh import demo_refresh_cycle

    configure_logging()
    click.echo(demo_refresh_cycle(out_dir / "refresh", uri, DEMO_REGISTERED_MODEL))
    click.echo(f"\ndemo: done. The analyst's report: {report_path.resolve()}")
    click.echo(f"Open it in a browser (it is one self-contained file). The experiment runs: "
               f"mlflow ui --backend-store-uri {uri}")


# ----------------------------------------------------------------------------------------
# Forecasting


def _parse_params(items: tuple[str, ...], *, qualified: bool) -> dict:
    """``key=value`` (or ``model.key=value``) pairs; values read as JSON when they parse."""
    import json

    params: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(value, list):
            value = tuple(value)
        key = key.strip()
        if qualified:
            model, dot, name = key.partition(".")
            if not dot:
                raise click.BadParameter(f"{item!r}: write MODEL.KEY=VALUE", param_hint="--param")
            params.setdefault(model, {})[name] = value
        else:
            params[key] = value
    return params


def _load_panel(path: Path, gazetteer: Path | None):
    from features.panel import read_panel

    return read_panel(path, load_gazetteer(gazetteer))


def _month(text: str | None, option: str) -> pd.Period | None:
    if text is None:
        return None
    try:
        if len(text.strip()) != 7:
            raise ValueError
        return pd.Period(text.strip(), freq="M")
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a month (YYYY-MM)", param_hint=option) from None


def _covariates(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    return [c.strip() for c in text.split(",") if c.strip()]


@main.command("models")
def list_models() -> None:
    """List the registered models and what they use."""
    from forecast.catalog import DEFAULT_MODEL, MODELS

    for name, cls in sorted(MODELS.items()):
        uses = "covariates at target months" if cls.uses_future_covariates else (
            "covariates known at the origin" if cls.uses_covariates else "no covariates")
        mark = " (default)" if name == DEFAULT_MODEL else ""
        click.echo(f"{name}{mark}: {cls.summary} [{uses}; parameters: {', '.join(cls.param_names()) or 'none'}]")


@main.command("predict")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--model", "model_name", default="default", show_default=True,
              help="Model name (see 'forecast models'); 'default' is the recommended model.")
@click.option("--horizon", type=click.IntRange(1, 36), default=6, show_default=True,
              help="Months ahead to forecast.")
@click.option("--origin", default=None,
              help="Last month the model may use (YYYY-MM; default: the panel's data vintage).")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--covariates", "covariate_list", default=None,
              help="Comma-separated covariate columns models may use (default: all; 'none' for none).")
@click.option("--param", "params", multiple=True, help="Model hyperparameter KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help="Gazetteer CSV for unit names (default: Iraq's 18 governorates).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Forecast CSV to write.")
def predict(panel_path, model_name, horizon, origin, target, covariate_list, params, gazetteer, out) -> None:
    """Forecast every unit for the months after the origin."""
    from features.atomic import write_atomically
    from forecast.evaluation.backtest import forecast_at, history_at
    from forecast.catalog import DEFAULT_MODEL, make_model
    from forecast.models.base import ModelError

    name = DEFAULT_MODEL if model_name == "default" else model_name
    try:
        panel, meta = _load_panel(panel_path, gazetteer)
        origin_p = _month(origin, "--origin") or pd.Period(meta.get("vintage") or panel["month"].max(), freq="M")
        if origin_p > panel["month"].max() or origin_p <= panel["month"].min():
            raise DataError(
                f"origin {origin_p} is outside the panel ({panel['month'].min()} .. {panel['month'].max()})"
            )
        model = make_model(name, **_parse_params(params, qualified=False))
        history = history_at(panel, origin_p, target, _covariates(covariate_list))
        model.fit(history)
        frame = forecast_at(model, history, horizon, name=name)
    except (DataError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    frame["origin"] = frame["origin"].astype(str)
    frame["month"] = frame["month"].astype(str)
    write_atomically({out: lambda tmp: frame.to_csv(tmp, index=False)})
    national = frame.groupby("month")["mean"].sum()
    click.echo(f"forecast: {out} ({frame['unit'].nunique()} units x {horizon} months, model {name}, origin {origin_p}, target {target})")
    click.echo("  national mean: " + ", ".join(f"{m} {v:,.1f}" for m, v in national.items()))


@main.command("backtest")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--models", "model_list", required=True,
              help="Comma-separated model names, e.g. zero,locf_poisson,nb_glm ('all' for every model).")
@click.option("--start", required=True, help="First forecast origin (YYYY-MM).")
@click.option("--end", required=True, help="Last forecast origin (YYYY-MM).")
@click.option("--horizon", type=click.IntRange(1, 36), default=BacktestDesign.horizon, show_default=True,
              help="Months ahead: 1..H.")
@click.option("--step", type=click.IntRange(1, None), default=BacktestDesign.step, show_default=True,
              help="Months between origins.")
@click.option("--refit-every", type=click.IntRange(1, None), default=BacktestDesign.refit_every, show_default=True,
              help="Refit every K origins; in between, models are updated with the new data only.")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--jobs", type=click.IntRange(1, None), default=1, show_default=True,
              help="Parallel workers (results do not depend on it).")
@click.option("--covariates", "covariate_list", default=None,
              help="Comma-separated covariate columns models may use (default: all; 'none' for none).")
@click.option("--param", "params", multiple=True, help="Hyperparameter MODEL.KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help="Gazetteer CSV for unit names (default: Iraq's 18 governorates).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for forecasts.parquet, scores.csv, scores_by_unit.csv and fit_notes.csv.")
@click.option("--backend", type=click.Choice(["joblib", "dask"]), default="joblib", show_default=True,
              help="Run the fits in joblib processes on this machine or on a Dask cluster (same results).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: start a local cluster of --jobs workers).")
def backtest(panel_path, model_list, start, end, horizon, step, refit_every, target, jobs, covariate_list,
             params, gazetteer, out_dir, backend, scheduler) -> None:
    """Rolling-origin backtest of several models, with a score table and a leaderboard."""
    from forecast.evaluation.backtest import actual_months_missing, fit_notes, run_backtest
    from forecast.evaluation.scores import add_skill, score_table
    from forecast.catalog import BENCHMARKS, MODELS, make_model
    from forecast.models.base import ModelError

    names = sorted(MODELS) if model_list.strip() == "all" else [m.strip() for m in model_list.split(",") if m.strip()]
    per_model = _parse_params(params, qualified=True)
    try:
        stray = [m for m in per_model if m not in names]
        if stray:
            raise ModelError(f"--param names model {stray[0]!r}, which is not in --models")
        for name in names:  # fail on a bad name or parameter before any work starts
            make_model(name, **per_model.get(name, {}))
        design = BacktestDesign(start=_month(start, "--start"), end=_month(end, "--end"), step=step,
                                horizon=horizon, refit_every=refit_every)
        panel, _ = _load_panel(panel_path, gazetteer)
        factories = {n: (lambda n=n: make_model(n, **per_model.get(n, {}))) for n in names}
        if scheduler is not None and backend != "dask":
            raise click.BadParameter("needs --backend dask", param_hint="--scheduler")
        forecasts = run_backtest(panel, factories, design, target=target, n_jobs=jobs,
                                 covariates=_covariates(covariate_list), backend=backend, scheduler=scheduler)
        scores = score_table(forecasts, panel=panel, target=target)
        benchmarks = [b for b in BENCHMARKS if b in names]
        if benchmarks:
            scores = add_skill(scores, benchmarks)
        by_unit = score_table(forecasts, by=("model", "unit"), panel=panel, target=target)
    except (DataError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    from features.atomic import write_atomically

    text = forecasts.assign(origin=forecasts["origin"].astype(str), month=forecasts["month"].astype(str))
    notes = fit_notes(forecasts)
    write_atomically({
        out_dir / "forecasts.parquet": lambda tmp: text.to_parquet(tmp, index=False),
        out_dir / "scores.csv": lambda tmp: scores.to_csv(tmp, index=False),
        out_dir / "scores_by_unit.csv": lambda tmp: by_unit.to_csv(tmp, index=False),
        out_dir / "fit_notes.csv": lambda tmp: notes.to_csv(tmp, index=False),
    })
    click.echo(leaderboard(scores))
    if len(notes):
        counts = notes.groupby("model").size()
        click.echo("\nfit notes (fallbacks, e.g. fits that hit their iteration cap): "
                   + ", ".join(f"{m} {n}" for m, n in counts.items()) + f"; see {out_dir / 'fit_notes.csv'}")
    missing = actual_months_missing(forecasts)
    click.echo(f"\n{len(design.origins())} origins x {horizon} horizons x {panel['unit'].nunique()} units x "
               f"{len(names)} models; {missing:,} forecast rows have no actual yet (not scored)")
    click.echo(f"written: {out_dir / 'forecasts.parquet'}, {out_dir / 'scores.csv'}, {out_dir / 'scores_by_unit.csv'}")


def leaderboard(scores: pd.DataFrame) -> str:
    """Models ranked by mean CRPS over all horizons (by the first scored metric when CRPS is not scored)."""
    metrics = [c for c in ("crps", "mae", "rmse", "coverage50", "coverage90", "mis90", "brier", "crps_skill")
               if c in scores]
    overall = scores[scores["horizon"].astype(str) == "all"]
    if metrics:
        overall = overall.sort_values(metrics[0], kind="stable")
    table = overall[["model", *metrics]].rename(columns={"crps_skill": "crps skill vs best benchmark"})
    return "leaderboard (all horizons, lower is better; coverage should be near 0.50 / 0.90):\n" + table.to_string(
        index=False, float_format=lambda v: f"{v:.3f}")


# ----------------------------------------------------------------------------------------
# Experiments and the model registry (MLflow)


@main.group()
def experiment() -> None:
    """Run declarative experiment files, tracked in MLflow."""


@experiment.command("run")
@click.argument("experiment_file", type=click.Path(path_type=Path))
@click.option("--tracking-uri", default=None, help=_TRACKING_HELP)
@click.option("--register", "register_as", default=None,
              help="Register the final model of the best-scoring model under this registered-model name.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Also write forecasts and scores to this folder.")
def experiment_run(experiment_file, tracking_uri, register_as, out_dir) -> None:
    """Backtest every model of an experiment file: one parent run, one nested run per model."""
    run_experiment_file(experiment_file, tracking_uri, register_as, out_dir)


def run_experiment_file(experiment_file, tracking_uri, register_as, out_dir):
    """Run, track and report one experiment file; return the logged final model's reference."""
    from forecast.experiment import combined_scores, fit_final, load_data, load_experiment, run_model
    from forecast.models.base import ModelError
    from forecast.tracking import ExperimentTracker, TrackingError, eval_window, resolve_tracking_uri

    try:
        config = load_experiment(experiment_file)
        uri = resolve_tracking_uri(tracking_uri)
        tracker = ExperimentTracker(config.name, uri)
        panel, metadata, source = load_data(config)
    except (DataError, ModelError, TrackingError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"experiment {config.name}: {len(config.labels)} model run(s), tracking at {uri}")
    outcomes = []
    try:
        with tracker.parent_run(config.name, params=config.as_dict(), config_path=config.path, panel=panel,
                                panel_source=source, panel_metadata=metadata) as parent_id:
            for label in tqdm(config.labels, desc="models", unit="model"):
                spec = config.spec(label)
                with tracker.child_run(label, {"model": spec.model, **spec.params}, model=spec.model) as child:
                    outcome = run_model(config, panel, label)
                    child.log_backtest(outcome.forecasts, outcome.scores)
                outcomes.append(outcome)
            table = combined_scores(outcomes, config)
            overall = table[table["horizon"].astype(str) == "all"].sort_values("crps")
            best = str(overall["model"].iloc[0])
            best_outcome = next(o for o in outcomes if o.label == best)
            with tracker.child_run(f"final: {best}", {"model": best_outcome.model, **best_outcome.params},
                                   model=best_outcome.model) as child:
                final = fit_final(config, panel, best)
                child.crps_ = float(overall["crps"].iloc[0])
                child.eval_window_ = eval_window(best_outcome.forecasts)
                ref = child.log_model(final, final.history_, config.backtest.horizon, registered_name=register_as)
    except (DataError, ModelError, TrackingError) as exc:
        raise click.ClickException(f"{exc} (the MLflow run is marked FAILED)") from None
    if out_dir is not None:
        from features.atomic import write_atomically

        forecasts = pd.concat([o.forecasts for o in outcomes], ignore_index=True)
        text = forecasts.assign(origin=forecasts["origin"].astype(str), month=forecasts["month"].astype(str))
        write_atomically({out_dir / "forecasts.parquet": lambda tmp: text.to_parquet(tmp, index=False),
                          out_dir / "scores.csv": lambda tmp: table.to_csv(tmp, index=False)})
    click.echo(leaderboard(table))
    click.echo(f"\nparent run {parent_id} in MLflow experiment {config.name!r}; final model: {ref.model_uri}")
    if ref.registered_name:
        click.echo(f"registered {ref.registered_name} version {ref.version}; "
                   f"promote with: forecast registry promote {ref.registered_name} --version {ref.version}")
    click.echo(f"look at it with: mlflow ui --backend-store-uri {uri}")
    return ref


@experiment.command("compare")
@click.argument("name", required=False)
@click.option("--tracking-uri", default=None, help=_TRACKING_HELP)
def experiment_compare(name, tracking_uri) -> None:
    """Leaderboard of the model runs of one experiment (or of all), best CRPS first."""
    from forecast.tracking import TrackingError, compare, resolve_tracking_uri

    try:
        board = compare(name, resolve_tracking_uri(tracking_uri))
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from None
    board = board[board["crps"].notna()]  # the 'final:' runs hold a model, not a backtest
    if board.empty:
        click.echo("no tracked model runs yet")
        return
    cols = [c for c in ("experiment", "label", "model", "crps", "mae", "coverage90", "status", "start_time") if c in board]
    click.echo(board[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@main.group()
def registry() -> None:
    """The MLflow Model Registry: list versions, promote a champion."""


@registry.command("list")
@click.argument("registered_name")
@click.option("--tracking-uri", default=None, help=_TRACKING_HELP)
def registry_list(registered_name, tracking_uri) -> None:
    """Versions of a registered model with their aliases and backtest CRPS."""
    from forecast.registry import list_versions
    from forecast.tracking import TrackingError, resolve_tracking_uri

    try:
        table = list_versions(registered_name, resolve_tracking_uri(tracking_uri))
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@registry.command("promote")
@click.argument("registered_name")
@click.option("--version", "version", required=True, help="Model version to consider for the champion alias.")
@click.option("--tracking-uri", default=None, help=_TRACKING_HELP)
def registry_promote(registered_name, version, tracking_uri) -> None:
    """Give a version the 'champion' alias if its backtest CRPS beats the champion's, else 'challenger'."""
    from forecast.registry import promote
    from forecast.tracking import TrackingError, resolve_tracking_uri

    try:
        decision = promote(registered_name, version, resolve_tracking_uri(tracking_uri))
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)

from forecast.cli_refresh import ledger_group, refresh  # noqa: E402  (registered last: it imports helpers above)
main.add_command(refresh)
main.add_command(ledger_group)

from forecast.cli_report import report  # noqa: E402  (registered last: it imports helpers above)
main.add_command(report)

from forecast.cli_scenario import scenario  # noqa: E402  (registered last: it imports helpers above)
main.add_command(scenario)
