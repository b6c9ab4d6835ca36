"""The :class:`Ledger`: open, read, score and append one refresh's issue in one transaction."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from forecast.evaluation.scores import absolute_error, coverage_50, coverage_90, crps
from forecast.ledger.anchor import Anchor
from forecast.ledger.integrity import check_sqlite_file, read_only_uri
from forecast.ledger.seal import add_seals_table, chain_digests, lock_for_seal, seal_refresh
from forecast.ledger.tables import (
    CORE_TABLES,
    PAST_FORECAST_COLUMNS,
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    LedgerError,
    append_only_ddl,
    forecasts,
    info,
    ledger_url,
    metadata,
    outcomes,
    refreshes,
)
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["Issue", "Ledger", "Recorded", "default_ledger_path", "score_rows"]


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
        self.read_only = False
        #: Where the head of the seal chain is anchored (:mod:`forecast.ledger.anchor`), once open.
        self.anchor: Anchor | None = None
        #: Refreshes whose digests the anchor holds, checked when the ledger was opened.
        self.anchored = 0
        self._sqlite_file: Path | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | Path, *, create: bool = True, read_only: bool = False,
             anchor: Anchor | None = None) -> "Ledger":
        """Open (and, with ``create``, on first use create) the ledger at a URL or SQLite file path.

        An existing SQLite file is verified first (:func:`forecast.ledger.integrity.check_sqlite_file`):
        an empty, foreign or damaged file is refused, never written into or replaced. With
        ``read_only`` a SQLite ledger is opened ``mode=ro``: nothing, not even a trigger, is written.
        The chain of seals is checked against its anchor outside the ledger (``anchor``, by
        default the one :meth:`forecast.ledger.anchor.Anchor.for_ledger` names).

        Raises
        ------
        LedgerError
            Unknown URL scheme or driver, an unreachable server, a missing ledger when
            ``create`` is False, an empty, damaged or foreign file, or a database that is not a ledger.
        """
        url = ledger_url(target)
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise LedgerError(f"ledger {target!r} is not a file path or a database URL "
                              f"(sqlite:///PATH or postgresql://USER@HOST:PORT/DB)") from None
        shown = parsed.render_as_string(hide_password=True)
        exists = True
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if not database or database == ":memory:":
                raise LedgerError(f"ledger {shown}: give a file (an in-memory ledger would be lost)")
            exists = Path(database).exists()
            if (read_only or not create) and not exists:
                raise LedgerError(f"no ledger at {database}: nothing has been issued yet "
                                  f"(run `forecast refresh` first)")
            if exists:
                check_sqlite_file(database)
            if read_only:
                engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(
                    read_only_uri(Path(database)), uri=True, timeout=30, check_same_thread=False))
            else:
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
        ledger.read_only = read_only
        ledger.anchor = anchor
        ledger._sqlite_file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None
        new_file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and not exists else None
        try:
            ledger._prepare(create and not read_only)
        except (sa.exc.DatabaseError, LedgerError) as exc:
            engine.dispose()
            if new_file is not None:
                # A ledger that could not even be created (a full disk) must not stay behind
                # as an empty file, which the next run would refuse as a lost history.
                for leftover in (new_file, new_file.with_name(new_file.name + "-journal")):
                    leftover.unlink(missing_ok=True)
            if isinstance(exc, sa.exc.OperationalError):
                raise LedgerError(f"cannot open the ledger {shown}: {exc.orig}") from None
            if isinstance(exc, sa.exc.DatabaseError):
                raise LedgerError(f"ledger {shown} is damaged ({exc.orig}); nothing was written") from None
            raise
        return ledger

    def _prepare(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        present = set(inspector.get_table_names())
        if not present and not create:
            raise LedgerError(f"{self.url} holds no ledger yet (run `forecast refresh` first)")
        if present and "ledger_info" not in present:
            shown = ", ".join(sorted(present)[:5]) + (", ..." if len(present) > 5 else "")
            raise LedgerError(f"{self.url} is not a forecast ledger: it holds other tables ({shown}); "
                              "nothing was written. Name the ledger file ([outputs] ledger or --ledger)")
        if set(CORE_TABLES) <= present:
            self._check_seals(present)
            return
        if not create:
            raise LedgerError(f"{self.url} is an incomplete forecast ledger (tables "
                              f"{', '.join(sorted(present))}); nothing was written")
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            for statement in append_only_ddl(self.engine.dialect.name):
                conn.execute(sa.text(statement))
            have = conn.execute(sa.select(info.c.key)).scalars().all()
            if "schema_version" not in have:
                conn.execute(info.insert(), [
                    {"key": "schema_version", "value": SCHEMA_VERSION},
                    {"key": "created", "value": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                    # Made anchored: from now on a missing anchor or seals table is tampering.
                    {"key": "ledger_id", "value": uuid.uuid4().hex},
                    {"key": "anchored", "value": "1"}])
            facts = dict(conn.execute(sa.select(info.c.key, info.c.value)).all())
        self.anchor = self.anchor or Anchor.for_ledger(self._sqlite_file, facts.get("ledger_id"))

    def _check_seals(self, present: set[str]) -> None:
        """Verify the chain of seals and its anchor outside the ledger; anchor what is not yet (when writable)."""
        writable = not self.read_only
        with self.engine.connect() as conn:
            facts = dict(conn.execute(sa.select(info.c.key, info.c.value)).all())
            conn.rollback()  # end the read's implicit transaction before writing in one of our own
            if "ledger_id" not in facts and writable:
                # A ledger made before the anchor: give it the id a server ledger's anchor is named by.
                facts["ledger_id"] = uuid.uuid4().hex
                with conn.begin():
                    conn.execute(info.insert().values(key="ledger_id", value=facts["ledger_id"]))
            anchor = self.anchor = self.anchor or Anchor.for_ledger(self._sqlite_file, facts.get("ledger_id"))
            sealed = facts.get("anchored") == "1"
            if "seals" not in present:
                if sealed or anchor.entries(self.url):
                    raise LedgerError(
                        f"ledger {self.url}: its seals table is gone, although the ledger was made with one "
                        f"(its anchor: {anchor.path}): the checksums of its rows were removed outside the forecast "
                        "job, which is tampering. Nothing was written: restore the ledger and its .anchor from a "
                        "backup, or the database's dump.")
                if not writable:
                    return
                # A ledger made before the seals: seal (and then anchor) what it holds.
                with conn.begin():
                    add_seals_table(conn)
            # Every open, read-only or not: a ledger changed behind the triggers is refused.
            chain = chain_digests(conn, self.url)
            conn.rollback()
            unanchored = anchor.check(chain, self.url, sealed=sealed)
            if not writable:
                self.anchored = len(chain) - len(unanchored)
                return
            anchor.append(chain, unanchored)
            self.anchored = len(chain)
            if not sealed:
                with conn.begin():
                    conn.execute(info.insert().values(key="anchored", value="1"))

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
                lock_for_seal(conn)
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
                digest = seal_refresh(conn, refresh_id)
                if before_commit is not None:
                    before_commit()
        # After the commit: a kill before this line leaves the refresh unanchored, and the next
        # open anchors it; an anchor ahead of the ledger would read as refreshes removed.
        self.anchor.append({refresh_id: digest}, [refresh_id])
        self.anchored += 1
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
