"""Reading a text file as a user gave it: the encoding, and what a file that is not text is.

Every CSV the tool reads (event exports, covariates, panels, gazetteers) is decoded here, so
each gets the same messages: UTF-8 with or without a BOM and UTF-16 with a BOM are read;
UTF-16 without a BOM, a stray NUL byte, a ZIP, PDF, PNG or (Geo)JSON file, and any other
binary file (control bytes that no text file holds) are named as such.

A file is checked in one pass over its bytes, a block at a time, before any of it is parsed,
and then read as a stream (:func:`open_text`): an event export of a gigabyte is never held
in memory whole, and a bad byte at its end is still reported before anything else happens.
"""

from __future__ import annotations

import codecs
import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from features.errors import DataError, shorten
from features.workbook import is_workbook, workbook_csv

__all__ = ["TextSource", "open_text", "read_sheet_text", "read_text", "utf16_without_bom"]

_NUL_HINTS = {
    b"PK\x03\x04": "a ZIP archive with no single CSV inside",
    b"\xd0\xcf\x11\xe0": "an old-style Excel .xls workbook (save it as .xlsx or CSV)",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
}


#: Bytes no text file holds: C0 controls other than tab, line feed, form feed and carriage return, and DEL.
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 32), 127])
#: Share of such bytes (NUL aside) in the first 64 KiB above which a file is binary. A text file
#: with a damaged cell has a stray NUL, but next to none of the other controls; 20 KB of random
#: bytes has about 11% of them.
_BINARY_SHARE = 0.005
#: The start of a file that the binary, UTF-16 and JSON checks look at.
_HEAD = 65536
#: Bytes read at a time.
_BLOCK = 1 << 20


@dataclass(frozen=True)
class TextSource:
    """A text file that passed the checks of :func:`open_text`; :meth:`open` reads it again from the start.

    ``sheet`` is the workbook sheet read (None for a CSV).
    """

    path: Path
    encoding: str
    sheet: str | None
    opener: Callable[[], BinaryIO]

    def open(self) -> TextIO:
        """A fresh text stream over the file, lines split as :mod:`csv` wants them (``newline=""``)."""
        return io.TextIOWrapper(self.opener(), encoding=self.encoding, newline="")


def read_text(path: Path, encoding: str | None = None) -> str:
    """Return the decoded text of a CSV file (or of the single CSV inside a .zip, or of an
    .xlsx workbook's data sheet: :mod:`features.workbook`).

    UTF-8 with or without a BOM and UTF-16 with a BOM are recognised; anything else must be
    named with ``encoding`` (e.g. ``cp1256`` for Windows Arabic), because guessing a legacy
    encoding silently turns Arabic names into mojibake.
    """
    return read_sheet_text(path, encoding)[0]


def read_sheet_text(path: Path, encoding: str | None = None, sheet: str | None = None) -> tuple[str, str | None]:
    """:func:`read_text`, and the name of the workbook sheet read (None for a CSV).

    ``sheet`` names the sheet of an .xlsx workbook to read (default: the largest); it is an
    error for a file that is not a workbook.
    """
    source = open_text(path, encoding, sheet)
    with source.open() as stream:
        return stream.read(), source.sheet


def open_text(path: Path, encoding: str | None = None, sheet: str | None = None) -> TextSource:
    """Check a CSV file (or the single CSV of a .zip, or an .xlsx workbook's sheet) as :func:`read_text`
    does, without holding it in memory, and return how to read it (``sheet`` as there)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    read_from = None
    if magic == b"PK\x03\x04":
        opener, read_from = _single_csv_from_zip(path, sheet)
    elif sheet is not None:
        raise DataError(f"{path}: --sheet {sheet!r} is for an .xlsx workbook, and this file is not one")
    else:
        def opener() -> BinaryIO:
            return open(path, "rb")
    return TextSource(path, _checked_encoding(path, opener, encoding), read_from, opener)


@dataclass
class _Scan:
    """What one pass over a file's bytes found (positions are byte offsets in the file)."""

    head: bytes = b""
    size: int = 0
    newlines: int = 0
    last_newline: int = -1
    has_text: bool = False
    first_text: bytes = b""
    nuls: int = 0
    #: The first NUL byte: its offset, its line number and the offsets its line starts and ends at.
    nul_at: int = -1
    nul_line: int = 0
    nul_line_span: tuple[int, int] = (0, -1)
    #: The first byte the decoder refused: its offset, line, the byte and the decoder's message.
    bad_at: int = -1
    bad_line: int = 0
    bad_byte: int = 0
    bad_message: str = ""


def _checked_encoding(path: Path, opener: Callable[[], BinaryIO], encoding: str | None) -> str:
    """The encoding to read the file with, after the checks (in the order of their precedence)."""
    scan = _scan(path, opener, encoding)
    if not scan.has_text:
        raise DataError(f"{path}: file is empty; expected a CSV with a header row")
    if encoding:
        if scan.bad_message:
            raise DataError(f"{path}: cannot decode as {encoding}: {scan.bad_message}")
        return encoding
    if scan.head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        if scan.bad_message:
            raise DataError(f"{path}: cannot decode as UTF-16 (the file starts with its byte-order mark): "
                            f"{scan.bad_message}")
        return "utf-16"
    if scan.nuls:
        _refuse_nul_bytes(path, opener, scan)
    if _looks_binary(scan.head):
        raise DataError(f"{path}: this is a binary file, not a CSV text file (it holds control bytes that no "
                        "text file has)")
    if scan.first_text in (b"{", b"["):
        head = scan.head[:4096]
        kind = "GeoJSON" if b"FeatureCollection" in head or b'"features"' in head else "JSON"
        raise DataError(f"{path}: this is a {kind} file, not a CSV table of events or values"
                        + (" (a boundary file belongs to `forecast gazetteer init --boundaries`)" if kind == "GeoJSON"
                           else ""))
    if scan.bad_message:
        raise DataError(
            f"{path}, line {scan.bad_line}: byte 0x{scan.bad_byte:02x} is not valid UTF-8. "
            "Re-save the file as UTF-8, or name its encoding with --encoding "
            "(e.g. cp1256 for Windows Arabic, latin-1 for Western European)"
        )
    return "utf-8-sig"


def _scan(path: Path, opener: Callable[[], BinaryIO], encoding: str | None) -> _Scan:
    """One pass over the bytes: the head, NUL bytes, and the first byte the encoding cannot decode."""
    scan = _Scan()
    decoder = None
    try:
        with opener() as fh:
            while block := fh.read(_BLOCK):
                if len(scan.head) < _HEAD:
                    scan.head += block[: _HEAD - len(scan.head)]
                if not scan.size:
                    decoder = _decoder(scan, encoding)
                _scan_block(scan, block, decoder)
            if decoder is not None and not scan.bad_message:
                _decode(scan, decoder, b"", final=True)
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: damaged ZIP archive ({exc})") from exc
    return scan


def _decoder(scan: _Scan, encoding: str | None) -> codecs.IncrementalDecoder | None:
    """The decoder of the file's encoding (None, and the reason recorded, for an unknown one)."""
    name = encoding or ("utf-16" if scan.head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
    try:
        return codecs.getincrementaldecoder(name)()
    except LookupError as exc:
        scan.bad_message = str(exc)
        return None


def _scan_block(scan: _Scan, block: bytes, decoder: codecs.IncrementalDecoder | None) -> None:
    start = scan.size
    if not scan.has_text:
        text = block.lstrip()
        if text:
            scan.has_text, scan.first_text = True, text[:1]
    if scan.nul_at >= 0 and scan.nul_line_span[1] < 0:
        end = block.find(b"\n")
        if end >= 0:
            scan.nul_line_span = (scan.nul_line_span[0], start + end)
    nuls = block.count(b"\x00")
    if nuls and scan.nul_at < 0:
        at = block.index(b"\x00")
        before = block.rfind(b"\n", 0, at)
        after = block.find(b"\n", at)
        scan.nul_at = start + at
        scan.nul_line = scan.newlines + block.count(b"\n", 0, at) + 1
        scan.nul_line_span = (start + before + 1 if before >= 0 else scan.last_newline + 1,
                              start + after if after >= 0 else -1)
    scan.nuls += nuls
    if decoder is not None and not scan.bad_message:
        _decode(scan, decoder, block)
    scan.newlines += block.count(b"\n")
    last = block.rfind(b"\n")
    if last >= 0:
        scan.last_newline = start + last
    scan.size += len(block)


def _decode(scan: _Scan, decoder: codecs.IncrementalDecoder, block: bytes, final: bool = False) -> None:
    """Decode (and drop) one block; record where decoding first fails, as a whole-file decode would say."""
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError as exc:
        # The decoder's input is the block after bytes it held back from the one before (or,
        # for a BOM, the block without it): offsets in the file are counted from the block.
        at = scan.size + exc.start - (len(exc.object) - len(block))
        end = at + (exc.end - exc.start)
        scan.bad_at, scan.bad_byte = at, exc.object[exc.start]
        scan.bad_line = scan.newlines + block.count(b"\n", 0, max(at - scan.size, 0)) + 1
        where = f"byte 0x{exc.object[exc.start]:02x} in position {at}" if end == at + 1 else \
            f"bytes in position {at}-{end - 1}"
        scan.bad_message = f"'{exc.encoding}' codec can't decode {where}: {exc.reason}"


def utf16_without_bom(raw: bytes) -> str | None:
    """``"utf-16-le"`` / ``"utf-16-be"`` when ``raw`` looks like mostly-ASCII UTF-16 text without a BOM."""
    sample = raw[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def _looks_binary(raw: bytes) -> bool:
    """Whether ``raw`` holds more control bytes (NUL aside) than a text file ever does."""
    sample = raw[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES[1:]))
    return controls >= 8 and controls > _BINARY_SHARE * len(sample)


def _refuse_nul_bytes(path: Path, opener: Callable[[], BinaryIO], scan: _Scan) -> None:
    """Name what a file with NUL bytes is: UTF-16 without a BOM, a known binary, or text with a stray NUL."""
    utf16 = utf16_without_bom(scan.head)
    if utf16:
        raise DataError(f"{path}: this is UTF-16 text ({utf16[7:].upper()}, no byte-order mark), not UTF-8: "
                        f"re-save it as UTF-8, or name the encoding with --encoding {utf16}")
    kind = next((v for k, v in _NUL_HINTS.items() if scan.head.startswith(k)), None)
    if kind is None and scan.nuls * 100 <= scan.size and not _looks_binary(scan.head):
        # A few NULs in a text file: a damaged cell, named by line and field.
        start, end = scan.nul_line_span
        line_bytes = _read_span(opener, start, end if end >= 0 else scan.size)
        line_text = line_bytes.decode("utf-8", errors="replace")
        field_no = line_bytes[: scan.nul_at - start].count(b",") + 1
        cells = line_text.split(",")
        cell = cells[field_no - 1] if field_no <= len(cells) else ""
        raise DataError(f"{path}, line {scan.nul_line}, field {field_no}: the value "
                        f"{shorten(cell)!r} contains a NUL byte (0x00): the file is damaged; remove the byte "
                        "or export the file again")
    raise DataError(f"{path}: this is {kind or 'a binary file'}, not a CSV text file")


def _read_span(opener: Callable[[], BinaryIO], start: int, end: int) -> bytes:
    """Bytes ``start:end`` of the stream."""
    out = bytearray()
    pos = 0
    with opener() as fh:
        while pos < end and (block := fh.read(_BLOCK)):
            out += block[max(start - pos, 0): max(end - pos, 0)]
            pos += len(block)
    return bytes(out)


def _single_csv_from_zip(path: Path, sheet: str | None) -> tuple[Callable[[], BinaryIO], str | None]:
    """How to read the CSV of a ZIP archive (its one .csv member, or a workbook's sheet as CSV)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if is_workbook(zf):
                data, title = workbook_csv(path, path.read_bytes(), sheet)
                return (lambda: io.BytesIO(data)), title
            if sheet is not None:
                raise DataError(f"{path}: --sheet {sheet!r} is for an .xlsx workbook, and this ZIP archive is not one")
            members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(
                    f"{path}: a ZIP archive must hold exactly one .csv file, "
                    f"found {len(members)}: {', '.join(members) or 'none'}"
                )
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: damaged ZIP archive ({exc})") from exc

    def opener() -> BinaryIO:
        with zipfile.ZipFile(path) as archive:
            # The member stays readable after the archive object is closed.
            return archive.open(members[0])

    return opener, None
