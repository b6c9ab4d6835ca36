"""Every model's hyperparameters are checked when the model is made, before any model runs:
a value of the wrong type for any declared parameter of any registered model is refused,
ranges by the model's own checks; every command stops on it before fitting anything."""

from __future__ import annotations

import inspect
import time
import typing
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from forecast.catalog import MODELS, ModelError, make_model
from forecast.cli import main
from forecast.experiment import load_experiment
from forecast.models.params import describe_type
from forecast.refresh import load_config
from forecast.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PANEL_CSV = "unit,month,incidents,deaths\n"


def wrong_value(annotation):
    """A value that no declared type of a parameter admits."""
    args = typing.get_args(annotation) or (annotation,)
    flat = {a for arg in args for a in (typing.get_args(arg) or (arg,))}
    return 3.5 if str in flat and float not in flat and int not in flat else "x" if str not in flat else object()


CASES = [(name, param) for name, cls in sorted(MODELS.items())
         for param in cls.param_names() if param in typing.get_type_hints(cls.__init__)]


def test_every_model_declares_the_type_of_every_parameter():
    undeclared = [f"{name}.{param}" for name, cls in MODELS.items() for param in cls.param_names()
                  if param not in typing.get_type_hints(cls.__init__)]
    assert undeclared == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_accepts_its_defaults(name):
    make_model(name).check_params()


@pytest.mark.parametrize(("name", "param"), CASES, ids=[f"{n}.{p}" for n, p in CASES])
def test_a_value_of_the_wrong_type_is_refused_when_the_model_is_made(name, param):
    annotation = typing.get_type_hints(MODELS[name].__init__)[param]
    value = wrong_value(annotation)
    with pytest.raises(ModelError, match=rf"'{name}'.*parameter '{param}' must be {describe_type(annotation)}"):
        make_model(name, **{param: value})


@pytest.mark.parametrize(("name", "params", "message"), [
    ("hgb", {"n_jobs": "x"}, "'n_jobs' must be a whole number or none, got 'x'"),
    ("hgb", {"n_jobs": 0}, "n_jobs must be a whole number other than 0"),
    ("hgb", {"max_iter": -1}, "'max_iter' parameter of HistGradientBoostingRegressor must be an int"),
    ("hgb", {"learning_rate": float("inf")}, "'learning_rate' must be a finite number"),
    ("hgb", {"lags": 3}, "lags must be whole numbers >= 0, got 3"),
    ("random_forest", {"max_features": 3.5}, "'max_features' parameter of RandomForestRegressor"),
    ("ensemble", {"power": "x"}, "'power' must be a finite number, got 'x'"),
    ("ensemble", {"power": -1.0}, "power must be a number from 0 to 100"),
    ("ensemble", {"members": "zero, nope"}, "ensemble: member 'nope': unknown model 'nope'"),
    ("ensemble", {"members": ("zero", "ensemble")}, "cannot be its own member"),
    ("ensemble", {"eval_step": 0}, "eval_step must be a whole number >= 1"),
    ("moving_average", {"window": 0}, "window must be a whole number >= 1, got 0"),
    ("seasonal_naive", {"distribution": "cauchy"}, "distribution must be one of"),
    ("locf_negbin", {"min_alpha": 0}, "min_alpha must be > 0"),
    ("ets", {"trend": "mul"}, "trend must be one of"),
    ("croston", {"alpha": 2.0}, r"alpha must be in \(0, 1\]"),
    ("nb_glm", {"max_horizon": 0}, "max_horizon must be a whole number >= 1"),
])
def test_a_value_out_of_range_is_refused_when_the_model_is_made(name, params, message):
    with pytest.raises(ModelError, match=message):
        make_model(name, **params)


def zero_panel(path: Path) -> Path:
    from features.gazetteer import load_gazetteer

    rows = [f"{u},{m},0,0\n" for u in load_gazetteer().names for m in pd.period_range("2018-01", "2021-12", freq="M")]
    path.write_text(PANEL_CSV + "".join(rows), encoding="utf-8")
    return path


def test_every_command_stops_on_a_bad_parameter_before_fitting(tmp_path):
    panel = zero_panel(tmp_path / "panel.csv")
    commands = {
        "predict": ["predict", "--panel", str(panel), "--model", "hgb", "--param", 'n_jobs="x"',
                    "--out", str(tmp_path / "out" / "f.csv")],
        "backtest": ["backtest", "--panel", str(panel), "--models", "zero,random_forest,ensemble", "--param",
                     'ensemble.power="x"', "--start", "2020-01", "--end", "2021-06", "--out", str(tmp_path / "out")],
        "scenario": ["scenario", "run", "--panel", str(panel), "--model", "nb_glmx", "--param", "maxiter=0",
                     "--scenarios", str(ROOT / "experiments" / "scenarios" / "full_withdrawal.toml"), "--no-track",
                     "--out", str(tmp_path / "out")],
    }
    for name, argv in commands.items():
        started = time.monotonic()
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 1, (name, result.output)
        assert "must be" in result.output and "Traceback" not in result.output, (name, result.output)
        assert time.monotonic() - started < 10, name
        assert not (tmp_path / "out").exists(), name


def test_experiment_and_refresh_files_are_refused_on_a_bad_parameter(tmp_path):
    text = (ROOT / "experiments" / "benchmarks.toml").read_text(encoding="utf-8")
    assert "[[models]]" in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace('"../data/', f'"{ROOT / "data"}/') +
                    '\n[[models]]\nname = "hgb"\nparams = { n_jobs = "x" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'n_jobs' must be a whole number or none, got 'x'"):
        load_experiment(path)
    refresh = tmp_path / "refresh.toml"
    refresh.write_text(
        f'[data]\nevents = "{ROOT / "data" / "sample" / "ucdp_ged_demo.csv"}"\nformat = "ucdp"\n'
        '[model]\nname = "m"\nfallback = "ensemble"\nfallback_params = { power = "x" }\n[outputs]\ndir = "out"\n',
        encoding="utf-8")
    with pytest.raises(ConfigError, match="'power' must be a finite number"):
        load_config(refresh)


def test_hgb_on_an_all_zero_panel_forecasts_zero(tmp_path):
    panel = zero_panel(tmp_path / "panel.csv")
    result = CliRunner().invoke(main, ["predict", "--panel", str(panel), "--model", "hgb", "--origin", "2021-12",
                                       "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 0, result.output
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert len(forecast) == 18 * 6 and (forecast[["mean", "q95"]] == 0).all().all()


def test_the_declared_types_are_what_the_signature_says():
    hints = typing.get_type_hints(MODELS["hgb"].__init__)
    assert describe_type(hints["n_jobs"]) == "a whole number or none"
    assert describe_type(hints["lags"]) == "a list of whole numbers"
    assert inspect.signature(MODELS["hgb"].__init__).parameters["n_jobs"].default == 1
