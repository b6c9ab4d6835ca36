"""``forecast experiment run`` against tracking stores that fail: a server killed in the middle
of an experiment (and brought back on the same port and store), web servers that are not MLflow,
a port that accepts and never answers, a server whose ``/health`` answers and whose API never
does, and a read-only SQLite store. Everything is real: an ``mlflow server`` subprocess on
127.0.0.1, plain servers of the standard library (``faulty_servers``), a read-only mount; the
command line in a subprocess where a server is killed under it, else in process."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from faulty_servers import silent_port, stalled_api
from mlflow import MlflowClient
from mlflow_server import free_port, wait_healthy
from mlflow_server import start as start_server
from mlflow_server import stop as stop_server

from forecast.tracking import ExperimentTracker

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """An ``mlflow server`` on a fixed port and store that can be killed and started again."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start_server(f"sqlite:///{self.root / 'mlflow.db'}", self.port, log=self.root / "server.log",
                                 artifacts=self.root / "artifacts", append=True)
        if not wait_healthy(self.proc, self.port):
            self.kill()
            pytest.skip(f"mlflow server did not start on port {self.port}: "
                        f"{(self.root / 'server.log').read_text(errors='replace')[-1500:]}")

    def kill(self) -> None:
        """SIGKILL the server's process group: it dies without closing anything."""
        if self.proc is not None:
            stop_server(self.proc, signal.SIGKILL)
        self.proc = None


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path, free_port())
    s.start()
    yield s
    s.kill()


def experiment_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text((ROOT / "experiments" / "benchmarks.toml").read_text(encoding="utf-8")
                    .replace("../data/sample/", str(ROOT / "data" / "sample") + "/"), encoding="utf-8")
    return path


def forecast_command(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""}
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        env.pop(key, None)  # the command's own bounds (forecast.limits) apply
    return subprocess.Popen([sys.executable, "-m", "forecast", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress bars."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "model/s" not in line
            and "it/s" not in line]


def test_a_server_killed_mid_experiment_ends_the_command_quickly_with_one_message(server, tmp_path):
    name = "killed"
    proc = forecast_command("experiment", "run", str(experiment_file(tmp_path, name)), "--tracking-uri", server.uri,
                            cwd=tmp_path)
    client = MlflowClient(server.uri)
    # Kill the server once the experiment is under way: a model's run has started.
    deadline = time.monotonic() + 120
    while True:
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if any("mlflow.parentRunId" in r.data.tags for r in runs):
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    server.kill()
    killed = time.monotonic()
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - killed
    assert proc.returncode == 1, out + err
    assert took < 30, f"the command took {took:.1f} s after the server died"
    lines = error_lines(err)
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("Error: MLflow at " + server.uri), lines
    assert parent.info.run_id in lines[0] and "could not be marked FAILED" in lines[0]

    # Back on the same port and store: the run its process could not close is still RUNNING
    # there, until the next run of the experiment closes it as FAILED.
    server.start()
    assert MlflowClient(server.uri).get_run(parent.info.run_id).info.status == "RUNNING"
    tracker = ExperimentTracker(name, server.uri)
    assert parent.info.run_id in tracker.closed_stale_
    run = MlflowClient(server.uri).get_run(parent.info.run_id)
    assert run.info.status == "FAILED"
    assert "tracking server was unreachable" in run.data.tags["forecast.failure"]
    assert not MlflowClient(server.uri).search_runs([run.info.experiment_id], "attributes.status = 'RUNNING'")


class _Pages(http.server.BaseHTTPRequestHandler):
    """A web server that is not MLflow: 404 everywhere, or a landing page for everything."""

    landing = False

    def do_GET(self):  # noqa: N802 - the standard library's name
        if self.landing:
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("landing", [False, True], ids=["404", "landing-page"])
def test_a_web_server_that_is_not_mlflow_is_named_in_one_message(landing, tmp_path):
    handler = type("Handler", (_Pages,), {"landing": landing})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        proc = forecast_command("experiment", "run", str(experiment_file(tmp_path, "web")), "--tracking-uri", uri,
                                cwd=tmp_path)
        out, err = proc.communicate(timeout=120)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 1
    assert "Traceback" not in err
    lines = error_lines(err)
    assert lines == [lines[0]] and f"{uri} answers HTTP but is not an MLflow tracking server" in lines[0], lines
    assert not (tmp_path / "mlflow.db").exists()


# ----------------------------------------------------------------------------------------
# Bounded: every MLflow request has a deadline. In process, with the command's own bounds.


@pytest.fixture
def command_bounds(monkeypatch):
    """The environment a user has: none of MLflow's HTTP settings set, so the command's own
    bounds (forecast.limits) apply; whatever the command sets is removed again afterwards."""
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


def run_command(*args: str) -> tuple[int, list[str], float]:
    """``forecast ARGS`` in process: exit code, the lines it printed (progress bars aside), seconds."""
    from click.testing import CliRunner

    from forecast.cli import main

    began = time.monotonic()
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, error_lines(result.output), time.monotonic() - began


def test_a_port_that_accepts_and_never_answers_stops_the_experiment_with_one_message(tmp_path, command_bounds):
    with silent_port() as uri:
        code, lines, took = run_command("experiment", "run", str(experiment_file(tmp_path, "silent")),
                                        "--tracking-uri", uri)
    assert code == 1 and took < 30, (code, took, lines)
    assert lines == [f"Error: MLflow tracking server {uri} did not answer within 5 s (timed out); start it "
                     f"(mlflow server --host ... --port ...), or pass another --tracking-uri / MLFLOW_TRACKING_URI "
                     f"(e.g. sqlite:///mlflow.db for a local store)"], lines


def test_a_server_whose_health_answers_but_whose_api_never_does_stops_within_the_deadline(tmp_path, command_bounds,
                                                                                          capfd):
    # forecast.limits: a request waits 15 s for an answer and is tried twice. With the former
    # bounds (60 s, 3 tries) the same command, run as a subprocess, stopped after 205 s.
    with stalled_api() as uri:
        code, lines, took = run_command("experiment", "run", str(experiment_file(tmp_path, "stalled")),
                                        "--tracking-uri", uri)
    assert code == 1, lines
    assert 25 < took < 60, f"stopped after {took:.0f} s"
    assert lines == [f"Error: MLflow tracking server {uri} did not answer while opening experiment 'stalled': "
                         f"no answer within 15 s, 2 attempt(s) (MLFLOW_HTTP_REQUEST_TIMEOUT, "
                         f"MLFLOW_HTTP_REQUEST_MAX_RETRIES); check the server, or pass another --tracking-uri / "
                         f"MLFLOW_TRACKING_URI"], lines
    assert "Traceback" not in capfd.readouterr().err


@pytest.fixture
def read_only_store(tmp_path):
    """A SQLite store that holds an experiment, in a folder this user cannot write: a read-only
    bind mount as root (whom permissions do not stop), else permissions."""
    folder = tmp_path / "store"
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    ExperimentTracker("read-only", uri)
    before = (folder / "mlflow.db").read_bytes()
    if os.geteuid() == 0:
        if shutil.which("mount") is None:
            pytest.skip("a read-only store as root needs mount(8)")
        done = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        try:
            yield uri, folder, before
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        (folder / "mlflow.db").chmod(0o444)
        folder.chmod(0o555)
        try:
            yield uri, folder, before
        finally:
            folder.chmod(0o755)
            (folder / "mlflow.db").chmod(0o644)


def test_an_experiment_against_a_read_only_sqlite_store_is_one_line_naming_it(tmp_path, read_only_store, capfd):
    uri, folder, before = read_only_store
    path = experiment_file(tmp_path, "read-only")
    code, lines, _ = run_command("experiment", "run", str(path), "--tracking-uri", uri)
    assert code == 1
    assert lines == [f"Error: the MLflow store {uri} cannot be written ({folder / 'mlflow.db'} is read-only for "
                         f"this user or on a read-only file system); a run needs a writable store: pass another "
                         f"--tracking-uri / MLFLOW_TRACKING_URI, or make {folder / 'mlflow.db'} writable"], lines
    err = capfd.readouterr().err
    assert "Traceback" not in err and "autoflush" not in err, err[-2000:]
    assert (folder / "mlflow.db").read_bytes() == before
