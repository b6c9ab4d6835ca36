"""Iraq Body Count (IBC) incident CSV with a ``Province`` column.

Layout of ``IBC_event.csv`` (IBC's incident export with the province coding of Beger's
PSSI_2012_TSEC_Iraq): ``IBC.code, Start.Date, End.Date, Reported.Minimum,
Reported.Maximum, Province``, dates like ``30 Jan 2010``. IBC records incidents in which
civilians were killed. Deaths are IBC's ``Reported.Minimum`` (the conservative figure; the
maximum is usually within a few percent). Records spanning months are placed in the start
month. IBC files carry no country column: every row is taken to be in the gazetteer's country.
"""

from __future__ import annotations

import pandas as pd

from features.sources.base import SourceFormat


def _stage(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": raw["ibc.code"],
            "date": raw["start.date"],
            "admin1": raw["province"],
            "deaths": raw["reported.minimum"],
            "event_type": "civilian deaths",
            "actors": "",
        }
    )


IBC = SourceFormat(
    name="ibc",
    label="Iraq Body Count",
    required=("IBC.code", "Start.Date", "Reported.Minimum", "Reported.Maximum", "Province"),
    column_of={
        "event_id": "IBC.code",
        "date": "Start.Date",
        "admin1": "Province",
        "deaths": "Reported.Minimum",
    },
    stage=_stage,
    date_format="%d %b %Y",
)
