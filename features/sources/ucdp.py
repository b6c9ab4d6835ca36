"""UCDP Georeferenced Event Dataset (GED) and UCDP Candidate Events, as downloaded.

Codebook: https://ucdp.uu.se/downloads/ (GED codebook). One row per event; ``adm_1`` is
UCDP's transliteration ("Al Anbār province"); ``best`` is the best estimate of deaths.
Events that span months are placed in the month of ``date_start``. The HDX distribution has
an HXL hashtag row under the header, which the CSV reader skips.

The Candidate Events Dataset (https://ucdp.uu.se/downloads/ "UCDP Candidate") is GED's
monthly preview: the same codebook layout, released each month with about a month's lag,
then revised into the yearly GED. A refresh reads it for the months GED does not reach yet.
Its files are told apart from GED by their release name (``GEDEvent_v25_0_10.csv``: minor
version 0 is a Candidate release, ``GEDEvent_v25_1.csv`` is GED 25.1; ``ged251-csv.zip``
likewise), by the word "candidate" in the file name, or by the Candidate-only column
``code_status`` (UCDP's review flag: ``Clear`` or what still needs checking).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from features.sources.base import SourceFormat

#: type_of_violence codes of the GED codebook.
VIOLENCE_TYPES = {"1": "state-based", "2": "non-state", "3": "one-sided"}
#: ``side_a`` of an event by a state's forces: GED names governments "Government of <country>"
#: (side A of every state-based dyad, and the perpetrator of a government's one-sided violence).
GOVERNMENT = r"^Government of\b"


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    violence = col("type_of_violence").str.strip()
    side_a, side_b = col("side_a").str.strip(), col("side_b").str.strip()
    return pd.DataFrame(
        {
            "event_id": raw["id"],
            # Exports disagree on a time part ("2014-01-24 00:00:00.000"); the day is enough.
            "date": raw["date_start"].str.strip().str[:10],
            "admin1": raw["adm_1"],
            "country": col("country"),
            "deaths": raw["best"],
            "event_type": violence.map(VIOLENCE_TYPES).fillna(violence),
            "actors": side_a + " | " + side_b,
            "side_a": side_a,
            "side_b": side_b,
            "deaths_civilians": col("deaths_civilians"),
            # An operation: side A is a government's forces (empty side A: unknown).
            "operation": side_a.str.contains(GOVERNMENT, regex=True).map({True: "1", False: "0"}).where(side_a != "", ""),
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

UCDP_CANDIDATE = dataclasses.replace(UCDP_GED, name="ucdp-candidate", label="UCDP Candidate Events")

#: Release names: ``GEDEvent_v25_0_10`` (Candidate 25.0.10), ``GEDEvent_v25_1`` (GED 25.1),
#: ``ged251-csv`` (GED 25.1).
_CANDIDATE_NAME = re.compile(r"(gedevent_v\d+_0_\d+|candidate)", re.IGNORECASE)


def ucdp_variant(path: Path, columns: Sequence[str]) -> tuple[SourceFormat, str]:
    """GED or Candidate for a file in the GED layout, and why (for the build summary)."""
    present = {c.strip().lower() for c in columns}
    if "code_status" in present:
        return UCDP_CANDIDATE, "it has the Candidate column code_status"
    match = _CANDIDATE_NAME.search(path.name)
    if match:
        return UCDP_CANDIDATE, f"its file name says so ({match.group(0)})"
    return UCDP_GED, "GED layout, no Candidate release name or code_status column"


def review_note(raw: pd.DataFrame) -> str | None:
    """How many Candidate events UCDP still flags for review (``code_status`` other than Clear)."""
    if "code_status" not in raw:
        return None
    status = raw["code_status"].astype(str).str.strip()
    flagged = status[(status != "") & (status.str.lower() != "clear")]
    if flagged.empty:
        return None
    kinds = ", ".join(f"{k} x {v:,}" for k, v in flagged.value_counts().head(3).items())
    return (f"{len(flagged):,} UCDP Candidate event(s) are still flagged for review by UCDP "
            f"(code_status {kinds}); they are kept, and may change in the next release")
