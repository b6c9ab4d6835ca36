"""The registry commands on a real SQLite store: promotion messages with numbers exact enough to
tell the versions apart, ``registry list`` with and without a name, and read-only commands that
never create a store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecast.cli import main
from forecast.evaluation.leaderboard import decimals, exact_table
from forecast.tracking import TrackingError, compare, list_models, list_versions, promote

WINDOW = "origins 2021-01..2023-10, horizons 1..6"


def register(client: MlflowClient, tmp_path: Path, name: str, crps: float) -> str:
    """A version with the tags a logged model gets (no model behind it: promotion reads tags only)."""
    try:
        client.create_registered_model(name)
    except MlflowException:  # already registered
        pass
    version = client.create_model_version(name, (tmp_path / "model").as_uri()).version
    client.set_model_version_tag(name, version, "forecast.crps", repr(crps))
    client.set_model_version_tag(name, version, "forecast.eval_window", WINDOW)
    client.set_model_version_tag(name, version, "forecast.model", "hurdle")
    return str(version)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri, registry_uri=uri)


def test_decimals_tell_close_scores_apart():
    assert decimals([0.13130, 0.13145]) == 4
    assert decimals([0.165, 0.169]) == 3
    assert decimals([1.2, 1.2]) == 3  # equal values need nothing more
    assert decimals([0.1, 0.1 + 1e-12]) == 3  # equal to 8 decimals: taken as equal
    text = exact_table(pd.DataFrame({"model": ["hurdle", "nb_glm"], "crps": [0.13130, 0.13145]}))
    assert "0.1313" in text and "0.1315" in text


def test_promotion_prints_crps_that_tell_champion_from_challenger(store, tmp_path):
    uri, client = store
    first = register(client, tmp_path, "m", 0.13130)
    second = register(client, tmp_path, "m", 0.13145)
    assert promote("m", first, uri).reason == f"version {first} is the first champion (CRPS 0.13130 over {WINDOW})"
    decision = promote("m", second, uri)
    assert not decision.promoted
    assert "(CRPS 0.13145) does not beat champion version 1 (CRPS 0.13130)" in decision.reason
    third = register(client, tmp_path, "m", 0.1312999)
    decision = promote("m", third, uri)
    assert decision.promoted and "(CRPS 0.1312999) beats champion version 1 (CRPS 0.1313000)" in decision.reason


def test_promotion_never_prints_a_bare_float(store, tmp_path):
    uri, client = store
    register(client, tmp_path, "n", 1.2)
    promote("n", "1", uri)
    decision = promote("n", register(client, tmp_path, "n", 1.19), uri)
    assert decision.promoted and "(CRPS 1.19000) beats champion version 1 (CRPS 1.20000)" in decision.reason


def test_registry_list_without_a_name_lists_every_model_with_aliases_and_scores(store, tmp_path):
    uri, client = store
    register(client, tmp_path, "alpha", 0.2)
    register(client, tmp_path, "beta", 0.3)
    register(client, tmp_path, "beta", 0.25)
    promote("alpha", "1", uri)
    promote("beta", "1", uri)
    promote("beta", "2", uri)
    table = list_models(uri)
    assert list(zip(table["name"], table["version"], table["aliases"])) == [
        ("alpha", 1, "champion"), ("beta", 1, ""), ("beta", 2, "champion")]
    assert table["crps"].tolist() == [0.2, 0.3, 0.25]
    assert list_versions("beta", uri)["version"].tolist() == [1, 2]
    result = CliRunner().invoke(main, ["registry", "list", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["name", "version", "aliases", "crps"]
    assert any(line.split()[:4] == ["alpha", "1", "champion", "0.200"] for line in lines)
    assert any(line.split()[:3] == ["beta", "2", "champion"] for line in lines)


@pytest.mark.parametrize("command", [["experiment", "compare"], ["experiment", "compare", "ml"], ["registry", "list"],
                                     ["registry", "list", "m"], ["registry", "promote", "m", "--version", "1"]])
def test_read_only_commands_without_a_store_name_the_uri_and_create_nothing(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert f"no MLflow store at sqlite:///{tmp_path / 'mlflow.db'}" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlflow.db").exists()
    with pytest.raises(TrackingError, match="does not exist"):
        compare(None, f"sqlite:///{tmp_path / 'other.db'}")
    assert not (tmp_path / "other.db").exists()
