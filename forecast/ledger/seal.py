"""Checksums of the issued rows, kept in the ledger itself and verified on every open.

The triggers refuse UPDATE and DELETE, but a database superuser can switch them off (on
PostgreSQL ``SET session_replication_role = replica``), and a doctored dump can be restored.
So each refresh's rows are sealed in the transaction that writes them: the ``seals`` table
holds, per refresh, the SHA-256 of the previous seal and of this refresh's rows (its
``refreshes`` row, its forecasts and its outcomes, every column, in id order). Opening the
ledger recomputes the chain; a row changed, added or removed outside the ledger breaks it, and
the ledger is refused with a message naming the first refresh that no longer matches.

A chain kept in the ledger is only a check against accidents and against someone who cannot
run this code: whoever can write the ledger can recompute it (:func:`seal_refresh`), drop the
newest refreshes with their seals, or drop ``seals``. The head of the chain is therefore also
anchored outside the ledger, signed with a key the ledger does not hold
(:mod:`forecast.ledger.anchor`), and checked on every open with :func:`chain_digests`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forecast.errors import LedgerError
from forecast.ledger.tables import append_only_ddl, forecasts, outcomes, refreshes, seals

__all__ = ["GENESIS", "add_seals_table", "chain_digests", "lock_for_seal", "seal_refresh", "verify_seals"]

#: The "previous digest" of the first refresh.
GENESIS = "0" * 64
#: The sealed tables, in the order their rows enter a digest.
_SEALED = (refreshes, forecasts, outcomes)


def _value(column: sa.Column, value) -> object:
    """A column value in one form whatever the database returned (SQLite's 0/1 or a bool, int or float)."""
    if value is None:
        return None
    if isinstance(column.type, sa.Boolean):
        return int(bool(value))
    if isinstance(column.type, sa.Float):
        return repr(float(value))
    if isinstance(column.type, sa.Integer):
        return int(value)
    return str(value)


def _rows(conn: Connection, table: sa.Table, refresh_id: int | None = None) -> dict[int, list[list]]:
    """The table's rows as canonical lists, grouped by refresh id, in id order."""
    key = table.c.id if table is refreshes else table.c.refresh_id
    query = sa.select(*table.columns).order_by(key, table.c.id)
    if refresh_id is not None:
        query = query.where(key == refresh_id)
    grouped: dict[int, list[list]] = defaultdict(list)
    for row in conn.execute(query).mappings():
        grouped[int(row[key.name])].append([_value(c, row[c.name]) for c in table.columns])
    return grouped


def _digest(previous: str, parts: list[list[list]]) -> str:
    payload = json.dumps([previous, *parts], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def lock_for_seal(conn: Connection) -> None:
    """Serialise writers so that seals chain in refresh-id order (PostgreSQL; SQLite's writer lock does it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE seals IN SHARE ROW EXCLUSIVE MODE"))


def seal_refresh(conn: Connection, refresh_id: int) -> str:
    """Write the seal of refresh ``refresh_id`` (inside its transaction); returns the digest."""
    previous = conn.execute(sa.select(seals.c.digest).order_by(seals.c.refresh_id.desc()).limit(1)).scalar()
    parts = [_rows(conn, table, refresh_id).get(refresh_id, []) for table in _SEALED]
    digest = _digest(previous or GENESIS, parts)
    conn.execute(seals.insert().values(refresh_id=refresh_id, digest=digest))
    return digest


def add_seals_table(conn: Connection) -> int:
    """Give a ledger made before the seals its ``seals`` table, sealing the refreshes it holds; returns how many."""
    seals.create(conn, checkfirst=True)
    for statement in append_only_ddl(conn.dialect.name):
        if "seals" in statement or "FUNCTION" in statement:
            conn.execute(sa.text(statement))
    ids = conn.execute(sa.select(refreshes.c.id).order_by(refreshes.c.id)).scalars().all()
    for refresh_id in ids:
        seal_refresh(conn, refresh_id)
    return len(ids)


def verify_seals(conn: Connection, shown: str) -> int:
    """Recompute the chain of seals; returns the number of refreshes verified (see :func:`chain_digests`)."""
    return len(chain_digests(conn, shown))


def chain_digests(conn: Connection, shown: str) -> dict[int, str]:
    """Recompute the chain of seals; returns refresh id -> its verified digest.

    Raises
    ------
    LedgerError
        Naming the ledger and the first refresh whose rows no longer match their seal, a row
        that belongs to no refresh, or a seal whose refresh is gone.
    """
    grouped = [_rows(conn, table) for table in _SEALED]
    stored = {int(r): d for r, d in conn.execute(sa.select(seals.c.refresh_id, seals.c.digest)).all()}
    ids = sorted(grouped[0])
    fix = ("Nothing was written. The ledger was changed outside the forecast job (e.g. by a database "
           "superuser with its triggers disabled): restore it from a backup or the database's dump.")
    for table, rows in zip(_SEALED[1:], grouped[1:]):
        stray = sorted(set(rows) - set(ids))
        if stray:
            raise LedgerError(f"ledger {shown}: table {table.name} holds rows of refresh {stray[0]}, which the "
                              f"ledger never recorded. {fix}")
    gone = sorted(set(stored) - set(ids))
    if gone:
        raise LedgerError(f"ledger {shown}: refresh {gone[0]} was removed (its checksum is still there). {fix}")
    previous = GENESIS
    chain: dict[int, str] = {}
    for refresh_id in ids:
        if refresh_id not in stored:
            raise LedgerError(f"ledger {shown}: refresh {refresh_id} has no checksum: it was added outside the "
                              f"forecast job. {fix}")
        digest = _digest(previous, [rows.get(refresh_id, []) for rows in grouped])
        if digest != stored[refresh_id]:
            head = grouped[0][refresh_id][0]
            names = [c.name for c in refreshes.columns]
            when, origin = head[names.index("issued_at")], head[names.index("origin")]
            raise LedgerError(f"ledger {shown}: the rows of refresh {refresh_id} (issued {when}, origin {origin}) "
                              f"do not match the checksum written with them: a forecast, an actual or the "
                              f"refresh row was changed, added or removed. {fix}")
        previous = chain[refresh_id] = digest
    return chain
