"""The unit graph travels with the panel as data, and every path gives a model the same neighbours.

On a synthetic country of 12 units (not one of Iraq's names), ``forecast predict``, ``backtest``,
``experiment run``, ``scenario run``, the scheduled refresh and the report fit ``nb_glm`` (a model
that uses neighbours) with the neighbours of the country's own gazetteer: each path's forecast
equals the one of ``nb_glm`` fitted on the panel as :func:`features.panel_files.read_panel`
returns it, and none of its units falls back to the national mean, as they would with Iraq's
gazetteer (which knows none of these units).
"""

from __future__ import annotations

import copy
import pickle

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.graph import UnitGraph, unit_graph, with_graph
from features.panel import EventFile, PanelSpec
from features.panel_files import read_panel
from forecast.catalog import make_model
from forecast.evaluation.backtest import BacktestDesign, history_at
from forecast.jobs.data import make_panel, make_synthetic
from forecast.jobs.experiments import run_experiment
from forecast.jobs.backtesting import backtest
from forecast.jobs.forecasting import predict
from forecast.jobs.report import make_report
from forecast.jobs.scenarios import run_scenario_files
from forecast.refresh import run_refresh

HORIZON = 3
MODEL = "nb_glm"


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    """A 12-unit synthetic country: its panel file, gazetteer, events and the reference forecast."""
    root = tmp_path_factory.mktemp("synthetica")
    files = make_synthetic(root / "data", units=12, start="2012-01", end="2019-12").paths
    spec = PanelSpec(events=(EventFile(files["events"], "ucdp"),), gazetteer=files["gazetteer"],
                     coverage_end=pd.Timestamp("2019-12-31"))
    panel_path = root / "panel.parquet"
    make_panel(spec, panel_path)
    panel, _ = read_panel(panel_path)
    origin = panel["month"].max()
    fitted = make_model(MODEL).fit(history_at(panel, origin))
    reference = fitted.predict(HORIZON).set_index(["unit", "month"])["mean"]
    return {"root": root, "files": files, "panel_path": panel_path, "panel": panel, "origin": origin,
            "fitted": fitted, "reference": reference}


def _means(frame: pd.DataFrame) -> pd.Series:
    frame = frame.assign(month=pd.PeriodIndex(frame["month"].astype(str), freq="M"))
    return frame.set_index(["unit", "month"])["mean"].sort_index()


def test_the_panel_carries_its_own_countrys_neighbours_and_none_of_iraq(country):
    graph = unit_graph(country["panel"])
    own = load_gazetteer(country["files"]["gazetteer"])
    assert graph.to_json()["neighbours"] == own.neighbours()
    assert not set(graph.units) & set(load_gazetteer().names)
    assert set(country["fitted"].neighbour_source_.values()) == {"neighbours"}
    # Without the graph every unit falls back to the national mean, and the forecast differs.
    alone = make_model(MODEL).fit(with_graph(history_at(country["panel"], country["origin"]).copy(), None))
    assert set(alone.neighbour_source_.values()) == {"national mean"}
    assert not np.allclose(alone.predict(HORIZON)["mean"], country["reference"].sort_index().to_numpy())


def test_predict_gives_the_reference_forecast(country, tmp_path):
    got = predict(country["panel_path"], out=tmp_path / "f.csv", model=MODEL, horizon=HORIZON).forecasts
    pd.testing.assert_series_equal(_means(got), country["reference"].sort_index(), check_names=False)


def test_backtest_fits_with_the_panels_neighbours_at_every_origin(country, tmp_path):
    panel, last = country["panel"], country["origin"]
    design = BacktestDesign(start=last - 2, end=last - 1, horizon=1, refit_every=1)
    run = backtest(country["panel_path"], models=MODEL, design=design, out_dir=tmp_path / "bt")
    for origin in design.origins():
        expected = make_model(MODEL).fit(history_at(panel, origin)).predict(1)
        got = run.forecasts[run.forecasts["origin"] == origin]
        np.testing.assert_allclose(got["mean"].to_numpy(), expected["mean"].to_numpy())


def test_experiment_run_registers_a_model_with_the_panels_graph(country, tmp_path):
    last = country["origin"]
    experiment = tmp_path / "neighbours.toml"
    experiment.write_text(f"""
description = "nb_glm on a synthetic country"
[data]
panel = "{country['panel_path']}"
[backtest]
start = "{last - 2}"
end = "{last - 1}"
horizon = 1
[[models]]
name = "{MODEL}"
""", encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_experiment(experiment, tracking_uri=uri, register_as="synthetica", out_dir=tmp_path / "out")
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(result.ref.model_uri).unwrap_python_model().forecaster
    assert served.unit_graph_ == unit_graph(country["panel"])
    assert set(served.neighbour_source_.values()) == {"neighbours"}
    np.testing.assert_allclose(served.predict(HORIZON)["mean"].to_numpy(), country["reference"].sort_index().to_numpy())
    # A model served from the registry is given rows without a graph: it keeps the one it was fitted with.
    stripped = with_graph(history_at(country["panel"], last).copy(), None)
    updated = copy.deepcopy(served).update(stripped)
    assert updated.unit_graph_ == served.unit_graph_


def test_scenario_run_projects_from_the_reference_fit(country, tmp_path):
    scenario = tmp_path / "baseline.toml"
    scenario.write_text('name = "baseline"\ndescription = "no change"\n', encoding="utf-8")
    run = run_scenario_files(country["panel_path"], model=MODEL, scenario_files=[scenario], out_dir=tmp_path / "sc",
                             horizon=HORIZON, track=False)
    baseline = run.result.forecasts[run.result.forecasts["scenario"] == run.result.baseline]
    pd.testing.assert_series_equal(_means(baseline), country["reference"].sort_index(), check_names=False)


def test_the_refresh_builds_the_panel_with_the_gazetteers_neighbours(country, tmp_path):
    files = country["files"]
    config = tmp_path / "refresh.toml"
    config.write_text(f"""
[data]
events = "{files['events']}"
format = "ucdp"
gazetteer = "{files['gazetteer']}"
coverage_end = "2019-12"
[model]
name = "no-such-model"
fallback = "{MODEL}"
horizon = {HORIZON}
[outputs]
dir = "{tmp_path / 'refresh'}"
[tracking]
uri = "sqlite:///{tmp_path / 'refresh.db'}"
""", encoding="utf-8")
    result = run_refresh(config)
    got = pd.read_csv(result.forecasts_path)
    pd.testing.assert_series_equal(_means(got), country["reference"].sort_index(), check_names=False)


def test_the_report_shows_the_reference_forecast(country, tmp_path):
    paths = make_report(country["panel_path"], model=MODEL, horizon=HORIZON, backtest_months=0,
                        out=tmp_path / "report.html", issued="2020-01-15")
    shown = pd.read_csv(paths["csv"])
    shown = shown[shown["unit"].isin(country["reference"].index.get_level_values("unit"))]
    expected = country["reference"].round(1).sort_index()
    got = _means(shown).reindex(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=0.051)


def test_a_graph_must_be_symmetric_and_survives_files_and_pickles():
    with pytest.raises(DataError, match="lists 'b' as a neighbour but not the other way round"):
        UnitGraph({"a": ["b"], "b": []})
    graph = UnitGraph({"a": ["b"], "b": ["a"], "c": []}, {"a": "X", "b": "Y", "c": "X"})
    assert dict(graph.cross_border) == {"a": ("b",), "b": ("a",), "c": ()}
    assert pickle.loads(pickle.dumps(graph)) == graph and copy.deepcopy(graph) is graph
    frame = with_graph(pd.DataFrame({"unit": ["a", "c"], "y": [1, 2]}), graph)
    assert unit_graph(frame).units == ["a", "c"] and unit_graph(frame).neighbours["a"] == ()
    with pytest.raises(TypeError, match="not changed after it is made"):
        graph["neighbours"] = {}
