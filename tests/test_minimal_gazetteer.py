"""Consumers of a minimal gazetteer (names only): the tile map and the neighbour features."""

from __future__ import annotations

import pandas as pd

from features.gazetteer import load_gazetteer
from forecast.report.maps import tile_map


def _tiers(names):
    return pd.DataFrame(
        {"unit": names, "tier": 1, "tier_name": "low", "expected": 1.0, "p_max": 0.1}
    )


def test_tile_map_places_every_unit_of_a_gazetteer_without_positions(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("name\nAleppo\nIdlib\nHama\nHoms\nDaraa\n", encoding="utf-8")
    fig, unplaced = tile_map(
        _tiers(["Aleppo", "Idlib", "Hama", "Homs", "Daraa"]), load_gazetteer(path),
        target="incidents", unit_word="admin-1 unit",
    )
    assert unplaced == []
    rects = [e for e in fig["elements"] if e.get("tag", e.get("kind")) == "rect"] or fig["elements"]
    assert "Aleppo" in fig["desc"] and "Daraa" in fig["desc"]
    assert len(rects) > 0


def test_tile_map_with_partial_positions_lists_the_unplaced_units(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("name,tile_row,tile_col\nA,0,0\nB,,\n", encoding="utf-8")
    _, unplaced = tile_map(_tiers(["A", "B"]), load_gazetteer(path), target="incidents",
                           unit_word="admin-1 unit")
    assert unplaced == ["B"]


def test_neighbour_features_fall_back_to_the_national_mean_without_a_neighbours_column(tmp_path):
    from forecast.models.count_design import neighbour_weights

    path = tmp_path / "g.csv"
    path.write_text("name\nA\nB\nC\n", encoding="utf-8")
    weights, source = neighbour_weights(["A", "B", "C"], load_gazetteer(path).neighbours())
    assert set(source.values()) == {"national mean"}
    assert (abs(weights - 1 / 3) < 1e-12).all()


def test_panel_built_with_a_minimal_gazetteer_says_once_what_it_lacks(tmp_path):
    from features.panel import EventFile, PanelSpec
    from forecast.jobs.data import make_panel

    gaz = tmp_path / "g.csv"
    gaz.write_text("name\nNorth\nSouth\n", encoding="utf-8")
    events = tmp_path / "events.csv"
    events.write_text("date,admin1\n2020-01-03,North\n2020-02-09,south\n", encoding="utf-8")
    built = make_panel(PanelSpec(events=(EventFile(events, "generic"), EventFile(events, "generic")),
                                 gazetteer=gaz, keep_incomplete=True), tmp_path / "panel.csv")
    summary = built.summary()
    assert summary.count("no 'neighbours' column") == 1
    assert "national mean" in summary
    assert any("tile map" in note for note in built.build.metadata["gazetteer_notes"])
