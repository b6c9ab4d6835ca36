"""ACLED export CSV (data export tool or API ``_format=csv``).

One row per event; ``admin1`` is ACLED's admin-1 name (OCHA spellings for Iraq);
``event_date`` is ISO (``2020-01-15``, current exports) or ``15 January 2020`` (older ones).
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    text = raw["event_date"].str.strip()
    iso = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    long = pd.to_datetime(text, format="%d %B %Y", errors="coerce")
    date = iso.fillna(long).dt.strftime("%Y-%m-%d")
    actors = col("actor1").str.strip() + " | " + col("actor2").str.strip()
    return pd.DataFrame(
        {
            "event_id": raw["event_id_cnty"],
            # Unparseable dates keep their text so the quarantine message shows it.
            "date": date.where(date.notna(), text),
            "admin1": raw["admin1"],
            "country": col("country"),
            "deaths": raw["fatalities"],
            "event_type": raw["event_type"],
            "actors": actors,
        }
    )


ACLED = SourceFormat(
    name="acled",
    label="ACLED",
    required=("event_id_cnty", "event_date", "event_type", "admin1", "fatalities"),
    column_of={
        "event_id": "event_id_cnty",
        "date": "event_date",
        "admin1": "admin1",
        "country": "country",
        "deaths": "fatalities",
        "event_type": "event_type",
    },
    stage=_stage,
)
