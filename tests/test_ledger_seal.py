"""The ledger's own checksums: a row changed behind the append-only triggers (a superuser with
triggers disabled on a real PostgreSQL server started here, or dropped triggers on SQLite) is
found on the next open and the ledger is refused, read-only or not; a ledger made before the
checksums is sealed on its first writable open."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pg import ledger_location  # noqa: F401  (the url fixture; postgres comes from conftest.py)
from forecast.ledger import Issue, Ledger, LedgerError
from forecast.ledger.seal import verify_seals
from forecast.schema import QUANTILE_COLUMNS

UNITS = ("Anbar", "Baghdad", "Basra")


def frame(origin: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    o = pd.Period(origin, freq="M")
    rows = []
    for unit in UNITS:
        for h in (1, 2):
            qs = np.sort(rng.gamma(2.0, 2.0, size=len(QUANTILE_COLUMNS)))
            rows.append({"unit": unit, "origin": o, "month": o + h, "horizon": h, "mean": float(qs.mean()),
                         **dict(zip(QUANTILE_COLUMNS, qs))})
    return pd.DataFrame(rows)


def filled(url: str) -> str:
    """A ledger with three refreshes: two issues and one that records actuals."""
    panel = pd.DataFrame([{"unit": u, "month": pd.Period("2024-07", "M"), "incidents": 3} for u in UNITS])
    with Ledger.open(url) as ledger:
        ledger.record(Issue(vintage="2024-06", model="m", model_version="1"), frame("2024-06"))
        ledger.record(Issue(vintage="2024-07", model="m", model_version="1"), frame("2024-07", seed=1), panel)
        assert ledger.counts() == {"refreshes": 2, "forecasts": 12, "outcomes": 3}
    return url


def superuser(url: str, *statements: str) -> None:
    """Run statements with the append-only triggers out of the way, as a database owner could."""
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            for name in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all():
                conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


TAMPERING = {
    "a forecast changed": (["UPDATE forecasts SET mean = mean + 1 WHERE id = 2"], "rows of refresh 1"),
    "an actual changed": (["UPDATE outcomes SET y = 0 WHERE id = 1"], "rows of refresh 2"),
    "a forecast removed": (["DELETE FROM forecasts WHERE id = 7"], "rows of refresh 2"),
    "a forecast added": ([
        "INSERT INTO forecasts (refresh_id, issued, vintage, model, model_version, target, unit, origin, month, "
        "horizon, mean, q05, q10, q25, q50, q75, q90, q95) VALUES (1, '2024-06-01', '2024-06', 'm', '1', "
        "'incidents', 'Diyala', '2024-06', '2024-07', 1, 1, 0, 0, 0, 1, 2, 3, 4)"], "rows of refresh 1"),
    "the refresh row changed": (["UPDATE refreshes SET model_version = '9' WHERE id = 1"], "rows of refresh 1"),
    "a whole refresh removed": (["DELETE FROM outcomes", "DELETE FROM forecasts WHERE refresh_id = 2",
                                 "DELETE FROM refreshes WHERE id = 2"], "refresh 2 was removed"),
    # The first hex digit changed to another (a digest that starts with 'f' gets '0'): always a change.
    "its checksum rewritten": (["UPDATE seals SET digest = CASE WHEN substr(digest, 1, 1) = 'f' THEN '0' ELSE 'f' END "
                                "|| substr(digest, 2) WHERE refresh_id = 2"], "rows of refresh 2"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_ledger_changed_behind_its_triggers_is_refused_on_open(url, case):
    statements, where = TAMPERING[case]
    superuser(filled(url), *statements)
    for kwargs in ({}, {"create": False, "read_only": True}):
        with pytest.raises(LedgerError, match=f"{where}.*changed outside the forecast job") as info:
            Ledger.open(url, **kwargs)
        assert "Nothing was written" in str(info.value)


def test_an_untouched_ledger_verifies_every_refresh(url):
    filled(url)
    with Ledger.open(url, create=False, read_only=True) as ledger:
        with ledger.engine.connect() as conn:
            assert verify_seals(conn, ledger.url) == 2


def test_a_ledger_made_before_the_checksums_is_sealed_on_its_first_writable_open(url):
    with Ledger.open(filled(url), create=False, read_only=True) as ledger:
        ledger.anchor.path.unlink()
    # Made before the seals and their anchor: no seals, no anchor, and ledger_info does not say it had them.
    superuser(url, "DROP TABLE seals", "DELETE FROM ledger_info WHERE key IN ('anchored', 'ledger_id')")
    with Ledger.open(url, create=False, read_only=True) as ledger:  # read-only: nothing to verify, nothing written
        assert "seals" not in sa.inspect(ledger.engine).get_table_names()
    with Ledger.open(url) as ledger:
        with ledger.engine.connect() as conn:
            assert verify_seals(conn, ledger.url) == 2
        ledger.record(Issue(vintage="2024-08", model="m", model_version="1"), frame("2024-08", seed=2))
    superuser(url, "UPDATE forecasts SET q95 = 1000 WHERE id = 13")
    with pytest.raises(LedgerError, match="rows of refresh 3"):
        Ledger.open(url)
