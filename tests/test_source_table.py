"""Event files read as a stream (features/sources/table.py): in chunks, the same events, quarantine and
panel as read whole, with the file's row numbers; only the columns a format uses are kept."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.panel import assemble_panel
from features.sources import FORMATS, read_events
from features.sources.base import lower_columns
from features.sources.compact import first_occurrence
from features.sources.table import CsvTable, read_table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
WHOLE = 10**9  # rows per chunk: the whole file at once


def _awkward_demo(tmp_path: Path) -> Path:
    """The bundled demo events (5,125 rows) with what a stream must not lose track of, spread over the file:
    a quoted value spanning lines, a blank line, a ragged row, an unknown governorate, a repeated id and
    padded names; a last line without a line end."""
    lines = DEMO.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[0]]))
    rows = [next(csv.reader([line])) for line in lines[1:]]
    col = {name: i for i, name in enumerate(header)}
    rows[10][col["where_coordinates"]] = "Tikrit\nnorth of the\r\ncity"   # one record, three lines
    rows[2000][col["adm_1"]] = "Atlantis province"                       # unknown governorate
    rows[3000][col["id"]] = rows[2999][col["id"]]                         # a repeated id
    rows[4000][col["adm_1"]] = "  " + rows[4000][col["adm_1"]] + " "      # padded name
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows[:1500])
    out.write("\n")                                                       # blank line
    writer.writerows(rows[1500:2500])
    out.write(",".join(rows[2500][:5]) + "\n")                            # ragged: 5 fields
    writer.writerows(rows[2501:])
    path = tmp_path / "ucdp_awkward.csv"
    path.write_text(out.getvalue().rstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> Path:
    return _awkward_demo(tmp_path_factory.mktemp("awkward"))


def _same_result(got, want) -> None:
    pd.testing.assert_frame_equal(got.events, want.events)
    pd.testing.assert_frame_equal(got.quarantine, want.quarantine)
    for field in ("rows", "filtered_out", "notes", "last_date", "date_form", "spans", "parts", "has_deaths"):
        assert getattr(got, field) == getattr(want, field), field


@pytest.mark.parametrize("chunk_rows", [500, 1499, 1500, 1501, 2048])
def test_a_file_read_in_chunks_gives_the_events_and_quarantine_of_a_file_read_whole(awkward, gazetteer,
                                                                                    chunk_rows):
    whole = read_events(awkward, gazetteer=gazetteer, chunk_rows=WHOLE)
    _same_result(read_events(awkward, gazetteer=gazetteer, chunk_rows=chunk_rows), whole)


def test_a_panel_built_from_chunks_equals_one_built_whole(awkward, gazetteer):
    whole = assemble_panel([read_events(awkward, gazetteer=gazetteer, chunk_rows=WHOLE)], gazetteer)
    chunked = assemble_panel([read_events(awkward, gazetteer=gazetteer, chunk_rows=500)], gazetteer)
    pd.testing.assert_frame_equal(chunked.panel, whole.panel)
    pd.testing.assert_frame_equal(chunked.quarantine, whole.quarantine)
    assert {k: v for k, v in chunked.metadata.items() if k != "created"} == \
        {k: v for k, v in whole.metadata.items() if k != "created"}
    assert chunked.notes == whole.notes


def test_row_numbers_count_records_a_blank_line_and_the_header(awkward, gazetteer):
    result = read_events(awkward, gazetteer=gazetteer, chunk_rows=64)
    q = result.quarantine.set_index("row")
    # Data row i (from 0) is record i + 2; the blank line after the 1,500th row moves the later ones by one.
    assert q.loc[2003, "reason"].startswith("unknown governorate 'Atlantis province'")
    assert q.loc[2503, "reason"] == "5 fields where the header has 37"
    assert q.loc[2503, "column"] == "(whole row)" and q.loc[2503, "date_end"] == ""
    assert q.loc[3003, "reason"].endswith("(first at row 3002)")
    assert result.rows == 5125 and len(result.events) + len(q) == 5125
    # The record spanning three lines keeps its text and is one row.
    table = read_table(awkward)
    assert table.frame["where_coordinates"].iloc[10] == "Tikrit\nnorth of the\r\ncity"
    assert table.rownum[:12].tolist() == list(range(2, 14))


def test_the_quarantine_keeps_every_column_of_the_file_though_only_some_are_read(awkward, gazetteer):
    result = read_events(awkward, gazetteer=gazetteer, chunk_rows=100)
    header = DEMO.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert list(result.quarantine.columns) == ["file", "row", "column", "reason", *header]
    row = result.quarantine.set_index("row").loc[2003]
    assert row["conflict_name"] and row["geom_wkt"].startswith("POINT")


def test_the_hxl_row_is_skipped_in_the_first_chunk_only(fixtures, gazetteer):
    whole = read_events(fixtures / "ucdp_ged_hdx.csv", gazetteer=gazetteer, chunk_rows=WHOLE)
    _same_result(read_events(fixtures / "ucdp_ged_hdx.csv", gazetteer=gazetteer, chunk_rows=1), whole)
    assert whole.quarantine["row"].tolist() == [7]


def test_a_mostly_ragged_file_is_refused_whatever_the_chunks(tmp_path, gazetteer):
    path = tmp_path / "events.csv"
    path.write_text("date,admin1\n" + "2020-01-01;Basra\n" * 30 + "2020-01-02,Basra\n" * 10, encoding="utf-8")
    for chunk_rows in (1, 4, WHOLE):
        with pytest.raises(DataError, match=r"events.csv, row 2: 1 fields where the header has 2, and so do 30 of "
                                            r"40 rows: this is not a well-formed CSV"):
            read_events(path, gazetteer=gazetteer, chunk_rows=chunk_rows)


def test_an_unknown_format_is_reported_after_a_broken_csv(tmp_path):
    # As when files were read whole: a file that is not a CSV is named so before its columns are judged.
    path = tmp_path / "events.csv"
    path.write_text("when;where\n" + "a,b\n" * 5, encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2: 2 fields where the header has 1, and so do 5 of 5 rows"):
        read_events(path)


CASES = {
    "ucdp": "ucdp_ged_hdx.csv", "ucdp-candidate": "ucdp_candidate/GEDEvent_v25_0_10.csv",
    "acled": "acled_pre2023_export_tool.csv", "acled-hdx": "acled_hdx_admin1_monthly.csv",
    "gtd": "gtd_export.csv", "ibc": "ibc_incidents.csv", "geocausal": "geocausal_events.csv",
    "generic": "generic_events.csv",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_format_reads_every_column_its_stage_uses(fixtures, name):
    fmt = FORMATS[name]
    table = read_table(fixtures / CASES[name])
    raw = lower_columns(table.frame.set_axis(table.rownum))
    only = lower_columns(table.frame[fmt.reads(list(table.frame.columns))].set_axis(table.rownum))
    assert len(only.columns) < len(raw.columns) or name in ("generic", "ibc", "acled-hdx")
    pd.testing.assert_frame_equal(fmt.stage(only), fmt.stage(raw))


def test_rows_are_read_again_by_their_numbers(awkward):
    table = CsvTable(awkward)
    rows = table.rows(np.array([2, 2003, 2503]))
    assert rows.index.tolist() == [2, 2003, 2503] and list(rows.columns) == table.header
    assert rows.loc[2003, "adm_1"] == "Atlantis province" and rows.loc[2503, "date_start"] == ""
    assert table.rows(np.array([], dtype=np.int64)).empty


def test_reading_in_chunks_holds_a_chunk_of_python_strings_not_the_file(tmp_path_factory):
    # Not timed: the Python allocations (the parser's strings) at their peak, whole against in chunks.
    path = tmp_path_factory.mktemp("big") / "events.csv"
    lines = DEMO.read_text(encoding="utf-8").splitlines()
    # 20,500 rows: the demo four times, with ids of their own.
    path.write_text("\n".join([lines[0], *(f"{k}{line}" for k in range(1, 5) for line in lines[1:])]) + "\n",
                    encoding="utf-8")
    gazetteer = load_gazetteer()

    def peak(chunk_rows: int) -> int:
        tracemalloc.start()
        try:
            read_events(path, gazetteer=gazetteer, chunk_rows=chunk_rows)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(1_000) < 0.4 * peak(WHOLE)


def test_first_occurrence_points_every_row_at_the_first_row_of_its_value():
    values = pd.Series(["b", "a", "b", "c", "a", "b"], dtype="str")
    assert first_occurrence(values).tolist() == [0, 1, 0, 3, 1, 0]
    assert first_occurrence(pd.Series(["a", "b", "c"], dtype="str")) is None
    assert first_occurrence(pd.Series([], dtype="str")) is None
