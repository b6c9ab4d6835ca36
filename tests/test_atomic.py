"""Atomic writes: what a writer killed with SIGKILL leaves (its temporary file) is removed by the
next write of the same target; a temporary file of a writer still running is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from click.testing import CliRunner

from features.atomic import remove_stale_temporaries, write_bytes_atomically
from forecast.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "forecast.csv"
    target.write_text("previous\n")
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from features.atomic import write_atomically
        write_atomically({{Path({str(target)!r}): lambda tmp: (tmp.write_bytes(b"half a fi"), time.sleep(120))}})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".forecast.csv.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # Still running: its temporary file is not stale.
        assert remove_stale_temporaries(target) == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = list(tmp_path.glob(".forecast.csv.*.tmp"))
    assert len(left) == 1 and target.read_text() == "previous\n"
    write_bytes_atomically({target: b"new\n"})
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.csv"]


def test_only_temporaries_of_the_same_target_and_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "panel.parquet"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".panel.parquet.{dead.pid}.0badc0de.tmp"
        running = tmp_path / f".panel.parquet.{live.pid}.0badc0de.tmp"
        other = tmp_path / f".panel.parquet.meta.json.{dead.pid}.0badc0de.tmp"
        foreign = tmp_path / ".panel.parquet.backup.tmp"
        for path in (stale, running, other, foreign):
            path.write_bytes(b"")
        assert remove_stale_temporaries(target) == [stale]
        assert running.exists() and other.exists() and foreign.exists()
    finally:
        live.kill()
        live.wait()


def test_data_build_never_writes_over_a_file_it_reads(tmp_path):
    demo = Path(__file__).resolve().parent.parent / "data" / "sample" / "ucdp_ged_demo.csv"
    events = tmp_path / "events.csv"
    events.write_bytes(demo.read_bytes())
    named_like_the_quarantine = tmp_path / "panel.csv.quarantine.csv"
    named_like_the_quarantine.write_bytes(demo.read_bytes())
    for out, source, what in ((events, events, "the panel"), (tmp_path / "panel.csv", named_like_the_quarantine,
                                                               "the quarantine")):
        result = CliRunner().invoke(main, ["data", "build", "--events", str(source), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert f"{what} would be written over the --events input" in result.output
        assert source.read_bytes() == demo.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "panel.csv.quarantine.csv"]
