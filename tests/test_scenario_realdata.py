"""The context issue's real-data scenario, end to end: operations tempo in Anbar cut by 60% on
the UCDP GED Iraq panel with context (experiments/panels/ucdp_iraq_context.toml), through
`forecast scenario run` and the report's scenario section with the model's skill beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from forecast.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "experiments" / "scenarios"

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def context_panel(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ctx") / "ucdp_context.parquet"
    result = CliRunner().invoke(main, ["data", "build", "--spec", str(ROOT / "experiments" / "panels" /
                                                                     "ucdp_iraq_context.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_an_anbar_operations_cut_moves_anbar_alone_in_the_scenario_run(context_panel, tmp_path):
    out = tmp_path / "run"
    files = f"{SCENARIOS / 'baseline.toml'},{SCENARIOS / 'anbar_ops_cut.toml'}"
    result = CliRunner().invoke(main, ["scenario", "run", "--panel", str(context_panel), "--model", "nb_glmx",
                                       "--scenarios", files, "--horizon", "3", "--out", str(out), "--no-track"])
    assert result.exit_code == 0, result.output
    assert "Anbar operations cut" in result.output
    paths = pd.read_csv(out / "paths.csv").set_index(["unit", "month", "covariate"])
    cut = paths[paths["scenario"] == "Anbar operations cut"]["value"]
    base = paths[paths["scenario"] == "baseline"]["value"].reindex(cut.index)
    changed = cut[cut != base]
    assert set(changed.index.get_level_values("unit")) == {"Anbar"}
    assert set(changed.index.get_level_values("covariate")) == {"ops_tempo"}
    assert (changed == 0.4 * base[changed.index]).all()
    diffs = pd.read_csv(out / "differences.csv")
    moved = diffs.groupby("unit")["mean"].apply(lambda d: d.abs().max())
    assert moved["Anbar"] > 0
    assert (moved.drop("Anbar") == 0).all(), moved[moved > 0]


def test_the_reports_scenario_section_puts_the_models_skill_beside_the_change(context_panel, tmp_path):
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--panel", str(context_panel), "--model", "nb_glmx", "--scenario",
                                       str(SCENARIOS / "anbar_ops_cut.toml"), "--horizon", "3",
                                       "--backtest-months", "12", "--out", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    section = html[html.index('id="scenarios"'):]
    assert "Anbar operations cut" in section
    assert "than the best benchmark" in section and "nb_glmx" in section
