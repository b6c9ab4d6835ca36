"""Draft a gazetteer from the admin-1 names of an event file, and optionally its boundaries.

The draft is for the user to review, not to trust: spellings that normalise alike
(``Maysān  province`` and ``Maysan``) become one unit with the others as aliases, but two
genuinely different spellings of one unit (``Thi-Qar`` and ``Dhi Qar``) stay two units
until the user merges them. Given admin-1 boundaries (OCHA COD-AB or geoBoundaries
GeoJSON), every polygon becomes a unit; its centroid, its neighbours by shared border and a
simplified outline for the report's map come from the geometry, with shapely.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import shapely
from shapely.geometry import mapping, shape

from features.errors import DataError, shorten
from features.atomic import write_atomically
from features.gazetteer import GAZETTEER_COLUMNS, load_gazetteer, normalise_name, visible
from features.sources import FORMATS
from features.sources.base import MISSING_NAMES, check_required, detect_format, read_table

#: Name properties of admin-1 boundary files, in the order they are tried.
NAME_PROPERTIES = ("ADM1_EN", "shapeName", "NAME_1", "name", "NAME")
#: Properties that hold a local-script name, and codes kept as aliases.
ARABIC_PROPERTIES = ("ADM1_AR",)
CODE_PROPERTIES = ("ADM1_PCODE", "shapeISO", "HASC_1", "GID_1")
#: Outline simplification tolerance in degrees (about 1 km): enough for a report map.
OUTLINE_TOLERANCE = 0.01


@dataclass
class GazetteerDraft:
    """A drafted gazetteer, what was found, and what the user should check."""

    units: pd.DataFrame
    outline: dict | None = None
    found: list[str] = field(default_factory=list)
    to_check: list[str] = field(default_factory=list)


def event_names(path: str | Path, format: str | None = None, sheet: str | None = None) -> pd.DataFrame:
    """Distinct admin-1 spellings of an event file: ``spelling, country, events`` (most first)."""
    path = Path(path)
    table = read_table(path, sheet=sheet)
    columns = list(table.frame.columns)
    where = table.where(path)
    if format is None:
        fmt = detect_format(where, columns, list(FORMATS.values()))
    elif format in FORMATS:
        fmt = FORMATS[format]
    else:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    check_required(where, columns, fmt)
    staged = fmt.stage(table.frame)
    names = staged["admin1"].fillna("").str.strip()
    country = staged["country"].fillna("").str.strip()
    keep = (names != "") & ~names.str.casefold().isin(MISSING_NAMES)
    counts = (
        pd.DataFrame({"spelling": names[keep], "country": country[keep]})
        .value_counts()
        .rename("events")
        .reset_index()
        .sort_values(["events", "spelling"], ascending=[False, True], kind="stable")
    )
    return counts.reset_index(drop=True)


def _clean(spelling: str) -> str:
    words = spelling.split()
    while len(words) > 1 and words[-1].lower() in ("province", "governorate"):
        words.pop()
    return " ".join(words)


def _boundaries(path: Path) -> tuple[list[dict], str]:
    try:
        geo = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DataError(f"{path}: boundary file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable GeoJSON file ({exc})") from exc
    features = geo.get("features") if isinstance(geo, dict) else None
    if not features:
        raise DataError(f"{path}: no features; expected a FeatureCollection of admin-1 polygons")
    if not isinstance(features, list):
        raise DataError(f"{path}: 'features' is {_kind(features)}; expected a list of Feature objects")
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise DataError(f"{path}, feature {i}: {_kind(feat)} ({shorten(json.dumps(feat), 40)}), not a Feature "
                            "object with 'geometry' and 'properties'")
        if not isinstance(feat.get("properties") or {}, dict):
            raise DataError(f"{path}, feature {i}: 'properties' is {_kind(feat['properties'])}; expected an object")
    props = [f.get("properties") or {} for f in features]
    prop = next((p for p in NAME_PROPERTIES if all(str(x.get(p) or "").strip() for x in props)), None)
    if prop is None:
        raise DataError(
            f"{path}: no name property on every feature; tried {', '.join(NAME_PROPERTIES)} "
            f"(feature 0 has {', '.join(props[0]) or 'no properties'})"
        )
    return features, prop


def _kind(value: object) -> str:
    """What a JSON value is, in words: 'a number', 'a list' ..."""
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _boundary_units(path: Path) -> tuple[pd.DataFrame, dict, str]:
    features, prop = _boundaries(path)
    rows, shapes = [], []
    for i, feat in enumerate(features):
        props = feat.get("properties") or {}
        if not isinstance(feat.get("geometry"), dict):
            raise DataError(f"{path}, feature {i} ({props.get(prop)!r}): 'geometry' is {_kind(feat.get('geometry'))}; "
                            "expected a Polygon or MultiPolygon object")
        try:
            geom = shape(feat.get("geometry"))
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                raise DataError(
                    f"{path}, feature {i} ({props.get(prop)!r}): geometry type {geom.geom_type}; "
                    "expected Polygon or MultiPolygon"
                )
            geom = shapely.make_valid(geom)
        except (AttributeError, TypeError, ValueError, IndexError, shapely.errors.GEOSException) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{path}, feature {i} ({props.get(prop)!r}): bad geometry ({shorten(str(exc))})") from None
        # An empty ring list, or a ring of zero area: no centroid, no neighbours, nothing to draw.
        if geom.is_empty or geom.area == 0:
            raise DataError(f"{path}, feature {i} ({props.get(prop)!r}): the {feat['geometry'].get('type')} is "
                            "empty (no ring with an area); give the unit its outline, or remove the feature")
        centroid = geom.centroid
        codes = [str(props[c]).strip() for c in CODE_PROPERTIES if str(props.get(c) or "").strip()]
        rows.append({
            "name": str(props[prop]).strip(),
            "name_ar": next((str(props[c]) for c in ARABIC_PROPERTIES if props.get(c)), ""),
            "aliases": codes,
            "capital_lat": round(centroid.y, 4),
            "capital_lon": round(centroid.x, 4),
        })
        shapes.append(geom)
    dup = Counter(r["name"] for r in rows)
    twice = [n for n, k in dup.items() if k > 1]
    if twice:
        raise DataError(f"{path}, property {prop!r}: {twice[0]!r} names more than one feature")
    # Neighbours share a border of positive length (a single touching corner is not enough).
    tree = shapely.STRtree(shapes)
    for i, geom in enumerate(shapes):
        nbs = []
        for j in tree.query(geom, predicate="intersects"):
            if j != i and geom.intersection(shapes[j]).length > 0:
                nbs.append(rows[j]["name"])
        rows[i]["neighbours"] = sorted(nbs)
    outline = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": r["name"]},
             "geometry": mapping(g.simplify(OUTLINE_TOLERANCE, preserve_topology=True))}
            for r, g in zip(rows, shapes)
        ],
    }
    return pd.DataFrame(rows), outline, prop


def _boundary_lookup(path: Path, units: pd.DataFrame, prop: str) -> dict[str, int]:
    """Matching key -> feature number of every name, local name and code of the boundaries.

    Two features whose spellings match alike ("Unit 0001" and "unit 0001 Province") would
    make a gazetteer that cannot tell them apart: refused here, naming the boundary file.
    """
    lookup: dict[str, int] = {}
    spelt: dict[str, str] = {}
    for i, r in units.iterrows():
        for spelling in dict.fromkeys([r["name"], r["name_ar"], *r["aliases"]]):
            if not str(spelling).strip():
                continue
            key = normalise_name(spelling)
            if lookup.get(key, i) != i:
                j = lookup[key]
                raise DataError(
                    f"{path}: features {j} ({visible(units.at[j, 'name'])!r}) and {i} ({visible(r['name'])!r}) are "
                    f"spelt alike ({visible(spelt[key])!r} and {visible(spelling)!r} match as {key!r}, property "
                    f"{prop!r} or a code): a gazetteer could not tell them apart. Rename one in the boundary "
                    "file, or merge the two features"
                )
            lookup[key], spelt[key] = i, str(spelling)
    return lookup


def draft_gazetteer(
    events: str | Path, *, format: str | None = None, boundaries: str | Path | None = None,
    sheet: str | None = None,
) -> GazetteerDraft:
    """Draft a gazetteer from the admin-1 names of ``events`` (and ``boundaries`` when given).

    Raises
    ------
    DataError
        When the event file or the boundary file cannot be read (naming the file, and the
        row, feature or property at fault).
    """
    names = event_names(events, format, sheet)
    if names.empty:
        raise DataError(f"{events}: no admin-1 names found; nothing to build a gazetteer from")
    draft = GazetteerDraft(units=pd.DataFrame())
    groups: dict[str, dict] = {}
    for row in names.itertuples(index=False):
        key = normalise_name(row.spelling)
        group = groups.setdefault(key, {"spellings": [], "countries": set(), "events": 0})
        group["spellings"].append(row.spelling)
        if row.country:
            group["countries"].add(row.country)
        group["events"] += int(row.events)
    draft.found.append(
        f"{events}: {len(names)} distinct admin-1 spelling(s) in {int(names['events'].sum()):,} "
        f"event(s), {len(groups)} after normalising"
    )
    if boundaries is None:
        units = pd.DataFrame([
            {"name": _clean(g["spellings"][0]), "aliases": g["spellings"][1:],
             "country": "|".join(sorted(g["countries"])), "events": g["events"]}
            for g in groups.values()
        ])
        draft.to_check.append(
            "spellings of one unit that differ beyond case, accents and articles are separate "
            "rows: merge them (keep one name, move the others to aliases)"
        )
    else:
        units, draft.outline, prop = _boundary_units(Path(boundaries))
        draft.found.append(f"{boundaries}: {len(units)} admin-1 polygon(s), names from {prop!r}")
        lookup = _boundary_lookup(Path(boundaries), units, prop)
        units["country"] = ""
        units["events"] = 0
        unmatched = []
        for key, g in groups.items():
            i = lookup.get(key)
            if i is None:
                unmatched.append(f"{g['spellings'][0]!r} ({g['events']} events)")
                continue
            units.at[i, "aliases"] = [*units.at[i, "aliases"], *g["spellings"]]
            units.at[i, "country"] = "|".join(sorted(g["countries"]))
            units.at[i, "events"] += g["events"]
        # A one-country event file: the units it has no events in are of that country too.
        seen = {c for g in groups.values() for c in g["countries"]}
        if len(seen) == 1:
            units.loc[units["country"] == "", "country"] = seen.pop()
        if unmatched:
            draft.to_check.append(
                "event spellings matching no boundary name (add each as an alias of its unit): "
                + ", ".join(unmatched)
            )
        draft.to_check.append(
            "capital_lat / capital_lon hold each polygon's centroid; put the capital's position "
            "there if you have it"
        )
    no_events = sorted(units.loc[units["events"] == 0, "name"])
    if no_events:
        draft.to_check.append(f"units with no events: {', '.join(no_events)}")
    many = [c for c in units["country"] if "|" in c]
    if many:
        draft.to_check.append("a name occurs in several countries: give each its own row")
    draft.to_check.append("add name_ar, other aliases and tile_row / tile_col if you want them")
    draft.units = _to_columns(units)
    return draft


def _to_columns(units: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"name": units["name"]})
    out["unit_id"] = units["name"]
    for col in GAZETTEER_COLUMNS:
        if col in ("name", "unit_id"):
            continue
        out[col] = units[col] if col in units.columns else ""
    out["aliases"] = [
        "|".join(dict.fromkeys(a for a in aliases if a != name))
        for name, aliases in zip(units["name"], units["aliases"])
    ]
    if "neighbours" in units.columns:
        out["neighbours"] = ["|".join(n) for n in units["neighbours"]]
    out = out[list(GAZETTEER_COLUMNS)].sort_values("name", kind="stable")
    return out.reset_index(drop=True)


def draft_paths(out: str | Path, draft: GazetteerDraft) -> list[Path]:
    """The files :func:`write_draft` writes: the CSV, and ``<out>.geojson`` when boundaries were given."""
    out = Path(out)
    return [out] if draft.outline is None else [out, out.with_suffix(".geojson")]


def write_draft(draft: GazetteerDraft, out: str | Path) -> list[Path]:
    """Write the gazetteer CSV (and ``<out>.geojson`` outline when boundaries were given).

    All or nothing (:func:`features.atomic.write_atomically`): the CSV is read back with
    :func:`~features.gazetteer.load_gazetteer` before anything is moved into place, so a
    draft that would not load leaves an earlier draft as it was.
    """
    paths = draft_paths(out, draft)
    # Columns the draft could not fill are left out, so the gazetteer notes say so.
    filled = [c for c in draft.units.columns if c == "name" or (draft.units[c].astype(str) != "").any()]

    def write_csv(tmp: Path) -> None:
        draft.units[filled].to_csv(tmp, index=False, encoding="utf-8")
        try:
            load_gazetteer(tmp)
        except DataError as exc:
            raise DataError(str(exc).replace(str(tmp), str(paths[0])) + " (in the drafted gazetteer; nothing "
                            "was written)") from None

    writers = {paths[0]: write_csv}
    if draft.outline is not None:
        text = json.dumps(draft.outline, ensure_ascii=False)
        writers[paths[1]] = lambda tmp: tmp.write_text(text, encoding="utf-8")
    write_atomically(writers)
    return paths
