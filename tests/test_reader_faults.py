"""Readers name what is wrong with a file: impossible panel counts and covariates by file, row
and column; duplicate columns from the header row (before pandas renames them ``x.1``);
UTF-16 without a byte-order mark, a NUL byte inside a value, a GeoJSON given as events, a
gazetteer with no units and a damaged panel metadata file, each said as what it is, in a
message of bounded length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from features.covariates import read_covariates
from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.panel_files import metadata_path, read_panel
from features.sources import read_events
from forecast.cli import main

ROOT = Path(__file__).resolve().parent.parent
GENERIC = ROOT / "tests" / "fixtures" / "generic_events.csv"


def panel_text(gazetteer, *, cell: str | None = None, column: str = "incidents", header: str | None = None) -> str:
    """A valid panel CSV (every unit, 2020-01..2020-03) with ``cell`` in the third data row's ``column``."""
    rows = []
    for unit in gazetteer.names:
        for month in ("2020-01", "2020-02", "2020-03"):
            rows.append({"unit": unit, "month": month, "incidents": "1", "deaths": "0", "us_troops": "1000"})
    if cell is not None:
        rows[2][column] = cell
    head = header or "unit,month,incidents,deaths,us_troops"
    return head + "\n" + "".join(",".join(r.values()) + "\n" for r in rows)


@pytest.mark.parametrize("cell", ["1e308", "1.5", "-1", "inf", "-inf", "nan", "lots", "1e10"])
def test_an_impossible_panel_count_names_file_row_and_column(tmp_path, gazetteer, cell):
    path = tmp_path / "panel.csv"
    path.write_text(panel_text(gazetteer, cell=cell), encoding="utf-8")
    with pytest.raises(DataError, match=r"panel.csv, row 4, column 'incidents': '.*' is not a non-negative whole "
                                        r"number of at most 1e\+09"):
        read_panel(path, gazetteer)


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e308", "-1e13"])
def test_an_impossible_covariate_in_a_panel_is_refused(tmp_path, gazetteer, cell):
    path = tmp_path / "panel.csv"
    path.write_text(panel_text(gazetteer, cell=cell, column="us_troops"), encoding="utf-8")
    with pytest.raises(DataError, match=r"panel.csv, row 4, column 'us_troops': '.*' is not a finite number within"):
        read_panel(path, gazetteer)


def test_a_parquet_panel_count_beyond_int64_is_refused(tmp_path, gazetteer):
    frame = pd.read_csv(pd.io.common.StringIO(panel_text(gazetteer)), dtype={"month": str})
    frame["incidents"] = frame["incidents"].astype(float)
    frame.loc[5, "incidents"] = 1e308
    frame.to_parquet(tmp_path / "panel.parquet")
    with pytest.raises(DataError, match=r"panel.parquet, row 7, column 'incidents': '1e\+308' is not a non-negative"):
        read_panel(tmp_path / "panel.parquet", gazetteer)


def test_duplicate_columns_are_errors_in_panel_covariates_and_gazetteer(tmp_path, gazetteer):
    panel = tmp_path / "panel.csv"
    panel.write_text(panel_text(gazetteer, header="unit,month,incidents,us_troops,us_troops"), encoding="utf-8")
    with pytest.raises(DataError, match=r"panel.csv, row 1: duplicate column name\(s\) us_troops"):
        read_panel(panel, gazetteer)
    covariates = tmp_path / "covariates.csv"
    covariates.write_text("month,us_troops,us_troops\n2020-01,1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"covariates.csv, row 1: duplicate column name\(s\) us_troops"):
        read_covariates(covariates, gazetteer)
    reference = (ROOT / "data" / "reference" / "iraq_governorates.csv").read_text(encoding="utf-8").splitlines()
    doubled = tmp_path / "gazetteer.csv"
    doubled.write_text("\n".join([reference[0] + ",name"] + [r + ",x" for r in reference[1:]]) + "\n",
                       encoding="utf-8")
    with pytest.raises(DataError, match=r"gazetteer.csv, row 1: duplicate column name\(s\) name in the gazetteer"):
        load_gazetteer(doubled)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_named_as_utf16_in_every_reader(tmp_path, gazetteer, codec):
    text = {"events.csv": GENERIC.read_text(encoding="utf-8"), "covariates.csv": "month,us_troops\n2020-01,1\n",
            "panel.csv": panel_text(gazetteer),
            "gazetteer.csv": (ROOT / "data" / "reference" / "iraq_governorates.csv").read_text(encoding="utf-8")}
    for name, body in text.items():
        (tmp_path / name).write_bytes(body.encode(codec))
    expected = rf"this is UTF-16 text \({codec[-2:].upper()}, no byte-order mark\).*--encoding {codec}"
    for read in (lambda: read_events(tmp_path / "events.csv", gazetteer=gazetteer),
                 lambda: read_covariates(tmp_path / "covariates.csv", gazetteer),
                 lambda: read_panel(tmp_path / "panel.csv", gazetteer),
                 lambda: load_gazetteer(tmp_path / "gazetteer.csv")):
        with pytest.raises(DataError, match=expected):
            read()
    # Named, the encoding reads as the text it is.
    assert len(read_events(tmp_path / "events.csv", gazetteer=gazetteer, encoding=codec).events) == 4


def test_a_nul_byte_inside_a_number_is_named_as_such(tmp_path, gazetteer):
    events = tmp_path / "events.csv"
    lines = GENERIC.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",2,", ",13\x003725,")
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"events.csv, line 4, field 3: the value '13\\x003725' contains a NUL byte"):
        read_events(events, gazetteer=gazetteer)
    panel = tmp_path / "panel.csv"
    panel.write_text(panel_text(gazetteer, cell="1337\x0025", column="us_troops"), encoding="utf-8")
    with pytest.raises(DataError, match=r"panel.csv, line 4, field 5: the value '1337\\x0025' contains a NUL byte"):
        read_panel(panel, gazetteer)
    frame = pd.read_csv(pd.io.common.StringIO(panel_text(gazetteer)), dtype={"month": str, "us_troops": str})
    frame.loc[2, "us_troops"] = "1337\x0025"
    frame.to_parquet(tmp_path / "panel.parquet")
    with pytest.raises(DataError, match=r"row 4, column 'us_troops': .* it contains a NUL byte"):
        read_panel(tmp_path / "panel.parquet", gazetteer)


def test_a_geojson_given_as_events_is_a_short_message(tmp_path):
    square = [[[i * 0.001, i * 0.002] for i in range(5000)]]
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Anbar"}, "geometry": {"type": "Polygon", "coordinates": square}}]}
    path = tmp_path / "adm1.geojson"
    path.write_text(json.dumps(geojson), encoding="utf-8")
    assert path.stat().st_size > 70_000
    result = CliRunner().invoke(main, ["data", "build", "--events", str(path), "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is a GeoJSON file, not a CSV" in result.output and len(result.output) < 400, result.output


def test_a_header_as_wide_as_a_file_is_echoed_shortened(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"column_{'x' * 5000}_{i}" for i in range(40)) + "\n" + "1," * 39 + "1\n",
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["data", "build", "--events", str(path), "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1 and "cannot tell the format" in result.output
    assert "more characters" in result.output and len(result.output) < 2500, len(result.output)


def test_a_header_only_gazetteer_is_blamed_on_the_gazetteer(tmp_path):
    gazetteer = tmp_path / "gazetteer.csv"
    gazetteer.write_text("unit_id,name,name_ar,aliases\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["data", "build", "--events", str(GENERIC), "--gazetteer", str(gazetteer),
                                       "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1, result.output
    assert f"{gazetteer}: the gazetteer lists no units" in result.output
    assert str(GENERIC) not in result.output and not (tmp_path / "p.parquet").exists()


@pytest.mark.parametrize("damage", ['{"vintage": "2020-03", ', "[1, 2]", "\x00\x01"])
def test_a_damaged_panel_metadata_file_is_named(tmp_path, gazetteer, damage):
    path = tmp_path / "panel.csv"
    path.write_text(panel_text(gazetteer), encoding="utf-8")
    metadata_path(path).write_text(damage, encoding="utf-8")
    with pytest.raises(DataError, match=r"panel.csv.meta.json: the panel's metadata is"):
        read_panel(path, gazetteer)
    result = CliRunner().invoke(main, ["predict", "--panel", str(path), "--origin", "2020-03", "--model", "zero",
                                       "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 1 and "panel.csv.meta.json" in result.output and "Traceback" not in result.output


def test_random_bytes_with_few_nuls_are_named_binary_in_every_reader(tmp_path, gazetteer):
    rng = np.random.default_rng(78)
    raw = rng.integers(1, 256, size=20_000, dtype=np.uint8)
    raw[rng.choice(raw.size, size=78, replace=False)] = 0  # 0.39% NULs: under the 1% of a "damaged cell"
    raw = raw.tobytes()
    path = tmp_path / "random.csv"
    path.write_bytes(raw)
    binary = r"random.csv: this is a binary file, not a CSV text file"
    with pytest.raises(DataError, match=binary):
        read_events(path, gazetteer=gazetteer)
    with pytest.raises(DataError, match=binary):
        read_panel(path, gazetteer)
    with pytest.raises(DataError, match=binary):
        load_gazetteer(path)
    without_nuls = tmp_path / "random2.csv"
    without_nuls.write_bytes(raw.replace(b"\x00", b"\x01"))
    with pytest.raises(DataError, match=r"random2.csv: this is a binary file"):
        read_events(without_nuls, gazetteer=gazetteer)
    result = CliRunner().invoke(main, ["data", "build", "--events", str(path), "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1 and "binary file" in result.output and len(result.output) < 300, result.output
