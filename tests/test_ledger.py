"""The forecast ledger on a SQLite file and on a real PostgreSQL server (started here, on
127.0.0.1; those cases skip with the reason when it cannot start): append-only, idempotent
issues, actuals and scores recorded once per data vintage, one transaction per write, and a
process killed inside that transaction leaves the ledger as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import pg
from pg import ledger_location  # noqa: F401  (the url fixture; postgres comes from conftest.py)
from forecast.ledger import PAST_FORECAST_COLUMNS, Issue, Ledger, LedgerError, ledger_url
from forecast.evaluation.scores import crps as crps_metric
from forecast.schema import QUANTILE_COLUMNS

UNITS = ("Anbar", "Baghdad", "Basra")
ROOT = Path(__file__).resolve().parent.parent


def forecast_frame(origin: str, horizon: int = 3, seed: int = 0) -> pd.DataFrame:
    """A valid forecast frame: every unit, months origin+1..origin+horizon, monotone quantiles."""
    rng = np.random.default_rng(seed)
    o = pd.Period(origin, freq="M")
    rows = []
    for unit in UNITS:
        for h in range(1, horizon + 1):
            mean = float(rng.gamma(2.0, 2.0))
            qs = np.sort(rng.gamma(2.0, 2.0, size=len(QUANTILE_COLUMNS)))
            rows.append({"unit": unit, "origin": o, "month": o + h, "horizon": h, "model": "m", "mean": mean,
                         **dict(zip(QUANTILE_COLUMNS, qs))})
    return pd.DataFrame(rows)


def panel_until(last: str, seed: int = 1) -> pd.DataFrame:
    months = pd.period_range("2024-01", last, freq="M")
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"unit": u, "month": m, "incidents": int(rng.poisson(4))} for u in UNITS for m in months])


def issue(vintage: str, version: str = "1", **kw) -> Issue:
    return Issue(vintage=vintage, model="iraq", model_version=version, **kw)


def test_issue_is_idempotent_and_reads_back_as_issued(url):
    frame = forecast_frame("2024-06")
    with Ledger.open(url) as ledger:
        first = ledger.record(issue("2024-06", mlflow_run_id="abc"), frame)
        assert (first.forecasts, first.outcomes) == (len(frame), 0)
        before = ledger.counts()
        again = ledger.record(issue("2024-06", mlflow_run_id="def"), frame)
        assert (again.forecasts, again.outcomes, again.refresh_id) == (0, 0, None)
        assert ledger.counts() == before == {"refreshes": 1, "forecasts": len(frame), "outcomes": 0}
        # Another model version is another forecast: it is issued beside the first.
        other = ledger.record(issue("2024-06", version="2"), frame)
        assert other.forecasts == len(frame)

        back = ledger.forecasts(model_version="1")
        assert list(back.columns) == list(PAST_FORECAST_COLUMNS)
        assert isinstance(back["month"].dtype, pd.PeriodDtype) and isinstance(back["origin"].dtype, pd.PeriodDtype)
        assert back["y"].isna().all()
        expected = frame.sort_values(["unit", "month"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(back[["unit", "month", "horizon", "mean", *QUANTILE_COLUMNS]],
                                      expected[["unit", "month", "horizon", "mean", *QUANTILE_COLUMNS]],
                                      check_dtype=False)
        assert back["vintage"].eq("2024-06").all() and back["model"].eq("iraq").all()
        assert ledger.latest_origin() == pd.Period("2024-06", "M")
        assert ledger.issues()["mlflow_run_id"].fillna("none").tolist() == ["abc", "none"]


def test_actuals_are_recorded_once_per_vintage_and_scored_with_the_metrics_module(url):
    frame = forecast_frame("2024-06")
    with Ledger.open(url) as ledger:
        ledger.record(issue("2024-06"), frame)
        panel = panel_until("2024-07")
        got = ledger.record(issue("2024-07"), None, panel)
        assert got.outcomes == len(UNITS)  # only 2024-07 has actuals
        assert ledger.record(issue("2024-07"), None, panel).refresh_id is None  # same vintage: nothing new

        scored = ledger.forecasts(scores=True)
        known = scored.loc[scored["y"].notna()].sort_values("unit").reset_index(drop=True)
        assert known["month"].astype(str).eq("2024-07").all()
        truth = panel.loc[panel["month"] == pd.Period("2024-07", "M")].sort_values("unit")["incidents"].to_numpy()
        np.testing.assert_array_equal(known["y"].to_numpy(), truth)
        np.testing.assert_allclose(known["crps"].to_numpy(), crps_metric(known))
        np.testing.assert_allclose(known["abs_error"].to_numpy(), np.abs(known["y"] - known["q50"]))
        inside90 = ((known["q05"] <= known["y"]) & (known["y"] <= known["q95"])).astype(int)
        np.testing.assert_array_equal(known["in90"].to_numpy(), inside90.to_numpy())

        # A later vintage revises one actual: a new outcome row, and the latest one counts.
        august = panel_until("2024-08", seed=2)
        revised = pd.concat([panel, august.loc[august["month"] == pd.Period("2024-08", "M")]], ignore_index=True)
        july = revised["month"] == pd.Period("2024-07", "M")
        revised.loc[july & (revised["unit"] == "Basra"), "incidents"] += 10
        got = ledger.record(issue("2024-08"), None, revised)
        assert got.outcomes == len(UNITS) + 1  # three for 2024-08, one revision
        basra = ledger.forecasts(scores=True).query("unit == 'Basra' and month == @pd.Period('2024-07', 'M')")
        assert basra["y"].iloc[0] == truth[list(sorted(UNITS)).index("Basra")] + 10
        assert basra["actual_vintage"].iloc[0] == "2024-08"
        assert ledger.counts()["outcomes"] == 2 * len(UNITS) + 1


def test_scores_by_horizon_and_model_version(url):
    with Ledger.open(url) as ledger:
        ledger.record(issue("2024-06", "1"), forecast_frame("2024-06", seed=1))
        ledger.record(issue("2024-06", "2"), forecast_frame("2024-06", seed=2))
        ledger.record(issue("2024-09"), None, panel_until("2024-09"))
        table = ledger.scores(by=("model_version", "horizon"))
        assert table[["model_version", "horizon"]].values.tolist() == [
            ["1", 1], ["1", 2], ["1", 3], ["2", 1], ["2", 2], ["2", 3]]
        assert table["issued"].eq(len(UNITS)).all() and table["scored"].eq(len(UNITS)).all()
        rows = ledger.forecasts(scores=True)
        h2v2 = rows.loc[(rows["model_version"] == "2") & (rows["horizon"] == 2)]
        row = table.loc[(table["model_version"] == "2") & (table["horizon"] == 2)].iloc[0]
        assert row["crps"] == pytest.approx(float(crps_metric(h2v2).mean()))
        assert row["coverage90"] == pytest.approx(float(h2v2["in90"].mean()))


def test_ledger_is_append_only_in_the_database(url):
    with Ledger.open(url) as ledger:
        ledger.record(issue("2024-06"), forecast_frame("2024-06"))
        ledger.record(issue("2024-07"), None, panel_until("2024-07"))
        for statement in ("UPDATE forecasts SET mean = 0", "DELETE FROM forecasts", "UPDATE outcomes SET y = 0",
                          "DELETE FROM outcomes", "DELETE FROM refreshes", "UPDATE refreshes SET vintage = 'x'"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with ledger.engine.begin() as conn:
                    conn.execute(sa.text(statement))
        # The unique constraint holds even for a writer that skips the ledger's own checks.
        row = ledger.forecasts().iloc[0]
        with pytest.raises(sa.exc.IntegrityError):
            with ledger.engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO forecasts (refresh_id, issued, vintage, model, model_version, target, unit, origin, "
                    "month, horizon, mean, q05, q10, q25, q50, q75, q90, q95) VALUES (1, '2024-07-01', '2024-06', "
                    "'iraq', '1', 'incidents', :unit, '2024-06', :month, 1, 0, 0, 0, 0, 0, 0, 0, 0)"),
                    {"unit": row["unit"], "month": str(row["month"])})
        assert ledger.counts() == {"refreshes": 2, "forecasts": 3 * len(UNITS), "outcomes": len(UNITS)}


def test_a_failure_inside_the_transaction_leaves_nothing(url):
    with Ledger.open(url) as ledger:
        ledger.record(issue("2024-06"), forecast_frame("2024-06"))
        before = ledger.counts()

        def fail():
            raise RuntimeError("disk full, say")

        with pytest.raises(RuntimeError, match="disk full"):
            ledger.record(issue("2024-07"), forecast_frame("2024-07"), panel_until("2024-07"), before_commit=fail)
        assert ledger.counts() == before
        assert ledger.latest_origin() == pd.Period("2024-06", "M")


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np, pandas as pd
    sys.path.insert(0, {tests!r})
    from test_ledger import forecast_frame, issue, panel_until
    from forecast.ledger import Ledger

    def hold():
        print("inside the transaction", flush=True)
        time.sleep(600)

    with Ledger.open({url!r}) as ledger:
        ledger.record(issue("2024-07"), forecast_frame("2024-07"), panel_until("2024-07"), before_commit=hold)
""")


def test_sigkill_inside_the_transaction_leaves_a_readable_unchanged_ledger(url, tmp_path):
    with Ledger.open(url) as ledger:
        ledger.record(issue("2024-06"), forecast_frame("2024-06"))
        before = ledger.counts()
        frame_before = ledger.forecasts(scores=True)
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT.format(tests=str(ROOT / "tests"), url=url))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "inside the transaction", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # PostgreSQL notices the dead client and rolls back; wait for its locks to go.
    deadline = time.monotonic() + 30
    while True:
        try:
            with Ledger.open(url) as ledger:
                counts = ledger.counts()
                frame_after = ledger.forecasts(scores=True)
                assert ledger.record(issue("2024-07"), None, panel_until("2024-07")).outcomes == len(UNITS)
            break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert counts == before
    pd.testing.assert_frame_equal(frame_after, frame_before)
    if url.endswith(".sqlite"):
        with sa.create_engine(ledger_url(url)).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_opening_errors_are_clear(tmp_path, postgres_port_closed):
    assert ledger_url("out/ledger.sqlite") == f"sqlite:///{(Path.cwd() / 'out/ledger.sqlite').resolve()}"
    assert ledger_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    with pytest.raises(LedgerError, match="nothing has been issued yet"):
        Ledger.open(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()
    with pytest.raises(LedgerError, match="supported: sqlite:///PATH or postgresql://"):
        Ledger.open("nosuchdb://host/db")
    with pytest.raises(LedgerError, match="in-memory ledger would be lost"):
        Ledger.open("sqlite://")
    with pytest.raises(LedgerError, match=rf"cannot open the ledger postgresql\+psycopg://u:\*\*\*@127.0.0.1:{postgres_port_closed}"):
        Ledger.open(f"postgresql://u:secret@127.0.0.1:{postgres_port_closed}/db")
    other = tmp_path / "other.sqlite"
    with sa.create_engine(f"sqlite:///{other}").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE forecasts (x int)")
    with pytest.raises(LedgerError, match="not a forecast ledger"):
        Ledger.open(other)


@pytest.fixture
def postgres_port_closed() -> int:
    return pg._free_port()
