"""Ledger jobs: open the forecast ledger a command names, and the tables ``ledger show`` prints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.ledger import Ledger, LedgerError, sqlite_path
from forecast.ledger.integrity import backup_sqlite
from forecast.refresh import load_config

__all__ = ["SCORE_KEYS", "backup_ledger", "issue_rows", "issues_table", "open_ledger"]

#: Columns ``ledger score --by`` may group by.
SCORE_KEYS = ("model", "model_version", "horizon", "origin", "unit")


def open_ledger(config_path: str | Path | None = None, ledger: str | None = None) -> Ledger:
    """The ledger at ``ledger`` (a SQLite file or database URL), else the one a refresh configuration names.

    Raises ``ValueError`` when neither is given; :class:`~forecast.config.ConfigError` or
    :class:`~forecast.ledger.LedgerError` when it cannot be opened. It is opened read-only and never created here.
    """
    if ledger is None and config_path is None:
        raise ValueError("give a ledger or a refresh configuration")
    target = ledger or load_config(config_path).ledger
    return Ledger.open(target, create=False, read_only=True)


def backup_ledger(config_path: str | Path | None = None, ledger: str | None = None,
                  out: str | Path | None = None) -> Path:
    """Back a SQLite ledger up (SQLite's online backup API, to ``out`` or beside it); returns the backup.

    A ledger on a database server is backed up with that server's tools (``pg_dump``).
    """
    target = ledger or load_config(config_path).ledger
    path = sqlite_path(target)
    if path is None:
        raise LedgerError(f"ledger {target}: only a SQLite ledger is backed up here; use the database's own "
                          "tools for a server (pg_dump for PostgreSQL)")
    if not path.exists():
        raise LedgerError(f"no ledger at {path}: nothing to back up")
    return backup_sqlite(path, out)


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
