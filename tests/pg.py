"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder,
listening on 127.0.0.1 on a free port, with trust authentication; stopped and removed after.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (``runuser``) on a folder given to that user. :func:`start` raises
:class:`Unavailable` with the reason when the binaries, the user or the server start are
missing; fixtures turn that into a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian puts the server programs; the newest version found is used.
BIN_GLOB = "/usr/lib/postgresql/*/bin"


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass
class Server:
    root: Path
    port: int
    bindir: Path
    user: str | None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
             check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindir() -> Path:
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    for candidate in reversed(found):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    for name in ("initdb", "pg_ctl"):
        if shutil.which(name) is None:
            raise Unavailable(f"PostgreSQL server programs not found (no {BIN_GLOB}/initdb, no {name} on PATH); "
                              f"install the 'postgresql' package (.ci/run does)")
    return Path(shutil.which("initdb")).parent


def _run(server_or_user, argv: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    user = server_or_user.user if isinstance(server_or_user, Server) else server_or_user
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise Unavailable(f"{' '.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def start() -> Server:
    """Start a server; raise :class:`Unavailable` with the reason when it cannot start."""
    bindir = _bindir()
    user = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to run the server as") from None
        if shutil.which("runuser") is None:
            raise Unavailable("running as root and 'runuser' is missing, so the server cannot drop to 'postgres'")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    if user is not None:
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    server = Server(root=root, port=port, bindir=bindir, user=user)
    try:
        _run(user, [str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], timeout=120)
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
        _run(user, [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "server.log"),
                    "-w", "-t", "60", "start"], timeout=90)
    except (Unavailable, subprocess.TimeoutExpired, OSError) as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        server.stop()
        raise Unavailable(f"PostgreSQL did not start on 127.0.0.1:{port}: {exc}\n{tail}") from None
    return server


# -- fixtures: ``postgres`` is session-wide (conftest.py), ``url`` is imported by the ledger tests --

@pytest.fixture(scope="session")
def postgres():
    """A running server for the test session (one per xdist worker), or a skip that says why none
    can start here. Each test makes a database of its own on it."""
    try:
        server = start()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL server unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(name="url", params=["sqlite", "postgresql"])
def ledger_location(request, tmp_path):
    """A fresh, empty ledger location of each kind: a SQLite file, a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    return request.getfixturevalue("postgres").create_database(f"ledger_{uuid.uuid4().hex[:12]}")
