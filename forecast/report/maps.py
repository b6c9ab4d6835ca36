"""The report's maps: a tile grid from the gazetteer's positions, or the real boundaries from a GeoJSON.

Both colour each unit by its threat tier (:data:`forecast.report.charts.TIER_COLOURS`), and
grey the units outside the report's focus. Figures are plain data, as in
:mod:`forecast.report.charts`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.gazetteer import Gazetteer
from forecast.report.charts import OUT_OF_FOCUS, TIER_COLOURS, TIER_TEXT, Chart, num
from forecast.errors import ReportError

__all__ = ["geo_map", "match_features", "tile_map"]

def _text_fit(text: str, size: float, room: float) -> dict:
    """Squeeze a label into ``room`` px when its estimated width would overflow."""
    estimate = 0.58 * size * len(text)
    return {"textLength": num(room), "lengthAdjust": "spacingAndGlyphs"} if estimate > room else {}


def _tile_title(row: dict, target: str) -> str:
    if not row.get("focus", True):
        return f"{row['unit']}: not in this report's focus"
    text = f"{row['unit']}: {row['tier_name']} tier, {row['expected']:.1f} {target} a month expected"
    if "p_increase" in row:
        text += f", probability of more than its recent level next month {row['p_increase']:.0%}"
    return text


def tile_map(units: pd.DataFrame, gazetteer: Gazetteer, *, target: str, unit_word: str) -> tuple[dict, list[str]]:
    """Tile-grid map: one tile per unit at its gazetteer position, coloured by tier.

    A gazetteer without tile positions is laid out by :meth:`Gazetteer.tile_positions`.

    Returns the figure and the units the gazetteer gives no position (listed under the map).
    """
    pos = gazetteer.tile_positions()
    rows = units.set_index("unit")
    placed = [u for u in rows.index if u in pos.index and pos.loc[u].notna().all()]
    unplaced = [u for u in rows.index if u not in placed]
    tw, th, gap, pad = 106, 60, 5, 4
    if not placed:
        return {"width": 10, "height": 10, "title": "no map", "desc": "No unit has a tile position.",
                "elements": []}, unplaced
    n_rows = int(pos.loc[placed, "tile_row"].max()) + 1
    n_cols = int(pos.loc[placed, "tile_col"].max()) + 1
    width, height = pad * 2 + n_cols * (tw + gap), pad * 2 + n_rows * (th + gap)
    chart = Chart(2, 1, width=width, height=height)
    parts = []
    for unit in placed:
        r = rows.loc[unit]
        row = {"unit": unit, **r.to_dict()}
        tier = int(r["tier"])
        shown = bool(r.get("focus", True))
        x = pad + int(pos.at[unit, "tile_col"]) * (tw + gap)
        y = pad + int(pos.at[unit, "tile_row"]) * (th + gap)
        chart.add("rect", title=_tile_title(row, target), x=str(x), y=str(y), width=str(tw), height=str(th), rx="4",
                  fill=TIER_COLOURS[tier] if shown else OUT_OF_FOCUS, stroke="#555", stroke_width="0.8")
        chart.add("text", unit, x=num(x + tw / 2), y=num(y + 25), class_="tile-name", text_anchor="middle",
                  fill=TIER_TEXT[tier] if shown else "#555", **_text_fit(unit, 11.5, tw - 8))
        chart.add("text", r["tier_name"] if shown else "not in focus", x=num(x + tw / 2), y=num(y + 43),
                  class_="tile-tier", text_anchor="middle", fill=TIER_TEXT[tier] if shown else "#555")
        parts.append(f"{unit} {r['tier_name']}")
    desc = (f"Tile-grid map of the {unit_word}s (each tile placed roughly where the {unit_word} lies), "
            "coloured by threat tier: " + "; ".join(parts) + ".")
    return chart.figure(f"Map of {unit_word}s by threat tier", desc), unplaced


def _rings(geometry: dict, where: str) -> list[list[list[float]]]:
    kind = (geometry or {}).get("type")
    coords = (geometry or {}).get("coordinates")
    if kind == "Polygon":
        return list(coords)
    if kind == "MultiPolygon":
        return [ring for poly in coords for ring in poly]
    raise ReportError(f"{where}: geometry type {kind!r}; a boundary must be a Polygon or MultiPolygon")


def match_features(geojson: dict, gazetteer: Gazetteer) -> list[tuple[str, list]]:
    """(unit, rings) per feature, the unit found by matching the feature's properties to the gazetteer.

    Raises
    ------
    ReportError
        When the GeoJSON has no features or a feature names no known unit.
    """
    features = geojson.get("features") if isinstance(geojson, dict) else None
    if not features:
        raise ReportError("geojson: no features (expected a FeatureCollection of admin-1 polygons)")
    out = []
    for i, feat in enumerate(features):
        props = feat.get("properties") or {}
        unit = None
        for value in props.values():
            if isinstance(value, str) and value.strip():
                unit = gazetteer.match(value)
                if unit:
                    break
        if unit is None:
            shown = ", ".join(f"{k}={v!r}" for k, v in list(props.items())[:6]) or "no properties"
            raise ReportError(f"geojson feature {i}: no property names a known {gazetteer.unit_word} ({shown}); "
                              f"{gazetteer.suggest(str(next(iter(props.values()), '')))}")
        out.append((unit, _rings(feat.get("geometry"), f"geojson feature {i} ({unit})")))
    return out


def _area_centroid(ring: np.ndarray) -> tuple[float, float, float]:
    x, y = ring[:, 0], ring[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    if abs(area) < 1e-12:
        return 0.0, float(x.mean()), float(y.mean())
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return abs(area), float(cx), float(cy)


def geo_map(units: pd.DataFrame, geojson: dict, gazetteer: Gazetteer, *, target: str, unit_word: str,
            width: int = 560) -> tuple[dict, list[str]]:
    """Choropleth of the real boundaries (equirectangular, scaled at the mid latitude)."""
    shapes = match_features(geojson, gazetteer)
    all_pts = np.array([p[:2] for _, rings in shapes for ring in rings for p in ring], dtype=float)
    lon0, lon1 = all_pts[:, 0].min(), all_pts[:, 0].max()
    lat0, lat1 = all_pts[:, 1].min(), all_pts[:, 1].max()
    k = math.cos(math.radians((lat0 + lat1) / 2))
    pad = 6
    scale = (width - 2 * pad) / max((lon1 - lon0) * k, 1e-9)
    height = int(round((lat1 - lat0) * scale + 2 * pad))

    def project(ring) -> np.ndarray:
        a = np.asarray(ring, dtype=float)[:, :2]
        return np.column_stack([pad + (a[:, 0] - lon0) * k * scale, pad + (lat1 - a[:, 1]) * scale])

    rows = units.set_index("unit")
    chart = Chart(2, 1, width=width, height=height)
    labels = []
    drawn = set()
    for unit, rings in shapes:
        if unit not in rows.index:
            continue
        r = rows.loc[unit]
        tier = int(r["tier"])
        d, best = [], (0.0, 0.0, 0.0)
        for ring in rings:
            xy = np.round(project(ring), 1)
            keep = np.ones(len(xy), dtype=bool)
            keep[1:] = np.any(np.diff(xy, axis=0) != 0, axis=1)  # drop points that round onto the last
            xy = xy[keep]
            if len(xy) < 3:
                continue
            d.append("M" + " L".join(f"{num(a)},{num(b)}" for a, b in xy) + " Z")
            best = max(best, _area_centroid(xy))
        chart.add("path", title=_tile_title({"unit": unit, **r.to_dict()}, target), d=" ".join(d),
                  fill=TIER_COLOURS[tier] if bool(r.get("focus", True)) else OUT_OF_FOCUS, stroke="#444",
                  stroke_width="0.7", stroke_linejoin="round")
        if unit not in drawn:
            labels.append((unit, best[1], best[2]))
        drawn.add(unit)
    for unit, x, y in labels:
        chart.add("text", unit, x=num(x), y=num(y + 3), class_="geo-label", text_anchor="middle")
    missing = [u for u in rows.index if u not in drawn]
    desc = (f"Map of the {unit_word} boundaries coloured by threat tier: "
            + "; ".join(f"{u} {rows.at[u, 'tier_name']}" for u in rows.index if u in drawn) + ".")
    return chart.figure(f"Map of {unit_word}s by threat tier", desc), missing
