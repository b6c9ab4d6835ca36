"""The scheduled refresh job end to end, on the bundled demo data, against real components: an
MLflow SQLite store holding a registered champion (and a real ``mlflow server`` started late
for the retry test), the ledger on SQLite and on a PostgreSQL server started here, a local
``http.server`` for downloads, and real ``forecast refresh`` subprocesses killed with SIGKILL."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from filelock import FileLock
from mlflow import MlflowClient

from mlflow_server import free_port
from mlflow_server import start as start_server
from mlflow_server import stop as stop_server
from features.download import DownloadError, fetch
from forecast.cli import main
from forecast.config import ConfigError
from forecast.ledger import Ledger
from forecast.refresh import (
    PAUSE_ENV,
    PAUSE_SECONDS_ENV,
    ExitCode,
    RefreshError,
    load_config,
    run_refresh,
)
from forecast.jobs.demo import demo_refresh_cycle
from forecast.schema import FORECAST_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
COVARIATES = ROOT / "data" / "sample" / "covariates_demo.csv"
CHAMPION = "refresh-test"
UNITS, HORIZON = 18, 6
ISO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) refresh: ")

TINY_EXPERIMENT = f"""
[data]
events = "{EVENTS}"
format = "ucdp"
covariates = "{COVARIATES}"
coverage_end = "2024-12"
[features]
covariates = []
[backtest]
start = "2024-01"
end = "2024-06"
step = 3
horizon = {HORIZON}
[[models]]
name = "moving_average"
params = {{ window = 12 }}
"""


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> str:
    """A SQLite MLflow store with one registered, promoted model (cheap: a moving average)."""
    from forecast.jobs.experiments import run_experiment
    from forecast.tracking.registry import promote

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment = root / "tiny.toml"
    experiment.write_text(TINY_EXPERIMENT)
    ref = run_experiment(experiment, tracking_uri=uri, register_as=CHAMPION).ref
    assert promote(CHAMPION, ref.version, uri).promoted
    return uri


def write_config(folder: Path, uri: str, *, end: str | None = "2024-10", name: str = CHAMPION, extra_model: str = "",
                 ledger: str | None = None, tracking: str = "", events: str | None = None, outputs: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    events = events or f'"{EVENTS}"'
    lines = ["[data]", f"events = {events}", 'format = "ucdp"', f'covariates = "{COVARIATES}"',
             'coverage_end = "2024-12"', *([f'end = "{end}"'] if end else []),
             "[model]", f'name = "{name}"', f"horizon = {HORIZON}", extra_model,
             "[outputs]", 'dir = "out"', *([f'ledger = "{ledger}"'] if ledger else []), outputs,
             "[tracking]", f'uri = "{uri}"', tracking]
    path = folder / "refresh.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def snapshot(out: Path) -> dict[str, tuple[str, int]]:
    """Every output file's SHA-256 and modification time (the lock file aside)."""
    return {str(p.relative_to(out)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != "refresh.lock"}


def counts(config: Path) -> dict[str, int]:
    with Ledger.open(load_config(config).ledger, create=False) as ledger:
        return ledger.counts()


# ----------------------------------------------------------------------------------------
# A refresh cycle: first refresh, the same data again (plain and forced), a new month


@pytest.fixture(scope="module")
def cycle(champion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cycle")
    out = folder / "out"
    states = {}
    config = write_config(folder, champion, end="2024-10")
    states["first"] = (run_refresh(config), snapshot(out), counts(config))
    states["again"] = (run_refresh(config), snapshot(out), counts(config))
    states["forced"] = (run_refresh(config, force=True), snapshot(out), counts(config))
    config = write_config(folder, champion, end="2024-11")
    states["new month"] = (run_refresh(config), snapshot(out), counts(config))
    return folder, config, states


def test_first_refresh_issues_forecasts_report_and_a_tracked_run(cycle, champion):
    folder, config, states = cycle
    result, files, count = states["first"]
    assert result.status == "refreshed" and result.origin == "2024-10" and result.vintage == "2024-10"
    assert result.forecasts_issued == UNITS * HORIZON and result.outcomes_recorded == 0
    assert count == {"refreshes": 1, "forecasts": UNITS * HORIZON, "outcomes": 0}
    assert {"forecasts/2024-10.csv", "reports/2024-10.html", "panel.parquet", "ledger.sqlite"} <= set(files)

    written = pd.read_csv(folder / "out" / "forecasts" / "2024-10.csv")
    assert set(FORECAST_COLUMNS) <= set(written.columns)
    assert written["origin"].eq("2024-10").all() and written["vintage"].eq("2024-10").all()
    assert sorted(written["horizon"].unique()) == list(range(1, HORIZON + 1))
    assert written["model_version"].astype(str).eq("1").all()
    report = (folder / "out" / "reports" / "2024-10.html").read_text()
    assert report.lstrip().lower().startswith("<!doctype html") and "2024-10" in report

    run = MlflowClient(champion).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    assert params["vintage"] == "2024-10" and params["model.version"] == "1" and params["model.name"] == CHAMPION
    assert params["outputs.forecasts"] == str(folder / "out" / "forecasts" / "2024-10.csv")
    assert params["outputs.report"] == str(folder / "out" / "reports" / "2024-10.html")
    assert params["inputs.event_1"] == str(EVENTS) and len(params["inputs.event_1_sha256"]) == 64
    assert tags["forecast.kind"] == "refresh" and tags["forecast.model_version"] == f"{CHAMPION}/1"
    assert run.data.metrics["past_scored"] == 0
    artifacts = {a.path for folder_ in ("forecasts", "report") for a in MlflowClient(champion).list_artifacts(
        result.run_id, folder_)}
    assert artifacts == {"forecasts/2024-10.csv", "report/2024-10.html"}
    with Ledger.open(load_config(config).ledger) as ledger:
        assert ledger.issues()["mlflow_run_id"].tolist()[0] == result.run_id


def test_no_new_data_exits_zero_and_changes_nothing_even_when_forced(cycle):
    _, _, states = cycle
    _, files_first, count_first = states["first"]
    again, files_again, count_again = states["again"]
    assert again.status == "nothing-new" and "nothing new: no new complete month" in again.message
    assert files_again == files_first  # same bytes, same modification times
    assert count_again == count_first
    forced, files_forced, count_forced = states["forced"]
    assert forced.status == "refreshed" and forced.forecasts_issued == 0 and forced.outcomes_recorded == 0
    assert count_forced == count_first
    assert files_forced["ledger.sqlite"] == files_first["ledger.sqlite"]
    assert files_forced["forecasts/2024-10.csv"][0] == files_first["forecasts/2024-10.csv"][0]


def test_a_new_month_grows_the_ledger_and_scores_the_earlier_forecasts(cycle, champion):
    folder, config, states = cycle
    result, files, count = states["new month"]
    assert result.status == "refreshed" and result.origin == "2024-11"
    assert result.forecasts_issued == UNITS * HORIZON and result.outcomes_recorded == UNITS
    assert count == {"refreshes": 2, "forecasts": 2 * UNITS * HORIZON, "outcomes": UNITS}
    # The previous report is left exactly as it was; the new one sits beside it.
    assert files["reports/2024-10.html"] == states["forced"][1]["reports/2024-10.html"]
    assert "reports/2024-11.html" in files
    # The new report says how the last issue did: its forecast for November against what was recorded.
    report = (folder / "out" / "reports" / "2024-11.html").read_text()
    assert 'id="misses-table"' in report and "The last forecast issued one month ahead" in report
    assert 'id="timeline-table"' in report and "for November 2024" in report

    panel = pd.read_parquet(folder / "out" / "panel.parquet")
    november = panel.loc[panel["month"] == "2024-11"].set_index("unit")["incidents"]
    with Ledger.open(load_config(config).ledger) as ledger:
        scored = ledger.forecasts(scores=True)
    first = scored.loc[scored["origin"] == pd.Period("2024-10", "M")]
    known = first.loc[first["y"].notna()]
    assert known["month"].astype(str).eq("2024-11").all() and len(known) == UNITS
    assert (known.set_index("unit")["y"] == november.reindex(known["unit"]).to_numpy()).all()
    assert known["crps"].notna().all()
    assert scored.loc[scored["origin"] == pd.Period("2024-11", "M"), "y"].isna().all()

    metrics = MlflowClient(champion).get_run(result.run_id).data.metrics
    assert metrics["past_scored"] == UNITS
    assert metrics["past_crps"] == pytest.approx(known["crps"].mean())
    assert set(metrics) >= {"past_crps_h1", "past_mae_h1", "past_coverage90_h1"}


def test_the_report_backtest_key_adds_the_accuracy_section_to_the_refresh_report(champion, tmp_path):
    config = write_config(tmp_path, champion, end="2024-10", outputs="report_backtest_months = 3")
    assert load_config(config).outputs.report_backtest_months == 3
    assert run_refresh(config).status == "refreshed"
    report = (tmp_path / "out" / "reports" / "2024-10.html").read_text()
    assert "No backtest was run for this report" not in report
    assert 'id="score-table"' in report and "3 forecast origins" in report
    assert 'id="escalation-skill"' in report and "never escalates" in report
    bad = write_config(tmp_path / "bad", champion, outputs="report_backtest_months = -1")
    with pytest.raises(ConfigError, match=r"\[outputs\] key 'report_backtest_months': must be a whole number >= 0, got -1"):
        load_config(bad)


def test_ledger_show_and_score_print_what_was_issued_and_how_it_did(cycle):
    _, config, _ = cycle
    runner = CliRunner()
    shown = runner.invoke(main, ["ledger", "show", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("ledger: sqlite:///")
    assert re.search(rf"2024-10 .*{CHAMPION}\s+1\s+18\s+6\s+108\s+18", shown.output), shown.output
    assert re.search(rf"2024-11 .*{CHAMPION}\s+1\s+18\s+6\s+108\s+0", shown.output), shown.output

    rows = runner.invoke(main, ["ledger", "show", "--config", str(config), "--origin", "2024-10", "--unit", "baghdad"])
    assert rows.exit_code == 0, rows.output
    assert len([ln for ln in rows.output.splitlines() if "Baghdad" in ln]) == HORIZON

    scored = runner.invoke(main, ["ledger", "score", "--config", str(config)])
    assert scored.exit_code == 0, scored.output
    h1 = next(ln for ln in scored.output.splitlines() if re.match(rf"\s*{CHAMPION}\s+1\s+1\s", ln))
    assert re.search(r"\s36\s+18\s", h1), h1  # two issues at horizon 1: 36 forecasts, 18 with actuals
    by_origin = runner.invoke(main, ["ledger", "score", "--config", str(config), "--by", "origin"])
    assert "2024-10" in by_origin.output and "2024-11" in by_origin.output
    bad = runner.invoke(main, ["ledger", "score", "--config", str(config), "--by", "colour"])
    assert bad.exit_code == 2 and "choose from model, model_version, horizon, origin, unit" in bad.output


def test_a_damaged_empty_or_missing_ledger_stops_the_refresh_with_the_ledger_code(cycle, tmp_path):
    folder, _, _ = cycle
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    config, ledger = copy / "refresh.toml", copy / "out" / "ledger.sqlite"
    # Every refresh that wrote backed the ledger up first, and each backup is a ledger.
    backups = sorted(ledger.parent.glob("ledger.sqlite.*.backup"))
    assert len(backups) == 3, backups
    with Ledger.open(backups[-1], create=False, read_only=True) as backup:
        assert backup.counts()["refreshes"] == 1  # taken before the new month's write, the second refresh row

    def refresh_exits_with_the_ledger_code(message: str) -> None:
        before = ledger.read_bytes() if ledger.exists() else None
        result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
        assert result.exit_code == int(ExitCode.LEDGER), result.output
        assert message in result.output and "Traceback" not in result.output
        assert (ledger.read_bytes() if ledger.exists() else None) == before

    data = bytearray(ledger.read_bytes())
    data[4096:8192] = bytes(range(256)) * 16
    ledger.write_bytes(bytes(data))
    refresh_exits_with_the_ledger_code("is damaged")
    ledger.write_bytes(b"")
    refresh_exits_with_the_ledger_code("is empty (0 bytes)")
    ledger.unlink()
    refresh_exits_with_the_ledger_code("holds 2 forecast file(s) issued before")
    assert not ledger.exists()


def test_a_ledger_in_a_folder_that_does_not_exist_is_refused_unless_asked_for(champion, tmp_path):
    config = write_config(tmp_path, champion, ledger=str(tmp_path / "typo" / "ledger.sqlite"))
    result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code == int(ExitCode.LEDGER), result.output
    assert "does not exist" in result.output and "--new-ledger" in result.output
    assert not (tmp_path / "typo").exists()


# ----------------------------------------------------------------------------------------
# Failures: no champion, a second run, an unreachable tracking server, bad downloads


def test_missing_champion_exits_with_its_code_unless_a_fallback_is_configured(champion, tmp_path):
    config = write_config(tmp_path / "none", champion, name="nobody-registered")
    result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code == ExitCode.NO_CHAMPION == 4
    assert "no registered model 'nobody-registered'" in result.output
    assert "forecast registry promote nobody-registered" in result.output
    assert "Traceback" not in result.output
    out = tmp_path / "none" / "out"
    assert not (out / "forecasts").exists() and not (out / "reports").exists()

    config = write_config(tmp_path / "fallback", champion, name="nobody-registered",
                          extra_model='fallback = "moving_average"\nfallback_params = {window = 6}')
    done = run_refresh(config)
    assert done.status == "refreshed" and done.model_label == "moving_average (fallback: no nobody-registered@champion)"
    with Ledger.open(load_config(config).ledger) as ledger:
        issued = ledger.forecasts()
    assert issued["model"].eq("moving_average").all() and issued["model_version"].eq("fallback").all()


def test_a_second_run_while_the_lock_is_held_exits_with_the_lock_code(champion, tmp_path):
    config = write_config(tmp_path, champion)
    lock = FileLock(str(load_config(config).lock_path), timeout=0)
    with lock:
        result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code == ExitCode.LOCKED == 5
    assert f"another refresh is running (lock {tmp_path / 'out' / 'refresh.lock'} held)" in result.output
    assert not (tmp_path / "out" / "ledger.sqlite").exists()


def test_unreachable_tracking_server_is_retried_then_fails_clearly(champion, tmp_path):
    port = free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}", tracking="retries = 1\nretry_wait = 0.1\ntimeout = 0.5")
    with pytest.raises(RefreshError, match=rf"http://127.0.0.1:{port} failed 2 time\(s\).*nothing was issued") as err:
        run_refresh(config)
    assert err.value.code == ExitCode.TRACKING == 6
    assert not (tmp_path / "out" / "forecasts").exists()
    assert counts(config)["forecasts"] == 0


def test_config_mistakes_name_file_table_and_key(tmp_path, champion):
    config = write_config(tmp_path, champion)
    text = config.read_text()
    config.write_text(text.replace("horizon = 6", "horizn = 6"))
    with pytest.raises(ConfigError, match=r"refresh.toml: \[model\] 'horizn': unknown key; did you mean 'horizon'"):
        load_config(config)
    config.write_text(text.replace(f'events = "{EVENTS}"', 'events = "missing.csv"'))
    with pytest.raises(ConfigError, match=r"\[data\] key 'events': event file 'missing.csv' not found"):
        load_config(config)
    config.write_text(text.replace(f'events = "{EVENTS}"', 'events = {url = "http://x/a.zip", sha256 = "abc"}'))
    with pytest.raises(ConfigError, match=r"\[data\] key 'events': 'abc' is not a SHA-256 checksum"):
        load_config(config)
    config.write_text(text.replace(f'events = "{EVENTS}"', 'events = {url = "ftp://x/a.zip", sha256 = "' + "0" * 64 + '"}'))
    with pytest.raises(ConfigError, match="is not a URL this tool downloads"):
        load_config(config)
    config.write_text(text.replace('name = "refresh-test"', 'name = "refresh-test@champion"'))
    with pytest.raises(ConfigError, match="the alias goes in alias"):
        load_config(config)
    result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code == ExitCode.ERROR and "the alias goes in alias" in result.output


@pytest.fixture
def http_folder(tmp_path):
    """A folder served by ``http.server`` on 127.0.0.1; yields (folder, base URL, request log)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_download_checks_the_checksum_and_never_keeps_a_bad_file(http_folder, tmp_path):
    folder, base, requests = http_folder
    shutil.copy(EVENTS, folder / "ged.csv")
    digest = hashlib.sha256(EVENTS.read_bytes()).hexdigest()
    dest = tmp_path / "downloads" / "ged.csv"

    got = fetch(f"{base}/ged.csv", dest, digest)
    assert got.downloaded and dest.read_bytes() == EVENTS.read_bytes() and got.bytes == EVENTS.stat().st_size
    again = fetch(f"{base}/ged.csv", dest, digest)
    assert not again.downloaded and requests == ["/ged.csv"]  # a verified copy is not fetched again

    (folder / "ged.csv").write_bytes(b"tampered")
    wrong = tmp_path / "downloads" / "other.csv"
    with pytest.raises(DownloadError, match=rf"checksum mismatch for {base}/ged.csv: expected sha256 {digest}, got "):
        fetch(f"{base}/ged.csv", wrong, digest)
    assert not wrong.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ged.csv"]  # no temporary left behind
    dest.write_bytes(b"stale copy")
    with pytest.raises(DownloadError, match="the copy already at .* is kept unchanged"):
        fetch(f"{base}/ged.csv", dest, digest)
    assert dest.read_bytes() == b"stale copy"
    with pytest.raises(DownloadError, match=r"HTTP 404"):
        fetch(f"{base}/nothing.zip", tmp_path / "n.zip", digest)
    with pytest.raises(DownloadError, match=rf"cannot download http://127.0.0.1:{(port := free_port())}/x.zip: .*refused"):
        fetch(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", digest)


def test_refresh_downloads_its_source_and_stops_on_a_checksum_mismatch(http_folder, champion, tmp_path):
    folder, base, _ = http_folder
    shutil.copy(EVENTS, folder / "ged.csv")
    digest = hashlib.sha256(EVENTS.read_bytes()).hexdigest()
    good = write_config(tmp_path / "good", champion,
                        events=f'{{url = "{base}/ged.csv", sha256 = "{digest}", format = "ucdp"}}')
    assert run_refresh(good).forecasts_issued == UNITS * HORIZON
    assert (tmp_path / "good" / "out" / "downloads" / "ged.csv").read_bytes() == EVENTS.read_bytes()

    bad = write_config(tmp_path / "bad", champion, events=f'{{url = "{base}/ged.csv", sha256 = "{"0" * 64}"}}')
    result = CliRunner().invoke(main, ["refresh", "--config", str(bad)])
    assert result.exit_code == ExitCode.BAD_DATA == 3
    assert "checksum mismatch" in result.output and "Traceback" not in result.output
    out = tmp_path / "bad" / "out"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["refresh.lock"]


def test_refresh_with_a_postgresql_ledger(champion, tmp_path, postgres):
    url = postgres.create_database(f"refresh_ledger_{uuid.uuid4().hex[:12]}")
    config = write_config(tmp_path, champion, ledger=url)
    first = run_refresh(config)
    assert first.forecasts_issued == UNITS * HORIZON and first.ledger.startswith("postgresql+psycopg://")
    assert run_refresh(config).status == "nothing-new"
    config = write_config(tmp_path, champion, end="2024-11", ledger=url)
    second = run_refresh(config)
    assert (second.forecasts_issued, second.outcomes_recorded) == (UNITS * HORIZON, UNITS)
    assert not (tmp_path / "out" / "ledger.sqlite").exists()
    shown = CliRunner().invoke(main, ["ledger", "score", "--ledger", url, "--by", "origin"])
    assert shown.exit_code == 0 and re.search(r"2024-10\s+108\s+18\s", shown.output), shown.output

    # A superuser changes an issued forecast with the triggers off: the next refresh refuses the ledger.
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("UPDATE forecasts SET mean = 0 WHERE id = 1"))
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM refreshes")).scalar_one()
    config = write_config(tmp_path, champion, end="2024-12", ledger=url)
    result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code == int(ExitCode.LEDGER), result.output
    assert "rows of refresh 1" in result.output and "Traceback" not in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM refreshes")).scalar_one() == before
    engine.dispose()


# ----------------------------------------------------------------------------------------
# Real subprocesses: killed with SIGKILL at several points, a tracking server started late


def start(config: Path, log: Path, *, pause: str | None = None) -> subprocess.Popen:
    env = {**os.environ, PAUSE_SECONDS_ENV: "300"}
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    return subprocess.Popen([sys.executable, "-m", "forecast", "refresh", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env, cwd=config.parent)


def wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = log.read_text()
        if text in content:
            return content
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{text!r} not in the log (exit {proc.poll()}):\n{content[-3000:]}")
        time.sleep(0.1)


def test_sigkill_at_any_step_leaves_the_previous_state_and_the_next_run_completes(champion, tmp_path):
    config = write_config(tmp_path, champion, end="2024-10")
    run_refresh(config)
    out = tmp_path / "out"
    previous_report = (out / "reports" / "2024-10.html").read_bytes()
    before = counts(config)
    config = write_config(tmp_path, champion, end="2024-11")
    for step in ("locked", "files-written", "tracked", "ledger-transaction"):
        log = tmp_path / f"{step}.log"
        proc = start(config, log, pause=step)
        content = wait_for(proc, log, f"paused at {step}")
        if step == "locked":
            # A concurrent second run, while the first holds the lock.
            with pytest.raises(RefreshError, match="another refresh is running") as err:
                run_refresh(config)
            assert err.value.code == ExitCode.LOCKED
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert all(ISO_LINE.match(line) for line in content.splitlines() if line.strip()), content
        assert counts(config) == before, step  # the ledger opens, reads and is exactly as before
        assert (out / "reports" / "2024-10.html").read_bytes() == previous_report, step
        with Ledger.open(load_config(config).ledger) as ledger:
            assert ledger.latest_origin() == pd.Period("2024-10", "M")
    # The lock died with the process; the next normal run does the whole cycle.
    done = run_refresh(config)
    assert done.status == "refreshed" and (done.forecasts_issued, done.outcomes_recorded) == (UNITS * HORIZON, UNITS)
    after = counts(config)
    assert after["forecasts"] == before["forecasts"] + UNITS * HORIZON
    assert (out / "reports" / "2024-10.html").read_bytes() == previous_report
    with Ledger.open(load_config(config).ledger) as ledger:
        issues = ledger.issues()
    assert issues["mlflow_run_id"].iloc[-1] == done.run_id  # only the committed refresh's run is named

    # Killed just after the commit: the refresh has happened; the next run finds nothing new.
    config = write_config(tmp_path, champion, end="2024-12")
    log = tmp_path / "committed.log"
    proc = start(config, log, pause="committed")
    wait_for(proc, log, "paused at committed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert counts(config)["forecasts"] == after["forecasts"] + UNITS * HORIZON
    assert (out / "reports" / "2024-12.html").exists()
    assert run_refresh(config).status == "nothing-new"


def test_a_tracking_server_that_comes_up_late_is_retried(champion, tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, uri, tracking="retries = 8\nretry_wait = 0.5\ntimeout = 1.0")
    log = tmp_path / "refresh.log"
    proc = start(config, log)
    server = None
    try:
        wait_for(proc, log, "retry 1 of 8")
        store = champion.removeprefix("sqlite:///")
        server = start_server(champion, port, log=tmp_path / "server.log", artifacts=Path(store).parent / "served")
        assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        if server is not None:
            stop_server(server)
    text = log.read_text()
    assert "tracking server error" in text and "done: refreshed: origin 2024-10" in text
    assert counts(config)["forecasts"] == UNITS * HORIZON


# ----------------------------------------------------------------------------------------
# Deployment files and the demo


def test_deploy_units_verify_and_the_cron_line_runs_the_shipped_config(tmp_path):
    deploy = ROOT / "deploy"
    cron = [ln for ln in (deploy / "forecast-refresh.cron").read_text().splitlines()
            if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(cron) == 1
    fields = cron[0].split(None, 6)
    assert len(fields) == 7 and fields[5] == "forecast"  # minute hour day month weekday user command
    assert "forecast refresh --config deploy/refresh.toml" in fields[6]
    config = load_config(deploy / "refresh.toml")
    assert config.model.name == "demo-incidents" and config.data.events[0].path == EVENTS
    for unit in ("forecast-refresh.service", "forecast-refresh.timer"):
        assert "/opt/insurgency-forecast" in (deploy / unit).read_text()

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    if not (ROOT / ".venv" / "bin" / "forecast").exists():
        pytest.skip(f"{ROOT / '.venv/bin/forecast'} is absent (the units run the repository's own virtualenv)")
    # The install step of the README: point the units at where the repository is.
    for unit in ("forecast-refresh.service", "forecast-refresh.timer"):
        text = (deploy / unit).read_text().replace("/opt/insurgency-forecast", str(ROOT))
        (tmp_path / unit).write_text(text)
    proc = subprocess.run([analyze, "verify", "forecast-refresh.service", "forecast-refresh.timer"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "forecast-refresh" not in proc.stderr, proc.stderr
    # The same check fails on a unit whose program is missing: the test can fail.
    broken = (tmp_path / "forecast-refresh.service").read_text().replace(".venv/bin/forecast", ".venv/bin/nope")
    (tmp_path / "forecast-refresh.service").write_text(broken)
    proc = subprocess.run([analyze, "verify", "forecast-refresh.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "is not executable" in proc.stderr


def test_demo_refresh_cycle_shows_first_refresh_new_month_and_nothing_new(champion, tmp_path):
    summary = demo_refresh_cycle(tmp_path / "demo", champion, CHAMPION)
    lines = summary.splitlines()
    assert lines[0].startswith("refresh with data up to 2024-11: refreshed: origin 2024-11")
    assert "ledger: 108 forecasts, 0 scored actuals, 1 refreshes" in summary
    assert "refresh after 2024-12 arrived: refreshed: origin 2024-12" in summary
    assert "ledger: 216 forecasts, 18 scored actuals, 2 refreshes" in summary
    assert "refresh again on the same data: nothing new" in summary
    assert (tmp_path / "demo" / "reports" / "2024-11.html").exists()
    assert (tmp_path / "demo" / "reports" / "2024-12.html").exists()
