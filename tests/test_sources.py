"""Each reader on a fixture in its real column layout, and the bad-input cases."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from features.errors import DataError
from features.sources import EVENT_COLUMNS, FORMATS, EventFilters, read_events


def _events(result) -> list[tuple]:
    ev = result.events
    return list(zip(ev["event_id"], ev["date"].dt.strftime("%Y-%m-%d"), ev["unit"], ev["count"], ev["deaths"]))


def test_ucdp_ged_reader_skips_the_hxl_row_and_normalises_names(fixtures, gazetteer):
    result = read_events(fixtures / "ucdp_ged_hdx.csv", gazetteer=gazetteer)
    assert result.format == "ucdp"
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    assert _events(result) == [
        ("900001", "2014-01-03", "Anbar", 1, 5),
        ("900002", "2014-01-15", "Ninewa", 1, 12),
        ("900003", "2014-02-02", "Basra", 1, 3),
        ("900004", "2014-02-20", "Kirkuk", 1, 2),
        ("900006", "2014-03-31", "Salah ad Din", 1, 1),
    ]
    assert result.events["event_type"].tolist()[:3] == ["state-based", "state-based", "one-sided"]
    assert result.events["actors"].iloc[0] == "Government of Iraq | IS"
    # Row 2 is the HXL row, so the sixth event sits on row 7.
    assert result.quarantine[["row", "column"]].values.tolist() == [[7, "adm_1"]]
    assert "no governorate given" in result.quarantine["reason"].iloc[0]
    assert result.rows == 6


def test_acled_reader_accepts_both_date_styles_and_quarantines_other_countries(fixtures, gazetteer):
    result = read_events(fixtures / "acled_export.csv", gazetteer=gazetteer)
    assert result.format == "acled"
    assert _events(result) == [
        ("IRQ10001", "2020-01-05", "Anbar", 1, 2),
        ("IRQ10002", "2020-01-17", "Salah ad Din", 1, 5),
        ("IRQ10003", "2020-02-28", "Dhi Qar", 1, 1),
        ("IRQ10004", "2020-02-29", "Baghdad", 1, 0),
        ("IRQ10005", "2020-03-31", "Karbala", 1, 0),
    ]
    q = result.quarantine
    assert q["event_id_cnty"].tolist() == ["SYR20001"]
    assert "country 'Syria' is not covered by the gazetteer" in q["reason"].iloc[0]


def test_gtd_reader_places_unknown_days_on_the_first_and_quarantines_unknown_months(fixtures, gazetteer):
    result = read_events(fixtures / "gtd_export.csv", gazetteer=gazetteer)
    assert result.format == "gtd"
    assert _events(result) == [
        ("201501010001", "2015-01-01", "Anbar", 1, 3),
        ("201501150002", "2015-01-01", "Ninewa", 1, 0),
        ("201502100004", "2015-02-10", "Salah ad Din", 1, 7),
        ("201503310006", "2015-03-31", "Duhok", 1, 0),
    ]
    reasons = dict(zip(result.quarantine["eventid"], result.quarantine["reason"]))
    assert reasons["201502000003"].startswith("month unknown (imonth = 0)")
    assert "country 'Syria'" in reasons["201502110005"]
    assert result.notes == ["1 event(s) with no death count were counted as 0 deaths"]


def test_ibc_reader_reads_day_month_year_dates_and_treats_na_as_missing(fixtures, gazetteer):
    result = read_events(fixtures / "ibc_incidents.csv", gazetteer=gazetteer)
    assert result.format == "ibc"
    assert _events(result) == [
        ("k90001", "2007-01-03", "Ninewa", 1, 4),
        ("k90002", "2007-01-15", "Dhi Qar", 1, 1),
        ("k90003", "2007-02-02", "Baghdad", 1, 12),
        ("d90005", "2007-03-01", "Diyala", 1, 11),
        ("k90006", "2007-03-31", "Qadisiyah", 1, 3),
    ]
    assert result.quarantine["reason"].tolist() == ["no governorate given (value 'NA')"]


def test_generic_reader_uses_count_and_generates_ids_from_row_numbers(fixtures, gazetteer):
    result = read_events(fixtures / "generic_events.csv", gazetteer=gazetteer)
    assert result.format == "generic"
    assert _events(result) == [
        ("row-2", "2018-01-02", "Anbar", 3, 4),
        ("row-3", "2018-01-20", "Ninewa", 1, 0),
        ("row-4", "2018-02-05", "Ninewa", 2, 0),
        ("row-5", "2018-03-31", "Karbala", 1, 1),
    ]


def test_forced_format_must_fit_the_columns(fixtures):
    with pytest.raises(DataError, match=r"missing required column\(s\) event_id_cnty, event_date"):
        read_events(fixtures / "ucdp_ged_hdx.csv", format="acled")


def test_unknown_forced_format_lists_the_known_ones(fixtures):
    with pytest.raises(DataError, match=r"unknown format 'cast'; choose one of ucdp, ucdp-candidate, acled, acled-hdx, gtd, ibc, geocausal, generic"):
        read_events(fixtures / "ucdp_ged_hdx.csv", format="cast")


# ---------------------------------------------------------------------------------------
# Filters


def test_filters_keep_the_date_range_event_type_and_actor(fixtures, gazetteer):
    path = fixtures / "ucdp_ged_hdx.csv"
    by_date = read_events(path, filters=EventFilters(start=pd.Timestamp("2014-02-01"), end=pd.Timestamp("2014-02-28")))
    assert by_date.events["event_id"].tolist() == ["900003", "900004"]
    assert by_date.filtered_out == 3
    by_type = read_events(path, filters=EventFilters(event_types=("1",)))
    assert by_type.events["event_id"].tolist() == ["900001", "900002", "900006"]
    assert read_events(path, filters=EventFilters(event_types=("one-sided",))).events["event_id"].tolist() == ["900003"]
    by_actor = read_events(path, filters=EventFilters(actor="mahdi army"))
    assert by_actor.events["event_id"].tolist() == ["900004"]


def test_actor_filter_matches_whole_words_only(fixtures):
    result = read_events(fixtures / "acled_export.csv", filters=EventFilters(actor="Islamic State"))
    assert len(result.events) == 4
    # "IS" must not match "Islamic": no ACLED actor here is called IS as a word.
    assert read_events(fixtures / "acled_export.csv", filters=EventFilters(actor="IS")).events.empty


# ---------------------------------------------------------------------------------------
# Bad input: each case gets a specific message; usable rows are kept


def _generic(tmp_path, text: str, name: str = "events.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_unknown_names_are_quarantined_with_the_closest_spellings(tmp_path):
    path = _generic(tmp_path, "date,admin1\n2018-01-01,Ninawah\n2018-01-02,Baghdad\n")
    result = read_events(path)
    assert len(result.events) == 1
    q = result.quarantine.iloc[0]
    assert (q["row"], q["column"]) == (2, "admin1")
    assert q["reason"] == "unknown governorate 'Ninawah'; closest known: Ninewa"


def test_unparseable_dates_are_quarantined_with_the_value(tmp_path):
    path = _generic(tmp_path, "date,admin1\n2018-13-01,Anbar\nupto,Anbar\n2018-02-01,Anbar\n")
    result = read_events(path)
    assert result.quarantine["reason"].tolist() == ["unparseable date '2018-13-01'", "unparseable date 'upto'"]
    assert result.quarantine["row"].tolist() == [2, 3]
    assert len(result.events) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [("-2", "deaths '-2' is negative"), ("many", "deaths 'many' is not a number"), ("2.5", "deaths '2.5' is not a whole number")],
)
def test_bad_death_counts_are_quarantined(tmp_path, value, message):
    path = _generic(tmp_path, f"date,admin1,deaths\n2018-01-01,Anbar,{value}\n2018-01-01,Anbar,1\n")
    result = read_events(path)
    assert result.quarantine["reason"].tolist() == [message]
    assert result.quarantine["column"].tolist() == ["deaths"]


def test_bad_counts_are_quarantined(tmp_path):
    path = _generic(tmp_path, "date,admin1,count\n2018-01-01,Anbar,-1\n2018-01-01,Anbar,x\n2018-01-01,Anbar,2\n")
    result = read_events(path)
    assert result.quarantine["reason"].tolist() == ["count '-1' is negative", "count 'x' is not a number"]
    assert result.events["count"].tolist() == [2]


def test_duplicate_event_ids_keep_the_first_and_quarantine_the_rest(tmp_path):
    path = _generic(tmp_path, "event_id,date,admin1\na1,2018-01-01,Anbar\na1,2018-01-05,Diyala\na2,2018-01-05,Diyala\n")
    result = read_events(path)
    assert result.events["event_id"].tolist() == ["a1", "a2"]
    assert result.quarantine["reason"].tolist() == ["duplicate event id 'a1' (first at row 2)"]


def test_missing_required_columns_name_the_columns(tmp_path):
    path = _generic(tmp_path, "date,place\n2018-01-01,Anbar\n")
    with pytest.raises(DataError, match=r"events.csv: missing required column\(s\) admin1 for the generic"):
        read_events(path, format="generic")


def test_undetectable_format_lists_what_each_format_needs(tmp_path):
    path = _generic(tmp_path, "when,where\n2018-01-01,Anbar\n")
    with pytest.raises(DataError, match=r"cannot tell the format from its columns \(when, where\).*Force one with --format"):
        read_events(path)


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(DataError, match=r"events.csv: file is empty"):
        read_events(_generic(tmp_path, ""))
    with pytest.raises(DataError, match=r"file is empty"):
        read_events(_generic(tmp_path, "\n\n  \n"))


def test_header_only_file_gives_an_empty_event_table(tmp_path):
    result = read_events(_generic(tmp_path, "date,admin1\n"))
    assert result.events.empty and result.quarantine.empty


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: file not found"):
        read_events(tmp_path / "nope.csv")


def test_utf8_bom_and_arabic_names_are_read(tmp_path):
    path = _generic(tmp_path, "\ufeffdate,admin1\n2018-01-01,البصرة\n2018-01-02,محافظة نينوى\n")
    result = read_events(path)
    assert result.events["unit"].tolist() == ["Basra", "Ninewa"]


def test_utf16_with_bom_is_read(tmp_path):
    path = _generic(tmp_path, "\ufeffdate,admin1\n2018-01-01,Basra\n", encoding="utf-16-le")
    assert read_events(path).events["unit"].tolist() == ["Basra"]


def test_legacy_arabic_encoding_needs_to_be_named(tmp_path):
    path = _generic(tmp_path, "date,admin1\n2018-01-01,Anbar\n2018-01-01,البصرة\n", encoding="cp1256")
    with pytest.raises(DataError, match=r"events.csv, line 3: byte 0x[0-9a-f]{2} is not valid UTF-8.*--encoding"):
        read_events(path)
    assert read_events(path, encoding="cp1256").events["unit"].tolist() == ["Anbar", "Basra"]


def test_binary_files_are_not_csv(tmp_path):
    png = tmp_path / "map.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match=r"map.csv: this is a PNG image, not a CSV text file"):
        read_events(png)


def test_a_damaged_workbook_is_named_not_taken_for_a_zip_of_csvs(tmp_path):
    # A workbook (tests/test_workbook.py reads real ones) whose parts are missing.
    xlsx = tmp_path / "events.xlsx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    xlsx.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"events\.xlsx: cannot read the Excel workbook"):
        read_events(xlsx)


def test_a_zip_with_one_csv_is_read_like_the_ucdp_download(tmp_path, fixtures):
    path = tmp_path / "ged.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(fixtures / "ucdp_ged_hdx.csv", "GEDEvent_v25_1.csv")
    assert len(read_events(path).events) == 5


def test_prose_is_not_a_csv(tmp_path):
    path = _generic(tmp_path, "This is a report, not data.\nIt has sentences; and commas, here and there.\n")
    with pytest.raises(DataError, match=r"cannot tell the format|not a well-formed CSV"):
        read_events(path)


def test_ragged_rows_are_quarantined_when_few(tmp_path):
    path = _generic(tmp_path, "date,admin1\n2018-01-01,Anbar\n2018-01-02,Anbar,extra,cells\n2018-01-03,Diyala\n")
    result = read_events(path)
    assert result.events["unit"].tolist() == ["Anbar", "Diyala"]
    assert result.quarantine["reason"].tolist() == ["4 fields where the header has 2"]
    assert result.quarantine["row"].tolist() == [3]


def test_mostly_ragged_file_is_rejected(tmp_path):
    path = _generic(tmp_path, "date;admin1\n2018-01-01;Anbar\n")
    with pytest.raises(DataError, match=r"cannot tell the format"):
        read_events(path)
    path = _generic(tmp_path, "date,admin1\n2018,01,01,Anbar\n2018,01,02,Anbar\n", name="b.csv")
    with pytest.raises(DataError, match=r"b.csv, row 2: 4 fields where the header has 2.*not a well-formed CSV"):
        read_events(path)


def test_every_format_is_detected_from_its_own_fixture(fixtures):
    files = {
        "ucdp": "ucdp_ged_hdx.csv", "acled": "acled_export.csv", "gtd": "gtd_export.csv",
        "ibc": "ibc_incidents.csv", "generic": "generic_events.csv", "acled-hdx": "acled_hdx_admin1_monthly.csv",
        "ucdp-candidate": "ucdp_candidate/GEDEvent_v25_0_10.csv", "geocausal": "geocausal_events.csv",
    }
    assert set(files) == set(FORMATS)
    for name, file in files.items():
        assert read_events(fixtures / file).format == name


# ---------------------------------------------------------------------------------------
# UCDP Candidate Events: GED's monthly preview, in GED's layout


def test_a_candidate_release_is_told_from_ged_and_its_review_flags_are_reported(fixtures, gazetteer):
    result = read_events(fixtures / "ucdp_candidate" / "GEDEvent_v25_0_10.csv", gazetteer=gazetteer)
    assert result.format == "ucdp-candidate"
    assert result.dataset == "UCDP Candidate Events"
    assert _events(result) == [
        ("7000101", "2025-10-03", "Anbar", 1, 2),
        ("7000102", "2025-10-17", "Kirkuk", 1, 4),
        ("7000103", "2025-10-29", "Diyala", 1, 1),
    ]
    assert "code_status" in result.notes[0]
    assert "2 UCDP Candidate event(s) are still flagged for review" in result.notes[1]
    assert "Check dyad x 1" in result.notes[1]
    # Forcing the GED layout by name still finds the release it is.
    assert read_events(fixtures / "ucdp_candidate" / "GEDEvent_v25_0_10.csv", format="ucdp").format == "ucdp-candidate"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GEDEvent_v25_0_9.csv", "ucdp-candidate"),
        ("ucdp_candidate_2025-09.csv", "ucdp-candidate"),
        ("GEDEvent_v25_1.csv", "ucdp"),
        ("ged251.csv", "ucdp"),
    ],
)
def test_without_code_status_the_release_name_tells_candidate_from_ged(fixtures, tmp_path, name, expected):
    # The HDX GED fixture has no code_status column: only the file name can tell.
    path = tmp_path / name
    path.write_bytes((fixtures / "ucdp_ged_hdx.csv").read_bytes())
    result = read_events(path)
    assert result.format == expected
    assert result.dataset == FORMATS[expected].label
    said = [n for n in result.notes if "read as" in n]
    if expected == "ucdp":
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith(f"{name}: read as UCDP Candidate Events, not GED: its file name says so")


def test_the_build_summary_and_metadata_name_the_ucdp_dataset(fixtures, tmp_path):
    from features.panel import PanelSpec
    from forecast.jobs.data import make_panel

    built = make_panel(PanelSpec(events=(fixtures / "ucdp_candidate" / "GEDEvent_v25_0_10.csv",),
                                 coverage_end=pd.Timestamp("2025-10-31")), tmp_path / "p.parquet")
    assert "(UCDP Candidate Events)" in built.summary()
    assert built.build.metadata["sources"][0]["dataset"] == "UCDP Candidate Events"
    assert built.build.metadata["sources"][0]["format"] == "ucdp-candidate"


def test_geocausal_reader_reads_types_and_the_acting_side(fixtures, gazetteer):
    result = read_events(fixtures / "geocausal_events.csv", gazetteer=gazetteer)
    assert result.format == "geocausal"
    assert _events(result) == [
        ("gc_000001", "2007-03-02", "Anbar", 1, 0),
        ("gc_000002", "2007-03-02", "Ninewa", 1, 0),
        ("gc_000003", "2007-03-15", "Baghdad", 1, 0),
        ("gc_000004", "2007-03-20", "Anbar", 1, 0),
        ("gc_000005", "2007-04-01", "Anbar", 1, 0),
        ("gc_000006", "2007-04-11", "Salah ad Din", 1, 0),
    ]
    assert result.events["event_type"].tolist() == ["Airstrike", "SOF", "IED", "SAF", "Airstrike", "other"]
    assert result.events["actors"].tolist() == ["coalition", "coalition", "insurgents", "insurgents", "coalition",
                                                "insurgents"]
    assert result.quarantine[["row", "column"]].values.tolist() == [[8, "governorate"]]
    coalition = read_events(fixtures / "geocausal_events.csv", gazetteer=gazetteer,
                            filters=EventFilters(actor="coalition"))
    assert coalition.events["event_id"].tolist() == ["gc_000001", "gc_000002", "gc_000005"]
    strikes = read_events(fixtures / "geocausal_events.csv", gazetteer=gazetteer,
                          filters=EventFilters(event_types=("airstrike",)))
    assert strikes.events["event_id"].tolist() == ["gc_000001", "gc_000005"]
