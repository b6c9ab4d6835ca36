"""Context series per unit and month (type split, operations tempo, civilian deaths, other files),
coverage (missing, not zero, outside what the sources cover), and panel files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.context import ContextSeries
from features.errors import DataError
from features.graph import unit_graph
from features.panel import EventFile, PanelSpec, build_panel
from features.panel_files import read_panel, write_panel
from forecast.panelfile import read_panel_file
from forecast.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = Path(__file__).resolve().parent / "fixtures" / "context"
IRAQ_SYRIA = ROOT / "data" / "reference" / "iraq_syria_governorates.csv"


def _cells(panel: pd.DataFrame, unit: str, column: str) -> list:
    return panel.loc[panel["unit"] == unit, column].tolist()


def test_ucdp_type_split_operations_tempo_and_civilian_deaths_match_counts_by_hand():
    spec = PanelSpec(events=(CONTEXT / "ucdp_ged_context.csv",), type_split=True,
                     context=(ContextSeries("ops_tempo", operations=True),
                              ContextSeries("deaths_civilians", measure="deaths_civilians")))
    panel = build_panel(spec).panel
    assert [str(m) for m in panel["month"].unique()] == ["2015-01", "2015-02", "2015-03"]
    # Counted by hand from the fixture: side A a government = an operation (the US too).
    expected = {
        "Anbar": {"incidents": [3, 0, 2], "deaths": [17, 0, 20], "incidents_state_based": [2, 0, 1],
                  "incidents_one_sided": [1, 0, 1], "incidents_non_state": [0, 0, 0], "ops_tempo": [2, 0, 1],
                  "deaths_civilians": [9, 0, 15]},
        "Ninewa": {"incidents": [1, 3, 0], "deaths": [3, 16, 0], "incidents_state_based": [0, 2, 0],
                   "incidents_one_sided": [0, 1, 0], "incidents_non_state": [1, 0, 0], "ops_tempo": [0, 3, 0],
                   "deaths_civilians": [0, 6, 0]},
        "Diyala": {"incidents": [0, 1, 2], "deaths": [0, 4, 12], "incidents_state_based": [0, 0, 1],
                   "incidents_one_sided": [0, 1, 0], "incidents_non_state": [0, 0, 1], "ops_tempo": [0, 0, 1],
                   "deaths_civilians": [0, 4, 0]},
        "Basra": {c: [0, 0, 0] for c in ("incidents", "ops_tempo", "deaths_civilians", "incidents_state_based")},
    }
    for unit, columns in expected.items():
        for column, values in columns.items():
            assert _cells(panel, unit, column) == values, (unit, column)
    # The type split adds up to the incidents everywhere.
    split = panel[["incidents_state_based", "incidents_one_sided", "incidents_non_state"]].sum(axis=1)
    assert (split == panel["incidents"]).all()


def test_acled_operations_tempo_airstrikes_and_event_types_match_counts_by_hand():
    spec = PanelSpec(events=(CONTEXT / "acled_context.csv",), coverage_end=pd.Timestamp("2021-03-31"), type_split=True,
                     context=(ContextSeries("ops_tempo", operations=True),
                              ContextSeries("airstrikes", sub_event_types=("Air/drone strike",)),
                              ContextSeries("ieds", sub_event_types=("Remote explosive/landmine/IED",)),
                              ContextSeries("is_events", actor="Islamic State")))
    panel = build_panel(spec).panel
    # State and external forces as the first actor (inter1 text, or a Police/Military Forces name
    # where inter1 is empty), and every air/drone strike, are operations; protests and IS are not.
    expected = {
        "Anbar": {"incidents": [3, 0, 1], "ops_tempo": [2, 0, 0], "airstrikes": [1, 0, 0], "ieds": [1, 0, 0],
                  "incidents_battles": [1, 0, 0], "incidents_explosions_remote_violence": [2, 0, 0],
                  "incidents_protests": [0, 0, 1], "is_events": [3, 0, 0]},
        "Ninewa": {"incidents": [1, 2, 0], "ops_tempo": [0, 1, 0], "airstrikes": [0, 1, 0],
                   "incidents_violence_against_civilians": [1, 0, 0], "is_events": [1, 1, 0]},
        "Salah ad Din": {"incidents": [0, 1, 2], "ops_tempo": [0, 0, 2], "airstrikes": [0, 0, 1], "ieds": [0, 1, 0],
                         "is_events": [0, 1, 2]},
    }
    for unit, columns in expected.items():
        for column, values in columns.items():
            assert _cells(panel, unit, column) == values, (unit, column)


def test_operations_tempo_from_a_source_that_does_not_say_who_acted_is_an_error(fixtures):
    spec = PanelSpec(events=(fixtures / "ibc_incidents.csv",), context=(ContextSeries("ops_tempo", operations=True),))
    with pytest.raises(DataError, match=r"ops_tempo.*ibc_incidents\.csv \(Iraq Body Count\) does not say who acted"):
        build_panel(spec)


def test_a_context_series_of_another_file_is_missing_outside_its_collections(fixtures):
    spec = PanelSpec(events=(CONTEXT / "ucdp_ged_context.csv",),
                     context=(ContextSeries("airstrikes", events=(fixtures / "geocausal_events.csv",),
                                            event_types=("Airstrike",)),))
    build = build_panel(spec)
    # The fixture's collection runs 2007-03-02 .. 2007-04-30: no month of 2015 is covered.
    assert build.panel["airstrikes"].isna().all()
    assert build.metadata["context"]["airstrikes"]["counts"] == "events (event type Airstrike)"


def test_two_countries_with_sources_of_different_years_leave_the_rest_missing(tmp_path):
    syria = tmp_path / "syria.csv"
    header = (CONTEXT / "ucdp_ged_context.csv").read_text(encoding="utf-8").splitlines()[0]
    columns = header.split(",")
    row = dict.fromkeys(columns, "")
    lines = [header]
    for i, (adm, date) in enumerate([("Deir ez Zor Governorate", "2015-02-03"), ("Homs Governorate", "2015-04-30")]):
        row.update({"id": f"77{i}", "type_of_violence": "1", "side_a": "Government of Syria", "side_b": "IS",
                    "adm_1": adm, "country": "Syria", "date_start": date, "best": "2", "deaths_civilians": "0"})
        lines.append(",".join(row[c] for c in columns))
    syria.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = PanelSpec(events=(CONTEXT / "ucdp_ged_context.csv", syria), gazetteer=IRAQ_SYRIA)
    build = build_panel(spec)
    panel = build.panel
    assert panel["unit"].nunique() == 32
    assert [str(m) for m in panel["month"].unique()] == ["2015-01", "2015-02", "2015-03", "2015-04"]
    assert build.metadata["coverage"]["Iraq"]["last_month"] == "2015-03"
    assert build.metadata["coverage"]["Syria"]["first_month"] == "2015-02"
    anbar, dez, basra = (panel.loc[panel["unit"] == u, "incidents"].tolist() for u in ("Anbar", "Deir ez-Zor", "Basra"))
    assert anbar[:3] == [3, 0, 2] and np.isnan(anbar[3])  # Iraq's file ends 2015-03
    assert np.isnan(dez[0]) and dez[1:] == [1, 0, 0]  # Syria's starts 2015-02
    assert basra[:3] == [0, 0, 0]
    out = tmp_path / "p.parquet"
    write_panel(build, out)
    again, _ = read_panel(out)
    assert again["incidents"].isna().sum() == panel["incidents"].isna().sum() == 18 + 14
    assert set(unit_graph(again).cross_border["Anbar"]) == {"Deir ez-Zor", "Homs"}


def test_a_source_without_death_counts_leaves_deaths_missing(fixtures):
    build = build_panel(PanelSpec(events=(fixtures / "geocausal_events.csv",)))
    panel = build.panel
    assert panel["deaths"].isna().all()
    assert any("no event has a death count" in n for n in build.notes)
    # Its one collection runs 2007-03-02 .. 2007-04-30: March is not covered completely.
    assert panel.loc[panel["month"] == pd.Period("2007-03", "M"), "incidents"].isna().all()
    assert _cells(panel, "Anbar", "incidents") == [pytest.approx(np.nan, nan_ok=True), 1]
    assert build.metadata["coverage"]["Iraq"]["gaps"] == [["2007-03", "2007-03"]]


def test_a_panel_file_builds_what_it_declares_and_names_its_mistakes(tmp_path):
    path = tmp_path / "panel.toml"
    path.write_text(f"""
description = "fixture"
type_split = true
[[events]]
path = "{CONTEXT / 'ucdp_ged_context.csv'}"
[[context]]
name = "ops_tempo"
operations = true
""", encoding="utf-8")
    spec, description = read_panel_file(path)
    assert description == "fixture" and spec.type_split and spec.context[0].operations
    assert "ops_tempo" in build_panel(spec).panel
    path.write_text(f'[[events]]\npath = "{CONTEXT / "ucdp_ged_context.csv"}"\n[[context]]\nname = "x"\noperation = true\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[\[context\]\] #1 'operation': unknown key; did you mean 'operations'"):
        read_panel_file(path)
    path.write_text('[[context]]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"top level key 'events': must be one or more \[\[events\]\] tables"):
        read_panel_file(path)
    path.write_text(f'[[events]]\npath = "{CONTEXT / "ucdp_ged_context.csv"}"\n[[context]]\nname = "Ops Tempo"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"context series 'Ops Tempo': a name is lower-case"):
        read_panel_file(path)


@pytest.mark.realdata
def test_the_real_iraq_and_syria_panel_has_32_units_and_months_outside_coverage_missing(shared_data):
    spec, _ = read_panel_file(ROOT / "experiments" / "panels" / "iraq_syria.toml")
    build = build_panel(spec)
    panel = build.panel.set_index(["unit", "month"])
    assert panel.index.get_level_values("unit").nunique() == 32
    syria = panel.xs("Deir ez-Zor")
    iraq = panel.xs("Anbar")
    assert syria.loc[:"2015-12", "incidents"].isna().all() and syria.loc["2016-01":, "incidents"].notna().all()
    assert iraq.loc[:"2016-12", "incidents"].notna().all() and iraq.loc["2017-01":, "incidents"].isna().all()
    # The geocausal airstrikes: counts in the months a collection covers completely, missing elsewhere.
    strikes = iraq["airstrikes"]
    covered = [*pd.period_range("2006-01", "2006-08", freq="M"), *pd.period_range("2007-03", "2008-06", freq="M")]
    assert strikes.loc[covered].notna().all()
    assert strikes.drop(covered).isna().all()
    assert strikes.loc[pd.period_range("2007-03", "2008-06", freq="M")].sum() > 0
    assert set(unit_graph(build.panel).cross_border["Ninewa"]) == {"Al-Hasakah", "Deir ez-Zor"}


def test_event_file_formats_are_kept_per_file(fixtures):
    spec = PanelSpec(events=(EventFile(CONTEXT / "ucdp_ged_context.csv", "ucdp"),))
    assert build_panel(spec).metadata["sources"][0]["format"] == "ucdp"


def test_linear_fill_draws_the_line_between_records_but_no_origin_sees_a_later_record(tmp_path):
    from forecast.evaluation.backtest import history_at

    covariates = tmp_path / "troops.csv"
    covariates.write_text("month,us_troops,strikes\n2015-01,100,1\n2015-03,300,\n", encoding="utf-8")
    spec = PanelSpec(events=(CONTEXT / "ucdp_ged_context.csv",), covariates=covariates,
                     fill={"*": "keep", "us_troops": "linear"})
    build = build_panel(spec)
    anbar = build.panel[build.panel["unit"] == "Anbar"]
    assert anbar["us_troops"].tolist() == [100.0, 200.0, 300.0]  # the line in the panel
    assert anbar["strikes"].isna().tolist() == [False, True, True]  # as recorded
    assert build.metadata["covariates"]["fill"] == "keep; us_troops: linear"
    at_feb = history_at(build.panel, pd.Period("2015-02", "M"))
    assert at_feb.loc[at_feb["unit"] == "Anbar", "us_troops"].tolist() == [100.0, 100.0]  # carried, not 200
    at_mar = history_at(build.panel, pd.Period("2015-03", "M"))
    assert at_mar.loc[at_mar["unit"] == "Anbar", "us_troops"].tolist() == [100.0, 200.0, 300.0]
    out = tmp_path / "p.parquet"
    write_panel(build, out)
    again, _ = read_panel(out)
    at_feb = history_at(again, pd.Period("2015-02", "M"))
    assert at_feb.loc[at_feb["unit"] == "Anbar", "us_troops"].tolist() == [100.0, 100.0]


@pytest.mark.parametrize("name", ["nb_glm", "nb_glmx"])
def test_a_context_series_given_twice_is_left_out_as_aliased_and_the_forecast_is_that_of_one(name):
    """Two context columns equal on every training row (or a missing-month indicator constant in
    every unit) made the pooled models' Hessian singular, and they fell back to unit means."""
    from forecast.catalog import make_model
    from forecast.evaluation.backtest import history_at

    rng = np.random.default_rng(0)
    months = pd.period_range("2010-01", periods=60, freq="M")
    frames = []
    for u in range(6):
        ops = rng.poisson(3, len(months)).astype(float)
        y = rng.poisson(2 + 0.5 * ops)
        frames.append(pd.DataFrame({"unit": f"u{u}", "month": months, "incidents": y, "deaths": y,
                                    "ops_tempo": ops, "ops_copy": ops}))
    panel = pd.concat(frames, ignore_index=True)
    twice = make_model(name).fit(history_at(panel, months[-1], "incidents", ["ops_tempo", "ops_copy"]))
    once = make_model(name).fit(history_at(panel, months[-1], "incidents", ["ops_tempo"]))
    assert "left out as aliased" in twice.fallbacks_["horizon 1"] and "ops_copy" in twice.fallbacks_["horizon 1"]
    assert "unit mean" not in " ".join(twice.fallbacks_.values())
    np.testing.assert_allclose(twice.predict(3)["mean"], once.predict(3)["mean"], rtol=1e-6)
