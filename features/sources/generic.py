"""A generic event CSV: ``date, admin1`` plus optional columns.

Required: ``date`` (``YYYY-MM-DD``) and ``admin1`` (any spelling the gazetteer knows).
Optional: ``event_id`` (default: ``row-N``), ``count`` (events the row stands for, default 1),
``deaths`` (default: unknown, counted as 0), ``event_type``, ``actor``, ``country``.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    event_id = col("event_id")
    if "event_id" not in raw:
        # The reader indexes rows by their row number in the file.
        event_id = "row-" + pd.Series(raw.index, index=raw.index).astype(str)
    return pd.DataFrame(
        {
            "event_id": event_id,
            "date": raw["date"].str.strip().str[:10],
            "admin1": raw["admin1"],
            "country": col("country"),
            "count": col("count"),
            "deaths": col("deaths"),
            "event_type": col("event_type"),
            "actors": col("actor"),
        }
    )


GENERIC = SourceFormat(
    name="generic",
    label="generic event CSV",
    required=("date", "admin1"),
    column_of={"date": "date", "admin1": "admin1"},
    stage=_stage,
    optional=("event_id", "count", "deaths", "event_type", "actor", "country"),
)
