"""Experiment files: loading, validation messages, grid expansion and a run end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from forecast.experiment import (
    combined_scores,
    fit_final,
    load_data,
    load_experiment,
    model_factories,
    run_model,
)
from forecast.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
SHIPPED = sorted(EXPERIMENTS.glob("*.toml"))
DEMO_EVENTS = ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
DEMO_COVARIATES = ROOT / "data" / "sample" / "covariates_demo.csv"

DATA = f'''
[data]
events = "{DEMO_EVENTS.as_posix()}"
format = "ucdp"
covariates = "{DEMO_COVARIATES.as_posix()}"
coverage_end = "2024-12"
'''
BACKTEST = '''
[backtest]
start = "2023-01"
end = "2023-06"
step = 3
horizon = 3
refit_every = 2
'''
MODELS = '''
[[models]]
name = "moving_average"
'''


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def benchmarks():
    config = load_experiment(EXPERIMENTS / "benchmarks.toml")
    panel, metadata, source = load_data(config)
    return config, panel, metadata, source


def test_the_shipped_experiments_exist():
    assert {p.name for p in SHIPPED} >= {"benchmarks.toml", "statistical.toml", "ml.toml", "full.toml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_experiment_loads_and_validates(path):
    config = load_experiment(path)
    assert config.name == path.stem
    assert config.text == path.read_text(encoding="utf-8")
    assert config.data.events and all(p.exists() for p in config.data.events)
    assert config.models and len(set(config.labels)) == len(config.labels)
    assert set(config.benchmarks) <= set(config.labels) and config.benchmarks
    assert set(model_factories(config)) == set(config.labels)
    # The one line to change for a real panel is shown, commented out.
    assert "# panel = " in config.text


def test_benchmarks_run_end_to_end_model_by_model(benchmarks):
    config, panel, metadata, source = benchmarks
    assert source == str(DEMO_EVENTS)
    assert metadata["vintage"] == "2024-12"
    assert {m.model for m in config.models} == {"zero", "locf_poisson", "locf_negbin", "seasonal_naive",
                                                "moving_average", "hist_bootstrap"}
    outcomes = [run_model(config, panel, label) for label in config.labels]
    n_origins = len(config.backtest.design().origins())
    for outcome in outcomes:
        assert set(outcome.forecasts["model"]) == {outcome.label}
        assert len(outcome.forecasts) == n_origins * config.backtest.horizon * panel["unit"].nunique()
        assert "all" in set(outcome.scores["horizon"].astype(str))
        assert list(outcome.scores.columns[3:]) == list(config.scores.metrics)
        assert outcome.seconds >= 0
    table = combined_scores(outcomes, config)
    assert set(table["model"]) == set(config.labels)
    assert "crps_skill" in table and "crps_benchmark" in table
    overall = table[table["horizon"].astype(str) == "all"]
    assert (overall["crps_skill"] <= 1).all()


def test_fit_final_returns_a_fitted_model_that_predicts(benchmarks):
    config, panel, _, _ = benchmarks
    model = fit_final(config, panel, "moving_average")
    assert model.origin_ == panel["month"].max()
    assert model.get_params()["window"] == 12  # params from the file
    forecast = model.predict(3)
    assert len(forecast) == 3 * panel["unit"].nunique()
    assert forecast["month"].min() == panel["month"].max() + 1


def test_a_grid_expands_to_one_labelled_model_per_point(tmp_path):
    path = write(tmp_path, DATA + BACKTEST + '''
[[models]]
name = "hgb"
params = { max_iter = 20, lags = [1, 2] }
grid = { learning_rate = [0.05, 0.1], max_leaf_nodes = [7, 15] }

[[models]]
name = "moving_average"
label = "ma"
grid = { window = [3, 12] }
''')
    config = load_experiment(path)
    assert config.labels == [
        "hgb[learning_rate=0.05,max_leaf_nodes=7]", "hgb[learning_rate=0.05,max_leaf_nodes=15]",
        "hgb[learning_rate=0.1,max_leaf_nodes=7]", "hgb[learning_rate=0.1,max_leaf_nodes=15]",
        "ma[window=3]", "ma[window=12]",
    ]
    spec = config.spec("hgb[learning_rate=0.1,max_leaf_nodes=7]")
    assert spec.model == "hgb"
    assert spec.params == {"max_iter": 20, "lags": (1, 2), "learning_rate": 0.1, "max_leaf_nodes": 7}
    assert model_factories(config)["ma[window=3]"]().window == 3
    # No standard benchmark by registry name other than moving_average: its grid points are the benchmarks.
    assert config.benchmarks == ["ma[window=3]", "ma[window=12]"]


def test_each_model_spec_is_built_once_with_its_full_parameters(tmp_path, monkeypatch):
    import forecast.experiment.spec as spec_module

    made = []
    real = spec_module.make_model
    monkeypatch.setattr(spec_module, "make_model", lambda name, **params: made.append(name) or real(name, **params))
    config = load_experiment(write(tmp_path, DATA + BACKTEST + '''
[[models]]
name = "moving_average"
grid = { window = [3, 12] }

[[models]]
name = "hgb"
params = { max_iter = 20 }
'''))
    assert made == ["moving_average", "moving_average", "hgb"]  # one model per grid point, to check it
    spec = config.spec("hgb")
    assert spec.params == {"max_iter": 20}
    assert spec.full_params == real("hgb", max_iter=20).get_params()  # every hyperparameter, defaults too
    assert spec.logged_params() == {"model": "hgb", **spec.full_params}
    assert config.spec("moving_average[window=3]").full_params["window"] == 3
    # The parent run logs the settings and the labels; the hyperparameters only on each model's run.
    params = config.run_params()
    assert params["models"] == "moving_average[window=3], moving_average[window=12], hgb"
    assert "description" not in params and params["data"]["fill"] == "error"


def test_scores_without_crps_are_refused_before_anything_runs(tmp_path):
    path = write(tmp_path, DATA + BACKTEST + MODELS + '[scores]\nmetrics = ["mae", "coverage90"]\n')
    with pytest.raises(ConfigError, match=r"\[scores\] key 'metrics': must include 'crps': the models are ranked"):
        load_experiment(path)


def test_a_panel_file_experiment_logs_no_event_settings(tmp_path, benchmarks):
    _, panel, _, _ = benchmarks
    panel.assign(month=panel["month"].astype(str)).to_csv(tmp_path / "panel.csv", index=False)
    config = load_experiment(write(tmp_path, '[data]\npanel = "panel.csv"\n' + BACKTEST + MODELS))
    assert config.run_params()["data"] == {"panel": str(tmp_path / "panel.csv")}  # no data.fill = error


def test_defaults_live_in_the_dataclasses(tmp_path):
    config = load_experiment(write(tmp_path, DATA + '[backtest]\nstart = "2023-01"\nend = "2023-06"\n' + MODELS))
    assert config.target.name == "incidents" and config.target.units is None
    assert config.features.covariates is None
    assert (config.backtest.step, config.backtest.horizon, config.backtest.refit_every, config.backtest.jobs) == (1, 6, 12, 1)
    assert config.scores.metrics is None and config.data.fill == "error"
    assert config.as_dict()["backtest"]["start"] == "2023-01"


def test_paths_are_relative_to_the_experiment_file(tmp_path):
    shutil.copy(DEMO_EVENTS, tmp_path / "events.csv")
    path = write(tmp_path, '[data]\nevents = "../events.csv"\nformat = "ucdp"\ncoverage_end = "2024-12"\n'
                 + BACKTEST + MODELS, name="sub/exp.toml")
    config = load_experiment(path)
    assert config.data.events == ((tmp_path / "events.csv").resolve(),)
    panel, _, source = load_data(config)
    assert source == str((tmp_path / "events.csv").resolve())
    assert list(panel.columns) == ["unit", "month", "incidents", "deaths"]


def test_a_panel_file_and_a_unit_subset(tmp_path, benchmarks):
    _, panel, _, _ = benchmarks
    text = panel.assign(month=panel["month"].astype(str))
    text.to_csv(tmp_path / "panel.csv", index=False)
    path = write(tmp_path, '[data]\npanel = "panel.csv"\n[target]\nunits = ["al anbar", "Baghdad"]\n'
                 '[features]\ncovariates = ["us_troops"]\n' + BACKTEST + MODELS)
    config = load_experiment(path)
    assert config.target.units == ("Anbar", "Baghdad")
    subset, _, _ = load_data(config)
    assert set(subset["unit"]) == {"Anbar", "Baghdad"}
    outcome = run_model(config, subset, "moving_average")
    assert set(outcome.forecasts["unit"]) == {"Anbar", "Baghdad"}


@pytest.mark.parametrize("text, message", [
    (DATA + BACKTEST.replace("horizon", "horizn") + MODELS,
     r"\[backtest\] 'horizn': unknown key; did you mean 'horizon'\?"),
    (DATA.replace("coverage_end", "coverage_ends") + BACKTEST + MODELS,
     r"\[data\] 'coverage_ends': unknown key; did you mean 'coverage_end'\?"),
    (DATA + BACKTEST + MODELS + "\n[scorse]\nmetrics = []\n",
     r"top level 'scorse': unknown key; did you mean 'scores'\?"),
    (DATA + BACKTEST + '[[models]]\nname = "hbg"\n',
     r"\[\[models\]\] #1 \(hbg\) key 'name': unknown model 'hbg'; did you mean hgb\?"),
    (DATA + BACKTEST.replace('"2023-01"', '"2023-1"') + MODELS,
     r"\[backtest\] key 'start': '2023-1' is not a month; expected \"YYYY-MM\""),
    (DATA + BACKTEST.replace('"2023-01"', "2023-01-01") + MODELS,
     r"\[backtest\] key 'start': .* is not a month; expected \"YYYY-MM\""),
    (DATA + BACKTEST.replace('end = "2023-06"', 'end = "2022-06"') + MODELS,
     r"\[backtest\] key 'end': 2022-06 is before start 2023-01"),
    (DATA + BACKTEST + '[[models]]\nname = "hgb"\ngrid = { learning_rat = [0.05, 0.1] }\n',
     r"hgb\[learning_rat=0.05\]: model 'hgb' has no parameter 'learning_rat' \(did you mean 'learning_rate'\?\); "
     r"its parameters are max_iter, learning_rate"),
    (DATA + BACKTEST + '[[models]]\nname = "moving_average"\nparams = { windw = 3 }\n',
     r"model 'moving_average' has no parameter 'windw'.*its parameters are window, min_alpha"),
    (DATA.replace("[data]\n", '[data]\npanel = "x.parquet"\n') + BACKTEST + MODELS,
     r"\[data\]: give either panel .* or events .*, not both"),
    (DATA.replace("ucdp_ged_demo.csv", "missing.csv") + BACKTEST + MODELS,
     r"\[data\] key 'events': event file '.*missing.csv' not found"),
    (DATA + BACKTEST + MODELS + '[scores]\nmetrics = ["crsp"]\n',
     r"\[scores\] key 'metrics': unknown metric 'crsp'; did you mean 'crps'\?"),
    (DATA + BACKTEST + MODELS + '[scores]\nbenchmarks = ["zero"]\n',
     r"\[scores\] key 'benchmarks': 'zero' is not a model label"),
    (DATA + BACKTEST + MODELS + MODELS,
     r"two models are labelled 'moving_average'"),
    (DATA + '[target]\nunits = ["Anbr"]\n' + BACKTEST + MODELS,
     r"\[target\] key 'units': unknown governorate 'Anbr'; closest known: Anbar"),
    (DATA + BACKTEST.replace("step = 3", "step = 0") + MODELS,
     r"\[backtest\] key 'step': must be a whole number >= 1, got 0"),
    (DATA + MODELS, r"missing \[backtest\] section"),
    (DATA + BACKTEST, r"no models"),
], ids=["unknown-key", "unknown-data-key", "unknown-section", "unknown-model", "bad-month", "month-not-string",
        "end-before-start", "unknown-grid-parameter", "unknown-parameter", "panel-and-events", "missing-file",
        "unknown-metric", "benchmark-not-a-model", "duplicate-label", "unknown-unit", "bad-step",
        "no-backtest", "no-models"])
def test_mistakes_are_reported_naming_file_section_and_key(tmp_path, text, message):
    (tmp_path / "x.parquet").write_bytes(b"")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_experiment(path)
    assert str(path) in str(info.value)


def test_data_mistakes_are_reported_before_any_model_runs(tmp_path):
    path = write(tmp_path, DATA + '[features]\ncovariates = ["us_trops"]\n' + BACKTEST + MODELS)
    with pytest.raises(ConfigError, match=r"\[features\] key 'covariates': 'us_trops' .* did you mean 'us_troops'\?"):
        load_data(load_experiment(path))
    path = write(tmp_path, DATA + BACKTEST.replace('"2023-06"', '"2025-06"') + MODELS)
    with pytest.raises(ConfigError, match=r"\[backtest\] key 'end': 2025-06 is after the panel's last month 2024-12"):
        load_data(load_experiment(path))


def test_an_unknown_label_suggests_the_closest(benchmarks):
    config, panel, _, _ = benchmarks
    with pytest.raises(ConfigError, match="no model labelled 'moving_avg'; did you mean moving_average"):
        run_model(config, panel, "moving_avg")


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('covariates = ["us_troops", "ops_tempo"]', 'covariates = ["us_troops", "troop_surge"]'),
     r"\[features\] key 'covariates': 'troop_surge' is not a covariate of the panel"),
    (lambda t: t.replace('end = "2023-12"', 'end = "2026-06"'),
     r"\[backtest\] key 'end': 2026-06 is after the panel's last month 2024-12"),
    (lambda t: t.replace('start = "2021-01"', 'start = "1990-01"'),
     r"\[backtest\] key 'start': 1990-01 leaves no history"),
], ids=["covariate", "end-after-panel", "start-before-panel"])
def test_experiment_run_checks_the_panel_before_any_mlflow_call(tmp_path, monkeypatch, change, message):
    from click.testing import CliRunner

    from forecast.cli import main

    text = (EXPERIMENTS / "benchmarks.toml").read_text(encoding="utf-8").replace(
        "../data/sample/", (ROOT / "data" / "sample").as_posix() + "/")
    path = write(tmp_path, change(text), name="bad.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(main, ["experiment", "run", str(path)])
    assert result.exit_code == 1
    assert re.search(message, result.output), result.output
    assert str(path) in result.output and "Traceback" not in result.output
    # Nothing was sent to MLflow: not even the default store was created.
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()


def test_experiment_run_checks_the_units_against_a_panel_file_before_any_mlflow_call(tmp_path, monkeypatch,
                                                                                     benchmarks):
    from click.testing import CliRunner

    from forecast.cli import main

    _, panel, _, _ = benchmarks
    panel.loc[panel["unit"] != "Basra"].assign(month=lambda f: f["month"].astype(str)).to_csv(
        tmp_path / "panel.csv", index=False)
    path = write(tmp_path, '[data]\npanel = "panel.csv"\n[target]\nunits = ["Basrah", "Baghdad"]\n' + BACKTEST + MODELS)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(main, ["experiment", "run", str(path), "--tracking-uri", uri])
    assert result.exit_code == 1
    assert "[target] key 'units': Basra not in the panel" in result.output, result.output
    assert not (tmp_path / "store.db").exists()
