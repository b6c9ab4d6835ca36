"""The forecast ledger: every forecast ever issued, with the actuals and scores as they arrive.

An append-only store behind one small class, :class:`Ledger`, on SQLAlchemy Core, so the same
code runs on a SQLite file (the default) and on PostgreSQL (``postgresql://...``; the
``psycopg`` driver is used).

Tables
------
``refreshes``
    One row per refresh that issued forecasts or recorded actuals: when, data vintage, model
    name and version, where its forecast file and report went, the MLflow run id.
``forecasts``
    One row per unit x target month of an issue: issue date, data vintage, model name and
    version, target, unit, origin, month, horizon, mean and the quantiles. Unique on
    (model, model_version, target, origin, unit, month): issuing the same forecast again is
    a no-op at the database level, which makes a refresh idempotent.
``outcomes``
    The actual of a forecast's target month and its scores (CRPS over the quantiles,
    absolute error of the median, 50% and 90% interval hits, from :mod:`forecast.evaluation.scores`),
    keyed by forecast and the data vintage it was read from. A forecast gets a new outcome
    row only when its actual first becomes known or a later data vintage revises it; the
    latest one counts.

Nothing is ever updated or deleted: triggers refuse UPDATE and DELETE on all three tables,
in SQLite and in PostgreSQL. Every write of a refresh (its row, its forecasts and the new
outcomes) is one transaction; a process killed part-way leaves the ledger as it was before
(SQLite's rollback journal / PostgreSQL's aborted transaction), and a refresh that adds
nothing new writes nothing at all, so the ledger does not change.
"""

from __future__ import annotations

from forecast.ledger.store import Issue, Ledger, Recorded, default_ledger_path, score_rows
from forecast.ledger.tables import PAST_FORECAST_COLUMNS, SCORE_COLUMNS, LedgerError, ledger_url, sqlite_path

__all__ = ["PAST_FORECAST_COLUMNS", "SCORE_COLUMNS", "Issue", "Ledger", "LedgerError", "Recorded",
           "default_ledger_path", "ledger_url", "score_rows", "sqlite_path"]
