"""Backtest benchmarks: wall time, fits per second and peak memory, printed and saved as JSON.

Run from the repository root::

    .venv/bin/python benchmarks/run.py            # every case (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # small versions of the cases, a minute
    .venv/bin/python benchmarks/run.py --cases iraq_full,iraq_simple --jobs 2

Cases
-----
``iraq_full`` (1)
    The real Iraq panel (UCDP GED events, ``../shared/data``; built into
    ``outputs/ucdp.parquet`` when missing): every registered model with its default
    hyperparameters, target ``incidents``, covariate ``us_troops``, origins 2008-07..2016-06
    (the last 8 years of the panel with every horizon scored: 96 origins, step 1), horizons
    1-6, the default refit policy (:class:`forecast.evaluation.backtest.BacktestDesign`: refit every 12
    origins, updates in between), ``--jobs`` joblib workers.
``synthetic_350``, ``synthetic_3500`` (2)
    The synthetic generator (:mod:`features.synthetic`) at 350 and 3,500 units x 240 months
    (2001-01..2020-12) on a lattice gazetteer: the six benchmarks, one statistical model and
    one ML model, 24 origins (2018-01..2019-12), horizons 1-6, default refit policy. The
    statistical model is ``nb_glm`` with ``unit_effects=false`` (a pooled negative binomial
    regression on lagged counts, neighbours and season: per-unit models such as ``ets`` cost
    one optimisation per unit, and unit indicators make a 3,500-column design); the ML model
    is ``hgb`` (gradient boosting pooled across units, histogram-based, so linear in rows).
``iraq_simple`` (3)
    Case 1 computed the simple way: every fit and every feature matrix built from scratch at
    each origin (no fit shared between models or origins, no feature slicing), in one
    process. Same models, origins, refit policy and therefore the same forecasts (checked:
    ``max_abs_diff_vs_full``); case 1's ``speedup_vs_simple`` is this case's time over case 1's.

Definitions
-----------
fit
    One model conditioned on the history at one origin (a refit or an update) and forecasting
    every unit at every horizon: models x origins. ``fits_per_second`` = fits / seconds.
seconds
    Wall time of the backtest (panel loading excluded), in a fresh Python process.
cpu_seconds
    User and system CPU time of that process and its workers during the backtest: the work
    done, whatever the number of workers.
speedup_vs_simple (case 1)
    Case 3's seconds over case 1's. Case 3 keeps one process busy, so this is about the
    product of ``work_ratio_vs_simple`` (case 3's CPU seconds over case 1's: the work that
    reuse saves) and the parallel gain ``parallel_efficiency`` x jobs
    (``parallel_efficiency`` = cpu_seconds / (jobs x seconds), the share of its workers'
    time case 1 kept busy). ``speedup_bound`` = ``work_ratio_vs_simple`` x jobs is the
    speed-up with no overhead at all.
peak_mb
    Peak of the summed resident memory of that process and all its children (joblib or Dask
    workers), sampled every 0.1 s with psutil.

Results go to ``benchmarks/results/latest.json`` (written atomically), one object per case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
PANEL = ROOT / "outputs" / "ucdp.parquet"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
CASES = ("iraq_full", "synthetic_350", "synthetic_3500", "iraq_simple")


# ----------------------------------------------------------------------------------------
# One case, in a child process


def _iraq_panel():
    from features.gazetteer import load_gazetteer
    from features.panel_files import read_panel

    panel, _ = read_panel(PANEL, load_gazetteer())
    return panel


def _iraq_case(quick: bool):
    import pandas as pd

    from forecast.evaluation.backtest import BacktestDesign
    from forecast.catalog import MODELS, make_model

    panel = _iraq_panel()
    start, end = ("2015-07", "2016-06") if quick else ("2008-07", "2016-06")
    design = BacktestDesign(start=pd.Period(start, freq="M"), end=pd.Period(end, freq="M"), horizon=6)
    models = {name: (lambda name=name: make_model(name)) for name in sorted(MODELS)}
    return panel, models, design, ["us_troops"]


def synthetic_case(n_units: int, quick: bool, workdir: Path):
    import pandas as pd

    from features.gazetteer import load_gazetteer
    from features.panel_files import validate_panel
    from features.synthetic import SyntheticConfig, simulate_panel, synthetic_gazetteer
    from forecast.evaluation.backtest import BacktestDesign
    from forecast.catalog import BENCHMARKS, make_model

    gazetteer = synthetic_gazetteer(n_units)
    path = workdir / f"gazetteer_{n_units}.csv"
    gazetteer.to_csv(path, index=False)
    first = "2011-01" if quick else "2001-01"
    counts, covariates = simulate_panel(SyntheticConfig(start=first, end="2020-12"), gazetteer)
    panel = counts.drop(columns="log_intensity").merge(covariates, on="month")
    panel["us_troops"] = panel["us_troops"].astype(float)
    panel = validate_panel(panel.assign(month=pd.PeriodIndex(panel["month"], freq="M")),
                           gazetteer=load_gazetteer(path))
    end = "2018-03" if quick else "2019-12"
    design = BacktestDesign(start=pd.Period("2018-01", freq="M"), end=pd.Period(end, freq="M"), horizon=6)
    models = {name: (lambda name=name: make_model(name)) for name in BENCHMARKS}
    # The panel carries the lattice's neighbours (validate_panel with its gazetteer).
    models["nb_glm"] = lambda: make_model("nb_glm", unit_effects=False)
    models["hgb"] = lambda: make_model("hgb")
    return panel, models, design, ["us_troops", "ops_tempo"]


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its live children (the joblib workers)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def run_case(name: str, quick: bool, jobs: int, out: Path) -> dict:
    """Run one case here; return its figures and write its forecasts to ``out``."""
    from forecast.evaluation.backtest import fit_notes, run_backtest

    with tempfile.TemporaryDirectory() as tmp:
        if name in ("iraq_full", "iraq_simple"):
            panel, models, design, covariates = _iraq_case(quick)
        else:
            panel, models, design, covariates = synthetic_case(int(name.split("_")[1]) // (10 if quick else 1),
                                                                quick, Path(tmp))
        simple = name == "iraq_simple"
        cpu_before = _cpu_seconds()
        began = time.perf_counter()
        result = run_backtest(panel, models, design, covariates=covariates, progress=False,
                              n_jobs=1 if simple else jobs, reuse=not simple)
        seconds = time.perf_counter() - began
        cpu_seconds = _cpu_seconds() - cpu_before
    fits = len(models) * len(design.origins())
    result.assign(origin=result["origin"].astype(str), month=result["month"].astype(str)).to_parquet(out)
    return {
        "case": name,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "fits": fits,
        "fits_per_second": round(fits / seconds, 2),
        "models": list(models),
        "units": int(panel["unit"].nunique()),
        "months": int(panel["month"].nunique()),
        "origins": f"{design.origins()[0]}..{design.origins()[-1]} ({len(design.origins())})",
        "horizon": design.horizon,
        "refit_every": design.refit_every,
        "jobs": 1 if simple else jobs,
        "forecast_rows": len(result),
        "fit_notes": len(fit_notes(result)),
    }


# ----------------------------------------------------------------------------------------
# The driver: one child process per case, its memory sampled from here


def _measure(name: str, quick: bool, jobs: int, out: Path) -> dict:
    import psutil

    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-case", name, "--jobs", str(jobs),
           "--forecasts", str(out), *(["--quick"] if quick else [])]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        proc = psutil.Process(child.pid)
        while not stop.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                rss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                return
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    stop.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"case {name} failed (exit {child.returncode}):\n{stderr[-3000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    figures["peak_mb"] = round(peak / 2**20, 1)
    return figures


def _ensure_panel() -> bool:
    if PANEL.exists():
        return True
    if not (SHARED / "ucdp_ged_iraq_hdx.csv").exists():
        return False
    print(f"building {PANEL.relative_to(ROOT)} from {SHARED} ...", flush=True)
    subprocess.run([str(Path(sys.executable).with_name("forecast")), "data", "build",
                    "--events", str(SHARED / "ucdp_ged_iraq_hdx.csv"),
                    "--covariates", str(SHARED / "iraq_covariates_month.csv"), "--fill", "ffill-zero",
                    "--out", str(PANEL)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return True


def _max_abs_diff(a: Path, b: Path) -> float:
    import numpy as np
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if len(x) != len(y) or list(x.columns) != list(y.columns):
        return float("inf")
    worst = 0.0
    for column in x.columns:
        if x[column].dtype.kind == "f":
            diff = np.abs(x[column].to_numpy() - y[column].to_numpy())
            both_nan = np.isnan(x[column].to_numpy()) & np.isnan(y[column].to_numpy())
            if (np.isnan(diff) & ~both_nan).any():
                return float("inf")
            worst = max(worst, float(np.nanmax(diff)) if (~both_nan).any() else 0.0)
        elif not (x[column].astype(str) == y[column].astype(str)).all():
            return float("inf")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated cases from {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="small versions of the cases (a smoke test)")
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers of the parallel cases (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file to write")
    parser.add_argument("--run-case", help=argparse.SUPPRESS)
    parser.add_argument("--forecasts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_case:
        print(json.dumps(run_case(args.run_case, args.quick, args.jobs, args.forecasts)))
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if any(c.startswith("iraq") for c in cases) and not _ensure_panel():
        print(f"skipping the Iraq cases: the real data is not in {SHARED} (it sits beside the repository)")
        cases = [c for c in cases if not c.startswith("iraq")]
    # The simple baseline runs right after the case it is compared with.
    cases.sort(key=CASES.index)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            print(f"{case} ...", flush=True)
            figures = _measure(case, args.quick, args.jobs, Path(tmp) / f"{case}.parquet")
            results[case] = figures
            print(f"  {figures['seconds']:8.1f} s  {figures['fits_per_second']:8.2f} fits/s  "
                  f"{figures['peak_mb']:8.0f} MB peak  ({figures['fits']} fits: {len(figures['models'])} models x "
                  f"{figures['origins']} origins, {figures['units']} units)", flush=True)
        if "iraq_full" in results and "iraq_simple" in results:
            diff = _max_abs_diff(Path(tmp) / "iraq_full.parquet", Path(tmp) / "iraq_simple.parquet")
            results["iraq_simple"]["max_abs_diff_vs_full"] = diff
            full, simple = results["iraq_full"], results["iraq_simple"]
            full["speedup_vs_simple"] = round(simple["seconds"] / full["seconds"], 2)
            # The speed-up is (work saved) x (parallel gain): case 1's share of case 3's CPU
            # time, and how much of its workers' time case 1 kept busy. With the work split
            # perfectly over the workers and no overhead, the speed-up would be
            # work_ratio x jobs.
            full["work_ratio_vs_simple"] = round(simple["cpu_seconds"] / full["cpu_seconds"], 2)
            full["parallel_efficiency"] = round(full["cpu_seconds"] / (full["jobs"] * full["seconds"]), 2)
            full["speedup_bound"] = round(full["work_ratio_vs_simple"] * full["jobs"], 2)
    if "synthetic_350" in results and "synthetic_3500" in results:
        results["synthetic_3500"]["time_ratio_vs_350"] = round(
            results["synthetic_3500"]["seconds"] / results["synthetic_350"]["seconds"], 2)

    from features.atomic import write_bytes_atomically

    payload = {
        "command": "python benchmarks/run.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:])),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "cases": list(results.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically({args.out: (json.dumps(payload, indent=2) + "\n").encode()})
    if "iraq_full" in results and "speedup_vs_simple" in results["iraq_full"]:
        full = results["iraq_full"]
        print(f"speed-up of case 1 over the simple approach: {full['speedup_vs_simple']}x "
              f"(forecasts differ by at most {results['iraq_simple']['max_abs_diff_vs_full']:.3g})")
        print(f"  = {full['work_ratio_vs_simple']}x less CPU time x {full['jobs']} workers busy "
              f"{full['parallel_efficiency']:.0%} of the time; with no overhead at all it would be "
              f"{full['speedup_bound']}x")
    if "time_ratio_vs_350" in results.get("synthetic_3500", {}):
        print(f"3,500 units took {results['synthetic_3500']['time_ratio_vs_350']}x the time of 350 (linear: 10x)")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
