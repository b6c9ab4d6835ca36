"""An Excel workbook (.xlsx) as the CSV text the readers parse.

GTD is distributed as an .xlsx workbook, and so are ACLED's aggregated admin-1 files on HDX.
Rather than a second reader per format, the workbook's data sheet is written out as CSV:
every reader, every message (file, row, column) and the quarantine then work on it as on a
CSV export. Row numbers are the sheet's row numbers (the header is row 1).

The data sheet is the one with the most rows (a workbook may carry a notes or README sheet
beside its data). Cells become text as a CSV export would write them: empty cells empty,
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

from features.errors import DataError

__all__ = ["is_workbook", "workbook_csv"]


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


def workbook_csv(path: Path, raw: bytes) -> bytes:
    """The data sheet of the workbook ``raw`` (read from ``path``) as UTF-8 CSV bytes."""
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DataError(f"{path}: cannot read the Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheets = list(book.worksheets)
        if not sheets:
            raise DataError(f"{path}: the workbook has no sheets")
        sheet = max(sheets, key=lambda ws: ws.max_row or 0)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in sheet.iter_rows(values_only=True):
            writer.writerow([_cell_text(v) for v in row])
    finally:
        book.close()
    text = out.getvalue()
    if not text.strip(",\n"):
        raise DataError(f"{path}: sheet {sheet.title!r}, the workbook's largest, is empty")
    return text.encode("utf-8")
