"""The README's quick start runs as written, and writes what the README says it writes.

The shell blocks that follow an HTML comment ``<!-- quickstart: NAME -->`` in README.md are
read, split into commands, and run one by one from a scratch working folder that holds copies
of ``data/sample/`` and ``experiments/`` (and ``../shared/data`` as a symlink for the real-data
route, never a copy). Each command runs in this process through click's test runner, with the
arguments the shell would give ``forecast`` (the console script itself, and what it does with
exit codes, is tested as a real subprocess in ``tests/test_cli.py``); MLflow writes to a SQLite
file in the test's temporary folder.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from features.panel_files import read_panel
from forecast.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- quickstart: (?P<name>[\w-]+) -->\s*```sh\n(?P<body>.*?)```", re.S)
GOVERNORATES = ("Anbar", "Baghdad", "Basra", "Ninewa", "Salah ad Din", "Sulaymaniyah")


def quickstart(name: str) -> list[str]:
    """The commands of the README's quick-start block ``name``, continuation lines joined."""
    blocks = {m["name"]: m["body"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))}
    assert name in blocks, f"README.md has no ```sh block after <!-- quickstart: {name} --> (found: {sorted(blocks)})"
    text = blocks[name].replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def run_as_written(commands: list[str], work: Path, tmp_path: Path) -> list[Result]:
    """Run each command from ``work`` as ``forecast`` would run it; each must exit 0."""
    runner = CliRunner(env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    done = []
    with contextlib.chdir(work):
        for command in commands:
            argv = shlex.split(command)
            assert argv[0] == "forecast", f"quick-start command does not start with forecast: {command}"
            result = runner.invoke(main, argv[1:], prog_name="forecast")
            failure = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
            assert result.exit_code == 0, f"{command}\nexit {result.exit_code}\n{result.output[-3000:]}\n{failure}"
            done.append(result)
    return done


def scratch_checkout(tmp_path: Path) -> Path:
    """A working folder with the files the quick start reads, as in the repository root."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "data" / "sample", work / "data" / "sample")
    shutil.copytree(ROOT / "experiments", work / "experiments")
    return work


def check_route(name: str, work: Path, tmp_path: Path, *, model: str, vintage: str, report: str) -> str:
    """Run quick start ``name`` and check its outputs; returns the report's HTML."""
    commands = quickstart(name)
    assert [shlex.split(c)[1] for c in commands] == ["data", "experiment", "registry", "report"], commands
    build, experiment, promote, _ = run_as_written(commands, work, tmp_path)
    readme = README.read_text(encoding="utf-8")

    # data build: the panel, its metadata and the quarantine, as the README lists them
    for written in ("outputs/panel.parquet", "outputs/panel.parquet.meta.json", "outputs/panel.parquet.quarantine.csv"):
        assert f"`{written}`" in readme
        assert (work / written).is_file(), f"{written} not written"
    panel, meta = read_panel(work / "outputs" / "panel.parquet")
    assert meta["vintage"] == vintage, meta
    assert "us_troops" in panel.columns
    assert f"data vintage: {vintage}" in build.stdout
    if name == "realdata":  # the README says the long fill of the 2008 airstrike counts is warned and recorded
        assert ("warning: covariate 'coalition_strikes' is filled (ffill-zero) for the last 102 months of the "
                "panel, 2008-07..2016-12, after its last observation (2008-06)") in build.stdout
        assert meta["covariates"]["staleness"]["coalition_strikes"]["last_observed"] == "2008-06"

    # experiment run --register, then promote: version 1 becomes the first champion
    assert f"registered {model} version 1" in experiment.stdout
    assert "promoted: version 1 is the first champion" in promote.stdout
    assert (tmp_path / "mlflow.db").is_file()

    # report: the HTML file the README names, from the registered champion
    assert f"`{report}`" in readme
    html = (work / report).read_text(encoding="utf-8")
    assert f"{model} version 1 (champion)" in html
    for unit in GOVERNORATES:
        assert unit in html
    if name == "realdata":  # ... and the report draws the filled months as filled, not as data
        assert "filled, not recorded" in html and "Coalition airstrikes (<code>coalition_strikes</code>): last " \
            "recorded 2008-06, 102 months before the data vintage" in html
    return html


def test_readme_quickstart_runs_as_written_on_the_demo_data(tmp_path):
    html = check_route("demo", scratch_checkout(tmp_path), tmp_path, model="my-incidents", vintage="2024-12",
                       report="outputs/reports/2025-01.html")
    assert "synthetic" in html.lower()


@pytest.mark.realdata
def test_readme_quickstart_runs_as_written_on_the_real_ucdp_data(tmp_path, shared_data):
    work = scratch_checkout(tmp_path)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data, target_is_directory=True)
    html = check_route("realdata", work, tmp_path, model="ucdp-incidents", vintage="2016-12",
                       report="outputs/ucdp-reports/2017-01.html")
    assert "UCDP" in html and "Synthetic demo data" not in html


PRINTED = re.compile(r"<!-- printed: (?P<name>[\w-]+) -->\s*```text\n(?P<body>.*?)```", re.S)


def printed(name: str) -> str:
    """The README's ```text block after ``<!-- printed: NAME -->``."""
    blocks = {m["name"]: m["body"] for m in PRINTED.finditer(README.read_text(encoding="utf-8"))}
    assert name in blocks, f"README.md has no ```text block after <!-- printed: {name} -->"
    return blocks[name]


@pytest.mark.parametrize("name", ["acled", "country"])
def test_the_acled_and_other_country_routes_print_what_the_readme_shows(tmp_path, name):
    work = tmp_path / "repo"
    work.mkdir()
    commands = quickstart(name)
    assert shlex.split(commands[0])[1:3] == ["data", "synthetic"], commands
    done = run_as_written(commands, work, tmp_path)
    # The synthetic file stands in for a download: what the README shows is what comes after.
    shown = "".join(r.stdout for r in done[1:])
    assert shown == printed(name), f"README's printed block for {name} is out of date; it prints:\n{shown}"
    built = shlex.split(commands[-1])
    panel, meta = read_panel(work / built[built.index("--out") + 1])
    assert meta["sources"][0]["format"] == "acled"
    assert meta["sources"][0]["date_form"] == "%d-%b-%y"
    # The other country's panel is read with the gazetteer it was built with, found in its metadata.
    assert panel["unit"].nunique() == (18 if name == "acled" else 12)
