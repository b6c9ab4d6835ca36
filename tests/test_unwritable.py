"""Every command on an output location it cannot write: one line naming the path, the documented
exit code, no traceback, nothing half-written. The location is a path under a regular file
(ENOTDIR, which bites as root too), a folder without write permission (skipped as root, where
chmod does not bite), and a full disk (a tiny tmpfs; skipped where it cannot be mounted)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli import main
from forecast.ledger.integrity import check_sqlite_file

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
COVARIATES = ROOT / "data" / "sample" / "covariates_demo.csv"
SCENARIO = ROOT / "experiments" / "scenarios" / "full_withdrawal.toml"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path | str]:
    """A demo panel, a tracking store, and a ledger: what the commands read."""
    root = tmp_path_factory.mktemp("inputs")
    panel = root / "panel.parquet"
    result = CliRunner().invoke(main, ["data", "build", "--events", str(EVENTS), "--covariates", str(COVARIATES),
                                       "--coverage-end", "2024-12", "--out", str(panel)])
    assert result.exit_code == 0, result.output
    from forecast.ledger import Ledger

    with Ledger.open(root / "ledger.sqlite"):
        pass
    return {"root": root, "panel": panel, "uri": f"sqlite:///{root / 'mlflow.db'}", "ledger": root / "ledger.sqlite"}


def experiment_file(folder: Path, panel: Path) -> Path:
    path = folder / "experiment.toml"
    path.write_text(f'[data]\npanel = "{panel}"\n[features]\ncovariates = []\n'
                    '[backtest]\nstart = "2024-01"\nend = "2024-06"\nstep = 3\nhorizon = 3\n'
                    '[[models]]\nname = "zero"\n', encoding="utf-8")
    return path


def refresh_file(folder: Path, out: Path, uri: str) -> Path:
    path = folder / "refresh.toml"
    path.write_text(f'[data]\nevents = "{EVENTS}"\nformat = "ucdp"\ncoverage_end = "2024-12"\n'
                    '[model]\nname = "no-such-model"\nfallback = "zero"\nhorizon = 3\n'
                    f'[outputs]\ndir = "{out}"\n[tracking]\nuri = "{uri}"\n', encoding="utf-8")
    return path


def commands(inputs: dict, out: Path, folder: Path) -> dict[str, list[str]]:
    """Each command with every output it writes at ``out``."""
    panel = str(inputs["panel"])
    return {
        "data build": ["data", "build", "--events", str(EVENTS), "--out", str(out / "panel.parquet")],
        "data synthetic": ["data", "synthetic", "--out", str(out)],
        "predict": ["predict", "--panel", panel, "--model", "zero", "--out", str(out / "f.csv")],
        "backtest": ["backtest", "--panel", panel, "--models", "zero", "--start", "2024-01", "--end", "2024-03",
                     "--out", str(out)],
        "report": ["report", "--panel", panel, "--model", "zero", "--backtest-months", "0",
                   "--out", str(out / "r.html")],
        "scenario run": ["scenario", "run", "--panel", panel, "--model", "nb_glmx", "--scenarios", str(SCENARIO),
                         "--no-track", "--out", str(out)],
        "experiment run": ["experiment", "run", str(experiment_file(folder, inputs["panel"])), "--tracking-uri",
                           inputs["uri"], "--out", str(out)],
        "refresh": ["refresh", "--config", str(refresh_file(folder, out, inputs["uri"]))],
        "gazetteer init": ["gazetteer", "init", "--events", str(EVENTS), "--out", str(out / "gazetteer.csv")],
        "ledger backup": ["ledger", "backup", "--ledger", str(inputs["ledger"]), "--out", str(out / "copy.sqlite")],
    }


NAMES = ["backtest", "data build", "data synthetic", "experiment run", "gazetteer init", "ledger backup", "predict",
         "refresh", "report", "scenario run"]


def test_every_command_that_writes_is_covered(tmp_path):
    assert sorted(commands({"panel": Path("p"), "uri": "u", "ledger": Path("l")}, Path("o"), tmp_path)) == NAMES


def refused(argv: list[str], *names: str) -> str:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "unexpected error" not in result.output, result.output
    assert any(name in result.output for name in names), result.output
    return result.output


@pytest.mark.parametrize("name", NAMES)
def test_an_output_path_under_a_regular_file_is_a_message_naming_it(inputs, tmp_path, name):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    argv = commands(inputs, blocker / "out", tmp_path)[name]
    refused(argv, str(blocker))
    assert blocker.read_text() == "in the way"


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: a folder's permissions do not stop root")
@pytest.mark.parametrize("name", NAMES)
def test_a_read_only_output_folder_is_a_message_naming_it(inputs, tmp_path, name):
    folder = tmp_path / "read-only"
    folder.mkdir()
    argv = commands(inputs, folder / "out", tmp_path)[name]
    folder.chmod(0o555)
    try:
        refused(argv, str(folder))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_outputs_dir_that_is_a_file_is_a_configuration_error(inputs, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    output = refused(["refresh", "--config", str(refresh_file(tmp_path, blocker, inputs["uri"]))], "[outputs] key 'dir'")
    assert f"{blocker} is a file" in output and "exit code 1" in output


@pytest.mark.parametrize(("argv", "message"), [
    (["--units", "0"], "n_units must be a positive integer, got 0"),
    (["--start", "2024-13"], "must be a month 'YYYY-MM', got '2024-13'"),
    (["--start", "2020-01", "--end", "2019-01"], "data synthetic: "),
])
def test_impossible_synthetic_options_are_messages(tmp_path, argv, message):
    refused(["data", "synthetic", "--out", str(tmp_path / "syn"), *argv], message)
    assert not (tmp_path / "syn").exists()


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs: room for a ledger, not for a refresh's outputs."""
    mount = tmp_path / "full"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_message_and_leaves_nothing_half_written(inputs, tmp_path, full_disk):
    stat = os.statvfs(full_disk)
    (full_disk / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 8192))  # 8 KiB left
    output = refused(["data", "build", "--events", str(EVENTS), "--out", str(full_disk / "p.parquet")],
                     "no space left on the device")
    assert str(full_disk / "p.parquet") in output
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
    (full_disk / "filler").unlink()

    config = refresh_file(tmp_path, full_disk / "out", inputs["uri"])
    result = CliRunner().invoke(main, ["refresh", "--config", str(config)])
    assert result.exit_code in (1, 7), result.output  # 7 when the ledger's own write is the one that fails
    assert "Traceback" not in result.output and "unexpected error" not in result.output, result.output
    assert "no space left" in result.output or "disk is full" in result.output, result.output
    assert not list((full_disk / "out").rglob("*.tmp")), list((full_disk / "out").rglob("*"))
    ledger = full_disk / "out" / "ledger.sqlite"
    if ledger.exists():
        check_sqlite_file(ledger)
