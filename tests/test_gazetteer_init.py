"""Drafting a gazetteer from an event file and admin-1 boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.gazetteer_init import draft_gazetteer, write_draft
from forecast.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS = FIXTURES / "squares_events.csv"
SQUARES = FIXTURES / "squares_adm1.geojson"


def test_names_that_normalise_alike_become_one_unit_with_the_others_as_aliases(tmp_path):
    draft = draft_gazetteer(EVENTS, format="generic")
    assert draft.units["name"].tolist() == ["North West", "Sout East", "South East"]
    row = draft.units.set_index("name").loc["North West"]
    assert row["aliases"] == "north-west"
    assert row["country"] == "Testland"
    [path] = write_draft(draft, tmp_path / "gaz.csv")
    gaz = load_gazetteer(path)
    assert gaz.match("NORTH WEST") == "North West"
    assert any("'neighbours'" in note for note in gaz.notes)
    assert any("merge them" in item for item in draft.to_check)


def test_boundaries_give_centroids_neighbours_by_shared_border_and_an_outline(tmp_path):
    draft = draft_gazetteer(EVENTS, format="generic", boundaries=SQUARES)
    units = draft.units.set_index("name")
    assert sorted(units.index) == ["Corner", "North East", "North West", "South East", "South West"]
    assert units.at["North West", "neighbours"] == "North East|South West"
    # A corner is not a border: South East and North West only touch at a point.
    assert "North West" not in units.at["South East", "neighbours"]
    assert units.at["Corner", "neighbours"] == ""
    assert (units.at["South West", "capital_lat"], units.at["South West", "capital_lon"]) == (0.5, 0.5)
    assert "XXG01" in units.at["North West", "aliases"].split("|")
    assert any("'Sout East' (1 events)" in item for item in draft.to_check)
    assert any("units with no events: Corner, North East, South West" in i for i in draft.to_check)
    csv_path, outline = write_draft(draft, tmp_path / "gaz.csv")
    gaz = load_gazetteer(csv_path)
    assert gaz.neighbours()["South West"] == ["North West", "South East"]
    assert gaz.match("XXG04") == "South East"
    geo = json.loads(outline.read_text(encoding="utf-8"))
    assert sorted(f["properties"]["name"] for f in geo["features"]) == sorted(units.index)


def test_boundaries_without_a_name_property_are_rejected(tmp_path):
    bad = tmp_path / "b.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": 1}, "geometry": None}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"b.geojson: no name property on every feature; tried ADM1_EN"):
        draft_gazetteer(EVENTS, format="generic", boundaries=bad)


def test_event_file_missing_its_admin1_column_names_the_file(tmp_path):
    bad = tmp_path / "e.csv"
    bad.write_text("date,place\n2020-01-01,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"e.csv: missing required column\(s\) admin1"):
        draft_gazetteer(bad, format="generic")


def test_the_real_iraq_boundaries_give_18_units_with_symmetric_neighbours(shared_data):
    path = shared_data / "iraq_adm1.geojson"
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    draft = draft_gazetteer(FIXTURES / "acled_export.csv", boundaries=path)
    units = draft.units.set_index("name")
    assert len(units) == 18
    assert set(units["country"]) == {"Iraq", ""} or set(units["country"]) == {"Iraq"}
    nb = {n: set(filter(None, v.split("|"))) for n, v in units["neighbours"].items()}
    assert all(a in nb[b] for a in nb for b in nb[a])
    assert nb["Al-Basrah"] >= {"Maysan", "Thi Qar"}


def test_cli_gazetteer_init_writes_the_draft_and_says_what_to_check(tmp_path):
    out = tmp_path / "gaz.csv"
    result = CliRunner().invoke(main, ["gazetteer", "init", "--events", str(EVENTS), "--format", "generic",
                                       "--geojson", str(SQUARES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "found: " in result.output and "check: " in result.output
    assert out.with_suffix(".geojson").exists()


def test_cli_gazetteer_init_reports_bad_input_without_a_traceback(tmp_path):
    bad = tmp_path / "e.csv"
    bad.write_text("date,place\n2020-01-01,x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["gazetteer", "init", "--events", str(bad), "--format", "generic",
                                       "--out", str(tmp_path / "g.csv")])
    assert result.exit_code == 1
    assert "e.csv: missing required column(s) admin1" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "g.csv").exists()


def _init(*args: str):
    return CliRunner().invoke(main, ["gazetteer", "init", *args])


def _squares(tmp_path: Path, features) -> Path:
    path = tmp_path / "boundaries.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_out_onto_the_boundaries_is_refused_and_the_input_left_as_it_was(tmp_path):
    geo = tmp_path / "boundaries.geojson"
    geo.write_bytes(SQUARES.read_bytes())
    result = _init("--events", str(EVENTS), "--format", "generic", "--geojson", str(geo),
                   "--out", str(tmp_path / "boundaries.csv"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the outline (written beside --out as .geojson) would be written over the --geojson input" in result.output
    assert geo.read_bytes() == SQUARES.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boundaries.geojson"]


def test_out_onto_the_events_file_is_refused(tmp_path):
    events = tmp_path / "events.csv"
    events.write_bytes(EVENTS.read_bytes())
    result = _init("--events", str(events), "--format", "generic", "--out", str(events))
    assert result.exit_code == 1 and "the gazetteer would be written over the --events input" in result.output
    assert events.read_bytes() == EVENTS.read_bytes()


def test_names_spelt_alike_fail_before_an_earlier_draft_is_touched_and_blame_the_boundaries(tmp_path):
    out = tmp_path / "draft.csv"
    assert _init("--events", str(EVENTS), "--format", "generic", "--geojson", str(SQUARES), "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    geo = json.loads(SQUARES.read_text(encoding="utf-8"))
    geo["features"][0]["properties"]["ADM1_EN"] = "Unit 0001"
    geo["features"][1]["properties"]["ADM1_EN"] = "unit 0001 Province"
    (tmp_path / "in").mkdir()
    bad = _squares(tmp_path / "in", geo["features"])
    result = _init("--events", str(EVENTS), "--format", "generic", "--geojson", str(bad), "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{bad}: features 0 ('Unit 0001') and 1 ('unit 0001 Province') are spelt alike" in result.output
    assert str(out) not in result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("feature, said", [
    (5, "feature 1: a number (5), not a Feature object"),
    ("x", "feature 1: a string (\"x\"), not a Feature object"),
    ({"type": "Feature", "properties": {"ADM1_EN": "Empty"}, "geometry": {"type": "Polygon", "coordinates": []}},
     "feature 1 ('Empty'): the Polygon is empty"),
    ({"type": "Feature", "properties": {"ADM1_EN": "Flat"},
      "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0], [0, 0]]]}},
     "feature 1 ('Flat'): the Polygon is empty"),
    ({"type": "Feature", "properties": [1], "geometry": None}, "feature 1: 'properties' is a list"),
])
def test_a_bad_feature_is_one_line_naming_the_file_and_the_feature(tmp_path, feature, said):
    good = json.loads(SQUARES.read_text(encoding="utf-8"))["features"][0]
    path = _squares(tmp_path, [good, feature])
    result = _init("--events", str(EVENTS), "--format", "generic", "--geojson", str(path),
                   "--out", str(tmp_path / "draft.csv"))
    assert result.exit_code == 1 and "unexpected error" not in result.output, result.output
    assert f"{path}, {said}" in result.output and result.output.count("\n") == 1, result.output
