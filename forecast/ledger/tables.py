"""The ledger's tables (SQLAlchemy Core), the triggers that keep them append-only, and its URL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from forecast.errors import LedgerError
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["APPEND_ONLY", "CORE_TABLES", "PAST_FORECAST_COLUMNS", "SCHEMA_VERSION", "SCORE_COLUMNS", "LedgerError",
           "append_only_ddl", "forecasts", "info", "ledger_url", "metadata", "sqlite_path", "outcomes", "refreshes", "seals"]


SCHEMA_VERSION = "1"
#: The frame :meth:`Ledger.forecasts` returns (the report's ``past_forecasts``).
PAST_FORECAST_COLUMNS = ("issued", "vintage", "model", "model_version", "unit", "origin", "month", "horizon",
                         "mean", *QUANTILE_COLUMNS, "y")
#: Per-forecast scores stored with each actual.
SCORE_COLUMNS = ("crps", "abs_error", "in50", "in90")
#: Width of a month column ("YYYY-MM").
MONTH_WIDTH = 7


metadata = sa.MetaData()

info = sa.Table(
    "ledger_info", metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

refreshes = sa.Table(
    "refreshes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("issued", sa.String(10), nullable=False),
    sa.Column("vintage", sa.String(MONTH_WIDTH), nullable=False),
    sa.Column("origin", sa.String(MONTH_WIDTH)),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("model", sa.String(200)),
    sa.Column("model_version", sa.String(50)),
    sa.Column("model_label", sa.Text),
    sa.Column("estimator", sa.String(100)),
    sa.Column("forecasts_issued", sa.Integer, nullable=False),
    sa.Column("outcomes_recorded", sa.Integer, nullable=False),
    sa.Column("panel_sha256", sa.String(64)),
    sa.Column("forecasts_path", sa.Text),
    sa.Column("report_path", sa.Text),
    sa.Column("mlflow_run_id", sa.String(64)),
    sa.Column("forced", sa.Boolean, nullable=False),
)

forecasts = sa.Table(
    "forecasts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("refresh_id", sa.Integer, sa.ForeignKey("refreshes.id"), nullable=False),
    sa.Column("issued", sa.String(10), nullable=False),
    sa.Column("vintage", sa.String(MONTH_WIDTH), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=False),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("unit", sa.String(200), nullable=False),
    sa.Column("origin", sa.String(MONTH_WIDTH), nullable=False),
    sa.Column("month", sa.String(MONTH_WIDTH), nullable=False),
    sa.Column("horizon", sa.Integer, nullable=False),
    sa.Column("mean", sa.Double, nullable=False),
    *(sa.Column(q, sa.Double, nullable=False) for q in QUANTILE_COLUMNS),
    sa.UniqueConstraint("model", "model_version", "target", "origin", "unit", "month", name="uq_forecast"),
)

outcomes = sa.Table(
    "outcomes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("forecast_id", sa.Integer, sa.ForeignKey("forecasts.id"), nullable=False),
    sa.Column("refresh_id", sa.Integer, sa.ForeignKey("refreshes.id"), nullable=False),
    sa.Column("vintage", sa.String(MONTH_WIDTH), nullable=False),
    sa.Column("y", sa.Double, nullable=False),
    sa.Column("crps", sa.Double, nullable=False),
    sa.Column("abs_error", sa.Double, nullable=False),
    sa.Column("in50", sa.Integer, nullable=False),
    sa.Column("in90", sa.Integer, nullable=False),
    sa.UniqueConstraint("forecast_id", "vintage", name="uq_outcome"),
)

#: One checksum per refresh, chained: SHA-256 of the previous refresh's digest and of this
#: refresh's rows (its ``refreshes`` row, its forecasts, its outcomes), written in the same
#: transaction. Verified on every open, so a row changed behind the triggers' back (a database
#: superuser with triggers disabled, a restore of a doctored dump) is found.
seals = sa.Table(
    "seals", metadata,
    sa.Column("refresh_id", sa.Integer, sa.ForeignKey("refreshes.id"), primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
)

sa.Index("ix_forecasts_origin", forecasts.c.origin)
sa.Index("ix_outcomes_forecast", outcomes.c.forecast_id)

#: The tables that triggers keep append-only.
APPEND_ONLY = ("refreshes", "forecasts", "outcomes", "seals")
#: The tables every ledger has (a ledger made before the seals lacks ``seals``).
CORE_TABLES = ("ledger_info", "refreshes", "forecasts", "outcomes")


def append_only_ddl(dialect: str) -> list[str]:
    """Triggers that refuse UPDATE and DELETE (the ledger's promise made by the database)."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the forecast ledger is append-only: {op} on {table} refused'); END"
            for table in APPEND_ONLY for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'the forecast ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; "
            "END $$",
            *(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
              f"FOR EACH ROW EXECUTE FUNCTION ledger_append_only()" for table in APPEND_ONLY),
        ]
    return []


def ledger_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a ledger given as a URL or a file path (a path means SQLite).

    ``postgresql://`` and ``postgres://`` URLs get the psycopg 3 driver.
    """
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return text


def sqlite_path(target: str | Path) -> Path | None:
    """The file of a SQLite ledger given as a path or URL; None for a ledger on a database server."""
    url = ledger_url(target)
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
