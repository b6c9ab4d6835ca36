"""``forecast scenario``: forecasts under covariate scenarios (see :mod:`forecast.scenario`)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd


@click.group("scenario")
def scenario() -> None:
    """Project forecasts under covariate scenarios (what if troop levels change?)."""


@scenario.command("run")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--model", "model_name", required=True,
              help="Model name (see 'forecast models'); only models using covariates at target months respond.")
@click.option("--scenarios", "scenario_list", required=True,
              help="Comma-separated scenario files (TOML, see experiments/scenarios/README.md).")
@click.option("--horizon", type=click.IntRange(1, 36), default=6, show_default=True, help="Months ahead to project.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for forecasts.csv, differences.csv, national.csv and paths.csv.")
@click.option("--origin", default=None,
              help="Last month the model may use (YYYY-MM; default: the panel's data vintage).")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--param", "params", multiple=True, help="Model hyperparameter KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help="Gazetteer CSV for unit names (default: Iraq's 18 governorates).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draws behind the difference bands.")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's local SQLite store).")
@click.option("--no-track", is_flag=True, help="Do not log the runs to MLflow.")
def scenario_run(panel_path, model_name, scenario_list, horizon, out_dir, origin, target, params, gazetteer, seed,
                 tracking_uri, no_track) -> None:
    """Forecast under every scenario from one fitted model, with differences from the baseline."""
    from features.atomic import write_atomically
    from features.errors import DataError
    from features.gazetteer import load_gazetteer
    from forecast.cli import _load_panel, _month, _parse_params
    from forecast.catalog import make_model
    from forecast.models.base import ModelError
    from forecast.scenario import (
        TRACKING_EXPERIMENT,
        load_scenario,
        run_scenarios,
        summary_text,
        track_scenarios,
    )
    from forecast.tracking import ExperimentTracker, TrackingError, resolve_tracking_uri

    files = [f.strip() for f in scenario_list.split(",") if f.strip()]
    if not files:
        raise click.BadParameter("give at least one scenario file", param_hint="--scenarios")
    model_params = _parse_params(params, qualified=False)
    try:
        # Everything the user can get wrong is checked before the model is fitted.
        gaz = load_gazetteer(gazetteer)
        scenarios = [load_scenario(f, gaz) for f in files]
        make_model(model_name, **model_params)
        panel, meta = _load_panel(panel_path, gazetteer)
        origin_p = _month(origin, "--origin") or pd.Period(meta.get("vintage") or panel["month"].max(), freq="M")
        if origin_p > panel["month"].max() or origin_p <= panel["month"].min():
            raise DataError(f"origin {origin_p} is outside the panel ({panel['month'].min()} .. {panel['month'].max()})")
        tracker = None
        if not no_track:
            uri = resolve_tracking_uri(tracking_uri)
            tracker = ExperimentTracker(TRACKING_EXPERIMENT, uri)
        click.echo(f"scenario: fitting {model_name} on {panel['month'].min()} .. {origin_p}, "
                   f"projecting {len(scenarios)} scenario file(s) {horizon} months ahead")
        result = run_scenarios(panel, model_name, scenarios, horizon, params=model_params, target=target,
                               origin=origin_p, seed=seed)
    except (DataError, ModelError, TrackingError) as exc:
        raise click.ClickException(str(exc)) from None

    def csv(frame: pd.DataFrame):
        text = frame.copy()
        for col in ("origin", "month"):
            if col in text:
                text[col] = text[col].astype(str)
        return lambda tmp: text.to_csv(tmp, index=False)

    outputs = {"forecasts.csv": result.forecasts, "differences.csv": result.differences,
               "national.csv": result.national, "paths.csv": result.paths}
    write_atomically({out_dir / name: csv(frame) for name, frame in outputs.items()})
    click.echo(summary_text(result))
    click.echo(f"written: {', '.join(str(out_dir / name) for name in outputs)}")
    if tracker is not None:
        panel_cut = panel.loc[panel["month"] <= origin_p].reset_index(drop=True)
        try:
            parent, _ = track_scenarios(result, tracker, params=model_params, panel=panel_cut,
                                        panel_source=str(panel_path), panel_metadata=meta)
        except TrackingError as exc:
            raise click.ClickException(f"{exc} (the outputs in {out_dir} are written; the MLflow run is marked "
                                       "FAILED)") from None
        click.echo(f"MLflow: run {parent} in experiment {TRACKING_EXPERIMENT!r} with one nested run per scenario, "
                   f"at {tracker.tracking_uri}")
