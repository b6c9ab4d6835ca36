"""The synthetic events in ACLED's export layout, and square boundaries for lattice units."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.gazetteer import load_gazetteer
from features.gazetteer_init import draft_gazetteer
from features.errors import DataError
from features.panel import assemble_panel
from features.panel_files import read_panel, write_panel
from features.sources import read_events
from features.synthetic import ACLED_EXPORT_COLUMNS, SyntheticConfig, synthetic_gazetteer
from forecast.jobs.data import make_synthetic

CONFIG = dict(start="2022-01", end="2023-12")


@pytest.fixture(scope="module")
def iraq_files(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("iraq"), layout="acled", **CONFIG).paths


def _panel(path, gazetteer=None):
    gaz = gazetteer or load_gazetteer()
    result = read_events(path, gazetteer=gaz)
    assert result.quarantine.empty, result.quarantine.head()
    return assemble_panel([result], gaz, coverage_end=pd.Timestamp("2023-12-31")).panel


def _panel_file(folder, units, start, end):
    """A synthetic world's events built into ``folder/p.parquet``; the path and the world's files."""
    files = make_synthetic(folder, units=units, start=start, end=end).paths
    gaz = load_gazetteer(files["gazetteer"])
    end_day = pd.Period(end, "M").to_timestamp(how="end").normalize()
    build = assemble_panel([read_events(files["events"], gazetteer=gaz)], gaz, coverage_end=end_day)
    out = folder / "p.parquet"
    write_panel(build, out)
    return out, files


def test_the_acled_layout_holds_the_same_events_in_acleds_words(iraq_files):
    acled = iraq_files["events (ACLED layout)"]
    raw = pd.read_csv(acled, dtype=str, keep_default_na=False)
    assert tuple(raw.columns) == ACLED_EXPORT_COLUMNS
    # The export tool's dates and ACLED's own spellings, not the gazetteer's names.
    assert raw["event_date"].str.fullmatch(r"\d{2}-[A-Z][a-z]{2}-\d{2}").all()
    assert {"Sala al-Din", "Thi-Qar", "Missan"} <= set(raw["admin1"])
    assert set(raw["event_type"]) <= {"Battles", "Explosions/Remote violence", "Violence against civilians"}
    read = read_events(acled)
    assert read.format == "acled" and read.date_form == "%d-%b-%y"
    # Same units, months, incidents and deaths as the GED-layout file.
    ged, via_acled = _panel(iraq_files["events"]), _panel(acled)
    pd.testing.assert_frame_equal(ged, via_acled)
    assert via_acled["incidents"].sum() > 0


def test_lattice_boundaries_draft_the_lattice_gazetteer_back(tmp_path):
    files = make_synthetic(tmp_path, units=12, layout="acled", **CONFIG).paths
    collection = json.loads(files["boundaries"].read_text(encoding="utf-8"))
    assert [f["properties"]["shapeName"] for f in collection["features"]] == [f"Unit {i:04d}" for i in range(1, 13)]
    draft = draft_gazetteer(files["events (ACLED layout)"], boundaries=files["boundaries"])
    drafted = draft.units.set_index("name")["neighbours"].map(lambda s: sorted(s.split("|")) if s else [])
    lattice = synthetic_gazetteer(12, seed=SyntheticConfig().seed).set_index("unit_id")
    name_of = synthetic_gazetteer(12).set_index("unit_id")["name"]
    expected = lattice["neighbours"].map(lambda s: sorted(name_of[i] for i in s.split("|")))
    expected.index = expected.index.map(name_of)
    # Shared edges, never shared corners: the drafted neighbours are the lattice's rook neighbours.
    assert drafted.sort_index().to_dict() == expected.sort_index().to_dict()


def test_a_panel_is_read_back_with_the_gazetteer_it_was_built_with(tmp_path):
    files = make_synthetic(tmp_path, units=12, layout="acled", **CONFIG).paths
    gaz = load_gazetteer(files["gazetteer"])
    build = assemble_panel([read_events(files["events (ACLED layout)"], gazetteer=gaz)], gaz,
                        coverage_end=pd.Timestamp("2023-12-31"))
    out = tmp_path / "p.parquet"
    write_panel(build, out)
    panel, meta = read_panel(out)  # no gazetteer given: the recorded one is used
    assert sorted(panel["unit"].unique()) == sorted(gaz.names)
    files["gazetteer"].unlink()
    with pytest.raises(DataError, match="unknown governorate 'Unit 0001'"):
        read_panel(out)  # gone: the bundled Iraq gazetteer, which does not know these units


def test_an_unknown_layout_is_refused(tmp_path):
    from forecast.jobs.common import USER_ERRORS

    with pytest.raises(USER_ERRORS, match="unknown layout 'gtd'; choose one of ucdp, acled"):
        make_synthetic(tmp_path, layout="gtd")


def test_predict_and_backtest_give_the_models_the_panels_own_neighbours(tmp_path):
    from features.graph import unit_graph, with_graph
    from forecast.catalog import make_model
    from forecast.evaluation.backtest import BacktestDesign, history_at
    from forecast.jobs.backtesting import backtest
    from forecast.jobs.forecasting import predict

    out, files = _panel_file(tmp_path, 12, "2020-01", "2023-12")
    got = predict(out, out=tmp_path / "f.csv", model="nb_glm", horizon=3).forecasts
    panel = read_panel(out)[0]
    assert unit_graph(panel).to_json()["neighbours"] == load_gazetteer(files["gazetteer"]).neighbours()
    history = history_at(panel, pd.Period("2023-12", "M"))
    own = make_model("nb_glm").fit(history)
    assert set(own.neighbour_source_.values()) == {"neighbours"}
    alone = make_model("nb_glm").fit(with_graph(history.copy(), None))
    assert set(alone.neighbour_source_.values()) == {"national mean"}
    assert not (own.predict(3)["mean"].to_numpy() == alone.predict(3)["mean"].to_numpy()).all()
    assert (got["mean"].to_numpy() == own.predict(3)["mean"].to_numpy()).all()
    design = BacktestDesign(start=pd.Period("2023-10", "M"), end=pd.Period("2023-11", "M"), horizon=2)
    run = backtest(out, models="nb_glm", design=design, out_dir=tmp_path / "bt")
    expected = make_model("nb_glm").fit(history_at(panel, pd.Period("2023-10", "M"))).predict(2)
    first = run.forecasts[run.forecasts["origin"] == pd.Period("2023-10", "M")]
    assert (first["mean"].to_numpy() == expected["mean"].to_numpy()).all()
