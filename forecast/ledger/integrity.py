"""A SQLite ledger is verified before it is trusted, and backed up before it is written.

The ledger is the record of every forecast issued, so a damaged file must stop the job, not be
written into or replaced. Before a SQLite ledger is opened its file is checked: not empty, a
SQLite database by its header, and ``PRAGMA quick_check`` clean (read through a read-only
connection, so the check itself never writes). Backups use SQLite's online backup API, which
copies a consistent snapshot even while another connection reads the file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from forecast.errors import LedgerError

__all__ = ["ANCHOR_SUFFIX", "BACKUP_SUFFIX", "SQLITE_HEADER", "backup_sqlite", "backups_of", "check_sqlite_file", "read_only_uri",
           "rotate_backups"]

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Backups are ``<ledger>.<UTC timestamp>.backup`` beside the ledger.
BACKUP_SUFFIX = ".backup"
#: The anchor of a SQLite ledger (:mod:`forecast.ledger.anchor`) is ``<ledger>.anchor``; a backup gets its own copy.
ANCHOR_SUFFIX = ".anchor"

_RESTORE = ("Nothing was written. Restore it from a backup (`forecast ledger backup` and every refresh keep "
            "them beside it as {name}.<time>.backup), or move it away and run the refresh with --new-ledger "
            "to start a new ledger.")


def read_only_uri(path: Path) -> str:
    """A ``sqlite3`` URI that opens ``path`` read-only (``mode=ro``): no write, no journal, no new file."""
    return f"{Path(path).resolve().as_uri()}?mode=ro"


def check_sqlite_file(path: str | os.PathLike) -> None:
    """Refuse a ledger file that is empty, not a SQLite database, or fails ``PRAGMA quick_check``.

    Raises
    ------
    LedgerError
        Naming the file, what is wrong with it, and how to recover.
    """
    path = Path(path)
    restore = _RESTORE.format(name=path.name)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise LedgerError(f"ledger {path} is empty (0 bytes): its history is gone (truncated?). {restore}")
    if header != SQLITE_HEADER:
        raise LedgerError(f"ledger {path} is not a SQLite database (its first bytes are {header[:16]!r}): a foreign "
                          f"or damaged file. {restore}")
    try:
        with sqlite3.connect(read_only_uri(path), uri=True, timeout=30) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"ledger {path} is damaged ({exc}). {restore}") from None
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise LedgerError(f"ledger {path} is damaged (PRAGMA quick_check: {shown}). {restore}")


def backups_of(path: str | os.PathLike) -> list[Path]:
    """The backups of the ledger at ``path``, oldest first."""
    path = Path(path)
    return sorted(path.parent.glob(f"{path.name}.*{BACKUP_SUFFIX}"))


def backup_sqlite(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Copy the ledger at ``path`` with SQLite's online backup API; returns the backup's path.

    ``dest`` defaults to ``<ledger>.<UTC time>.backup`` beside it. The copy is written to a
    temporary name and renamed into place, so a backup is either whole or absent. The ledger's
    anchor is copied beside it as ``<backup>.anchor``: restore both together.
    """
    path = Path(path)
    check_sqlite_file(path)
    if dest is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        dest = path.with_name(f"{path.name}.{stamp}{BACKUP_SUFFIX}")
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    anchor, dest_anchor = path.with_name(path.name + ANCHOR_SUFFIX), dest.with_name(dest.name + ANCHOR_SUFFIX)
    try:
        # The anchor first: copied before the rows, it anchors no refresh the copy lacks.
        if anchor.exists():
            shutil.copyfile(anchor, dest_anchor)
        source = sqlite3.connect(read_only_uri(path), uri=True, timeout=30)
        try:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error) as exc:
        tmp.unlink(missing_ok=True)
        dest_anchor.unlink(missing_ok=True)
        raise LedgerError(f"ledger {path}: the backup to {dest} failed ({exc}); the ledger is unchanged") from None
    return dest


def rotate_backups(path: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of the ledger at ``path``; returns those deleted."""
    existing = backups_of(path)
    old = existing[: max(len(existing) - keep, 0)]
    for backup in old:
        backup.unlink(missing_ok=True)
        backup.with_name(backup.name + ANCHOR_SUFFIX).unlink(missing_ok=True)
    return old
