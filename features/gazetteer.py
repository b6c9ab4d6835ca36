"""Admin-1 gazetteer: canonical unit names, aliases, neighbours and map positions.

The gazetteer is a CSV with one row per admin-1 unit (for Iraq: the 18 governorates in
``data/reference/iraq_governorates.csv``). Any other country works by passing a CSV with the
same columns (``--gazetteer PATH``):

========== ==========================================================================
column     meaning
========== ==========================================================================
unit_id    stable identifier (ISO 3166-2 code, e.g. ``IQ-AN``)
name       canonical English name; this is what ``unit`` holds in every panel
name_ar    name in the local script (optional, used as one more alias)
country    country name as the event sources spell it (rows of other countries are
           quarantined, not guessed)
aliases    ``|``-separated alternative spellings, transliterations, old names, codes
capital    capital city; capital_lat / capital_lon its WGS84 position
neighbours ``|``-separated ``unit_id`` of units sharing a land border
borders    ``|``-separated foreign countries the unit borders
tile_row   row / column of the unit on a tile-grid map (0-based, row 0 at the top)
tile_col
========== ==========================================================================

Only ``name`` is required (add ``country`` when an event file covers several countries).
Every other column may be left out; :attr:`Gazetteer.notes` says once what that means
(no neighbour features, a tile map laid out automatically, ...).

Matching is insensitive to case, diacritics, punctuation, a leading Arabic article
(``al-``, ``as``, ``ad`` ...) and a trailing ``governorate`` / ``province`` word, so
``Al Anbār province``, ``AL-ANBAR`` and ``Anbar Governorate`` all resolve to ``Anbar``.

Halabja was recognised as Iraq's 19th governorate (by Baghdad in 2014, never fully
implemented); the event sources and the 2019 OCHA boundaries place it in Sulaymaniyah, so
``Halabja`` is an alias of Sulaymaniyah by default. A user who wants it separate supplies a
gazetteer with its own row.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.errors import DataError, shorten
from features.textfile import read_text

REQUIRED_COLUMNS = ("name",)

#: What leaving out an optional column means, said once in the gazetteer's notes.
_ABSENT_MEANS = {
    "unit_id": "unit ids are the names",
    "name_ar": "no local-script names to match",
    "country": "events are not filtered by country (add one where a file covers several)",
    "aliases": "only the names themselves are matched",
    "capital": "no capitals",
    "neighbours": "no neighbour features (models use the national mean instead)",
    "borders": "no border features",
    "tile_row": "the report's tile map is laid out automatically",
}

GAZETTEER_COLUMNS = (
    "unit_id",
    "name",
    "name_ar",
    "country",
    "aliases",
    "capital",
    "capital_lat",
    "capital_lon",
    "neighbours",
    "borders",
    "tile_row",
    "tile_col",
)

#: Leading articles dropped before matching ("Al Anbar" == "Anbar").
_ARTICLES = {"al", "el", "an", "as", "ad", "at", "ar", "ash", "az", "ath", "adh"}
#: Trailing administrative words dropped before matching ("Diyala province" == "Diyala").
_ADMIN_WORDS = {"governorate", "province", "muhafazat", "muhafazah", "muhafaza", "region"}
_ARABIC_ADMIN = "محافظة"
# Arabic letter variants that spellings use interchangeably.
_ARABIC_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي", "ـ": ""})


def _is_symbol(token: str) -> bool:
    return len(token) == 1 and unicodedata.category(token) == "So"


def visible(text: str) -> str:
    """``text`` with its invisible characters shown as ``<U+200B>``, so two names that look alike can be told apart."""
    return "".join(f"<U+{ord(ch):04X}>" if unicodedata.category(ch) in ("Cf", "Cc", "Zl", "Zp")
                   or (unicodedata.category(ch) == "Zs" and ch != " ") or "\ufe00" <= ch <= "\ufe0f" else ch
                   for ch in str(text))


def normalise_name(text: str) -> str:
    """Reduce a place name to its matching key.

    Case, diacritics (``ā``, ``ş``, ``ḩ``), apostrophes and hyphens, a leading Arabic article
    and a trailing ``governorate``/``province`` word do not matter.

    Examples
    --------
    >>> normalise_name("Al Başrah  province")
    'basrah'
    >>> normalise_name("Salah Al-Din")
    'salah din'
    """
    s = unicodedata.normalize("NFKD", str(text))
    # Invisible format characters (a zero-width space or joiner, a direction mark, a soft
    # hyphen) and emoji variation selectors are dropped: "Zero\u200bWidth" == "ZeroWidth".
    s = "".join(ch for ch in s if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
                and not "\ufe00" <= ch <= "\ufe0f")
    # Symbols (emoji) are words of their own, not punctuation: "🔥" and "💧" stay two names.
    s = "".join(f" {ch} " if unicodedata.category(ch) == "So" else ch for ch in s)
    s = s.translate(_ARABIC_FOLD).casefold()
    s = s.replace(_ARABIC_ADMIN, " ")
    # Apostrophes and ayn/hamza marks vanish ("Karbalā’" == "Karbala"); other punctuation splits.
    s = re.sub(r"['’‘`ʿʾ]", "", s)
    s = " ".join(t if _is_symbol(t) else re.sub(r"[^\w]+", " ", t) for t in s.split())
    words = s.split()
    while words and words[-1] in _ADMIN_WORDS:
        words.pop()
    # Drop articles anywhere except when they are the whole name ("Salah ad Din" -> "salah din"):
    # transliterations disagree on whether the article is written at all.
    kept = [w for w in words if w not in _ARTICLES]
    words = kept or words
    # Arabic article glued to the word: "البصرة" == "بصرة".
    words = [w[2:] if w.startswith("ال") and len(w) > 3 else w for w in words]
    return " ".join(words)


@dataclass(frozen=True)
class Gazetteer:
    """Canonical admin-1 units of one or more countries and the spellings that map to them."""

    units: pd.DataFrame
    path: str
    _lookup: dict[str, str] = field(repr=False, compare=False)
    #: unit_id (upper case) -> name; ids are matched exactly, not through normalise_name,
    #: because "IQ-AR" would lose its "AR" as if it were an article.
    _ids: dict[str, str] = field(repr=False, compare=False)
    #: One sentence per optional column the CSV left out, and what that means downstream.
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Canonical unit names, in gazetteer order."""
        return self.units["name"].tolist()

    @property
    def countries(self) -> set[str]:
        """Countries the gazetteer covers (empty when it has no ``country`` column)."""
        return {c for c in self.units["country"] if c.strip()}

    def match(self, raw: str) -> str | None:
        """Canonical name for a spelling, or None when the spelling is unknown."""
        if raw is None or (isinstance(raw, float) and pd.isna(raw)):
            return None
        text = str(raw).strip()
        # HASC codes (GADM's HASC_1, "IQ.AN") are ISO 3166-2 codes with a dot for the hyphen.
        code = text.upper().replace(".", "-")
        if code in self._ids:
            return self._ids[code]
        return self._lookup.get(normalise_name(text))

    def resolve(self, raw: str, *, where: str = "") -> str:
        """Canonical name for a spelling; raise :class:`DataError` naming close spellings."""
        found = self.match(raw)
        if found is None:
            raise DataError(f"{where}unknown {self.unit_word} {visible(raw)!r}; {self.suggest(raw)}")
        return found

    def suggest(self, raw: str, n: int = 3) -> str:
        """A 'did you mean' phrase listing the closest known spellings."""
        key = normalise_name(raw)
        close = difflib.get_close_matches(key, list(self._lookup), n=n, cutoff=0.6)
        if not close:
            return f"known {self.unit_word}s: {', '.join(self.names)}"
        names = list(dict.fromkeys(self._lookup[k] for k in close))
        return "closest known: " + ", ".join(names)

    @property
    def unit_word(self) -> str:
        return "governorate" if self.countries == {"Iraq"} else "admin-1 unit"

    def neighbours(self) -> dict[str, list[str]]:
        """Canonical name -> canonical names of the units sharing a land border."""
        by_id = dict(zip(self.units["unit_id"], self.units["name"]))
        return {
            row.name: [by_id[i] for i in split_list(row.neighbours)]
            for row in self.units.itertuples(index=False)
        }

    def tile_positions(self) -> pd.DataFrame:
        """``tile_row, tile_col`` per unit name (index), laid out when the CSV gives none.

        Given positions are used as they are when any unit has one. Otherwise units are laid
        out on a near-square grid: from their capitals' coordinates when every unit has them
        (rows north to south, each row west to east), else in name order.
        """
        given = self.units.set_index("name")[["tile_row", "tile_col"]]
        if given.notna().any().any():
            # Partial positions stay as given; the report lists the unplaced units.
            return given
        n = len(self.units)
        n_cols = max(1, math.ceil(math.sqrt(n)))
        coords = self.units[["name", "capital_lat", "capital_lon"]]
        if coords[["capital_lat", "capital_lon"]].notna().all().all():
            # Row bands by latitude (north first), then west to east inside each band.
            order = coords.sort_values(["capital_lat", "name"], ascending=[False, True])
            bands = [order.iloc[i : i + n_cols] for i in range(0, n, n_cols)]
            names = [nm for band in bands for nm in band.sort_values("capital_lon")["name"]]
        else:
            names = sorted(self.units["name"])
        return pd.DataFrame(
            {"tile_row": [i // n_cols for i in range(n)], "tile_col": [i % n_cols for i in range(n)]},
            index=pd.Index(names, name="name"),
        )

    def borders(self) -> dict[str, list[str]]:
        """Canonical name -> foreign countries the unit borders."""
        return {row.name: split_list(row.borders) for row in self.units.itertuples(index=False)}


def split_list(cell: object) -> list[str]:
    """Entries of a ``|``-separated gazetteer cell (empty list for an empty cell)."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)) or str(cell).strip() == "":
        return []
    return [part.strip() for part in str(cell).split("|") if part.strip()]


def default_gazetteer_path() -> Path:
    """The bundled Iraq gazetteer (``data/reference/iraq_governorates.csv``)."""
    return Path(__file__).resolve().parent.parent / "data" / "reference" / "iraq_governorates.csv"


def load_gazetteer(path: str | Path | None = None) -> Gazetteer:
    """Read and validate a gazetteer CSV (the bundled Iraq one when ``path`` is None).

    Raises
    ------
    DataError
        When a column is missing, a row is incomplete, a neighbour id is unknown, tile
        positions collide, or two units claim the same spelling.
    """
    path = Path(path) if path is not None else default_gazetteer_path()
    if not path.exists():
        raise DataError(f"{path}: gazetteer file not found")
    text = read_text(path)
    header = [c.strip() for c in next(csv.reader(io.StringIO(text, newline="")), [])]
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise DataError(f"{path}, row 1: duplicate column name(s) {', '.join(shorten(c, 40) for c in dup)} in the "
                        "gazetteer: each column must be named once")
    try:
        units = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV gazetteer ({shorten(str(exc))})") from exc
    if units.empty:
        raise DataError(f"{path}: the gazetteer lists no units (a header and no rows); add one row per "
                        "admin-1 unit, or draft one with `forecast gazetteer init`")
    units, notes = _complete_columns(units, path)
    for col in ("unit_id", "name"):
        blank = units.index[units[col].str.strip() == ""]
        if len(blank):
            raise DataError(f"{path}, row {blank[0] + 2}, column {col!r}: empty value")
    for col in ("unit_id", "name"):
        dup = units[col][units[col].duplicated()]
        if len(dup):
            raise DataError(f"{path}, column {col!r}: duplicate value {dup.iloc[0]!r}")
    for col in ("capital_lat", "capital_lon", "tile_row", "tile_col"):
        converted = pd.to_numeric(units[col].replace("", None), errors="coerce")
        bad = units.index[converted.isna() & (units[col] != "")]
        if len(bad):
            raise DataError(
                f"{path}, row {bad[0] + 2}, column {col!r}: "
                f"{units.at[bad[0], col]!r} is not a number"
            )
        units[col] = converted
    tiles = units.dropna(subset=["tile_row", "tile_col"])
    clash = tiles[tiles.duplicated(["tile_row", "tile_col"], keep=False)]
    if len(clash):
        raise DataError(
            f"{path}: units {', '.join(clash['name'])} share the tile-grid position "
            f"({int(clash['tile_row'].iloc[0])}, {int(clash['tile_col'].iloc[0])})"
        )
    ids = set(units["unit_id"])
    for i, row in units.iterrows():
        for nb in split_list(row["neighbours"]):
            if nb not in ids:
                raise DataError(
                    f"{path}, row {i + 2}, column 'neighbours': unknown unit_id {nb!r}"
                )

    lookup: dict[str, str] = {}
    for i, row in units.iterrows():
        spellings = [row["name"], row["name_ar"], *split_list(row["aliases"])]
        for spelling in spellings:
            if not str(spelling).strip():
                continue
            key = normalise_name(spelling)
            other = lookup.get(key)
            if other is not None and other != row["name"]:
                raise DataError(
                    f"{path}, row {i + 2}: spelling {visible(spelling)!r} matches both "
                    f"{visible(other)!r} and {visible(row['name'])!r}"
                )
            lookup[key] = row["name"]
    ids = {uid.strip().upper(): name for uid, name in zip(units["unit_id"], units["name"])}
    return Gazetteer(
        units=units.reset_index(drop=True), path=str(path), _lookup=lookup, _ids=ids, notes=notes
    )


def _complete_columns(units: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Add the optional columns a CSV left out (empty) and say once what each absence means."""
    missing = [c for c in REQUIRED_COLUMNS if c not in units.columns]
    if missing:
        raise DataError(
            f"{path}: gazetteer is missing column(s) {', '.join(missing)}; only 'name' is "
            f"required, the optional columns are {', '.join(GAZETTEER_COLUMNS)}"
        )
    units = units.copy()
    notes = []
    for col in GAZETTEER_COLUMNS:
        if col in units.columns:
            continue
        if col == "unit_id":
            units[col] = units["name"]
        else:
            units[col] = ""
        # capital_lat/lon and tile_col share the note of their partner column.
        if col in _ABSENT_MEANS:
            notes.append(f"{path}: no {col!r} column: {_ABSENT_MEANS[col]}")
    return units[list(GAZETTEER_COLUMNS)], tuple(notes)
