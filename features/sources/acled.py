"""ACLED export CSV (data export tool or API ``_format=csv``).

One row per event; ``admin1`` is ACLED's admin-1 name (OCHA spellings for Iraq);
``event_date`` comes in every form ACLED has published: ``2020-01-15`` (current exports and
the API), ``15 January 2020`` (older exports), ``15-Jan-20`` (the export tool around 2021, as
Excel writes it) and ``20200115``; ``15/01/2020`` or ``01/15/2020`` where a spreadsheet re-saved the file. Both column layouts read: pre-2023 (numeric ``inter1`` and
``interaction``, ``event_id_no_cnty``) and current (``disorder_type``, ``civilian_targeting``);
only columns common to both are used.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    actors = col("actor1").str.strip() + " | " + col("actor2").str.strip()
    return pd.DataFrame(
        {
            "event_id": raw["event_id_cnty"],
            "date": raw["event_date"],
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
    # Slashed forms appear when a spreadsheet re-saves the export; a day <= 12 makes them
    # ambiguous, which is an error asking for --date-format.
    date_forms=("%Y-%m-%d", "%d %B %Y", "%d-%b-%y", "%Y%m%d", "%d/%m/%Y", "%m/%d/%Y"),
)
