"""UCDP Georeferenced Event Dataset (GED) CSV, as downloaded from UCDP or HDX.

Codebook: https://ucdp.uu.se/downloads/ (GED codebook). One row per event; ``adm_1`` is
UCDP's transliteration ("Al Anbār province"); ``best`` is the best estimate of deaths.
Events that span months are placed in the month of ``date_start``. The HDX distribution has
an HXL hashtag row under the header, which the CSV reader skips.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat

#: type_of_violence codes of the GED codebook.
VIOLENCE_TYPES = {"1": "state-based", "2": "non-state", "3": "one-sided"}


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    violence = col("type_of_violence").str.strip()
    return pd.DataFrame(
        {
            "event_id": raw["id"],
            # Exports disagree on a time part ("2014-01-24 00:00:00.000"); the day is enough.
            "date": raw["date_start"].str.strip().str[:10],
            "admin1": raw["adm_1"],
            "country": col("country"),
            "deaths": raw["best"],
            "event_type": violence.map(VIOLENCE_TYPES).fillna(violence),
            "actors": col("side_a").str.strip() + " | " + col("side_b").str.strip(),
        }
    )


UCDP_GED = SourceFormat(
    name="ucdp",
    label="UCDP GED",
    required=("id", "date_start", "adm_1", "best", "type_of_violence"),
    column_of={
        "event_id": "id",
        "date": "date_start",
        "admin1": "adm_1",
        "country": "country",
        "deaths": "best",
        "event_type": "type_of_violence",
    },
    stage=_stage,
    event_type_aliases={**VIOLENCE_TYPES, "state based": "state-based", "non state": "non-state", "one sided": "one-sided"},
)
