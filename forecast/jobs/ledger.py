"""Ledger jobs: open the forecast ledger a command names, and the tables ``ledger show`` prints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.ledger import Ledger
from forecast.refresh import load_config

__all__ = ["SCORE_KEYS", "issue_rows", "issues_table", "open_ledger"]

#: Columns ``ledger score --by`` may group by.
SCORE_KEYS = ("model", "model_version", "horizon", "origin", "unit")


def open_ledger(config_path: str | Path | None = None, ledger: str | None = None) -> Ledger:
    """The ledger at ``ledger`` (a SQLite file or database URL), else the one a refresh configuration names.

    Raises ``ValueError`` when neither is given; :class:`~forecast.config.ConfigError` or
    :class:`~forecast.ledger.LedgerError` when it cannot be opened. It is never created here.
    """
    if ledger is None and config_path is None:
        raise ValueError("give a ledger or a refresh configuration")
    target = ledger or load_config(config_path).ledger
    return Ledger.open(target, create=False)


def issue_rows(frame: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """The forecast rows of one issue (``frame``: one origin's rows with scores), optionally one unit's."""
    if unit is not None:
        frame = frame.loc[frame["unit"].str.casefold() == unit.strip().casefold()]
    cols = ["model", "model_version", "unit", "month", "horizon", "mean", "q05", "q50", "q95", "y", "crps"]
    return frame[cols].astype({"month": str})


def issues_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per issue (origin, model version): units, horizons, forecasts, actuals so far, CRPS, national h1."""
    frame = frame.assign(scored=frame["y"].notna().astype(int), one=1)
    table = (frame.groupby(["origin", "issued", "vintage", "model", "model_version"], sort=True)
             .agg(units=("unit", "nunique"), horizons=("horizon", "max"), forecasts=("one", "sum"),
                  scored=("scored", "sum"), crps=("crps", "mean"), national_h1=("mean", lambda s: float("nan")))
             .reset_index())
    h1 = frame.loc[frame["horizon"] == 1].groupby(["origin", "model", "model_version"])["mean"].sum()
    table["national_h1"] = [h1.get((o, m, v), float("nan")) for o, m, v in
                            zip(table["origin"], table["model"], table["model_version"])]
    return table.astype({"origin": str}).rename(columns={"national_h1": "national mean h1"})
