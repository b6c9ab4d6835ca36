"""ACLED export CSV (data export tool or API ``_format=csv``).

One row per event; ``admin1`` is ACLED's admin-1 name (OCHA spellings for Iraq);
``event_date`` comes in every form ACLED has published: ``2020-01-15`` (current exports and
the API), ``15 January 2020`` (older exports), ``15-Jan-20`` (the export tool around 2021, as
Excel writes it) and ``20200115``; ``15/01/2020`` or ``01/15/2020`` where a spreadsheet re-saved the file. Both column layouts read: pre-2023 (numeric ``inter1`` and
``interaction``, ``event_id_no_cnty``) and current (``disorder_type``, ``civilian_targeting``);
only columns common to both are used.

An *operation* (the operations tempo) is an event whose first actor is state forces or
external forces (``inter1`` 1 or 8 in the pre-2023 layout, ``State forces`` or ``External/Other
forces`` in the current one; ``Military Forces of ...`` / ``Police Forces of ...`` where
``inter1`` is empty), or an ``Air/drone strike``.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat

#: ``inter1`` of state forces and of external (foreign, coalition) forces, in both layouts.
STATE_INTER = {"1", "8", "state forces", "external/other forces"}
_STATE_NAME = r"^(?:Military|Police) Forces of\b"


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    actor1, actor2 = col("actor1").str.strip(), col("actor2").str.strip()
    actors = actor1 + " | " + actor2
    inter1 = col("inter1").str.strip().str.casefold()
    sub_type = col("sub_event_type").str.strip()
    state = inter1.isin(STATE_INTER) | ((inter1 == "") & actor1.str.contains(_STATE_NAME, regex=True))
    state |= sub_type.str.casefold() == "air/drone strike"
    return pd.DataFrame(
        {
            "event_id": raw["event_id_cnty"],
            "date": raw["event_date"],
            "admin1": raw["admin1"],
            "country": col("country"),
            "deaths": raw["fatalities"],
            "event_type": raw["event_type"],
            "actors": actors,
            "sub_event_type": sub_type,
            "side_a": actor1,
            "side_b": actor2,
            "operation": state.map({True: "1", False: "0"}),
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
