"""The benchmark script runs with one command and writes the figures the README quotes.

Only the synthetic cases, in their ``--quick`` form (35 and 350 units, 3 origins): the full
cases take ten minutes and their figures are not test material (the brief keeps speed
targets out of tests). The Iraq cases need ``../shared/data`` and are covered by the
equality tests of ``tests/test_backends.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_synthetic_cases_print_and_write_their_figures(tmp_path):
    out = tmp_path / "results" / "latest.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--cases", "synthetic_350,synthetic_3500",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.read_text())
    cases = {c["case"]: c for c in payload["cases"]}
    assert list(cases) == ["synthetic_350", "synthetic_3500"]
    for case in cases.values():
        assert case["seconds"] > 0 and case["cpu_seconds"] > 0 and case["peak_mb"] > 0
        assert case["fits"] == 8 * 3
        assert abs(case["fits_per_second"] - case["fits"] / case["seconds"]) <= 0.01 * case["fits_per_second"] + 0.01
        assert case["forecast_rows"] == case["units"] * 3 * 6 * 8
    assert (cases["synthetic_350"]["units"], cases["synthetic_3500"]["units"]) == (35, 350)
    ratio = cases["synthetic_3500"]["seconds"] / cases["synthetic_350"]["seconds"]
    assert abs(cases["synthetic_3500"]["time_ratio_vs_350"] - ratio) <= 0.01
    assert "3,500 units took" in done.stdout and f"written: {out}" in done.stdout


def test_an_unknown_case_is_refused_with_the_known_ones(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--cases", "iraq_fast",
                           "--out", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown case(s) iraq_fast" in done.stderr and "iraq_full" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_the_scale_script_runs_on_tiny_sizes_and_reports_ratios(tmp_path):
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--sizes", "12,24", "--origins", "2",
         "--models", "zero,nb_glm", "--predict-model", "moving_average", "--no-real", "--startup-runs", "1",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert "load average at the start" in done.stdout and len(payload["load_average_at_start"]) == 3
    # The start-up timings: the import floor and the light commands (no real panel with --no-real).
    assert set(payload["startup"]) == {"import pandas, numpy, scipy.special", "forecast --help", "forecast models",
                                       "forecast predict --help"}
    floor = payload["startup"]["import pandas, numpy, scipy.special"]
    assert floor["over_floor"] == floor["cpu_over_floor"] == 1.0
    assert all(row["seconds"] > 0 and row["runs"] == 1 for row in payload["startup"].values())
    assert {"forecast models seconds", "forecast predict --help seconds"} <= set(payload["checks"])
    assert [s["units"] for s in payload["sizes"]] == [12, 24]
    for size in payload["sizes"]:
        assert set(size["steps"]) == {"predict_default", "backtest_zero", "backtest_nb_glm"}
        for step in size["steps"].values():
            assert step["seconds"] > 0 and step["cpu_seconds"] > 0 and step["peak_mb"] > 50
    rows = {r["step"]: r for r in payload["ratios"]}
    assert set(rows) == {"predict_default", "backtest_zero", "backtest_nb_glm"}
    small, large = payload["sizes"]
    nb = rows["backtest_nb_glm"]
    assert nb["units_ratio"] == 2.0
    assert nb["cpu_ratio"] == round(large["steps"]["backtest_nb_glm"]["cpu_seconds"]
                                    / small["steps"]["backtest_nb_glm"]["cpu_seconds"], 2)
    assert "time ratios between sizes" in done.stdout and f"written: {out}" in done.stdout
