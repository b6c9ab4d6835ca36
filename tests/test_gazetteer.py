from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.errors import DataError
from features.gazetteer import GAZETTEER_COLUMNS, load_gazetteer, normalise_name, visible

ROOT = Path(__file__).resolve().parent.parent

IRAQ = [
    "Anbar", "Babil", "Baghdad", "Basra", "Dhi Qar", "Diyala", "Duhok", "Erbil", "Karbala",
    "Kirkuk", "Maysan", "Muthanna", "Najaf", "Ninewa", "Qadisiyah", "Salah ad Din",
    "Sulaymaniyah", "Wasit",
]


def test_bundled_gazetteer_has_iraqs_18_governorates_with_iso_ids(gazetteer):
    assert sorted(gazetteer.names) == IRAQ
    assert gazetteer.units["unit_id"].str.match(r"^IQ-[A-Z]{2}$").all()
    assert gazetteer.units["name_ar"].str.len().gt(0).all()
    assert gazetteer.units["capital_lat"].between(29, 38).all()
    assert gazetteer.units["capital_lon"].between(38, 49).all()


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Ninewa", "Ninewa"), ("Nineveh", "Ninewa"), ("Ninawa", "Ninewa"), ("Nīnawá province", "Ninewa"),
        ("Salah ad Din", "Salah ad Din"), ("Saladin", "Salah ad Din"), ("Salahuddin", "Salah ad Din"),
        ("Şalāḩ ad Dīn province", "Salah ad Din"), ("Salah Al-Din", "Salah ad Din"),
        ("Al Anbar", "Anbar"), ("AL-ANBAR", "Anbar"), ("Anbar Governorate", "Anbar"), ("Al Anbār province", "Anbar"),
        ("Arbil", "Erbil"), ("Irbil", "Erbil"), ("Dahuk", "Duhok"), ("Dihok", "Duhok"),
        ("Qadisiyah", "Qadisiyah"), ("Al-Qadisiyyah", "Qadisiyah"), ("Al-Qadissiya", "Qadisiyah"),
        ("Dhi Qar", "Dhi Qar"), ("Dhi Quar", "Dhi Qar"), ("Thi-Qar", "Dhi Qar"),
        ("Al Başrah  province", "Basra"), ("Maysān  province", "Maysan"), ("Karbalā’ province", "Karbala"),
        ("At-Ta'mim province", "Kirkuk"), ("Kerbala", "Karbala"), ("Wassit", "Wasit"),
        ("Baghdad province", "Baghdad"), ("البصرة", "Basra"), ("محافظة نينوى", "Ninewa"), ("الانبار", "Anbar"),
        ("IQ-AR", "Erbil"), ("iq-an", "Anbar"), ("IQG15", "Ninewa"),
    ],
)
def test_common_spellings_resolve_to_the_canonical_name(gazetteer, spelling, canonical):
    assert gazetteer.match(spelling) == canonical


def test_halabja_maps_to_sulaymaniyah_by_default(gazetteer):
    assert gazetteer.match("Halabja") == "Sulaymaniyah"
    assert gazetteer.match("Halabja Governorate") == "Sulaymaniyah"


def test_unknown_name_error_suggests_the_closest_spellings(gazetteer):
    assert gazetteer.match("Ninawah") is None
    with pytest.raises(DataError, match=r"unknown governorate 'Ninawah'; closest known: Ninewa"):
        gazetteer.resolve("Ninawah")
    assert "known governorates: Anbar" in gazetteer.suggest("Zzyzx")


def test_normalise_name_ignores_case_diacritics_articles_and_admin_words():
    assert normalise_name("Al Başrah  province") == normalise_name("basrah")
    assert normalise_name("AS-SULAYMĀNĪYAH GOVERNORATE") == normalise_name("Sulaymaniyah")


def test_neighbours_are_symmetric_and_borders_cover_every_neighbouring_country(gazetteer):
    nb = gazetteer.neighbours()
    for unit, others in nb.items():
        for other in others:
            assert unit in nb[other], f"{unit} lists {other} but not the other way round"
    borders = gazetteer.borders()
    assert {c for cs in borders.values() for c in cs} == {
        "Syria", "Iran", "Turkey", "Jordan", "Saudi Arabia", "Kuwait"
    }
    assert set(borders["Anbar"]) == {"Syria", "Jordan", "Saudi Arabia"}
    assert sorted(u for u, cs in borders.items() if "Syria" in cs) == ["Anbar", "Duhok", "Ninewa"]


def test_tile_positions_are_unique(gazetteer):
    tiles = gazetteer.units[["tile_row", "tile_col"]]
    assert not tiles.duplicated().any()


def test_every_name_and_code_of_the_real_boundary_file_resolves(gazetteer, shared_data):
    import json

    geo = json.loads((shared_data / "iraq_adm1.geojson").read_text(encoding="utf-8"))
    names = {f["properties"]["governorate"] for f in geo["features"]}
    assert names == set(gazetteer.names)
    for feature in geo["features"]:
        assert gazetteer.match(feature["properties"]["ADM1_EN"]) == feature["properties"]["governorate"]
        assert gazetteer.match(feature["properties"]["ADM1_AR"]) == feature["properties"]["governorate"]
        assert gazetteer.match(feature["properties"]["ADM1_PCODE"]) == feature["properties"]["governorate"]


def _write(units: pd.DataFrame, path):
    units.to_csv(path, index=False)
    return path


def test_another_country_works_with_a_gazetteer_of_the_same_columns(tmp_path):
    units = pd.DataFrame(
        [
            ["SY-HL", "Aleppo", "حلب", "Syria", "Halab", "Aleppo", 36.2, 37.1, "SY-ID", "Turkey", 0, 0],
            ["SY-ID", "Idlib", "إدلب", "Syria", "Idleb", "Idlib", 35.9, 36.6, "SY-HL", "Turkey", 0, 1],
        ],
        columns=GAZETTEER_COLUMNS,
    )
    gaz = load_gazetteer(_write(units, tmp_path / "syria.csv"))
    assert gaz.match("Idleb") == "Idlib"
    assert gaz.unit_word == "admin-1 unit"
    assert gaz.neighbours() == {"Aleppo": ["Idlib"], "Idlib": ["Aleppo"]}


def test_gazetteer_without_aliases_matches_only_names_and_says_so(tmp_path, gazetteer):
    path = _write(gazetteer.units.drop(columns=["aliases"]), tmp_path / "g.csv")
    gaz = load_gazetteer(path)
    assert gaz.match("Anbar") == "Anbar"
    assert gaz.match("Ramadi") is None
    assert gaz.notes == (f"{path}: no 'aliases' column: only the names themselves are matched",)


def test_gazetteer_with_a_spelling_claimed_by_two_units_is_rejected(tmp_path, gazetteer):
    units = gazetteer.units.copy()
    units.loc[units["name"] == "Babil", "aliases"] += "|Nineveh"
    with pytest.raises(DataError, match=r"spelling 'Nineveh' matches both"):
        load_gazetteer(_write(units, tmp_path / "g.csv"))


def test_gazetteer_with_unknown_neighbour_id_is_rejected(tmp_path, gazetteer):
    units = gazetteer.units.copy()
    units.loc[0, "neighbours"] = "IQ-XX"
    with pytest.raises(DataError, match=r"row 2, column 'neighbours': unknown unit_id 'IQ-XX'"):
        load_gazetteer(_write(units, tmp_path / "g.csv"))


def test_minimal_gazetteer_needs_only_names_and_says_once_what_is_missing(tmp_path):
    path = tmp_path / "minimal.csv"
    path.write_text("name\nAleppo\nIdlib\nHama\n", encoding="utf-8")
    gaz = load_gazetteer(path)
    assert gaz.names == ["Aleppo", "Idlib", "Hama"]
    assert gaz.match("ALEPPO") == "Aleppo"
    assert gaz.neighbours() == {"Aleppo": [], "Idlib": [], "Hama": []}
    assert gaz.countries == set()
    assert len([n for n in gaz.notes if "'neighbours'" in n]) == 1
    assert any("national mean" in n for n in gaz.notes)
    assert any("laid out automatically" in n for n in gaz.notes)


def test_gazetteer_without_a_name_column_is_rejected(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("unit,country\nAleppo,Syria\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"g.csv: gazetteer is missing column\(s\) name; only 'name'"):
        load_gazetteer(path)


def test_tiles_are_laid_out_on_a_square_grid_in_name_order_without_positions(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("name\nE\nB\nD\nA\nC\n", encoding="utf-8")
    pos = load_gazetteer(path).tile_positions()
    assert pos.loc[["A", "B", "C", "D", "E"]].values.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]


def test_tiles_follow_the_capitals_north_to_south_and_west_to_east_when_given(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text(
        "name,capital_lat,capital_lon\nSW,10,0\nNE,20,5\nNW,20,0\nSE,10,5\n", encoding="utf-8"
    )
    pos = load_gazetteer(path).tile_positions()
    assert pos.loc[["NW", "NE", "SW", "SE"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_bundled_tile_positions_are_used_as_given(gazetteer):
    pos = gazetteer.tile_positions()
    assert pos.loc["Duhok"].tolist() == [0, 2]
    assert pos.loc["Basra"].tolist() == [5, 4]


def test_invisible_characters_are_normalised_away_and_shown_in_messages(tmp_path):
    path = tmp_path / "gaz.csv"
    path.write_text("name\nZeroWidth\nOther\n", encoding="utf-8")
    gaz = load_gazetteer(path)
    assert gaz.match("Zero\u200bWidth") == "ZeroWidth"
    assert gaz.match("Zero\u2060Width\u200e") == "ZeroWidth"
    with pytest.raises(DataError, match=r"unknown admin-1 unit 'Zero<U\+200B>Widht'"):
        gaz.resolve("Zero\u200bWidht")
    assert visible("Zero\u200bWidth\u00a0x") == "Zero<U+200B>Width<U+00A0>x"


def test_names_that_differ_only_in_emoji_are_two_units(tmp_path):
    path = tmp_path / "gaz.csv"
    path.write_text("name\n🔥\n💧\nUnit 🔥\nUnit 💧\n", encoding="utf-8")
    gaz = load_gazetteer(path)
    assert [gaz.match(n) for n in ("🔥", "💧", "unit🔥", "UNIT 💧")] == ["🔥", "💧", "Unit 🔥", "Unit 💧"]


def test_two_rows_spelt_alike_are_shown_with_their_invisible_characters(tmp_path):
    path = tmp_path / "gaz.csv"
    path.write_text("name,aliases\nZeroWidth,\nOther,Zero\u200bWidth\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"spelling 'Zero<U\+200B>Width' matches both 'ZeroWidth' and 'Other'"):
        load_gazetteer(path)


SYRIA = ROOT / "data" / "reference" / "syria_governorates.csv"
IRAQ_SYRIA = ROOT / "data" / "reference" / "iraq_syria_governorates.csv"
#: The border crossings of ../shared/data/README.md (section 7): Al-Qaim / Abu Kamal and
#: Al-Waleed / Al-Tanf for Anbar, Rabia and Sinjar for Ninewa, Faysh Khabur for Duhok.
CROSS_BORDER = {"Anbar": {"Deir ez-Zor", "Homs"}, "Ninewa": {"Al-Hasakah", "Deir ez-Zor"}, "Duhok": {"Al-Hasakah"}}


def test_syria_gazetteer_has_14_governorates_with_symmetric_neighbours():
    gaz = load_gazetteer(SYRIA)
    assert len(gaz.names) == 14 and gaz.countries == {"Syria"}
    assert all(uid.startswith("SY-") for uid in gaz.units["unit_id"])
    nb = gaz.neighbours()
    assert all(u in nb[n] for u, ns in nb.items() for n in ns)
    assert nb["Damascus"] == ["Rif Dimashq"]
    assert set(nb["Deir ez-Zor"]) == {"Al-Hasakah", "Ar-Raqqah", "Homs"}


@pytest.mark.parametrize("spelling, canonical", [
    ("Deir ez Zor Governorate", "Deir ez-Zor"),  # UCDP GED
    ("Deir-ez-Zor", "Deir ez-Zor"),  # OCHA COD-AB
    ("Al Hasakeh", "Al-Hasakah"),  # ACLED
    ("Al-Hasakeh", "Al-Hasakah"),
    ("Hamah Governorate", "Hama"),
    ("Idleb", "Idlib"),
    ("Lattakia", "Latakia"),
    ("Rural Damascus", "Rif Dimashq"),
    ("Rif Dimashq Governorate", "Rif Dimashq"),
    ("Dar'a", "Daraa"),
    ("As-Sweida", "As-Suwayda"),
    ("Ar Raqqa", "Ar-Raqqah"),
    ("Tartous", "Tartus"),
    ("SY09", "Deir ez-Zor"),  # OCHA P-code
    ("SY-DY", "Deir ez-Zor"),  # ISO 3166-2 (geoBoundaries' shapeISO)
    ("دير الزور", "Deir ez-Zor"),
    ("Damascus Governorate", "Damascus"),
])
def test_syria_spellings_of_ucdp_acled_ocha_and_geoboundaries_resolve(spelling, canonical):
    assert load_gazetteer(SYRIA).match(spelling) == canonical


def test_every_adm1_of_the_real_ucdp_syria_file_resolves(shared_data):
    frame = pd.read_csv(shared_data / "ucdp_ged_syria_2016_2018.csv", usecols=["adm_1"], dtype=str).dropna()
    gaz = load_gazetteer(SYRIA)
    unknown = sorted({name for name in frame["adm_1"] if gaz.match(name) is None})
    assert unknown == []


def test_two_country_gazetteer_is_both_countries_with_neighbours_across_the_border():
    both, iraq, syria = load_gazetteer(IRAQ_SYRIA), load_gazetteer(), load_gazetteer(SYRIA)
    assert len(both.names) == 32 and both.countries == {"Iraq", "Syria"}
    nb = both.neighbours()
    assert all(u in nb[n] for u, ns in nb.items() for n in ns)
    foreign = {u: {n for n in ns if n not in iraq.names} for u, ns in nb.items() if u in iraq.names}
    assert {u: ns for u, ns in foreign.items() if ns} == CROSS_BORDER
    # Every other column is the single-country files' (so the three files cannot drift apart);
    # tile positions differ only by where Iraq sits on the two-country map.
    columns = [c for c in both.units.columns if c not in ("neighbours", "tile_row", "tile_col")]
    single = pd.concat([iraq.units, syria.units], ignore_index=True)
    pd.testing.assert_frame_equal(both.units[columns], single[columns])
    inside = {u: [n for n in ns if (n in iraq.names) == (u in iraq.names)] for u, ns in nb.items()}
    assert inside == {**iraq.neighbours(), **syria.neighbours()}
