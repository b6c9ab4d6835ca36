"""A SQLite ledger is verified before it is trusted: damaged, empty and foreign files are refused
and left byte for byte as they were; read-only commands never write; backups are whole copies."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli import main
from forecast.ledger import Ledger, LedgerError
from forecast.ledger.integrity import backup_sqlite, backups_of, check_sqlite_file, rotate_backups

PAGE = 4096


def new_ledger(path: Path) -> Path:
    with Ledger.open(path) as ledger:
        assert ledger.counts() == {"refreshes": 0, "forecasts": 0, "outcomes": 0}
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damaged(path: Path) -> Path:
    """A page of garbage over the second page (the schema's tables start there)."""
    new_ledger(path)
    assert path.stat().st_size > 2 * PAGE
    with path.open("r+b") as handle:
        handle.seek(PAGE)
        handle.write(bytes(range(256)) * (PAGE // 256))
    return path


def truncated_to_half(path: Path) -> Path:
    new_ledger(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def foreign(path: Path) -> Path:
    """Another program's SQLite database (like MLflow's store)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO experiments VALUES (0, 'Default')")
    conn.close()
    return path


CASES = {
    "garbage page": (damaged, "is damaged"),
    "truncated to half": (truncated_to_half, "is damaged"),
    "zero bytes": (lambda p: (p.write_bytes(b""), p)[1], r"is empty \(0 bytes\)"),
    "not SQLite": (lambda p: (p.write_text('{"type": "FeatureCollection"}'), p)[1], "is not a SQLite database"),
    "foreign database": (foreign, "is not a forecast ledger: it holds other tables"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("read_only", [False, True], ids=["refresh", "read-only"])
def test_a_bad_ledger_file_is_refused_and_left_untouched(tmp_path, case, read_only):
    make, message = CASES[case]
    path = make(tmp_path / "ledger.sqlite")
    before = digest(path)
    with pytest.raises(LedgerError, match=message) as info:
        Ledger.open(path, create=not read_only, read_only=read_only)
    assert str(path) in str(info.value)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]  # no journal, no new file


def test_the_cli_refuses_a_bad_ledger_with_a_message_and_no_traceback(tmp_path):
    path = damaged(tmp_path / "ledger.sqlite")
    before = digest(path)
    for command in (["ledger", "show"], ["ledger", "score"], ["ledger", "verify"], ["ledger", "backup"]):
        result = CliRunner().invoke(main, [*command, "--ledger", str(path)])
        # `ledger verify` exits as a refresh would on the ledger (7); the others with 1.
        assert result.exit_code == (7 if command[1] == "verify" else 1), result.output
        assert "is damaged" in result.output and "Traceback" not in result.output
    assert digest(path) == before


def test_read_only_commands_write_nothing_into_a_foreign_database(tmp_path):
    path = foreign(tmp_path / "mlflow.db")
    before = digest(path)
    result = CliRunner().invoke(main, ["ledger", "show", "--ledger", str(path)])
    assert result.exit_code == 1 and "not a forecast ledger" in result.output
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"experiments"} and digest(path) == before


def test_verify_and_backup_of_a_good_ledger(tmp_path):
    path = new_ledger(tmp_path / "ledger.sqlite")
    result = CliRunner().invoke(main, ["ledger", "verify", "--ledger", str(path)])
    assert result.exit_code == 0 and ": ok (0 refreshes, 0 forecasts, 0 scored actuals)" in result.output
    out = tmp_path / "copy.sqlite"
    result = CliRunner().invoke(main, ["ledger", "backup", "--ledger", str(path), "--out", str(out)])
    assert result.exit_code == 0 and f"backup: {out}" in result.output
    check_sqlite_file(out)
    with Ledger.open(out, create=False, read_only=True) as copy:
        assert copy.counts()["forecasts"] == 0


def test_backups_rotate_keeping_the_newest(tmp_path):
    path = new_ledger(tmp_path / "ledger.sqlite")
    made = [backup_sqlite(path) for _ in range(4)]
    assert backups_of(path) == sorted(made)
    removed = rotate_backups(path, keep=2)
    assert removed == sorted(made)[:2] and backups_of(path) == sorted(made)[2:]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_missing_ledger_is_not_created_by_a_read_only_command(tmp_path):
    result = CliRunner().invoke(main, ["ledger", "verify", "--ledger", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 1 and "nothing has been issued yet" in result.output
    assert not (tmp_path / "none.sqlite").exists()
