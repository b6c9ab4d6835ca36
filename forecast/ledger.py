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

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecast.evaluation.scores import absolute_error, coverage_50, coverage_90, crps
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["Issue", "Ledger", "LedgerError", "Recorded", "PAST_FORECAST_COLUMNS", "SCORE_COLUMNS",
           "ledger_url"]

SCHEMA_VERSION = "1"
#: The frame :meth:`Ledger.forecasts` returns (the report's ``past_forecasts``).
PAST_FORECAST_COLUMNS = ("issued", "vintage", "model", "model_version", "unit", "origin", "month", "horizon",
                         "mean", *QUANTILE_COLUMNS, "y")
#: Per-forecast scores stored with each actual.
SCORE_COLUMNS = ("crps", "abs_error", "in50", "in90")
_MONTH = 7  # "YYYY-MM"


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (bad URL, unreachable server, refused change)."""


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
    sa.Column("vintage", sa.String(_MONTH), nullable=False),
    sa.Column("origin", sa.String(_MONTH)),
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
    sa.Column("vintage", sa.String(_MONTH), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=False),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("unit", sa.String(200), nullable=False),
    sa.Column("origin", sa.String(_MONTH), nullable=False),
    sa.Column("month", sa.String(_MONTH), nullable=False),
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
    sa.Column("vintage", sa.String(_MONTH), nullable=False),
    sa.Column("y", sa.Double, nullable=False),
    sa.Column("crps", sa.Double, nullable=False),
    sa.Column("abs_error", sa.Double, nullable=False),
    sa.Column("in50", sa.Integer, nullable=False),
    sa.Column("in90", sa.Integer, nullable=False),
    sa.UniqueConstraint("forecast_id", "vintage", name="uq_outcome"),
)

sa.Index("ix_forecasts_origin", forecasts.c.origin)
sa.Index("ix_outcomes_forecast", outcomes.c.forecast_id)

_APPEND_ONLY = ("refreshes", "forecasts", "outcomes")


def _append_only_ddl(dialect: str) -> list[str]:
    """Triggers that refuse UPDATE and DELETE (the ledger's promise made by the database)."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the forecast ledger is append-only: {op} on {table} refused'); END"
            for table in _APPEND_ONLY for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'the forecast ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; "
            "END $$",
            *(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
              f"FOR EACH ROW EXECUTE FUNCTION ledger_append_only()" for table in _APPEND_ONLY),
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


@dataclass(frozen=True)
class Issue:
    """What one refresh issues: its metadata, stored with every forecast row and in ``refreshes``."""

    vintage: str
    model: str
    model_version: str
    target: str = "incidents"
    model_label: str | None = None
    estimator: str | None = None
    issued_at: str | None = None
    panel_sha256: str | None = None
    forecasts_path: str | None = None
    report_path: str | None = None
    mlflow_run_id: str | None = None
    forced: bool = False

    def stamped(self) -> "Issue":
        """This issue with ``issued_at`` set to now (UTC) when it is not set."""
        if self.issued_at:
            return self
        return replace(self, issued_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def issued(self) -> str:
        return str(self.issued_at or "")[:10]


@dataclass(frozen=True)
class Recorded:
    """What :meth:`Ledger.record` added: forecast rows, outcome rows, and the refresh row id."""

    forecasts: int
    outcomes: int
    refresh_id: int | None

    @property
    def changed(self) -> bool:
        return bool(self.forecasts or self.outcomes)


def _months(values) -> pd.Series:
    return pd.Series(pd.PeriodIndex(pd.Series(values).astype(str), freq="M"))


def score_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-row scores of forecasts with an actual ``y``: ``crps, abs_error, in50, in90``.

    Uses :mod:`forecast.evaluation.scores` (quantile CRPS, absolute error of the median, interval hits).
    """
    return pd.DataFrame({"crps": crps(frame), "abs_error": absolute_error(frame),
                         "in50": coverage_50(frame).astype(int), "in90": coverage_90(frame).astype(int)},
                        index=frame.index)


class Ledger:
    """The forecast ledger at a SQLAlchemy URL. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | Path, *, create: bool = True) -> "Ledger":
        """Open (and on first use create) the ledger at a URL or SQLite file path.

        Raises
        ------
        LedgerError
            Unknown URL scheme or driver, an unreachable server, a missing ledger when
            ``create`` is False, or a database that is not a ledger.
        """
        url = ledger_url(target)
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise LedgerError(f"ledger {target!r} is not a file path or a database URL "
                              f"(sqlite:///PATH or postgresql://USER@HOST:PORT/DB)") from None
        shown = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if not database or database == ":memory:":
                raise LedgerError(f"ledger {shown}: give a file (an in-memory ledger would be lost)")
            if not create and not Path(database).exists():
                raise LedgerError(f"no ledger at {database}: nothing has been issued yet "
                                  f"(run `forecast refresh` first)")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # A refresh and a `ledger show` may meet: wait for the other's lock, not fail at once.
            engine = sa.create_engine(url, connect_args={"timeout": 30})
        else:
            try:
                engine = sa.create_engine(url, pool_pre_ping=True)
            except (sa.exc.ArgumentError, ModuleNotFoundError, sa.exc.NoSuchModuleError) as exc:
                raise LedgerError(f"ledger {shown}: {exc}; supported: sqlite:///PATH or "
                                  f"postgresql://... (pip install 'psycopg[binary]')") from None
        ledger = cls(engine)
        ledger.url = shown
        try:
            ledger._prepare(create)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise LedgerError(f"cannot open the ledger {shown}: {exc.orig}") from None
        return ledger

    def _prepare(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        present = set(inspector.get_table_names())
        if not present and not create:
            raise LedgerError(f"{self.url} holds no ledger yet (run `forecast refresh` first)")
        if present and "forecasts" in present and "ledger_info" not in present:
            raise LedgerError(f"{self.url} has a 'forecasts' table that is not a forecast ledger's")
        if {"ledger_info", *_APPEND_ONLY} <= present:
            return
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            for statement in _append_only_ddl(self.engine.dialect.name):
                conn.execute(sa.text(statement))
            have = conn.execute(sa.select(info.c.key)).scalars().all()
            if "schema_version" not in have:
                conn.execute(info.insert(), [
                    {"key": "schema_version", "value": SCHEMA_VERSION},
                    {"key": "created", "value": datetime.now(timezone.utc).isoformat(timespec="seconds")}])

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per table: ``refreshes``, ``forecasts``, ``outcomes``."""
        with self.engine.connect() as conn:
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                    for t in (refreshes, forecasts, outcomes)}

    def latest_origin(self, *, target: str | None = None, model: str | None = None) -> pd.Period | None:
        """The latest origin issued (for ``target`` / ``model`` when given), or None."""
        query = sa.select(sa.func.max(forecasts.c.origin))
        if target is not None:
            query = query.where(forecasts.c.target == target)
        if model is not None:
            query = query.where(forecasts.c.model == model)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one()
        return pd.Period(value, freq="M") if value else None

    def _latest_outcomes(self):
        """The latest outcome of each forecast (the one from the newest vintage)."""
        newest = (sa.select(outcomes.c.forecast_id, sa.func.max(outcomes.c.vintage).label("vintage"))
                  .group_by(outcomes.c.forecast_id).subquery())
        return (sa.select(outcomes).join(newest, sa.and_(outcomes.c.forecast_id == newest.c.forecast_id,
                                                          outcomes.c.vintage == newest.c.vintage))
                .subquery("latest"))

    def forecasts(self, *, model: str | None = None, model_version: str | None = None,
                  origin: str | pd.Period | None = None, target: str | None = None,
                  scores: bool = False) -> pd.DataFrame:
        """Issued forecasts with their latest actual ``y`` (NaN while unknown).

        Returns
        -------
        pandas.DataFrame
            :data:`PAST_FORECAST_COLUMNS` (``origin`` and ``month`` as ``Period[M]``), sorted by
            origin, model, version, unit, month; with ``scores`` also ``target``, ``id``,
            ``actual_vintage`` and :data:`SCORE_COLUMNS`.
        """
        latest = self._latest_outcomes()
        cols = [forecasts.c[c] for c in ("id", "issued", "vintage", "model", "model_version", "target", "unit",
                                         "origin", "month", "horizon", "mean", *QUANTILE_COLUMNS)]
        query = (sa.select(*cols, latest.c.y, latest.c.vintage.label("actual_vintage"),
                           *(latest.c[c] for c in SCORE_COLUMNS))
                 .select_from(forecasts.outerjoin(latest, latest.c.forecast_id == forecasts.c.id)))
        for column, value in (("model", model), ("model_version", model_version), ("target", target),
                              ("origin", None if origin is None else str(origin))):
            if value is not None:
                query = query.where(forecasts.c[column] == str(value))
        query = query.order_by(forecasts.c.origin, forecasts.c.model, forecasts.c.model_version,
                               forecasts.c.unit, forecasts.c.month)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        names = ["id", *PAST_FORECAST_COLUMNS, "target", "actual_vintage", *SCORE_COLUMNS]
        frame = pd.DataFrame([dict(r) for r in rows], columns=names)
        frame["origin"] = _months(frame["origin"]).to_numpy() if len(frame) else pd.PeriodIndex([], freq="M")
        frame["month"] = _months(frame["month"]).to_numpy() if len(frame) else pd.PeriodIndex([], freq="M")
        frame["horizon"] = frame["horizon"].astype("int64")
        for col in ("mean", *QUANTILE_COLUMNS, "y", "crps", "abs_error", "in50", "in90"):
            frame[col] = frame[col].astype(float)
        if scores:
            return frame
        return frame[list(PAST_FORECAST_COLUMNS)]

    def issues(self) -> pd.DataFrame:
        """Every refresh row, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(refreshes).order_by(refreshes.c.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in refreshes.columns])

    def scores(self, by: Sequence[str] = ("model", "model_version", "horizon"), *,
               target: str | None = None) -> pd.DataFrame:
        """How issued forecasts did: mean scores of the forecasts with a known actual, per group.

        Returns
        -------
        pandas.DataFrame
            ``*by, issued, scored, crps, mae, coverage50, coverage90``: ``issued`` counts the
            group's forecasts, ``scored`` those with an actual, the scores average over those.
        """
        frame = self.forecasts(target=target, scores=True)
        by = list(by)
        columns = [*by, "issued", "scored", "crps", "mae", "coverage50", "coverage90"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame = frame.assign(scored=frame["y"].notna().astype(int), coverage50=frame["in50"],
                             coverage90=frame["in90"], mae=frame["abs_error"], issued=1)
        grouped = frame.groupby(by, sort=True, observed=True)
        table = grouped[["crps", "mae", "coverage50", "coverage90"]].mean()
        table.insert(0, "scored", grouped["scored"].sum())
        table.insert(0, "issued", grouped["issued"].sum())
        return table.reset_index()[columns]

    # -- scoring ---------------------------------------------------------------------------

    def new_outcomes(self, panel: pd.DataFrame, vintage: str, *, target: str = "incidents") -> pd.DataFrame:
        """Outcome rows the ledger lacks, from a panel: forecasts whose target month is in the
        panel and that have no actual yet, or whose latest actual the panel revises.

        Returns
        -------
        pandas.DataFrame
            ``forecast_id, vintage, y, crps, abs_error, in50, in90`` (scores from
            :func:`score_rows`).
        """
        frame = self.forecasts(target=target, scores=True)
        empty = pd.DataFrame(columns=["forecast_id", "vintage", "y", *SCORE_COLUMNS])
        if frame.empty:
            return empty
        actual = panel[["unit", "month", target]].rename(columns={target: "y_now"})
        merged = frame.merge(actual, on=["unit", "month"], how="inner")
        known = merged["y_now"].notna()
        changed = merged["y"].isna() | (merged["y"] != merged["y_now"].astype(float))
        todo = merged.loc[known & changed].copy()
        if todo.empty:
            return empty
        todo["y"] = todo["y_now"].astype(float)
        scored = score_rows(todo)
        out = pd.DataFrame({"forecast_id": todo["id"].astype("int64"), "vintage": str(vintage), "y": todo["y"]})
        return pd.concat([out, scored], axis=1).reset_index(drop=True)

    # -- writing ---------------------------------------------------------------------------

    def record(self, issue: Issue, frame: pd.DataFrame | None = None, panel: pd.DataFrame | None = None, *,
               before_commit: Callable[[], None] | None = None) -> Recorded:
        """Issue forecasts and record new actuals, in one transaction.

        Parameters
        ----------
        issue
            The refresh's metadata (vintage, model name and version, paths, run id).
        frame
            Forecasts to issue: ``unit, origin, month, horizon, mean, q05..q95`` (other
            columns ignored), one origin. Rows the ledger already holds (same model, version,
            target, origin, unit, month) are skipped.
        panel
            When given, actuals of earlier forecasts are read from it (:meth:`new_outcomes`,
            at ``issue.vintage``) and recorded with their scores.
        before_commit
            Called inside the transaction after every insert, before the commit (a testing
            hook: a kill there must leave the ledger as it was).

        Returns
        -------
        Recorded
            Counts of the rows added. When nothing is new nothing is written at all and the
            ledger is unchanged (``refresh_id`` is None).
        """
        issue = issue.stamped()
        found = self.new_outcomes(panel, issue.vintage, target=issue.target) if panel is not None else None
        rows = self._forecast_rows(issue, frame) if frame is not None else []
        n_outcomes = 0 if found is None else len(found)
        with self.engine.connect() as conn:
            with conn.begin():
                rows = self._not_yet_issued(conn, issue, rows)
                if not (rows or n_outcomes):
                    return Recorded(0, 0, None)
                refresh_id = conn.execute(refreshes.insert().values(
                    issued_at=issue.issued_at, issued=issue.issued, vintage=issue.vintage,
                    origin=rows[0]["origin"] if rows else None, target=issue.target, model=issue.model,
                    model_version=issue.model_version, model_label=issue.model_label,
                    estimator=issue.estimator, forecasts_issued=len(rows), outcomes_recorded=n_outcomes,
                    panel_sha256=issue.panel_sha256, forecasts_path=issue.forecasts_path,
                    report_path=issue.report_path, mlflow_run_id=issue.mlflow_run_id, forced=issue.forced,
                ).returning(refreshes.c.id)).scalar_one()
                if rows:
                    # A plain INSERT: should a row already be there after all (another writer
                    # between the check and here), the unique constraint fails the whole
                    # transaction rather than issuing a forecast twice.
                    conn.execute(forecasts.insert(), [{**r, "refresh_id": refresh_id} for r in rows])
                if n_outcomes:
                    payload = found.assign(refresh_id=refresh_id).to_dict("records")
                    conn.execute(outcomes.insert(), [_plain(r) for r in payload])
                if before_commit is not None:
                    before_commit()
        return Recorded(len(rows), n_outcomes, refresh_id)

    def _forecast_rows(self, issue: Issue, frame: pd.DataFrame) -> list[dict]:
        missing = [c for c in ("unit", "origin", "month", "horizon", "mean", *QUANTILE_COLUMNS) if c not in frame]
        if missing:
            raise LedgerError(f"forecasts to issue lack column(s) {', '.join(missing)}")
        origins = frame["origin"].astype(str).unique()
        if len(origins) > 1:
            raise LedgerError(f"one issue has one origin; the forecasts have {', '.join(sorted(origins))}")
        base = {"issued": issue.issued, "vintage": issue.vintage, "model": issue.model,
                "model_version": str(issue.model_version), "target": issue.target}
        out = []
        for r in frame.to_dict("records"):
            out.append({**base, "unit": str(r["unit"]), "origin": str(r["origin"]), "month": str(r["month"]),
                        "horizon": int(r["horizon"]), "mean": float(r["mean"]),
                        **{q: float(r[q]) for q in QUANTILE_COLUMNS}})
        return out

    def _not_yet_issued(self, conn: Connection, issue: Issue, rows: list[dict]) -> list[dict]:
        """The rows whose (model, version, target, origin, unit, month) the ledger lacks."""
        if not rows:
            return rows
        c = forecasts.c
        have = conn.execute(sa.select(c.unit, c.month).where(
            c.model == issue.model, c.model_version == str(issue.model_version), c.target == issue.target,
            c.origin == rows[0]["origin"])).all()
        seen = {(u, m) for u, m in have}
        return [r for r in rows if (r["unit"], r["month"]) not in seen]


def _plain(record: dict) -> dict:
    """NumPy scalars as Python values (psycopg does not adapt numpy.int64)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def default_ledger_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "ledger.sqlite"
