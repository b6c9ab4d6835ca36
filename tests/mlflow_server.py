"""A real ``mlflow server`` on 127.0.0.1: started, waited for and stopped by process group.

Shared by the tests that track to a server (``test_tracking``, ``test_tracking_faults``,
``test_refresh``) and by ``docs/mlflow_horizons.py``. ``tests/`` is not a package: import it
as ``from mlflow_server import ...`` (pytest puts ``tests/`` on the path; the docs script
does so itself).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(backend_uri: str, port: int, *, log: Path | None = None, artifacts: Path | None = None,
          append: bool = False) -> subprocess.Popen:
    """Start ``mlflow server`` on ``port`` over ``backend_uri`` in a session of its own.

    Its output goes to ``log`` (appended to with ``append``, for a server restarted on the
    same store) or nowhere. It does not wait: see :func:`wait_healthy`.
    """
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", backend_uri, "--workers", "1"]
    if artifacts is not None:
        cmd += ["--artifacts-destination", str(artifacts)]
    out = open(log, "ab" if append else "wb") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    finally:
        if log is not None:
            out.close()  # the server holds its own copy


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 60.0, poll: float = 0.3) -> bool:
    """True once the server on ``port`` answers ``/health``; False if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return True
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(poll)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the server's process group and wait; SIGKILL it if it has not gone in 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
