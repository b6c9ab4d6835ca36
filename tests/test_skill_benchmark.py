"""benchmarks/skill.py: its climatology is known at each origin, and the script runs on the real panel."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _skill_module():
    spec = importlib.util.spec_from_file_location("skill_benchmark", ROOT / "benchmarks" / "skill.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_climatology_counts_only_escalations_already_seen_at_the_origin():
    skill = _skill_module()
    months = pd.period_range("2020-01", "2020-09", freq="M")
    y = [0, 0, 0, 0, 0, 0, 5, 0, 0]
    panel = pd.DataFrame({"unit": "A", "month": months, "incidents": y})
    # Thresholds are 1.5 * median(last 12) + 1 = 1 up to 2020-06; the first escalation is the
    # month 2020-07 seen from origin 2020-06 at h = 1 (and from 2020-05 at h = 2).
    frame = pd.DataFrame({"unit": "A", "origin": pd.PeriodIndex(["2020-06", "2020-07", "2020-07", "2020-08"], freq="M"),
                          "horizon": [1, 1, 2, 2]})
    got = skill.climatology(panel, "incidents", frame)
    # 2020-06, h1: origins 2020-01..05 known, none escalated -> 0.
    # 2020-07, h1: origins 2020-01..06 known, 2020-06 escalated -> 1/6.
    # 2020-07, h2: origins 2020-01..05 known (month t + 2 <= 2020-07), 2020-05 escalated -> 1/5.
    # 2020-08, h2: origins 2020-01..06 -> 1/6.
    np.testing.assert_allclose(got, [0.0, 1 / 6, 1 / 5, 1 / 6])


def test_block_bootstrap_interval_holds_the_ratio_and_widens_with_uneven_origins():
    skill = _skill_module()
    bench = np.vstack([np.full(12, 10.0), np.full(12, 12.0)])
    # The model is 0.9 of the best benchmark at every origin: every replicate says 0.9.
    assert skill.block_bootstrap(np.full(12, 9.0), bench) == pytest.approx((0.9, 0.9))
    # Better at half the origins, worse at the others: the interval spans both.
    uneven = np.r_[np.full(6, 5.0), np.full(6, 13.0)]
    low, high = skill.block_bootstrap(uneven, bench)
    assert low < 0.9 < high and high > 1.0


def test_the_choice_is_by_the_worst_window_not_the_mean():
    skill = _skill_module()
    rows = [{"candidate": "steady", "source": s, "ratio": r} for s, r in (("a", 0.97), ("b", 0.97), ("c", 0.97))]
    rows += [{"candidate": "spiky", "source": s, "ratio": r} for s, r in (("a", 0.80), ("b", 0.80), ("c", 1.05))]
    assert skill.choose(rows, ["steady", "spiky"], ["a", "b", "c"]) == "steady"
    assert skill.choose(rows, ["steady", "spiky"], ["a", "b"]) == "spiky"  # source c left out


def test_the_quick_run_on_the_real_ucdp_panel_prints_and_writes_its_figures(tmp_path, shared_data):
    out = tmp_path / "skill.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "skill.py"), "--quick", "--sources", "ucdp",
                           "--targets", "incidents", "--jobs", "1", "--candidate", "ses=ses_negbin",
                           "--candidate", "ma=moving_average", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["windows"]
    assert [(r["candidate"], r["window"]) for r in rows] == [("ses", "2016"), ("ma", "2016")]
    for r in rows:
        assert r["ratio"] > 0 and r["lo"] <= r["hi"] and 0 <= r["cov50"] <= r["cov90"] <= 1 and r["n"] > 0
        assert 0 <= r["pit"] <= 0.9 and 0 <= r["pit50"] <= r["pit90"] <= 1
        assert r["best"] in ("zero", "locf_poisson", "locf_negbin", "seasonal_naive", "moving_average", "hist_bootstrap")
        assert sorted(r["by_horizon"]) == ["1", "2", "3", "4", "5", "6"]
    assert set(result["candidates"]) == {"ses", "ma"}
    assert "ses            2016" in done.stdout
