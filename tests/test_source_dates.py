"""Date forms of the real exports, the ambiguity rule, and the quarantine when nothing builds."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from features.errors import DataError
from features.panel import quarantine_path
from features.sources import EventFilters, read_events
from forecast import api
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
    built = api.build_panel(events=[fixtures / "acled_pre2023_export_tool.csv"], out=tmp_path / "p.csv")
    assert built.build.metadata["sources"][0]["date_form"] == "%d-%b-%y"
    assert "dates read as %d-%b-%y" in built.summary()


def test_nothing_usable_still_writes_the_quarantine_and_names_reasons(tmp_path):
    events = tmp_path / "acled.csv"
    rows = "".join(f"IRQ{i},31st Dec 2020,Battles,Iraq,Baghdad,0\n" for i in range(5))
    events.write_text("event_id_cnty,event_date,event_type,country,admin1,fatalities\n" + rows, encoding="utf-8")
    out = tmp_path / "panel.parquet"
    with pytest.raises(DataError, match=r"no usable events \(5 quarantined.*unparseable date '31st Dec 2020' x 5.*panel\.parquet\.quarantine\.csv"):
        api.build_panel(events=[events], out=out)
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
