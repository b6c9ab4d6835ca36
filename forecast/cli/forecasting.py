"""``forecast models``, ``forecast predict`` and ``forecast backtest``.

Only click and the model registry are imported at the top: each command imports its job when it
runs, so ``forecast models`` and ``forecast predict --help`` load neither pandas nor any model.
"""

from __future__ import annotations

from pathlib import Path

import click

from forecast.catalog import DEFAULT_MODEL, MODELS, make_model
from forecast.cli.common import GAZETTEER_HELP, TRACKING_HELP, covariate_list, month_option, parse_params, user_errors

#: ``forecast.schema.MAX_HORIZON``, ``forecast.evaluation.backtest.BACKENDS`` and the defaults of
#: ``forecast.evaluation.backtest.BacktestDesign``, restated here because those modules import
#: pandas; ``tests/test_cli.py`` checks that they are the same.
MAX_HORIZON = 36
BACKENDS = ("joblib", "dask")
DESIGN_DEFAULTS = {"horizon": 6, "step": 1, "refit_every": 12}


@click.command("models")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def list_models(names: tuple[str, ...]) -> None:
    """List the registered models and what they use.

    Without NAME: every model's name and summary. With names: also what each model uses and its
    parameters with their defaults.
    """
    if not names:
        for name in sorted(MODELS):
            mark = " (default)" if name == DEFAULT_MODEL else ""
            click.echo(f"{name}{mark}: {MODELS.summary(name)}")
        return
    with user_errors():
        for name in names:
            model = make_model(DEFAULT_MODEL if name == "default" else name)
            uses = "covariates at target months" if model.uses_future_covariates else (
                "covariates known at the origin" if model.uses_covariates else "no covariates")
            params = ", ".join(f"{k}={v!r}" for k, v in model.get_params().items()) or "none"
            click.echo(f"{model.name}: {MODELS.summary(model.name)} [{uses}; parameters: {params}]")


@click.command("predict")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--model", "model_name", default=None,
              help="Model name (see 'forecast models'); default: 'default', the recommended model.")
@click.option("--registry-model", default=None,
              help="Registered model to forecast with instead of fitting one: NAME@ALIAS (e.g. "
                   "ucdp-incidents@champion) or NAME/VERSION; the forecast 'forecast report --registry-model' shows.")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--horizon", type=click.IntRange(1, MAX_HORIZON), default=6, show_default=True,
              help="Months ahead to forecast.")
@click.option("--origin", default=None,
              help="Last month the model may use (YYYY-MM; default: the panel's data vintage).")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--covariates", "covariate_names", default=None,
              help="Comma-separated covariate columns models may use (default: all; 'none' for none).")
@click.option("--param", "params", multiple=True, help="Model hyperparameter KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help=GAZETTEER_HELP)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Forecast CSV to write.")
def predict_command(panel_path, model_name, registry_model, tracking_uri, horizon, origin, target, covariate_names,
                    params, gazetteer, out) -> None:
    """Forecast every unit for the months after the origin."""
    if model_name is not None and registry_model is not None:
        raise click.UsageError("give --model or --registry-model, not both")
    if registry_model is not None:
        if params or covariate_names is not None:
            raise click.UsageError("--param and --covariates apply to a model fitted here, not to a registered "
                                   "model (it keeps those it was trained with)")
        from forecast.jobs.registered import predict_registered

        with user_errors():
            prediction = predict_registered(panel_path, out=out, registry_model=registry_model,
                                            tracking_uri=tracking_uri, horizon=horizon,
                                            origin=month_option(origin, "--origin"), target=target, gazetteer=gazetteer)
        click.echo(prediction.summary())
        return
    from forecast.jobs.forecasting import predict

    with user_errors():
        prediction = predict(panel_path, out=out, model=model_name or "default", horizon=horizon,
                             origin=month_option(origin, "--origin"), target=target,
                             covariates=covariate_list(covariate_names), params=parse_params(params, qualified=False),
                             gazetteer=gazetteer)
    click.echo(prediction.summary())


@click.command("backtest")
@click.option("--panel", "panel_path", required=True, type=click.Path(path_type=Path),
              help="Panel file written by 'forecast data build' (or another tool).")
@click.option("--models", "model_list", required=True,
              help="Comma-separated model names, e.g. zero,locf_poisson,nb_glm ('all' for every model).")
@click.option("--start", required=True, help="First forecast origin (YYYY-MM).")
@click.option("--end", required=True, help="Last forecast origin (YYYY-MM).")
@click.option("--horizon", type=click.IntRange(1, MAX_HORIZON), default=DESIGN_DEFAULTS["horizon"], show_default=True,
              help="Months ahead: 1..H.")
@click.option("--step", type=click.IntRange(1, None), default=DESIGN_DEFAULTS["step"], show_default=True,
              help="Months between origins.")
@click.option("--refit-every", type=click.IntRange(1, None), default=DESIGN_DEFAULTS["refit_every"], show_default=True,
              help="Refit every K origins; in between, models are updated with the new data only.")
@click.option("--target", type=click.Choice(["incidents", "deaths"]), default="incidents", show_default=True,
              help="Panel column to forecast.")
@click.option("--jobs", type=click.IntRange(1, None), default=1, show_default=True,
              help="Parallel workers (results do not depend on it).")
@click.option("--covariates", "covariate_names", default=None,
              help="Comma-separated covariate columns models may use (default: all; 'none' for none).")
@click.option("--param", "params", multiple=True, help="Hyperparameter MODEL.KEY=VALUE (repeatable).")
@click.option("--gazetteer", type=click.Path(path_type=Path), default=None,
              help=GAZETTEER_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for forecasts.parquet, scores.csv, scores_by_unit.csv and fit_notes.csv.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="joblib", show_default=True,
              help="Run the fits in joblib processes on this machine or on a Dask cluster (same results).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: start a local cluster of --jobs workers).")
def backtest_command(panel_path, model_list, start, end, horizon, step, refit_every, target, jobs, covariate_names,
                     params, gazetteer, out_dir, backend, scheduler) -> None:
    """Rolling-origin backtest of several models, with a score table and a leaderboard."""
    from forecast.evaluation.backtest import BacktestDesign
    from forecast.jobs.backtesting import backtest

    per_model = parse_params(params, qualified=True)
    if scheduler is not None and backend != "dask":
        raise click.BadParameter("needs --backend dask", param_hint="--scheduler")
    with user_errors():
        design = BacktestDesign(start=month_option(start, "--start"), end=month_option(end, "--end"), step=step,
                                    horizon=horizon, refit_every=refit_every)
        run = backtest(panel_path, models=model_list, design=design, out_dir=out_dir, target=target, jobs=jobs,
                           covariates=covariate_list(covariate_names), params=per_model, gazetteer=gazetteer,
                           backend=backend, scheduler=scheduler)
    click.echo(run.summary())
