"""ACLED's aggregated admin-1 monthly files, as published on HDX.

One row per admin-1 unit and month: ``Admin1, Month, Year, Events, Fatalities`` (often with
``Country``, ``ISO3``, ``Admin1 Pcode``); ``Month`` is an English month name (``January``).
Each row stands for ``Events`` events. The row is dated the last day of its month, so a file
whose last row is a month counts as covering that month whole.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    text = raw["month"].str.strip() + " " + raw["year"].str.strip()
    first = pd.to_datetime(text, format="%B %Y", errors="coerce")
    first = first.fillna(pd.to_datetime(text, format="%b %Y", errors="coerce"))
    last_day = (first + pd.offsets.MonthEnd(0)).dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            # One row per unit and month: a repeated pair is a duplicate, not more events.
            "event_id": raw["admin1"].str.strip() + " " + text,
            # Unreadable months keep their text so the quarantine message shows it.
            "date": last_day.where(first.notna(), text),
            "admin1": raw["admin1"],
            "country": col("country"),
            "count": raw["events"],
            "deaths": raw["fatalities"],
        }
    )


ACLED_HDX = SourceFormat(
    name="acled-hdx",
    label="ACLED admin-1 monthly aggregates (HDX)",
    required=("admin1", "month", "year", "events", "fatalities"),
    column_of={
        "event_id": "Admin1+Month+Year",
        "date": "Month+Year",
        "admin1": "Admin1",
        "country": "Country",
        "count": "Events",
        "deaths": "Fatalities",
    },
    stage=_stage,
    optional=("country",),
)
