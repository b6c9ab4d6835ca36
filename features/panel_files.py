"""Panel files: writing and reading a panel with its metadata and quarantine, and the panel contract.

A panel file is ``.parquet`` (the metadata also inside its schema) or ``.csv``, with
``<file>.meta.json`` (data vintage, sources with SHA-256, covariates, the unit graph) and
``<file>.quarantine.csv`` (the rows that could not be used) beside it. :func:`validate_panel`
checks the contract of :mod:`features.panel` on any frame, from this tool or another, and
:func:`read_panel` returns the panel carrying its unit graph (:mod:`features.graph`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.atomic import write_atomically
from features.covariates import COVARIATE_BOUND, OBSERVED_KEY, observed_months, parse_months
from features.errors import DataError, shorten
from features.gazetteer import Gazetteer, load_gazetteer
from features.graph import UnitGraph, graph_from_metadata, unit_graph, with_graph
from features.sources.base import MAX_COUNT
from features.textfile import read_text

KEYS = ("unit", "month")
COUNTS = ("incidents", "deaths")
#: Column names other tools use for the unit column; read as ``unit``.
UNIT_ALIASES = ("governorate", "admin1", "province")
_META_KEY = b"forecast.panel"
#: Cells read as missing in a panel CSV's covariate columns (pandas' own list).
_NA_TEXT = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
            "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


@dataclass
class PanelBuild:
    """A built panel with its metadata, quarantine and human-readable notes: what a panel file holds."""

    panel: pd.DataFrame
    metadata: dict
    quarantine: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (a panel's sources, a downloaded file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def month_range(first: pd.Period, last: pd.Period) -> pd.PeriodIndex:
    return pd.period_range(first, last, freq="M")


def panel_to_text(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel as a file holds it: months as ``YYYY-MM`` text; the unit graph goes to the metadata."""
    out = panel.copy()
    out.attrs = {}
    out["month"] = out["month"].astype(str)
    return out


def quarantine_path(panel_path: str | Path) -> Path:
    """``<panel file name>.quarantine.csv``: named after the whole file name, so two panels in one
    folder (``ucdp.v1.parquet``, ``ucdp.v2.parquet``) keep their own quarantine."""
    p = Path(panel_path)
    return p.with_name(p.name + ".quarantine.csv")


def metadata_path(panel_path: str | Path) -> Path:
    p = Path(panel_path)
    return p.with_name(p.name + ".meta.json")


def write_panel(build: PanelBuild, path: str | Path) -> dict[str, Path]:
    """Write the panel (``.parquet`` or ``.csv``), its metadata JSON and quarantine CSV.

    All three files are written atomically together. Returns their paths.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(f"{path}: the panel must be written as .parquet or .csv")
    text = panel_to_text(build.panel)
    meta = json.dumps(build.metadata, indent=2, ensure_ascii=False)

    def write_data(tmp: Path) -> None:
        if suffix == ".parquet":
            table = pa.Table.from_pandas(text, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: meta.encode()})
            pq.write_table(table, tmp)
        else:
            text.to_csv(tmp, index=False)

    qpath, mpath = quarantine_path(path), metadata_path(path)
    write_atomically(
        {
            path: write_data,
            mpath: lambda tmp: tmp.write_text(meta + "\n", encoding="utf-8"),
            qpath: lambda tmp: build.quarantine.to_csv(tmp, index=False),
        }
    )
    return {"panel": path, "metadata": mpath, "quarantine": qpath}


def read_panel(path: str | Path, gazetteer: Gazetteer | None = None) -> tuple[pd.DataFrame, dict]:
    """Read and validate a panel file written by this tool or another.

    Unit names may be any spelling the gazetteer knows; they come back canonical. Without
    ``gazetteer``, the one the panel was built with (its metadata's ``gazetteer`` path) is
    used when that file is still there, else the bundled Iraq gazetteer.

    The panel comes back carrying its unit graph (:func:`features.graph.unit_graph`): the
    neighbours of ``gazetteer`` when given, else those its metadata records (the gazetteer it
    was built with, even if that file has moved since), else those of the gazetteer it was
    checked against.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: panel file not found")
    metadata: dict = {}
    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
            raw_meta = (table.schema.metadata or {}).get(_META_KEY)
            metadata = json.loads(raw_meta) if raw_meta else {}
            if not isinstance(metadata, dict):
                raise json.JSONDecodeError("not a JSON object", str(raw_meta)[:40], 0)
            frame = table.to_pandas()
        elif path.suffix.lower() == ".csv":
            # Decoded like every input CSV: UTF-16, stray NUL bytes and binary files are named as such.
            text = read_text(path)
            header = next(csv.reader(io.StringIO(text, newline="")), [])
            check_header(path, header)
            # Only an empty count cell is a missing month; text such as "nan" in a count is an error.
            counts = [c.strip() for c in header if c.strip() in COUNTS or c.strip().startswith(("incidents_", "deaths_"))]
            frame = pd.read_csv(io.StringIO(text), dtype={"month": str}, keep_default_na=False,
                                na_values={c: ([""] if c.strip() in counts else _NA_TEXT) for c in header})
        else:
            raise DataError(f"{path}: a panel is a .parquet or .csv file")
    except (pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            json.JSONDecodeError, UnicodeError) as exc:
        if isinstance(exc, OSError) and exc.filename:
            raise  # an unreadable path: the command line names it
        raise DataError(f"{path}: cannot read the panel ({shorten(str(exc))})") from exc
    if path.suffix.lower() == ".parquet":
        check_header(path, [str(c) for c in table.column_names])
    if not metadata and metadata_path(path).exists():
        metadata = read_metadata(metadata_path(path))
    given = gazetteer is not None
    if gazetteer is None:
        gazetteer = recorded_gazetteer(metadata)
    panel = validate_panel(frame, source=str(path), gazetteer=gazetteer)
    # The neighbours: a gazetteer given now wins, then the graph the panel was built with, then
    # the gazetteer it was validated against.
    recorded = None if given else graph_from_metadata(metadata, f"{path}: metadata")
    if recorded is not None:
        with_graph(panel, recorded)
    covariates = metadata.get("covariates") if isinstance(metadata.get("covariates"), dict) else {}
    if isinstance(covariates.get("staleness"), dict):
        panel.attrs[OBSERVED_KEY] = observed_months(covariates["staleness"],
                                                    month_range(panel["month"].min(), panel["month"].max()))
    return panel, metadata


def recorded_gazetteer_path(metadata: dict) -> str | None:
    """The file of the gazetteer a panel was built with (its metadata's ``gazetteer``), if still there."""
    recorded = metadata.get("gazetteer") if isinstance(metadata, dict) else None
    return recorded if isinstance(recorded, str) and recorded and Path(recorded).is_file() else None


def recorded_gazetteer(metadata: dict) -> Gazetteer | None:
    """The gazetteer a panel was built with (its metadata's ``gazetteer``), if the file is still there."""
    recorded = recorded_gazetteer_path(metadata)
    return load_gazetteer(recorded) if recorded is not None else None


def panel_gazetteer(path: str | Path, gazetteer: str | Path | None = None) -> Gazetteer:
    """``gazetteer`` when given, else the one panel ``path`` was built with, else the bundled one.

    Reads only the panel's metadata (the Parquet schema or the ``.meta.json`` beside it).
    """
    if gazetteer is not None:
        return load_gazetteer(gazetteer)
    path = Path(path)
    metadata: dict = {}
    try:
        if path.suffix.lower() == ".parquet" and path.is_file():
            raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
            metadata = json.loads(raw) if raw else {}
        if not metadata and metadata_path(path).is_file():
            metadata = read_metadata(metadata_path(path))
    except (pa.ArrowInvalid, ValueError, DataError):
        metadata = {}  # read_panel reports an unreadable panel with its own message
    return recorded_gazetteer(metadata) or load_gazetteer()


def check_header(path: Path, header: Sequence[str]) -> None:
    """Refuse a header that names a column twice (pandas would read the second as ``name.1``)."""
    names = [str(c).strip() for c in header]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise DataError(f"{path}, row 1: duplicate column name(s) {', '.join(shorten(d, 40) for d in dup)}: "
                        "each column must be named once")


def read_metadata(path: Path) -> dict:
    """A panel's ``.meta.json``; a damaged one is an error naming it (rebuild the panel to rewrite it)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: the panel's metadata is not valid JSON ({shorten(str(exc))}); rebuild the panel "
                        "with `forecast data build`, or delete the file to read the panel without it") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: the panel's metadata is a JSON {type(value).__name__}, not an object; rebuild "
                        "the panel with `forecast data build`, or delete the file")
    return value


def validate_panel(frame: pd.DataFrame, *, source: str = "panel", gazetteer: Gazetteer | None = None) -> pd.DataFrame:
    """Check the panel contract and return the panel with canonical units, sorted, carrying its
    unit graph (the one ``frame`` carries, else the gazetteer's neighbours).

    Counts may be empty where no source covers the unit and month (missing, not zero: they
    come back as NaN in a float column).

    Raises
    ------
    DataError
        Missing ``unit``/``month`` column, unknown unit, unparseable month, duplicate or
        missing unit-months, negative or fractional counts. Nothing is repaired.
    """
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if "unit" not in frame:
        alias = next((c for c in frame.columns if c.lower() in UNIT_ALIASES), None)
        if alias is None:
            raise DataError(f"{source}: no 'unit' column; columns are {', '.join(frame.columns)}")
        frame = frame.rename(columns={alias: "unit"})
    if "month" not in frame:
        raise DataError(f"{source}: no 'month' column; columns are {', '.join(frame.columns)}")
    if frame.empty:
        raise DataError(f"{source}: the panel has no rows")
    gazetteer = gazetteer or load_gazetteer()

    # Row numbers in messages are CSV rows (header = row 1).
    months = frame["month"] if isinstance(frame["month"].dtype, pd.PeriodDtype) else parse_months(frame["month"])
    if months.isna().any():
        i = int(np.flatnonzero(months.isna().to_numpy())[0])
        raise DataError(f"{source}, row {i + 2}, column 'month': unparseable month {frame['month'].iloc[i]!r}")
    frame["month"] = months

    raw_units = frame["unit"].astype(str)
    mapping = {name: gazetteer.match(name) for name in raw_units.unique()}
    unknown = [name for name, unit in mapping.items() if unit is None]
    if unknown:
        i = int(np.flatnonzero(raw_units.isin(unknown).to_numpy())[0])
        raise DataError(
            f"{source}, row {i + 2}, column 'unit': unknown {gazetteer.unit_word} "
            f"{raw_units.iloc[i]!r}; {gazetteer.suggest(raw_units.iloc[i])}"
        )
    frame["unit"] = raw_units.map(mapping)

    dup = frame.duplicated(list(KEYS), keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:2] + 2
        raise DataError(
            f"{source}, rows {rows[0]} and {rows[1]}: {frame['unit'].iloc[rows[0] - 2]} "
            f"{frame['month'].iloc[rows[0] - 2]} appears twice (two spellings of one unit?)"
        )
    months_all = month_range(frame["month"].min(), frame["month"].max())
    expected = len(months_all) * frame["unit"].nunique()
    if len(frame) != expected:
        have = set(zip(frame["unit"], frame["month"]))
        gaps = [(u, m) for u in sorted(frame["unit"].unique()) for m in months_all if (u, m) not in have]
        shown = ", ".join(f"{u} {m}" for u, m in gaps[:5])
        raise DataError(
            f"{source}: the grid is incomplete: {len(gaps)} unit-month(s) missing ({shown}"
            f"{' ...' if len(gaps) > 5 else ''}); every unit needs every month from "
            f"{months_all[0]} to {months_all[-1]}, with explicit zeros"
        )
    counts = [c for c in frame.columns if c in COUNTS or c.startswith(("incidents_", "deaths_"))]
    for col in counts:
        values = pd.to_numeric(frame[col], errors="coerce")
        # An empty cell is a unit-month no source covers (missing); anything else must be a count.
        empty = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        bad = ~empty & (values.isna() | ~finite | (values < 0) | (values % 1 != 0) | (values > MAX_COUNT))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{source}, row {i + 2}, column {col!r}: {_shown(frame[col].iloc[i])} is not a "
                            f"non-negative whole number of at most {MAX_COUNT:.0e}{_nul_hint(frame[col].iloc[i])}")
        frame[col] = values.astype("float64") if empty.any() else values.astype("int64")
    for col in [c for c in frame.columns if c not in (*KEYS, *counts)]:
        _check_covariate(frame[col], col, source)
    panel = frame.sort_values(list(KEYS)).reset_index(drop=True)
    # A frame that carries a graph keeps it; otherwise the units' neighbours are the gazetteer's.
    return with_graph(panel, unit_graph(frame) or UnitGraph.from_gazetteer(gazetteer))


def _shown(value) -> str:
    return repr(shorten(str(value)))


def _nul_hint(value) -> str:
    return ": it contains a NUL byte (a damaged file?)" if "\x00" in str(value) else ""


def _check_covariate(column: pd.Series, col: str, source: str) -> None:
    """A covariate column in a panel: numbers (empty allowed), finite, within the covariates' bound."""
    if pd.api.types.is_bool_dtype(column) or isinstance(column.dtype, pd.PeriodDtype):
        return
    values = pd.to_numeric(column, errors="coerce")
    given = column.notna() & (column.astype(str).str.strip() != "")
    bad = given & (values.isna() | ~(values.abs() <= COVARIATE_BOUND))
    if bad.any():
        if not pd.api.types.is_numeric_dtype(column) and bad.sum() == given.sum():
            return  # a text column (a label, a note): not a covariate, the models ignore it
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{source}, row {i + 2}, column {col!r}: {_shown(column.iloc[i])} is not a finite number "
                        f"within +/-{COVARIATE_BOUND:.0e}{_nul_hint(column.iloc[i])}")
