"""Date forms of the real exports, the ambiguity rule, and the quarantine when nothing builds."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from features.errors import DataError
from features.panel import PanelSpec
from features.panel_files import quarantine_path
from features.sources import FORMATS, EventFilters, read_events
from features.sources.base import normalise_events, read_table
from forecast.jobs.data import make_panel
from forecast.cli import main


def test_acled_pre2023_export_tool_reads_two_digit_year_dates(fixtures, gazetteer):
    result = read_events(fixtures / "acled_pre2023_export_tool.csv", gazetteer=gazetteer)
    assert result.format == "acled"
    assert result.quarantine.empty
    assert result.date_form == "%d-%b-%y"
    assert list(result.events["date"]) == [pd.Timestamp(d) for d in ("2020-12-31", "2020-12-15", "2020-11-02")]


def test_acled_current_layout_reads_compact_dates(fixtures, gazetteer):
    result = read_events(fixtures / "acled_current_compact_dates.csv", gazetteer=gazetteer)
    assert result.quarantine.empty
    assert result.date_form == "%Y%m%d"
    assert list(result.events["date"]) == [pd.Timestamp("2020-12-31"), pd.Timestamp("2020-11-05")]


def test_ambiguous_slashed_dates_are_an_error_naming_file_and_column(fixtures, gazetteer):
    with pytest.raises(DataError, match=r"acled_slashed_dates.csv, column event_date: dates such as '03/04/2020' are ambiguous.*--date-format"):
        read_events(fixtures / "acled_slashed_dates.csv", gazetteer=gazetteer)


def test_date_format_chooses_day_first_for_ambiguous_dates(fixtures, gazetteer):
    result = read_events(fixtures / "acled_slashed_dates.csv", gazetteer=gazetteer, date_format="%d/%m/%Y")
    assert result.date_form == "%d/%m/%Y"
    assert list(result.events["date"]) == [pd.Timestamp("2020-04-03"), pd.Timestamp("2020-06-05")]


def test_date_format_that_reads_nothing_is_an_error(fixtures, gazetteer):
    with pytest.raises(DataError, match=r"column event_date: no date reads with --date-format '%Y-%m-%d'"):
        read_events(fixtures / "acled_slashed_dates.csv", gazetteer=gazetteer, date_format="%Y-%m-%d")


def test_build_summary_and_metadata_name_the_date_form(fixtures, tmp_path):
    built = make_panel(PanelSpec(events=(fixtures / "acled_pre2023_export_tool.csv",)), tmp_path / "p.csv")
    assert built.build.metadata["sources"][0]["date_form"] == "%d-%b-%y"
    assert "dates read as %d-%b-%y" in built.summary()


def test_nothing_usable_still_writes_the_quarantine_and_names_reasons(tmp_path):
    events = tmp_path / "acled.csv"
    rows = "".join(f"IRQ{i},31st Dec 2020,Battles,Iraq,Baghdad,0\n" for i in range(5))
    events.write_text("event_id_cnty,event_date,event_type,country,admin1,fatalities\n" + rows, encoding="utf-8")
    out = tmp_path / "panel.parquet"
    with pytest.raises(DataError, match=r"no usable events \(5 quarantined.*unparseable date '31st Dec 2020' x 5.*panel\.parquet\.quarantine\.csv"):
        make_panel(PanelSpec(events=(events,)), out)
    written = pd.read_csv(quarantine_path(out))
    assert len(written) == 5 and set(written["column"]) == {"event_date"}
    assert not out.exists()


def test_cli_date_format_option_reaches_the_reader_and_ambiguity_exits_cleanly(fixtures, tmp_path):
    events = fixtures / "acled_slashed_dates.csv"
    out = tmp_path / "p.csv"
    failed = CliRunner().invoke(main, ["data", "build", "--events", str(events), "--out", str(out)],
                                catch_exceptions=False)
    assert failed.exit_code != 0 and "ambiguous" in failed.output and "Traceback" not in failed.output
    built = CliRunner().invoke(main, ["data", "build", "--events", str(events), "--out", str(out),
                                      "--date-format", "%d/%m/%Y"], catch_exceptions=False)
    assert built.exit_code == 0, built.output
    assert "dates read as %d/%m/%Y" in built.output


def test_acled_hdx_monthly_aggregates_count_events_per_row_and_quarantine_bad_months(fixtures, gazetteer):
    result = read_events(fixtures / "acled_hdx_admin1_monthly.csv", gazetteer=gazetteer)
    assert result.format == "acled-hdx"
    assert result.events["count"].tolist() == [12, 30, 25]
    assert result.events["date"].tolist() == [pd.Timestamp("2020-01-31")] * 2 + [pd.Timestamp("2020-02-29")]
    assert result.quarantine["reason"].tolist() == ["unparseable date 'Febuary 2020'"]
    assert result.quarantine["row"].tolist() == [5]


@pytest.mark.parametrize(
    ("file", "actor"),
    [
        ("acled_pre2023_export_tool.csv", "Islamic State"),
        ("gtd_export.csv", "Islamic State"),
        ("gtd_export.csv", "ISIL"),
        ("ucdp_ged_hdx.csv", "IS"),
    ],
)
def test_actor_filter_keeps_islamic_state_under_each_sources_name(fixtures, gazetteer, file, actor):
    result = read_events(fixtures / file, gazetteer=gazetteer, filters=EventFilters(actor=actor))
    assert len(result.events) > 0
    assert result.events["actors"].str.contains(r"Islamic State|\bIS\b|ISIL", regex=True).all()


def test_a_file_whose_rows_settle_day_first_reads_without_asking(tmp_path, gazetteer):
    events = tmp_path / "acled_daymonth.csv"
    events.write_text("event_id_cnty,event_date,event_type,country,admin1,fatalities\n"
                      "IRQ1,03/04/2020,Battles,Iraq,Baghdad,0\n"
                      "IRQ2,25/04/2020,Battles,Iraq,Baghdad,1\n", encoding="utf-8")
    result = read_events(events, gazetteer=gazetteer)
    assert result.date_form == "%d/%m/%Y"
    assert list(result.events["date"]) == [pd.Timestamp("2020-04-03"), pd.Timestamp("2020-04-25")]


def test_a_file_that_reads_both_ways_in_different_rows_stays_an_error(tmp_path, gazetteer):
    events = tmp_path / "acled_mixed.csv"
    events.write_text("event_id_cnty,event_date,event_type,country,admin1,fatalities\n"
                      "IRQ1,03/04/2020,Battles,Iraq,Baghdad,0\n"
                      "IRQ2,25/04/2020,Battles,Iraq,Baghdad,1\n"
                      "IRQ3,04/25/2020,Battles,Iraq,Baghdad,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"acled_mixed.csv, column event_date: dates such as '03/04/2020' are ambiguous"):
        read_events(events, gazetteer=gazetteer)


# ----------------------------------------------------------------------------------------
# Impossible event dates: quarantined with their reason, in every format, and the panel unmoved

IMPOSSIBLE = {"9999-12-31": (9999, 12, 31), "2099-12-31": (2099, 12, 31), "0001-01-01": (1, 1, 1)}
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")


def _iso(y, m, d):
    return f"{y:04d}-{m:02d}-{d:02d}"


#: format -> (fixture, rows to skip under the header, how to give a copied row a new id and the date)
DATED_ROW = {
    "ucdp": ("ucdp_ged_hdx.csv", 1, lambda r, ymd: r.update(id="990001", date_start=_iso(*ymd), date_end=_iso(*ymd))),
    "acled": ("acled_export.csv", 0, lambda r, ymd: r.update(event_id_cnty="IRQ99001", event_date=_iso(*ymd))),
    "acled-hdx": ("acled_hdx_admin1_monthly.csv", 0,
                  lambda r, ymd: r.update(Year=f"{ymd[0]:04d}", Month=MONTH_NAMES[ymd[1] - 1])),
    "gtd": ("gtd_export.csv", 0, lambda r, ymd: r.update(eventid="999901010001", iyear=f"{ymd[0]:04d}",
                                                         imonth=str(ymd[1]), iday=str(ymd[2]))),
    "ibc": ("ibc_incidents.csv", 0, lambda r, ymd: r.update(**{
        "IBC.code": "k99999", "Start.Date": f"{ymd[2]} {MONTH_NAMES[ymd[1] - 1][:3]} {ymd[0]:04d}",
        "End.Date": f"{ymd[2]} {MONTH_NAMES[ymd[1] - 1][:3]} {ymd[0]:04d}"})),
    "generic": ("generic_events.csv", 0, lambda r, ymd: r.update(date=_iso(*ymd))),
}


def with_a_row_dated(fixture: Path, skip: int, set_row, ymd, out: Path) -> Path:
    """The fixture with a copy of its first event row, re-dated (and given a new id)."""
    with fixture.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, first = rows[0], dict(zip(rows[0], rows[1 + skip]))
    set_row(first, ymd)
    with out.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([*rows, [first[c] for c in header]])
    return out


@pytest.mark.parametrize("text", sorted(IMPOSSIBLE))
@pytest.mark.parametrize("fmt", sorted(DATED_ROW))
def test_an_impossible_event_date_is_quarantined_with_its_reason_in_every_format(fixtures, gazetteer, tmp_path,
                                                                                 fmt, text):
    name, skip, set_row = DATED_ROW[fmt]
    clean = read_events(fixtures / name, format=fmt, gazetteer=gazetteer)
    path = with_a_row_dated(fixtures / name, skip, set_row, IMPOSSIBLE[text], tmp_path / name)
    got = read_events(path, format=fmt, gazetteer=gazetteer)
    assert len(got.quarantine) == len(clean.quarantine) + 1
    why = got.quarantine["reason"].iloc[-1]
    assert "a placeholder or a typo" in why and ("before 1946-01-01" in why or "days after the build date" in why)
    pd.testing.assert_frame_equal(got.events, clean.events)
    assert got.last_date == clean.last_date


def test_a_date_up_to_a_month_after_the_build_date_is_kept_and_later_ones_are_not(gazetteer, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("date,admin1\n2025-01-31,Baghdad\n2025-02-01,Baghdad\n1946-01-01,Basra\n1945-12-31,Basra\n",
                    encoding="utf-8")
    result = normalise_events(path, read_table(path), FORMATS["generic"], gazetteer, EventFilters(),
                              today=pd.Timestamp("2024-12-31"))
    assert result.events["date"].astype(str).tolist() == ["2025-01-31", "1946-01-01"]
    assert result.quarantine["row"].tolist() == [3, 5]
    assert result.quarantine["reason"].str.contains("build date (2024-12-31)", regex=False).tolist() == [True, False]


@pytest.mark.parametrize("text", sorted(IMPOSSIBLE))
def test_impossible_dates_leave_the_panel_months_and_vintage_as_they_were(tmp_path, text):
    demo = Path(__file__).resolve().parent.parent / "data" / "sample" / "ucdp_ged_demo.csv"
    clean = make_panel(PanelSpec(events=(demo,)), tmp_path / "clean.parquet").build
    dated = with_a_row_dated(demo, 0, DATED_ROW["ucdp"][2], IMPOSSIBLE[text], tmp_path / "dated.csv")
    built = make_panel(PanelSpec(events=(dated,)), tmp_path / "dated.parquet").build
    for key in ("first_month", "last_month", "vintage", "coverage_end", "totals"):
        assert built.metadata[key] == clean.metadata[key], key
    pd.testing.assert_frame_equal(built.panel, clean.panel)
    assert built.metadata["sources"][0]["quarantined"] == 1
    written = pd.read_csv(quarantine_path(tmp_path / "dated.parquet"), dtype=str)
    assert written["date_start"].tolist() == [text] and written["column"].tolist() == ["date_start"]


ACLED_TWO_DIGIT = (
    "event_id_cnty,event_date,event_type,admin1,fatalities,country,actor1,actor2\n"
    "IRQ1,01-Jan-19,Battles,Baghdad,1,Iraq,A,B\n"
    "IRQ2,15-Mar-20,Battles,Basrah,1,Iraq,A,B\n"
    "IRQ3,31-Dec-22,Battles,Basrah,1,Iraq,A,B\n"
    "IRQ4,01-Jan-69,Battles,Basrah,1,Iraq,A,B\n"
    "IRQ5,31-Dec-68,Battles,Basrah,1,Iraq,A,B\n"
)


def test_a_two_digit_year_far_from_the_files_own_dates_is_quarantined_with_its_reason(tmp_path, gazetteer):
    path = tmp_path / "acled.csv"
    path.write_text(ACLED_TWO_DIGIT, encoding="utf-8")
    result = read_events(path, gazetteer=gazetteer)
    assert sorted(result.events["event_id"]) == ["IRQ1", "IRQ2", "IRQ3"]
    assert result.events["date"].min() == pd.Timestamp("2019-01-01")
    reasons = dict(zip(result.quarantine["row"], result.quarantine["reason"]))
    assert reasons[5] == ("date '01-Jan-69': two-digit year '69' lies more than 40 years from this file's other "
                          "dates (median year 2020) as 1969 and as 2069: write the year in four digits")
    assert "'68'" in reasons[6] and "as 1968 and as 2068" in reasons[6]


def test_two_digit_years_across_a_century_turn_are_read_around_the_files_dates(tmp_path, gazetteer):
    path = tmp_path / "acled.csv"
    path.write_text(ACLED_TWO_DIGIT.split("IRQ1")[0] + "".join(
        f"IRQ{i},15-Jun-{yy},Battles,Basrah,1,Iraq,A,B\n" for i, yy in enumerate(["95", "99", "00", "04", "67"])),
        encoding="utf-8")
    result = read_events(path, gazetteer=gazetteer)
    # Python's own window reads '67' as 2067 (after the build date); around this file's dates it is 1967.
    assert sorted(result.events["date"].dt.year) == [1967, 1995, 1999, 2000, 2004]
    assert result.quarantine.empty
