"""Reading a text file as a user gave it: the encoding, and what a file that is not text is.

Every CSV the tool reads (event exports, covariates, panels, gazetteers) is decoded here, so
each gets the same messages: UTF-8 with or without a BOM and UTF-16 with a BOM are read;
UTF-16 without a BOM, a stray NUL byte, a ZIP, PDF, PNG or (Geo)JSON file, and any other
binary file (control bytes that no text file holds) are named as such.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from features.errors import DataError, shorten
from features.workbook import is_workbook, workbook_csv

__all__ = ["read_sheet_text", "read_text", "utf16_without_bom"]

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
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    raw = path.read_bytes()
    read_from = None
    if raw[:4] == b"PK\x03\x04":
        raw, read_from = _single_csv_from_zip(path, raw, sheet)
    elif sheet is not None:
        raise DataError(f"{path}: --sheet {sheet!r} is for an .xlsx workbook, and this file is not one")
    if not raw.strip():
        raise DataError(f"{path}: file is empty; expected a CSV with a header row")
    if encoding:
        try:
            return raw.decode(encoding), read_from
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"{path}: cannot decode as {encoding}: {exc}") from exc
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16"), read_from
    if b"\x00" in raw:
        _refuse_nul_bytes(path, raw)
    if _looks_binary(raw):
        raise DataError(f"{path}: this is a binary file, not a CSV text file (it holds control bytes that no "
                        "text file has)")
    if raw.lstrip()[:1] in (b"{", b"["):
        kind = "GeoJSON" if b"FeatureCollection" in raw[:4096] or b'"features"' in raw[:4096] else "JSON"
        raise DataError(f"{path}: this is a {kind} file, not a CSV table of events or values"
                        + (" (a boundary file belongs to `forecast gazetteer init --boundaries`)" if kind == "GeoJSON"
                           else ""))
    try:
        return raw.decode("utf-8-sig"), read_from
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: byte 0x{raw[exc.start]:02x} is not valid UTF-8. "
            "Re-save the file as UTF-8, or name its encoding with --encoding "
            "(e.g. cp1256 for Windows Arabic, latin-1 for Western European)"
        ) from exc


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


def _refuse_nul_bytes(path: Path, raw: bytes) -> None:
    """Name what a file with NUL bytes is: UTF-16 without a BOM, a known binary, or text with a stray NUL."""
    utf16 = utf16_without_bom(raw)
    if utf16:
        raise DataError(f"{path}: this is UTF-16 text ({utf16[7:].upper()}, no byte-order mark), not UTF-8: "
                        f"re-save it as UTF-8, or name the encoding with --encoding {utf16}")
    kind = next((v for k, v in _NUL_HINTS.items() if raw.startswith(k)), None)
    if kind is None and raw.count(b"\x00") * 100 <= len(raw) and not _looks_binary(raw):
        # A few NULs in a text file: a damaged cell, named by line and field.
        at = raw.index(b"\x00")
        start = raw.rfind(b"\n", 0, at) + 1
        end = raw.find(b"\n", at)
        line_text = raw[start: end if end != -1 else len(raw)].decode("utf-8", errors="replace")
        field_no = line_text[: at - start].count(",") + 1
        cell = line_text.split(",")[field_no - 1] if field_no <= len(line_text.split(",")) else ""
        line = raw[:at].count(b"\n") + 1
        raise DataError(f"{path}, line {line}, field {field_no}: the value "
                        f"{shorten(cell)!r} contains a NUL byte (0x00): the file is damaged; remove the byte "
                        "or export the file again")
    raise DataError(f"{path}: this is {kind or 'a binary file'}, not a CSV text file")


def _single_csv_from_zip(path: Path, raw: bytes, sheet: str | None) -> tuple[bytes, str | None]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            if is_workbook(zf):
                return workbook_csv(path, raw, sheet)
            if sheet is not None:
                raise DataError(f"{path}: --sheet {sheet!r} is for an .xlsx workbook, and this ZIP archive is not one")
            members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(
                    f"{path}: a ZIP archive must hold exactly one .csv file, "
                    f"found {len(members)}: {', '.join(members) or 'none'}"
                )
            return zf.read(members[0]), None
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: damaged ZIP archive ({exc})") from exc
