"""Tracking and registry against real MLflow stores: a SQLite file, and an ``mlflow server``
subprocess on 127.0.0.1 (SQLite backend, local artifact root). Assertions read back what
MLflow holds through ``MlflowClient``."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow_server import free_port
from synthetic_data import synthetic_panel

from features.synthetic import SyntheticConfig
from forecast.catalog import make_model as make_any  # every model, the ensemble included
from forecast.evaluation.backtest import BacktestDesign, forecast_at, history_at, run_backtest
from forecast.evaluation.scores import score_table
from forecast.models.base import make_model
from forecast.tracking.registry import ForecasterModel, NoSuchModel, list_versions, load_registered, promote
from forecast.tracking import (
    ExperimentTracker,
    TrackingError,
    check_reachable,
    compare,
    resolve_tracking_uri,
)

MODELS = ("moving_average", "locf_negbin")
REGISTERED = "iraq_incidents"
HORIZON = 6
WINDOW = BacktestDesign(start=pd.Period("2017-07", "M"), end=pd.Period("2018-06", "M"), horizon=HORIZON)
OTHER_WINDOW = BacktestDesign(start=pd.Period("2017-01", "M"), end=pd.Period("2017-12", "M"), horizon=HORIZON)
SCORES = ("crps", "mae", "coverage90")


# ----------------------------------------------------------------------------------------
# Data and backtests (computed once)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return synthetic_panel(SyntheticConfig(start="2015-01", end="2018-12"))


def backtest(panel: pd.DataFrame, model: str, design: BacktestDesign):
    forecasts = run_backtest(panel, {model: lambda: make_model(model)}, design, progress=False)
    return forecasts, score_table(forecasts, panel=panel, metrics=SCORES + ("rmse",))


@pytest.fixture(scope="module")
def backtests(panel):
    return {model: backtest(panel, model, WINDOW) for model in MODELS}


@pytest.fixture(scope="module")
def fitted(panel):
    """Each model fitted on the whole panel, as it would be registered for production."""
    history = history_at(panel, panel["month"].max())
    return history, {model: make_model(model).fit(history) for model in MODELS}


# ----------------------------------------------------------------------------------------
# Stores


@pytest.fixture(scope="module", params=["sqlite", "server"])
def store(request, tmp_path_factory):
    """``(tracking_uri, artifact_location)``: a SQLite file in a temporary directory, or the server."""
    if request.param == "sqlite":
        root = tmp_path_factory.mktemp("sqlite_store")
        return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()
    return request.getfixturevalue("mlflow_server"), None


@pytest.fixture
def sqlite_store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri()


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("experiments") / "baselines.toml"
    path.write_text('[backtest]\nstart = "2017-07"\nend = "2018-06"\nhorizon = 6\n')
    return path


def run_experiment(uri, artifacts, name, *, panel, backtests, fitted, config_file, register=True):
    """One experiment with two model children, as the CLI would log it; returns parent run id."""
    history, models = fitted
    tracker = ExperimentTracker(name, uri, artifact_location=artifacts)
    params = {"backtest": {"start": "2017-07", "end": "2018-06", "horizon": HORIZON}, "target": "incidents"}
    with tracker.parent_run("baselines", params, {"forecast.experiment_file": config_file.name},
                            config_path=config_file, panel=panel, panel_source="synthetic://seed",
                            panel_metadata={"vintage": "2026-11-01", "name": "synthetic_panel"}) as parent_id:
        for model in MODELS:
            with tracker.child_run(model, {"model": model, "window": 3}) as child:
                child.log_backtest(*backtests[model])
                child.log_model(models[model], history, HORIZON, REGISTERED if register else None)
    return parent_id


@pytest.fixture(scope="module")
def experiment(store, panel, backtests, fitted, config_file):
    uri, artifacts = store
    name = f"baselines-{time.monotonic_ns()}"
    parent = run_experiment(uri, artifacts, name, panel=panel, backtests=backtests, fitted=fitted,
                            config_file=config_file)
    return uri, name, parent


# ----------------------------------------------------------------------------------------
# What MLflow holds after an experiment


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_experiment_logs_parent_with_config_dataset_and_provenance(experiment, panel):
    uri, name, parent_id = experiment
    client = MlflowClient(uri)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert client.get_experiment(parent.info.experiment_id).name == name
    assert parent.data.params["backtest.start"] == "2017-07"
    assert parent.data.params["backtest.horizon"] == str(HORIZON)
    tags = parent.data.tags
    assert tags["forecast.kind"] == "experiment"
    assert tags["forecast.experiment_file"] == "baselines.toml"
    assert len(tags["mlflow.source.git.commit"]) == 40  # MLflow's own source field, not a custom tag
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["forecast.version.mlflow"] == mlflow.__version__
    assert {"forecast.version.pandas", "forecast.version.numpy", "forecast.version.statsmodels",
            "forecast.version.scikit-learn"} <= set(tags)
    assert tags["forecast.data_vintage"] == "2026-11-01"
    assert "config/baselines.toml" in artifact_paths(client, parent_id)

    inputs = parent.inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "synthetic_panel"
    assert tags["forecast.panel_sha256"].startswith(dataset.digest)
    assert len(dataset.digest) == 32
    assert "synthetic://seed" in dataset.source


def test_experiment_logs_nested_children_with_metrics_artifacts_and_versions(experiment, backtests):
    uri, name, parent_id = experiment
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(r.info.run_name for r in children) == sorted(MODELS)
    for run in children:
        model = run.data.tags["forecast.label"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["forecast.model"] == model
        assert run.data.tags["forecast.kind"] == "backtest"
        scores = backtests[model][1].set_index("horizon")
        metrics = run.data.metrics
        assert not any("_h1" in k for k in metrics), "per-horizon scores are histories, not one key each"
        assert metrics["crps"] == pytest.approx(scores.loc["all", "crps"])
        for score in ("crps", "mae", "coverage90"):
            history = client.get_metric_history(run.info.run_id, f"by_horizon/{score}")
            assert [m.step for m in history] == list(range(1, HORIZON + 1))
            assert [m.value for m in history] == pytest.approx([scores.loc[h, score] for h in range(1, HORIZON + 1)])
        paths = artifact_paths(client, run.info.run_id)
        assert {"backtest/forecasts.parquet", "backtest/scores.csv", "scores_by_horizon.png",
                "scores_by_horizon.json"} <= paths
        assert len([p for p in paths if p.startswith("plots/fan_")]) == 3

    versions = list_versions(REGISTERED, uri)
    mine = versions.loc[versions["run_id"].isin([r.info.run_id for r in children])]
    assert len(mine) == len(MODELS)
    assert mine["eval_window"].eq("origins 2017-07..2018-06, horizons 1..6").all()
    expected = {m: backtests[m][1].set_index("horizon").loc["all", "crps"] for m in MODELS}
    for _, row in mine.iterrows():
        assert row["crps"] == pytest.approx(expected[row["model"]])


def test_forecasts_artifact_round_trips(experiment, backtests, tmp_path):
    uri, name, parent_id = experiment
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    [run] = client.search_runs([exp.experiment_id], "tags.`forecast.label` = 'moving_average'")
    local = client.download_artifacts(run.info.run_id, "backtest/forecasts.parquet", str(tmp_path))
    logged = pd.read_parquet(local)
    original = backtests["moving_average"][0]
    assert len(logged) == len(original)
    assert logged["month"].tolist() == original["month"].astype(str).tolist()
    pd.testing.assert_series_equal(logged["q50"], original["q50"], check_names=False)


# ----------------------------------------------------------------------------------------
# Registry: promotion rule and served forecasts


def test_promotion_follows_crps_rule_and_champion_serves_identical_forecasts(store, panel, backtests, fitted,
                                                                            config_file, tmp_path):
    uri, artifacts = store
    name = f"promote-{time.monotonic_ns()}"
    registered = f"{REGISTERED}-{time.monotonic_ns()}"
    history, models = fitted
    tracker = ExperimentTracker(name, uri, artifact_location=artifacts)
    refs = {}
    with tracker.parent_run("promote", {}, {}, config_path=config_file):
        for model in MODELS:
            with tracker.child_run(model, {"model": model}) as child:
                child.log_backtest(*backtests[model])
                refs[model] = child.log_model(models[model], history, HORIZON, registered)
        with tracker.child_run("moving_average other window", {"model": "moving_average"}) as child:
            child.log_backtest(*backtest(panel, "moving_average", OTHER_WINDOW))
            other = child.log_model(models["moving_average"], history, HORIZON, registered)

    crps = {m: backtests[m][1].set_index("horizon").loc["all", "crps"] for m in MODELS}
    first, second = MODELS
    decision = promote(registered, refs[first].version, uri)
    assert decision.promoted and "first champion" in decision.reason
    decision = promote(registered, refs[second].version, uri)
    client = MlflowClient(uri, registry_uri=uri)
    champion = str(client.get_model_version_by_alias(registered, "champion").version)
    if crps[second] < crps[first]:
        assert decision.promoted and champion == refs[second].version
    else:
        assert not decision.promoted and "challenger" in decision.reason
        assert champion == refs[first].version
        assert str(client.get_model_version_by_alias(registered, "challenger").version) == refs[second].version

    decision = promote(registered, other.version, uri)
    assert not decision.promoted
    assert "not comparable" in decision.reason and "2017-01..2017-12" in decision.reason
    assert str(client.get_model_version_by_alias(registered, "champion").version) == champion
    assert "champion" in list_versions(registered, uri).set_index("version").loc[int(champion), "aliases"]

    best = min(crps, key=crps.get)
    mlflow.set_registry_uri(uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{registered}@champion")
    served = loaded.predict(history.assign(month=history["month"].astype(str)), params={"horizon": HORIZON})
    in_process = forecast_at(models[best], history, HORIZON)
    expected = in_process.assign(month=in_process["month"].astype(str), origin=in_process["origin"].astype(str))
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected.reset_index(drop=True))

    loaded = load_registered(f"{registered}@champion", uri)
    assert loaded.version == champion and "champion" in loaded.aliases
    assert loaded.label == f"{registered} version {champion} (champion)"
    pd.testing.assert_frame_equal(forecast_at(loaded.forecaster, history, HORIZON), in_process)
    assert load_registered(f"models:/{registered}/{champion}", uri).version == champion
    with pytest.raises(NoSuchModel, match=r"has no alias @gold \(@challenger, @champion\)|has no alias @gold \(@champion\)"):
        load_registered(f"{registered}@gold", uri)
    with pytest.raises(NoSuchModel, match="no registered model 'nobody'.*--register nobody"):
        load_registered("nobody@champion", uri)
    with pytest.raises(NoSuchModel, match="expected NAME@ALIAS"):
        load_registered("just-a-name", uri)


def test_wrapper_conditions_on_a_longer_history_without_changing_the_fitted_model(panel):
    early = history_at(panel, pd.Period("2018-06", "M"))
    late = history_at(panel, pd.Period("2018-12", "M"))
    model = make_model("locf_negbin").fit(early)
    wrapper = ForecasterModel(model)
    served = wrapper.predict(None, late.assign(month=late["month"].astype(str)), {"horizon": 3})
    expected = forecast_at(make_model("locf_negbin").fit(early).update(late), late, 3)
    assert served["origin"].unique().tolist() == ["2018-12"]
    assert served["month"].tolist() == expected["month"].astype(str).tolist()
    pd.testing.assert_series_equal(served["mean"], expected["mean"])
    assert model.origin_ == pd.Period("2018-06", "M")


# ----------------------------------------------------------------------------------------
# Failures


def test_failing_child_marks_child_and_parent_failed_and_keeps_earlier_child(sqlite_store, backtests):
    uri, artifacts = sqlite_store
    tracker = ExperimentTracker("failing", uri, artifact_location=artifacts)
    with pytest.raises(ValueError, match="model blew up"):
        with tracker.parent_run("failing", {"a": 1}, {}) as parent_id:
            with tracker.child_run("moving_average", {"model": "moving_average"}) as child:
                child.log_backtest(*backtests["moving_average"])
            with tracker.child_run("locf_negbin", {"model": "locf_negbin"}):
                raise ValueError("model blew up")
    client = MlflowClient(uri)
    assert client.get_run(parent_id).info.status == "FAILED"
    children = {r.info.run_name: r.info.status for r in client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")}
    assert children == {"moving_average": "FINISHED", "locf_negbin": "FAILED"}
    assert mlflow.active_run() is None


def test_sqlite_artifacts_default_to_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = ExperimentTracker("beside db", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    with tracker.parent_run("run", {"a": 1}) as run_id:
        pass
    location = MlflowClient(tracker.tracking_uri).get_run(run_id).info.artifact_uri
    assert location.startswith((tmp_path / "store" / "mlartifacts" / "beside_db").as_uri())
    assert not (tmp_path / "mlruns").exists()


def test_unreachable_server_fails_fast_naming_the_uri():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingError, match=f"{uri}.*did not answer"):
        ExperimentTracker("nowhere", uri, timeout=2)
    assert time.monotonic() - start < 5
    check_reachable("sqlite:///nowhere.db")  # local stores are not probed


def test_log_backtest_rejects_scores_of_several_models(sqlite_store, panel):
    uri, artifacts = sqlite_store
    forecasts = run_backtest(panel, {m: (lambda m=m: make_model(m)) for m in MODELS}, WINDOW, progress=False)
    scores = score_table(forecasts, panel=panel, metrics=SCORES)
    tracker = ExperimentTracker("mixed", uri, artifact_location=artifacts)
    with pytest.raises(TrackingError, match="several models"):
        with tracker.parent_run("mixed", {}, {}):
            with tracker.child_run("both", {}) as child:
                child.log_backtest(forecasts, scores)


# ----------------------------------------------------------------------------------------
# Leaderboard and URI resolution


def test_compare_ranks_children_by_crps(sqlite_store, panel, backtests, fitted, config_file):
    uri, artifacts = sqlite_store
    run_experiment(uri, artifacts, "board", panel=panel, backtests=backtests, fitted=fitted,
                   config_file=config_file, register=False)
    board = compare("board", uri)
    assert sorted(board["label"]) == sorted(MODELS)
    assert board["crps"].is_monotonic_increasing
    assert {"run_name", "label", "model", "crps", "mae", "coverage90", "start_time"} <= set(board.columns)
    assert len(compare(None, uri)) == len(MODELS)
    with pytest.raises(TrackingError, match="no MLflow experiment 'nope'.*board"):
        compare("nope", uri)


def test_tracking_uri_prefers_option_then_environment_then_local_sqlite(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_tracking_uri(None) == "http://example.invalid:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"


def shown_warnings(recorded) -> list[str]:
    """The warnings Python's default filters print on a console (deprecations inside libraries are not)."""
    return [f"{w.category.__name__}: {w.message}" for w in recorded
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]


@pytest.mark.parametrize("kind", ["sqlite", "server"])
def test_experiment_command_end_to_end(kind, request, tmp_path, recwarn):
    from click.testing import CliRunner

    from forecast.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if kind == "sqlite" else request.getfixturevalue("mlflow_server")
    name = f"e2e-{kind}"
    root = Path(__file__).resolve().parent.parent
    exp = tmp_path / f"{name}.toml"
    exp.write_text((root / "experiments" / "benchmarks.toml").read_text(encoding="utf-8")
                   .replace("../data/sample/", str(root / "data" / "sample") + "/"), encoding="utf-8")
    recwarn.clear()
    result = CliRunner().invoke(main, ["experiment", "run", str(exp), "--tracking-uri", uri, "--register", name])
    assert result.exit_code == 0, result.output
    assert shown_warnings(recwarn) == []
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    # The MLflow 3 UI opens it on the model-training view, not the GenAI traces.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    labelled = {r.info.run_name: r for r in children}
    assert {"zero", "locf_poisson", "moving_average", "hist_bootstrap", "final: moving_average"} <= set(labelled)

    backtest, final = labelled["moving_average"], labelled["final: moving_average"]
    horizons = list(range(1, 7))
    for score in ("crps", "mae", "coverage90", "brier", "crps_skill"):
        history = client.get_metric_history(backtest.info.run_id, f"by_horizon/{score}")
        assert [m.step for m in history] == horizons, score
    assert {"crps", "crps_skill", "mae", "coverage90", "brier"} <= set(backtest.data.metrics)
    assert not [k for k in backtest.data.metrics if k.endswith("_h1")]
    assert backtest.data.params == {"model": "moving_average", "window": "12", "min_alpha": "0.01"}  # defaults too

    commit = parents[0].data.tags["mlflow.source.git.commit"]
    description = "Standard benchmarks (zero, last value, seasonal, averages) on the demo data"
    digest = parents[0].inputs.dataset_inputs[0].dataset.digest
    for run in [*parents, *children]:
        assert run.data.tags["mlflow.source.git.commit"] == commit, run.info.run_name
        assert run.data.tags["mlflow.note.content"] == description, run.info.run_name
        [dataset] = run.inputs.dataset_inputs
        assert dataset.dataset.digest == digest, run.info.run_name

    # The final run carries the scores of the backtest it refits, and the two link both ways.
    assert final.data.tags["forecast.kind"] == "final"
    assert final.data.tags["forecast.backtest_run_id"] == backtest.info.run_id
    assert backtest.data.tags["forecast.final_run_id"] == final.info.run_id
    assert final.data.metrics["crps"] == backtest.data.metrics["crps"]
    assert ([m.value for m in client.get_metric_history(final.info.run_id, "by_horizon/crps")]
            == [m.value for m in client.get_metric_history(backtest.info.run_id, "by_horizon/crps")])

    [version] = client.search_model_versions(f"name = '{name}'")
    assert version.tags["forecast.model"] == "moving_average"
    assert version.run_id == final.info.run_id and "crps" in client.get_run(version.run_id).data.metrics
    assert version.tags["forecast.backtest_run_id"] == backtest.info.run_id
    assert version.tags["forecast.final_run_id"] == final.info.run_id
    assert f"{backtest.data.metrics['crps']:.5f}" in version.description
    assert backtest.info.run_id in version.description and final.info.run_id in version.description

    promoted = CliRunner().invoke(main, ["registry", "promote", name, "--version", "1", "--tracking-uri", uri])
    assert promoted.exit_code == 0 and "first champion" in promoted.output
    assert f"CRPS {backtest.data.metrics['crps']:.5f}" in promoted.output
    board = CliRunner().invoke(main, ["experiment", "compare", name, "--tracking-uri", uri])
    assert board.exit_code == 0 and "moving_average" in board.output
    assert "final:" not in board.output
    listed = CliRunner().invoke(main, ["registry", "list", "--tracking-uri", uri])
    assert listed.exit_code == 0, listed.output
    assert name in listed.output and "champion" in listed.output


def test_an_ensemble_logs_its_weights_at_every_horizon(sqlite_store, panel):
    uri, artifacts = sqlite_store
    history = history_at(panel, WINDOW.end)
    ensemble = make_any("ensemble", members=("moving_average", "locf_negbin")).fit(history)
    tracker = ExperimentTracker("weights", uri, artifact_location=artifacts)
    with tracker.parent_run("weights", {}, {}):
        with tracker.child_run("ensemble", {}) as child:
            child.log_learned(ensemble)
            run_id = child.run_id
    client = MlflowClient(uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    table = client.load_table(experiment_id, "ensemble_weights.json", run_ids=[run_id])
    by_h = table.set_index("member")[[f"weight_h{h}" for h in range(1, 7)]]
    expected = ensemble.horizon_weights_.T.reindex(by_h.index)
    assert abs(by_h.to_numpy() - expected.to_numpy()).max() < 1e-9  # JSON keeps about 10 digits
    assert abs(by_h.sum().to_numpy() - 1).max() < 1e-9
    metric = client.get_run(run_id).data.metrics["ensemble_weight/moving_average"]
    assert abs(metric - float(ensemble.weights_["moving_average"])) < 1e-12
