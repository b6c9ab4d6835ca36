from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.covariates import attach_covariates, read_covariates
from features.errors import DataError
from features.panel import assemble_panel, last_complete_month
from features.panel_files import read_panel, validate_panel, write_panel
from features.sources import read_events


def _events(tmp_path, rows: str, name="events.csv"):
    path = tmp_path / name
    path.write_text("date,admin1,count,deaths\n" + rows, encoding="utf-8")
    return path


@pytest.fixture
def three_months(tmp_path, gazetteer):
    path = _events(
        tmp_path,
        "2018-01-03,Anbar,1,2\n2018-01-20,Anbar,2,0\n2018-02-11,Ninewa,1,5\n"
        "2018-03-31,Basra,1,1\nsomeday,Anbar,1,1\n2018-02-02,Atlantis,1,1\n",
    )
    return read_events(path, gazetteer=gazetteer)


def test_panel_is_a_complete_zero_filled_grid(three_months, gazetteer):
    build = assemble_panel([three_months], gazetteer)
    panel = build.panel
    assert list(panel.columns) == ["unit", "month", "incidents", "deaths"]
    assert len(panel) == 18 * 3
    assert set(panel["unit"]) == set(gazetteer.names)
    assert [str(m) for m in sorted(panel["month"].unique())] == ["2018-01", "2018-02", "2018-03"]
    row = panel.set_index(["unit", "month"])
    assert row.loc[("Anbar", pd.Period("2018-01")), ["incidents", "deaths"]].tolist() == [3, 2]
    assert row.loc[("Baghdad", pd.Period("2018-02")), ["incidents", "deaths"]].tolist() == [0, 0]
    validate_panel(panel)  # the contract holds


def test_panel_totals_equal_events_minus_quarantine(three_months, gazetteer):
    build = assemble_panel([three_months], gazetteer)
    assert len(build.quarantine) == 2
    assert build.panel["incidents"].sum() == three_months.events["count"].sum() == 5
    assert build.metadata["totals"] == {"incidents": 5, "deaths": 8}


def test_last_complete_month_needs_coverage_to_the_months_last_day():
    assert str(last_complete_month(pd.Timestamp("2010-01-30"))) == "2009-12"
    assert str(last_complete_month(pd.Timestamp("2010-01-31"))) == "2010-01"
    assert str(last_complete_month(pd.Timestamp("2012-02-29"))) == "2012-02"


def test_trailing_incomplete_month_is_left_out_and_the_vintage_recorded(tmp_path, gazetteer):
    result = read_events(_events(tmp_path, "2018-01-03,Anbar,1,0\n2018-02-28,Anbar,1,0\n2018-03-15,Anbar,4,0\n"))
    build = assemble_panel([result], gazetteer)
    assert build.metadata["vintage"] == "2018-02"
    assert build.metadata["incomplete_months"] == ["2018-03"]
    assert str(build.panel["month"].max()) == "2018-02"
    assert build.metadata["events_outside_panel"] == 1
    assert any("left out incomplete month(s) 2018-03" in n for n in build.notes)
    kept = assemble_panel([result], gazetteer, keep_incomplete=True)
    assert str(kept.panel["month"].max()) == "2018-03"
    assert kept.metadata["vintage"] == "2018-02"
    stated = assemble_panel([result], gazetteer, coverage_end=pd.Timestamp("2018-03-31"))
    assert stated.metadata["vintage"] == "2018-03"


def test_several_sources_are_complete_only_where_all_cover(tmp_path, gazetteer):
    a = read_events(_events(tmp_path, "2018-01-03,Anbar,1,0\n2018-03-31,Anbar,1,0\n", "a.csv"))
    b = read_events(_events(tmp_path, "2018-01-05,Basra,1,0\n2018-02-28,Basra,1,0\n", "b.csv"))
    build = assemble_panel([a, b], gazetteer)
    assert build.metadata["vintage"] == "2018-02"
    assert [s["format"] for s in build.metadata["sources"]] == ["generic", "generic"]


def test_no_usable_events_is_an_error(tmp_path, gazetteer):
    result = read_events(_events(tmp_path, "2018-01-03,Atlantis,1,0\n"))
    with pytest.raises(DataError, match=r"no usable events \(1 quarantined, 0 filtered out\)"):
        assemble_panel([result], gazetteer)


def test_write_and_read_round_trip_parquet_and_csv_with_metadata(three_months, gazetteer, tmp_path):
    build = assemble_panel([three_months], gazetteer)
    for name in ("panel.parquet", "panel.csv"):
        paths = write_panel(build, tmp_path / name)
        panel, meta = read_panel(paths["panel"])
        pd.testing.assert_frame_equal(panel, build.panel.sort_values(["unit", "month"]).reset_index(drop=True))
        assert meta["vintage"] == "2018-03"
        assert json.loads(paths["metadata"].read_text())["totals"]["incidents"] == 5
        quarantine = pd.read_csv(paths["quarantine"])
        assert quarantine["reason"].tolist() == ["unparseable date 'someday'", "unknown governorate 'Atlantis'; known governorates: " + ", ".join(gazetteer.names)]
    assert b"forecast.panel" in pq.read_schema(tmp_path / "panel.parquet").metadata


def test_a_failed_write_leaves_the_previous_panel_untouched(three_months, gazetteer, tmp_path, monkeypatch):
    out = tmp_path / "out"
    paths = write_panel(assemble_panel([three_months], gazetteer), out / "panel.csv")
    before = {p: p.read_bytes() for p in paths.values()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    # A different panel whose quarantine (written last) cannot be written: the new panel and
    # metadata files were complete by then, yet none may replace the old ones.
    other = assemble_panel([three_months], gazetteer, keep_incomplete=True, coverage_end=pd.Timestamp("2018-02-28"))
    monkeypatch.setattr(other.quarantine, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_panel(other, out / "panel.csv")
    assert {p: p.read_bytes() for p in paths.values()} == before
    assert sorted(os.listdir(out)) == sorted(p.name for p in paths.values())


def test_a_panel_from_another_tool_with_aliases_is_normalised(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text(
        "governorate,month,incidents,deaths\nNineveh,2018-01,1,0\nNineveh,2018-02,0,0\n"
        "Al Anbar,2018-01,2,1\nAl Anbar,2018-02,3,3\n",
        encoding="utf-8",
    )
    panel, meta = read_panel(path)
    assert meta == {}
    assert panel["unit"].tolist() == ["Anbar", "Anbar", "Ninewa", "Ninewa"]
    assert panel["month"].dtype == pd.PeriodDtype("M")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("unit,month,incidents\nAtlantis,2018-01,1\n", r"row 2, column 'unit': unknown governorate 'Atlantis'"),
        ("unit,month,incidents\nAnbar,Jan 2018,1\n", r"row 2, column 'month': unparseable month 'Jan 2018'"),
        ("unit,month,incidents\nAnbar,2018-01,1\nAl Anbar,2018-01,2\n", r"rows 2 and 3: Anbar 2018-01 appears twice"),
        ("unit,month,incidents\nAnbar,2018-01,1\nAnbar,2018-03,2\n", r"grid is incomplete: 1 unit-month\(s\) missing \(Anbar 2018-02\)"),
        ("unit,month,incidents\nAnbar,2018-01,-1\n", r"row 2, column 'incidents': '-1' is not a non-negative whole number"),
        ("unit,month,incidents\nAnbar,2018-01,x\n", r"row 2, column 'incidents': 'x' is not a non-negative whole number"),
        ("place,month,incidents\nAnbar,2018-01,1\n", r"no 'unit' column"),
    ],
)
def test_invalid_panels_are_rejected_with_the_row_and_column(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_panel(path)


# ---------------------------------------------------------------------------------------
# Covariates


def _cov(tmp_path, text):
    path = tmp_path / "cov.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_national_covariates_are_broadcast_to_every_unit(three_months, gazetteer, tmp_path):
    cov, notes = read_covariates(
        _cov(tmp_path, "month,us_troops,ops_tempo,source\n2018-01,5000,10,DoD\n2018-02,4000,12,DoD\n2018-03,3000,8,DoD\n"),
        gazetteer,
    )
    assert notes == ["covariate file column 'source' is text, not numbers: not used"]
    build = assemble_panel([three_months], gazetteer, covariates=cov, covariate_source="cov.csv")
    panel = build.panel
    assert list(panel.columns) == ["unit", "month", "incidents", "deaths", "us_troops", "ops_tempo"]
    assert panel.groupby("month")["us_troops"].nunique().eq(1).all()
    assert panel.loc[panel["month"] == pd.Period("2018-02"), "us_troops"].eq(4000).all()
    assert build.metadata["covariates"]["scope"] == "national"


def test_unit_covariates_match_names_through_the_gazetteer(gazetteer, tmp_path):
    panel = pd.DataFrame(
        {"unit": ["Anbar", "Anbar", "Basra", "Basra"], "month": pd.PeriodIndex(["2018-01", "2018-02"] * 2, freq="M"),
         "incidents": 0, "deaths": 0}
    )
    cov, _ = read_covariates(
        _cov(tmp_path, "month,unit,ops\n2018-01,Al Anbar,1\n2018-02,Al Anbar,2\n2018-01,Al Başrah,3\n2018-02,basrah,4\n"),
        gazetteer,
    )
    merged = attach_covariates(panel, cov)
    assert merged["ops"].tolist() == [1, 2, 3, 4]


def test_covariate_gaps_are_an_error_unless_a_fill_policy_is_chosen(three_months, gazetteer, tmp_path):
    cov, _ = read_covariates(_cov(tmp_path, "month,us_troops\n2018-01,5000\n2018-03,3000\n"), gazetteer)
    with pytest.raises(DataError, match=r"column 'us_troops': no value for 1 panel month\(s\): 2018-02; choose a fill policy"):
        assemble_panel([three_months], gazetteer, covariates=cov, covariate_source="cov.csv")
    filled = assemble_panel([three_months], gazetteer, covariates=cov, fill="ffill").panel
    assert filled.loc[filled["month"] == pd.Period("2018-02"), "us_troops"].eq(5000).all()
    zero = assemble_panel([three_months], gazetteer, covariates=cov, fill="zero").panel
    assert zero.loc[zero["month"] == pd.Period("2018-02"), "us_troops"].eq(0).all()
    keep = assemble_panel([three_months], gazetteer, covariates=cov, fill="keep").panel
    assert keep["us_troops"].isna().sum() == 18


def test_forward_fill_never_fills_months_before_the_first_value(three_months, gazetteer, tmp_path):
    cov, _ = read_covariates(_cov(tmp_path, "month,us_troops\n2018-02,5000\n2018-03,3000\n"), gazetteer)
    with pytest.raises(DataError, match=r"2018-01; months before its first value cannot be forward-filled"):
        assemble_panel([three_months], gazetteer, covariates=cov, fill="ffill")
    panel = assemble_panel([three_months], gazetteer, covariates=cov, fill="ffill-zero").panel
    assert panel.loc[panel["month"] == pd.Period("2018-01"), "us_troops"].eq(0).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,x\n2018-01,1\n", r"cov.csv: covariate file has no 'month' column"),
        ("month,x\n2018/01,1\n", r"cov.csv, row 2, column 'month': unparseable month '2018/01'"),
        ("month,x\n2018-01,1\n2018-02,1O\n2018-03,2\n", r"cov.csv, row 3, column 'x': '1O' is not a number"),
        ("month,x\n2018-01,1\n2018-01,2\n", r"cov.csv, rows 2 and 3: the same month appears twice"),
        ("month,unit,x\n2018-01,Atlantis,1\n", r"row 2, column 'unit': unknown governorate 'Atlantis'"),
        ("month,incidents\n2018-01,1\n", r"covariate column 'incidents' clashes with a panel column"),
    ],
)
def test_bad_covariate_files_are_rejected_with_file_row_and_column(gazetteer, tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_covariates(_cov(tmp_path, text), gazetteer)


def test_two_panels_in_one_folder_keep_their_own_quarantine_and_metadata(three_months, gazetteer, tmp_path):
    build = assemble_panel([three_months], gazetteer)
    assert len(build.quarantine) == 2
    v1 = write_panel(build, tmp_path / "ucdp.v1.parquet")
    first = v1["quarantine"].read_bytes()
    v2 = write_panel(assemble_panel([three_months], gazetteer), tmp_path / "ucdp.v2.parquet")
    assert v1["quarantine"] == tmp_path / "ucdp.v1.parquet.quarantine.csv"
    assert v2["quarantine"] == tmp_path / "ucdp.v2.parquet.quarantine.csv"
    assert v1["metadata"] != v2["metadata"]
    assert v1["quarantine"].read_bytes() == first  # the second build did not overwrite the first's rows


def test_an_empty_count_is_a_missing_month_not_zero_and_comes_back_as_nan(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("unit,month,incidents,deaths\nAnbar,2018-01,3,1\nAnbar,2018-02,,\nAnbar,2018-03,0,0\n", encoding="utf-8")
    panel, _ = read_panel(path)
    assert panel["incidents"].dtype == float and panel["incidents"].isna().tolist() == [False, True, False]
    assert panel["incidents"].iloc[[0, 2]].tolist() == [3.0, 0.0]
