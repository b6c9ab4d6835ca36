"""A CSV table read as a stream: the header, then the data rows in chunks, with their file row numbers.

Row numbers in messages and in the quarantine file are CSV record numbers with the header as
row 1 (the first data row is row 2; a skipped HXL tag row still counts, and so does a blank
line; a quoted value spanning lines is one record), which is what a spreadsheet shows.

Only a chunk of records is in memory at a time, and of each chunk only the columns asked for
are kept, so an event export of a gigabyte is read in bounded memory. Python's :mod:`csv`
parses it, as it always did: pandas' and pyarrow's CSV readers are faster, but neither gives the
record number of a row nor keeps a row with the wrong number of fields for the quarantine.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError, shorten
from features.textfile import TextSource, open_text

__all__ = ["CHUNK_ROWS", "CsvTable", "RawTable", "read_table"]

#: Data rows parsed at a time: about 100 MB of Python strings for a 40-column UCDP export.
CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class RawTable:
    """A CSV as text: the data rows, their file row numbers, and rows the parser found broken."""

    frame: pd.DataFrame
    rownum: np.ndarray
    broken: pd.Series  # reason per row, '' when the row parsed cleanly
    #: The workbook sheet the rows come from (None for a CSV).
    sheet: str | None = None

    def where(self, path: Path) -> str:
        """The file as messages name it: with the sheet for a workbook."""
        return f"{path} (sheet {self.sheet!r})" if self.sheet else str(path)


def read_table(path: Path, encoding: str | None = None, sheet: str | None = None) -> RawTable:
    """Parse a CSV into an all-text frame and the file row number of every data row.

    A HDX HXL hashtag row under the header (``#date+start,#adm1+name,...``) is skipped.
    Rows with the wrong number of fields are kept for the quarantine, unless most rows are
    like that, in which case the file is not the table it claims to be.
    """
    return next(CsvTable(path, encoding, sheet).chunks(rows=None))


class CsvTable:
    """A CSV file whose header has been read and checked; its data rows are read by :meth:`chunks`.

    Parameters
    ----------
    path, encoding, sheet
        As :func:`features.textfile.open_text` takes them.
    """

    def __init__(self, path: Path, encoding: str | None = None, sheet: str | None = None) -> None:
        self.source: TextSource = open_text(path, encoding, sheet)
        self.sheet = self.source.sheet
        #: The file as messages name it: with the sheet for a workbook.
        self.where = f"{path} (sheet {self.sheet!r})" if self.sheet else str(path)
        with self.source.open() as stream:
            records = csv.reader(stream)
            first = next(iter(self._read(records, 1)), None)
            problem = _header_problem(first)
            if problem:
                # A file the CSV parser cannot read is named as such first, as when it was read whole.
                while self._read(records, CHUNK_ROWS):
                    pass
                raise DataError(f"{self.where}{problem}")
        #: Column names as in the file, stripped.
        self.header: list[str] = [cell.strip() for cell in first]

    def check_rest(self) -> None:
        """Read the data rows for their errors only (a file the parser cannot read, mostly ragged rows)."""
        for _ in self._batches(CHUNK_ROWS):
            pass

    def chunks(self, columns: Sequence[str] | None = None, rows: int | None = CHUNK_ROWS) -> Iterator[RawTable]:
        """The data rows, at most ``rows`` at a time (None: all at once), with only ``columns`` (default: all).

        Blank lines and a HXL tag row are skipped; a row with the wrong number of fields is
        padded, or its surplus folded into the last column, and its reason set in ``broken``.
        When the stream ends, a file where most rows have the wrong number of fields is an error.
        """
        names = list(self.header if columns is None else columns)
        at = [self.header.index(c) for c in names]
        # A file of no data rows is one empty chunk.
        for numbers, records, broken in self._batches(rows, at_least_one=True):
            frame = pd.DataFrame({name: [rec[i] for rec in records] for name, i in zip(names, at)},
                                 columns=names, index=pd.RangeIndex(len(records)), dtype=str)
            yield RawTable(frame, np.asarray(numbers, dtype=np.int64),
                           pd.Series(broken, index=frame.index, dtype=object), self.sheet)

    def rows(self, numbers: np.ndarray) -> pd.DataFrame:
        """The rows with these file row numbers, all columns, indexed by row number (read again from the file)."""
        wanted = set(np.asarray(numbers).tolist())
        parts = [pd.DataFrame(columns=self.header, index=pd.Index([], dtype=np.int64), dtype=str)]
        left = len(wanted)
        for batch_numbers, records, _ in self._batches(CHUNK_ROWS) if wanted else ():
            hits = [i for i, n in enumerate(batch_numbers) if n in wanted]
            if hits:
                # Kept as pyarrow strings a batch at a time: a quarantine of most of a big file stays compact.
                parts.append(pd.DataFrame([records[i] for i in hits], columns=self.header,
                                          index=pd.Index([batch_numbers[i] for i in hits], dtype=np.int64), dtype=str))
                left -= len(hits)
            if not left:
                break
        return pd.concat(parts) if len(parts) > 1 else parts[0]

    def _read(self, records, n: int | None) -> list[list[str]]:
        """The next ``n`` records (None: all)."""
        try:
            return list(itertools.islice(records, n))
        except csv.Error as exc:
            raise DataError(f"{self.where}: not a readable CSV ({exc})") from exc

    def _batches(self, size: int | None, at_least_one: bool = False
                 ) -> Iterator[tuple[list[int], list[list[str]], list[str]]]:
        """(row numbers, records, reasons) of the data rows, at most ``size`` rows at a time."""
        width = len(self.header)
        body = ragged = 0
        first_ragged: tuple[int, int] | None = None
        with self.source.open() as stream:
            records = csv.reader(stream)
            self._read(records, 1)  # the header
            number = 1  # of the last record read
            while batch := self._read(records, size):
                numbers = list(range(number + 1, number + 1 + len(batch)))
                broken = [""] * len(batch)
                skip = {0} if number == 1 and _is_hxl_row(batch[0]) else set()
                number += len(batch)
                # Rows looked at one by one: a first cell that may be blank, or the wrong number of fields.
                for i in [i for i, rec in enumerate(batch) if len(rec) != width or not (c := rec[0]) or c.isspace()]:
                    rec = batch[i]
                    if i in skip or not any(c and not c.isspace() for c in rec):
                        # Blank lines carry no data: they are skipped rather than reported as bad rows.
                        skip.add(i)
                    elif len(rec) != width:
                        ragged += 1
                        first_ragged = first_ragged or (numbers[i], len(rec))
                        broken[i] = f"{len(rec)} fields where the header has {width}"
                        # Keep what the row held, so the quarantine shows it: pad, or fold the surplus
                        # into the last column.
                        batch[i] = (rec + [""] * width)[:width] if len(rec) < width else [
                            *rec[: width - 1], ",".join(rec[width - 1:])]
                if skip:
                    keep = [i for i in range(len(batch)) if i not in skip]
                    numbers, batch, broken = ([x[i] for i in keep] for x in (numbers, batch, broken))
                body += len(batch)
                if batch:
                    yield numbers, batch, broken
        if first_ragged and ragged > body / 2:
            raise DataError(
                f"{self.where}, row {first_ragged[0]}: {first_ragged[1]} fields where the header has {width}, "
                f"and so do {ragged} of {body} rows: this is not a well-formed CSV "
                "(wrong delimiter or unbalanced quotes?)"
            )
        if at_least_one and not body:
            yield [], [], []


def _header_problem(first: list[str] | None) -> str:
    """What is wrong with the header row, as the end of a message ('' if nothing)."""
    if first is None or not any(cell.strip() for cell in first):
        return ": the first row is empty; expected a header row"
    header = [cell.strip() for cell in first]
    if len(set(header)) == len(header):
        return ""
    named = [shorten(c, 40) for c in sorted({c for c in header if header.count(c) > 1}) if c]
    if named:
        return f", row 1: duplicate column name(s) {', '.join(named)}"
    return f", row 1: {header.count('')} of its {len(header)} columns have no name; is row 1 the header?"


def _is_hxl_row(record: Sequence[str]) -> bool:
    cells = [c.strip() for c in record if c.strip()]
    return bool(cells) and all(c.startswith("#") for c in cells)
