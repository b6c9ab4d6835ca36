"""Global Terrorism Database (GTD) CSV export.

One row per attack. The date is split over ``iyear``, ``imonth``, ``iday``, where 0 means
unknown: an unknown day is placed on the 1st (the month is all a monthly panel needs), an
unknown month cannot be placed in a month and the row is quarantined. ``provstate`` is the
admin-1 name, ``nkill`` the number killed (empty = unknown).
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    col = lambda name: raw[name] if name in raw else pd.Series("", index=raw.index)  # noqa: E731
    year = raw["iyear"].str.strip()
    month = raw["imonth"].str.strip()
    day = raw["iday"].str.strip()
    day = day.where(~day.isin(["0", "00", ""]), "1")
    problem = pd.Series("", index=raw.index, dtype=object)
    problem[month.isin(["0", "00"])] = "month unknown (imonth = 0): cannot be placed in a month"
    date = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
    return pd.DataFrame(
        {
            "event_id": raw["eventid"],
            "date": date,
            "admin1": raw["provstate"],
            "country": col("country_txt"),
            "deaths": raw["nkill"].str.strip().str.replace(r"\.0$", "", regex=True),
            "event_type": col("attacktype1_txt"),
            "actors": col("gname"),
            "problem": problem,
        }
    )


GTD = SourceFormat(
    name="gtd",
    label="GTD",
    required=("eventid", "iyear", "imonth", "iday", "provstate", "nkill"),
    column_of={
        "event_id": "eventid",
        "date": "iyear/imonth/iday",
        "admin1": "provstate",
        "country": "country_txt",
        "deaths": "nkill",
        "event_type": "attacktype1_txt",
    },
    stage=_stage,
    optional=("country_txt", "attacktype1_txt", "gname"),
)
