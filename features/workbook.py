"""An Excel workbook (.xlsx) as the CSV text the readers parse.

GTD is distributed as an .xlsx workbook, and so are ACLED's aggregated admin-1 files on HDX.
Rather than a second reader per format, the workbook's data sheet is written out as CSV:
every reader, every message (file, row, column) and the quarantine then work on it as on a
CSV export. Row numbers are the sheet's row numbers (the header is row 1).

The data sheet is the one the user names (``--sheet``), else the one with the most rows (a
workbook may carry a notes or README sheet beside its data); the build names the sheet read.
A formula cell is read from the value the spreadsheet program saved with it: a workbook
written by a program that saves formulas without values (some exporters and scripts) is
refused with the sheet and cell, never read as empty cells. A first row that holds one value
over a wider table below it (a merged title) is refused as a title, not read as a header
of empty names. Cells become text as a CSV export would write them: empty cells empty,
whole numbers without ``.0``, dates as ``YYYY-MM-DD`` (with the time when it is not
midnight). The legacy binary ``.xls`` format is not read; save it as .xlsx or CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from features.errors import DataError, shorten

__all__ = ["is_workbook", "workbook_csv"]

#: Rows under the first searched for the real header when row 1 looks like a title.
_TITLE_SEARCH_ROWS = 20


def is_workbook(archive: zipfile.ZipFile) -> bool:
    """An Office Open XML spreadsheet, not a plain ZIP of CSV files."""
    return "xl/workbook.xml" in archive.namelist()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def workbook_csv(path: Path, raw: bytes, sheet: str | None = None) -> tuple[bytes, str]:
    """The data sheet of the workbook ``raw`` (read from ``path``) as UTF-8 CSV bytes, and its name.

    ``sheet`` names the sheet (case does not matter); by default the one with the most rows.

    Raises
    ------
    DataError
        A damaged workbook, no sheets, an unknown ``sheet``, an empty sheet, a formula cell
        without a saved value, or a title row above the header (each naming the sheet).
    """
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DataError(f"{path}: cannot read the Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        ws = _choose_sheet(path, list(book.worksheets), sheet)
        rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()
    title = ws.title
    if not any(any(cell for cell in row) for row in rows):
        raise DataError(f"{path}: sheet {title!r}, the workbook's {'chosen' if sheet else 'largest'}, is empty")
    if _has_formulas(raw):
        _refuse_unsaved_formulas(path, raw, title)
    _refuse_title_row(path, title, rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8"), title


def _choose_sheet(path: Path, sheets: list, wanted: str | None):
    if not sheets:
        raise DataError(f"{path}: the workbook has no sheets")
    if wanted is None:
        return max(sheets, key=lambda ws: ws.max_row or 0)
    found = [ws for ws in sheets if ws.title == wanted] or [
        ws for ws in sheets if ws.title.strip().casefold() == wanted.strip().casefold()]
    if not found:
        raise DataError(f"{path}: no sheet {wanted!r}; the workbook's sheets are "
                        f"{', '.join(repr(ws.title) for ws in sheets)}")
    return found[0]


def _has_formulas(raw: bytes) -> bool:
    """Whether any worksheet of the workbook holds a formula (an ``<f>`` element)."""
    marks = (b"<f>", b"<f ", b":f>", b":f ")
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name in archive.namelist():
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            # Streamed in 1 MiB pieces (a GTD sheet is hundreds of MiB of XML), overlapping by 3 bytes.
            with archive.open(name) as xml:
                tail = b""
                while piece := xml.read(1 << 20):
                    window = tail + piece
                    if any(mark in window for mark in marks):
                        return True
                    tail = window[-3:]
    return False


def _refuse_unsaved_formulas(path: Path, raw: bytes, title: str) -> None:
    """Refuse formula cells whose saved value is missing: they would read as empty cells."""
    formulas = load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    values = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    try:
        unsaved = []
        pairs = zip(formulas[title].iter_rows(values_only=True), values[title].iter_rows(values_only=True))
        for r, (formula_row, value_row) in enumerate(pairs):
            for c, formula in enumerate(formula_row):
                saved = value_row[c] if c < len(value_row) else None
                if isinstance(formula, str) and formula.startswith("=") and saved is None:
                    unsaved.append((f"{get_column_letter(c + 1)}{r + 1}", formula))
    finally:
        formulas.close()
        values.close()
    if unsaved:
        cell, formula = unsaved[0]
        more = f" (and {len(unsaved) - 1:,} more cell(s))" if len(unsaved) > 1 else ""
        raise DataError(
            f"{path}: sheet {title!r}, cell {cell}: the formula {shorten(formula, 60)} has no saved value{more}; "
            "the program that wrote the workbook did not compute its formulas. Open it in Excel or "
            "LibreOffice and save it again (or export the sheet as CSV)"
        )


def _refuse_title_row(path: Path, title: str, rows: list[list[str]]) -> None:
    """Refuse a first row of one value over a wider table: a title (often merged cells), not a header."""
    filled = [cell for cell in rows[0] if cell.strip()]
    if len(filled) != 1:
        return
    for number, row in enumerate(rows[1:_TITLE_SEARCH_ROWS + 1], start=2):
        if sum(1 for cell in row if cell.strip()) >= 2:
            raise DataError(
                f"{path}: sheet {title!r}, row 1 looks like a title ({shorten(filled[0], 60)!r}), not a header "
                f"row: the header is further down (row {number}?). Delete the rows above the header, or "
                "export the table as CSV"
            )
