"""Excel workbooks (.xlsx) are read as their data sheet, like the CSV export of the same rows.

GTD ships as an .xlsx workbook and ACLED's HDX aggregates as .xlsx files; the workbooks here
are written by openpyxl from the CSV fixtures (typed cells: numbers as numbers, dates as
dates), with a notes sheet beside the data as the published files have.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from features.errors import DataError
from features.sources import read_events
from forecast.cli import main


def _typed(value: str):
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _workbook_from_csv(src, out, *, notes: bool = True, date_column: str | None = None):
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    book = Workbook()
    if notes:
        book.active.title = "README"
        book.active.append(["Made-up rows for tests, in the publisher's layout."])
        sheet = book.create_sheet("Data")
    else:
        sheet = book.active
    header = rows[0]
    sheet.append(header)
    for row in rows[1:]:
        cells = [_typed(v) for v in row]
        if date_column is not None:
            i = header.index(date_column)
            cells[i] = dt.datetime.fromisoformat(row[i])
        sheet.append(cells)
    book.save(out)
    return out


def _summary(result):
    ev = result.events
    return list(zip(ev["event_id"], ev["date"].dt.strftime("%Y-%m-%d"), ev["unit"], ev["count"], ev["deaths"]))


@pytest.mark.parametrize("fixture", ["gtd_export.csv", "acled_hdx_admin1_monthly.csv"])
def test_a_workbook_reads_like_its_csv_with_the_same_rows_and_quarantine(fixtures, tmp_path, fixture):
    from_csv = read_events(fixtures / fixture)
    from_xlsx = read_events(_workbook_from_csv(fixtures / fixture, tmp_path / (fixture[:-4] + ".xlsx")))
    assert from_xlsx.format == from_csv.format
    assert _summary(from_xlsx) == _summary(from_csv)
    # The same rows are quarantined, named by the same row numbers (the sheet's).
    assert from_xlsx.quarantine[["row", "column", "reason"]].values.tolist() == \
        from_csv.quarantine[["row", "column", "reason"]].values.tolist()


def test_date_cells_are_read_as_dates(fixtures, tmp_path):
    path = _workbook_from_csv(fixtures / "generic_events.csv", tmp_path / "generic.xlsx", notes=False,
                              date_column="date")
    assert _summary(read_events(path)) == _summary(read_events(fixtures / "generic_events.csv"))


def test_a_legacy_xls_or_a_damaged_workbook_is_named(tmp_path):
    xls = tmp_path / "globalterrorismdb.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(DataError, match=r"old-style Excel \.xls workbook \(save it as \.xlsx or CSV\)"):
        read_events(xls)
    broken = tmp_path / "broken.xlsx"
    book = Workbook()
    book.save(broken)
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"broken\.xlsx: "):
        read_events(broken)


def test_formula_cells_without_a_saved_value_name_the_sheet_and_cell(fixtures, tmp_path):
    path = _workbook_from_csv(fixtures / "gtd_export.csv", tmp_path / "gtd.xlsx")
    book = load_workbook(path)
    sheet = book["Data"]
    nkill = [c.value for c in sheet[1]].index("nkill") + 1
    for row in range(2, sheet.max_row + 1):  # a script wrote formulas and no value (openpyxl saves none)
        sheet.cell(row=row, column=nkill).value = f"=0+{row}"
    book.save(path)
    with pytest.raises(DataError, match=r"gtd.xlsx: sheet 'Data', cell [A-Z]+2: the formula =0\+2 has no saved "
                                        r"value \(and \d+ more cell\(s\)\)"):
        read_events(path)


def test_a_merged_title_row_is_named_as_a_title_not_duplicate_names(fixtures, tmp_path):
    path = _workbook_from_csv(fixtures / "gtd_export.csv", tmp_path / "gtd.xlsx", notes=False)
    book = load_workbook(path)
    sheet = book.active
    sheet.insert_rows(1)
    sheet["A1"] = "Global Terrorism Database: Iraq extract"
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=6)
    book.save(path)
    with pytest.raises(DataError, match=r"sheet 'Sheet', row 1 looks like a title \('Global Terrorism Database: "
                                        r"Iraq extract'\), not a header row: the header is further down \(row 2\?\)"):
        read_events(path)


def _readme_larger_than_data(fixtures, tmp_path):
    path = _workbook_from_csv(fixtures / "acled_hdx_admin1_monthly.csv", tmp_path / "acled.xlsx")
    book = load_workbook(path)
    for i in range(book["Data"].max_row + 5):
        book["README"].append([f"note line {i}"])
    book.save(path)
    return path


def test_the_sheet_read_is_named_and_chosen_with_sheet(fixtures, tmp_path):
    path = _readme_larger_than_data(fixtures, tmp_path)
    with pytest.raises(DataError, match=r"acled.xlsx \(sheet 'README'\): cannot tell the format"):
        read_events(path)
    result = read_events(path, sheet="data")
    assert result.sheet == "Data" and any("read sheet 'Data' of the workbook (as asked)" in n for n in result.notes)
    assert _summary(result) == _summary(read_events(fixtures / "acled_hdx_admin1_monthly.csv"))
    with pytest.raises(DataError, match=r"no sheet 'Events'; the workbook's sheets are 'README', 'Data'"):
        read_events(path, sheet="Events")


def test_data_build_takes_sheet_and_says_which_sheet_it_read(fixtures, tmp_path):
    path = _readme_larger_than_data(fixtures, tmp_path)
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["data", "build", "--events", str(path), "--sheet", "Data", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "read sheet 'Data' of the workbook" in result.output
    result = CliRunner().invoke(main, ["data", "build", "--events", str(fixtures / "gtd_export.csv"), "--sheet",
                                       "Data", "--out", str(out)])
    assert result.exit_code == 1 and "--sheet 'Data' is for an .xlsx workbook" in result.output
