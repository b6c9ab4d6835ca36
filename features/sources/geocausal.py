"""Geolocated coalition airstrikes and insurgent attacks in Iraq (the ``geocausal`` data).

The Iraq data of Papadogeorgou et al. (2022, JRSS-B) as the R package ``geocausal`` ships it:
one row per event with ``event_id, date, category, type, latitude, longitude, governorate``
(and ``source_object``, the package object the row came from). ``category`` is
``airstrike_or_sof`` (coalition airstrikes and shows of force) or ``insurgent_attack``; ``type``
is ``Airstrike``, ``SOF`` (show of force), ``IED``, ``SAF`` (small-arms fire) or ``other``.
The events carry no death toll. ``actors`` is ``coalition`` for airstrikes and shows of force
and ``insurgents`` for attacks, so ``--actor coalition`` keeps the coalition's operations; an
airstrike or show of force is an *operation* (the operations tempo). Each package object
(``source_object``) is a collection with its own period (2006-01-01..2006-09-24, then
2007-02-23..2008-07-05): only months a collection covers completely are covered.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat

#: ``category`` -> who acted.
ACTORS = {"airstrike_or_sof": "coalition", "insurgent_attack": "insurgents"}


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    category = raw["category"].str.strip()
    part = raw["source_object"].str.strip() if "source_object" in raw else pd.Series("", index=raw.index)
    return pd.DataFrame(
        {
            "event_id": raw["event_id"],
            "date": raw["date"].str.strip().str[:10],
            "admin1": raw["governorate"],
            "deaths": "",
            "event_type": raw["type"],
            "actors": category.map(ACTORS).fillna(category),
            "sub_event_type": category,
            "side_a": category.map(ACTORS).fillna(category),
            "operation": (category == "airstrike_or_sof").map({True: "1", False: "0"}),
            # The 2006 objects and the 2007-08 ones were collected separately.
            "part": part,
        }
    )


GEOCAUSAL = SourceFormat(
    name="geocausal",
    label="geocausal airstrikes and insurgent attacks",
    required=("event_id", "date", "category", "type", "governorate"),
    column_of={"event_id": "event_id", "date": "date", "admin1": "governorate", "event_type": "type"},
    stage=_stage,
    event_type_aliases={"show of force": "sof", "small arms fire": "saf", "small-arms fire": "saf"},
)
