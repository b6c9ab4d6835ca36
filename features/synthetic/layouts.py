"""The synthetic events in other real layouts, and boundaries for a synthetic country.

:func:`to_acled_export` rewrites the UCDP GED-style events of
:func:`~features.synthetic.events.simulate_events` in the column layout of an ACLED export
made with ACLED's export tool before 2023 (numeric ``inter1``/``interaction``,
``event_id_no_cnty``), with that tool's dates (``31-Dec-20``) and ACLED's own governorate
spellings (``Sala al-Din``, ``Thi-Qar``, ``Missan``). It lets the ACLED route, from reading
to report, be shown and tested on a file no licence restricts. The events, their months,
units and deaths are the same as in the GED layout; only the words differ.

:func:`lattice_boundaries` draws the units of
:func:`~features.synthetic.gazetteer.synthetic_gazetteer` as square admin-1 polygons in the
geoBoundaries GeoJSON layout (``shapeName``, ``shapeISO``), for ``forecast gazetteer init``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from features.gazetteer import Gazetteer

#: Columns of an ACLED export-tool file before the 2023 layout change, in its order.
ACLED_EXPORT_COLUMNS = (
    "data_id", "iso", "event_id_cnty", "event_id_no_cnty", "event_date", "year", "time_precision",
    "event_type", "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2",
    "inter2", "interaction", "region", "country", "admin1", "admin2", "admin3", "location",
    "latitude", "longitude", "geo_precision", "source", "source_scale", "notes", "fatalities",
    "timestamp", "iso3",
)

#: ACLED's spelling of Iraq's governorates, where it differs from the gazetteer's name.
ACLED_IRAQ_SPELLINGS = {
    "Anbar": "Al Anbar", "Babil": "Babylon", "Basra": "Basrah", "Dhi Qar": "Thi-Qar", "Duhok": "Dahuk",
    "Karbala": "Kerbala", "Maysan": "Missan", "Qadisiyah": "Qadissiya", "Salah ad Din": "Sala al-Din",
    "Wasit": "Wassit",
}

#: ACLED's names for the GED actors the generator uses.
_ACLED_ACTORS = {
    "Government of Iraq": "Military Forces of Iraq (2014-)",
    "IS": "Islamic State (Iraq)",
    "Civilians": "Civilians (Iraq)",
}

#: ACLED's numeric actor types (inter codes): 1 state forces, 2 rebels, 3 militias, 7 civilians.
_INTER = {"Military Forces of Iraq (2014-)": 1, "Islamic State (Iraq)": 2, "Civilians (Iraq)": 7}


def to_acled_export(events: pd.DataFrame, gazetteer: Gazetteer) -> pd.DataFrame:
    """The GED-style ``events`` in the pre-2023 ACLED export-tool layout.

    Event types follow the UCDP type of violence: state-based and non-state violence are
    ``Battles`` (every third of them ``Explosions/Remote violence``, as IEDs), one-sided
    violence is ``Violence against civilians``. ``admin1`` is the unit's ACLED spelling
    (Iraq) or its gazetteer name (other countries). Rows keep the input's order.
    """
    names = [gazetteer.match(str(a)) for a in events["adm_1"]]
    if any(n is None for n in names):
        missing = sorted({str(a) for a, n in zip(events["adm_1"], names) if n is None})[:5]
        raise ValueError(f"to_acled_export: adm_1 value(s) not in the gazetteer: {', '.join(missing)}")
    admin1 = [ACLED_IRAQ_SPELLINGS.get(n, n) for n in names]
    ids = events["id"].astype(np.int64).to_numpy()
    vtype = events["type_of_violence"].astype(int).to_numpy()
    remote = (vtype != 3) & (ids % 3 == 0)
    event_type = np.where(vtype == 3, "Violence against civilians",
                          np.where(remote, "Explosions/Remote violence", "Battles"))
    sub_type = np.where(vtype == 3, "Attack",
                        np.where(remote, "Remote explosive/landmine/IED", "Armed clash"))
    actor1 = events["side_a"].map(lambda a: _ACLED_ACTORS.get(a, a))
    actor2 = events["side_b"].map(lambda a: _ACLED_ACTORS.get(a, a))
    inter1 = actor1.map(lambda a: _INTER.get(a, 3)).to_numpy()
    inter2 = actor2.map(lambda a: _INTER.get(a, 3)).to_numpy()
    low, high = np.minimum(inter1, inter2), np.maximum(inter1, inter2)
    date = pd.to_datetime(events["date_start"])
    iso3 = events["iso3"].astype(str)
    return pd.DataFrame(
        {
            "data_id": ids + 8_000_000,
            "iso": np.where(iso3 == "IRQ", 368, 999),
            "event_id_cnty": iso3 + ids.astype(str),
            "event_id_no_cnty": ids,
            "event_date": date.dt.strftime("%d-%b-%y"),
            "year": date.dt.year,
            "time_precision": 1,
            "event_type": event_type,
            "sub_event_type": sub_type,
            "actor1": actor1,
            "assoc_actor_1": "",
            "inter1": inter1,
            "actor2": actor2,
            "assoc_actor_2": "",
            "inter2": inter2,
            "interaction": low * 10 + high,
            "region": events["region"],
            "country": events["country"],
            "admin1": admin1,
            "admin2": "",
            "admin3": "",
            "location": events["where_coordinates"],
            "latitude": events["latitude"],
            "longitude": events["longitude"],
            "geo_precision": 1,
            "source": "Synthetic generator",
            "source_scale": "National",
            "notes": "synthetic event, not a real one",
            "fatalities": events["best"],
            "timestamp": 1_600_000_000,
            "iso3": iso3,
        },
        columns=list(ACLED_EXPORT_COLUMNS),
    )


def lattice_boundaries(units: pd.DataFrame, cell: float = 0.1) -> dict:
    """Square polygons for the lattice units of ``synthetic_gazetteer``, as GeoJSON.

    Each unit is the ``cell``-degree square around its lattice position (the same 0.1-degree
    lattice the gazetteer places the capitals on), so lattice neighbours share an edge.
    Properties follow geoBoundaries: ``shapeName`` (the unit's name), ``shapeISO`` (its id),
    ``shapeGroup`` and ``shapeType``. Corner coordinates are rounded so that shared edges
    are exactly equal.
    """
    features = []
    for row in units.itertuples(index=False):
        top = round(37.0 - cell * int(row.tile_row) + cell / 2, 6)
        left = round(39.0 + cell * int(row.tile_col) - cell / 2, 6)
        bottom, right = round(top - cell, 6), round(left + cell, 6)
        ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
        features.append({
            "type": "Feature",
            "properties": {"shapeName": row.name, "shapeISO": row.unit_id, "shapeGroup": "SYN",
                           "shapeType": "ADM1"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    return {"type": "FeatureCollection", "features": features}


def geojson_bytes(collection: dict) -> bytes:
    """``collection`` as compact UTF-8 JSON, one feature per line."""
    lines = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"])
    return ('{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n").encode("utf-8")
