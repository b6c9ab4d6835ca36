"""The head of the ledger's checksum chain is anchored outside the ledger, signed with a key the ledger
does not hold: recomputing the checksums with the project's own ``seal_refresh``, dropping the
``seals`` table, removing the newest refreshes with their checksums, forging or deleting the anchor
are each refused on the next open (SQLite and a real PostgreSQL server), and ``ledger verify`` exits 7."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pg import ledger_location, postgres  # noqa: F401  (fixtures: url, postgres)
from test_ledger_seal import filled, frame, superuser
from forecast.cli import main
from forecast.ledger import Issue, Ledger, LedgerError
from forecast.ledger.anchor import Anchor
from forecast.ledger.integrity import backup_sqlite, rotate_backups
from forecast.ledger.seal import seal_refresh


def anchor_of(url: str) -> Anchor:
    with Ledger.open(url, create=False, read_only=True) as ledger:
        return ledger.anchor


def refused_everywhere(url: str, match: str) -> None:
    """Refused read-only and writable, and by `ledger verify` with exit 7."""
    for kwargs in ({}, {"create": False, "read_only": True}):
        with pytest.raises(LedgerError, match=match):
            Ledger.open(url, **kwargs)
    result = CliRunner().invoke(main, ["ledger", "verify", "--ledger", url])
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output


def test_every_refresh_is_anchored_and_verify_says_so(url):
    anchor = anchor_of(filled(url))
    lines = [json.loads(line) for line in anchor.path.read_text().splitlines()]
    assert [line["refresh"] for line in lines] == [1, 2]
    assert anchor.path.name.endswith(".anchor") and anchor.key_path.exists()
    result = CliRunner().invoke(main, ["ledger", "verify", "--ledger", url])
    assert result.exit_code == 0, result.output
    assert "ok (2 refreshes" in result.output and "2 of 2 refreshes anchored" in result.output


def test_a_mean_changed_and_the_chain_recomputed_with_seal_refresh_is_refused(url):
    filled(url)
    superuser(url, "UPDATE forecasts SET mean = mean + 5 WHERE id = 2", "DELETE FROM seals")
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:  # the project's own code re-seals the changed rows
        seal_refresh(conn, 1)
        seal_refresh(conn, 2)
    engine.dispose()
    refused_everywhere(url, "checksum chain up to refresh 1 differs from the one anchored")


def test_a_dropped_seals_table_is_tampering(url):
    filled(url)
    superuser(url, "UPDATE forecasts SET mean = mean + 5 WHERE id = 2", "DROP TABLE seals")
    refused_everywhere(url, "its seals table is gone.*tampering")
    # The next writable open adds no seals over the changed row.
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    assert "seals" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_the_newest_refresh_removed_with_its_checksum_is_refused(url):
    filled(url)
    superuser(url, "DELETE FROM outcomes", "DELETE FROM forecasts WHERE refresh_id = 2",
              "DELETE FROM seals WHERE refresh_id = 2", "DELETE FROM refreshes WHERE id = 2")
    refused_everywhere(url, "refresh 2 is anchored in .* but no longer in the ledger")


def test_a_rewritten_anchor_is_refused(url):
    anchor = anchor_of(filled(url))
    lines = anchor.path.read_text().splitlines()
    forged = json.loads(lines[1]) | {"digest": "0" * 64}
    anchor.path.write_text("\n".join([lines[0], json.dumps(forged)]) + "\n")
    refused_everywhere(url, "line 2 of its anchor .* was not signed with the key")


def test_a_deleted_anchor_is_refused(url):
    anchor_of(filled(url)).path.unlink()
    refused_everywhere(url, "its anchor .* is missing or empty, but the ledger was made with one")


def test_an_anchor_without_its_key_is_refused_naming_the_key(tmp_path, monkeypatch):
    url = filled(str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("FORECAST_LEDGER_KEY_FILE", str(tmp_path / "elsewhere.key"))
    with pytest.raises(LedgerError, match="cannot be checked: the key .*elsewhere.key is missing"):
        Ledger.open(url, create=False, read_only=True)


def test_a_refresh_killed_before_its_anchor_is_anchored_by_the_next_open(url):
    anchor = anchor_of(filled(url))
    lines = anchor.path.read_text().splitlines()
    anchor.path.write_text(lines[0] + "\n")  # the kill came between the commit and the anchor
    with Ledger.open(url, create=False, read_only=True) as ledger:
        assert ledger.anchored == 1
    with Ledger.open(url) as ledger:
        assert ledger.anchored == 2
        ledger.record(Issue(vintage="2024-08", model="m", model_version="1"), frame("2024-08", seed=2))
    assert [json.loads(line)["refresh"] for line in anchor.path.read_text().splitlines()] == [1, 2, 3]


def test_a_backup_keeps_its_own_anchor_and_opens(tmp_path):
    path = filled(str(tmp_path / "ledger.sqlite"))
    backup = backup_sqlite(path)
    assert backup.with_name(backup.name + ".anchor").exists()
    with Ledger.open(path) as ledger:
        ledger.record(Issue(vintage="2024-08", model="m", model_version="1"), frame("2024-08", seed=2))
    with Ledger.open(backup, create=False, read_only=True) as copy:
        assert copy.counts()["refreshes"] == 2 and copy.anchored == 2
    assert rotate_backups(path, keep=0) == [backup]
    assert not backup.with_name(backup.name + ".anchor").exists()
