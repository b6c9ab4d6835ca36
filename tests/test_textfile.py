"""Text files checked a block at a time (features/textfile.py): what lies past the first block is found
and named as when the file was read whole, and a file read as a stream is the file's text."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from features.errors import DataError
from features.sources.table import read_table
from features.textfile import open_text, read_text

#: A little over two of the blocks the checks read (1 MiB each).
ROWS = 40_000
ROW = "2020-01-{day:02d},Baghdad,{i},some words about the event\r\n"


def _rows(n: int = ROWS) -> str:
    return "date,admin1,count,notes\r\n" + "".join(ROW.format(day=1 + i % 28, i=i) for i in range(n))


def test_a_nul_byte_past_the_first_block_is_named_by_line_and_field(tmp_path):
    data = bytearray(_rows().encode("utf-8"))
    line = 30_000
    at = data.index(b"\r\n" + f"2020-01-{1 + (line - 2) % 28:02d},Baghdad,{line - 2},".encode()) + 2
    data[at + 20] = 0  # inside the third field (the count)
    path = tmp_path / "events.csv"
    path.write_bytes(bytes(data))
    assert at > 2**20  # past the first block
    with pytest.raises(DataError, match=rf"events.csv, line {line}, field 3: the value '2\\x00998' contains a NUL"):
        open_text(path)


def test_a_bad_utf8_byte_past_the_first_block_is_named_by_line(tmp_path):
    data = _rows().encode("utf-8") + "2020-02-01,Ba\u0121dad,1,x\r\n".encode("utf-8").replace(b"\xc4\xa1", b"\xe9")
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    with pytest.raises(DataError, match=rf"events.csv, line {ROWS + 2}: byte 0xe9 is not valid UTF-8"):
        open_text(path)


def test_a_character_split_by_a_block_boundary_is_read(tmp_path):
    head = "date,admin1\n"
    filler = "x" * (2**20 - len(head) - 1)
    text = head + filler + "\u0628\u063a\u062f\u0627\u062f\n"  # the first Arabic letter straddles the boundary
    path = tmp_path / "events.csv"
    path.write_bytes(text.encode("utf-8"))
    assert read_text(path) == text


def test_a_bom_does_not_shift_the_byte_named(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"\xef\xbb\xbfdate,admin1\n2020-01-01,Ba\xffdad\n")
    with pytest.raises(DataError, match=r"events.csv, line 2: byte 0xff is not valid UTF-8"):
        open_text(path)


def test_utf16_that_does_not_decode_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes("date,admin1\n2020-01-01,Basra\n".encode("utf-16") + b"\x00")  # an odd byte at the end
    with pytest.raises(DataError, match=r"events.csv: cannot decode as UTF-16 .*truncated data"):
        open_text(path)


def test_an_encoding_error_names_its_position_in_the_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(_rows().encode("ascii") + b"\xff\n")
    size = len(_rows().encode("ascii"))
    with pytest.raises(DataError, match=rf"cannot decode as ascii: 'ascii' codec can't decode byte 0xff in "
                                        rf"position {size}: ordinal not in range\(128\)"):
        open_text(path, encoding="ascii")
    with pytest.raises(DataError, match=r"cannot decode as klingon: unknown encoding: klingon"):
        open_text(path, encoding="klingon")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_a_file_read_as_a_stream_parses_as_its_whole_text(tmp_path, encoding):
    text = _rows() + '2020-03-01,Basra,1,"a note\r\nover two lines"\r\n\r\n2020-03-02,Basra,1,"x\ry"\r\n'
    path = tmp_path / "events.csv"
    path.write_bytes(text.encode(encoding))
    table = read_table(path)
    records = list(csv.reader(io.StringIO(text, newline="")))
    body = [r for r in records[1:] if any(cell.strip() for cell in r)]
    assert table.frame.values.tolist() == body
    # The record over two lines is one row; the blank line after it still counts.
    assert table.rownum[-2:].tolist() == [len(records) - 2, len(records)]


def test_the_csv_of_a_zip_archive_is_read_as_a_stream(tmp_path):
    text = _rows()
    path = tmp_path / "events.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("events.csv", text)
    source = open_text(path)
    assert source.sheet is None
    with source.open() as first, source.open() as second:
        assert first.read() == text == second.read()
