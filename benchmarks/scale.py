"""Scale benchmark: the commands a user runs, timed from 350 to 13,000 synthetic units.

Run from the repository root::

    .venv/bin/python benchmarks/scale.py                       # 350, 3,500 and 13,000 units
    .venv/bin/python benchmarks/scale.py --sizes 350,3500      # a subset
    .venv/bin/python benchmarks/scale.py --sizes 12,24 --origins 1 --models zero \
        --predict-model moving_average --no-real                  # a smoke test

For every size N it runs, each in a fresh process whose wall time, CPU time (user + system,
children included) and peak resident memory (summed over the process tree, sampled every
0.1 s with psutil) are measured:

1. ``forecast data synthetic --units N --start 2001-01 --end 2020-12`` (240 months) and
   ``forecast data build`` (not timed as a case: the set-up);
2. ``forecast predict --model default --horizon 6``;
3. ``forecast backtest`` of each of the benchmarks (``forecast.catalog.BENCHMARKS``),
   ``nb_glm`` and ``hgb``, one model per process, over ``--origins`` origins (24:
   2018-07..2020-06, every horizon scored) with horizons 1..6 and the default refit policy.

Before the sizes, the start-up of the commands people wait for (``--startup-runs``, median of 5
runs each, interleaved so that a change in the machine's load hits every command alike):
``python -c "import pandas, numpy, scipy.special"`` (the floor: the libraries any forecast
needs), ``forecast predict --model default`` on the 18-unit real UCDP panel (target: at most
1.6 x the floor), and ``forecast --help``, ``forecast models`` and ``forecast predict --help``
(target: each under 0.5 s). ``--models none`` runs no backtest (the predict alone).

Then it prints, per step, the time ratio between consecutive sizes against the ratio of
units (the target: at most 1.3 x linear, i.e. 13 x the time for 10 x the units), and checks
the targets of the scale issue: peak memory at most 8 GB at 13,000 units, the 13,000-unit
predict at most 10 minutes, and (unless ``--no-real``) the 18-unit real UCDP panel's
predict (``../shared/data``) at most 5 s. The load average at the start is printed first:
the machine is shared, and wall times on a loaded machine are longer than CPU times.

Figures go to ``benchmarks/results/scale.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
SIZES = (350, 3500, 13000)
FORECAST = [sys.executable, "-m", "forecast"]

#: Targets of the scale issue.
MAX_RATIO_OVER_LINEAR = 1.3
MAX_PEAK_GB = 8.0
MAX_PREDICT_13000_S = 600.0
MAX_REAL_PREDICT_S = 5.0
#: Targets of the start-up issue: the real-panel predict over the import floor, and the light commands.
MAX_PREDICT_OVER_FLOOR = 1.6
MAX_LIGHT_COMMAND_S = 0.5
FLOOR = [sys.executable, "-c", "import pandas, numpy, scipy.special"]
LIGHT_COMMANDS = {"forecast --help": ["--help"], "forecast models": ["models"], "forecast predict --help": ["predict", "--help"]}


def measure(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd``; its wall seconds, CPU seconds (process tree) and peak RSS (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc = psutil.Process(child.pid)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            rss = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            peak = max(peak, rss)
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - began
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The child and every descendant it waited for (the runs are sequential).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (exit {child.returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_mb": round(peak / 2**20, 1), "stdout": stdout.strip().splitlines()[-3:]}


def build_synthetic(n_units: int, workdir: Path) -> tuple[Path, Path]:
    raw = workdir / f"raw_{n_units}"
    panel = workdir / f"panel_{n_units}.parquet"
    subprocess.run([*FORECAST, "data", "synthetic", "--out", str(raw), "--units", str(n_units),
                    "--start", "2001-01", "--end", "2020-12"], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    subprocess.run([*FORECAST, "data", "build", "--events", str(raw / "ucdp_ged_demo.csv"),
                    "--covariates", str(raw / "covariates_demo.csv"), "--gazetteer", str(raw / "gazetteer.csv"),
                    "--keep-incomplete", "--out", str(panel)], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return panel, raw / "gazetteer.csv"


def origins(n: int, end: str = "2020-06") -> tuple[str, str]:
    import pandas as pd

    last = pd.Period(end, freq="M")
    return str(last - (n - 1)), str(last)


def run_size(n_units: int, workdir: Path, n_origins: int, models: list[str], predict_model: str = "default") -> dict:
    panel, gazetteer = build_synthetic(n_units, workdir)
    common = ["--panel", str(panel), "--gazetteer", str(gazetteer)]
    out: dict = {"units": n_units, "steps": {}}
    print(f"{n_units:,} units: predict --model {predict_model} ...", flush=True)
    out["steps"]["predict_default"] = measure(
        [*FORECAST, "predict", *common, "--model", predict_model, "--horizon", "6",
         "--out", str(workdir / f"forecast_{n_units}.csv")], ROOT)
    _show(f"predict {predict_model}", out["steps"]["predict_default"])
    start, end = origins(n_origins)
    for model in models:
        step = measure([*FORECAST, "backtest", *common, "--models", model, "--start", start, "--end", end,
                        "--horizon", "6", "--out", str(workdir / f"backtest_{n_units}_{model}")], ROOT)
        out["steps"][f"backtest_{model}"] = step
        _show(f"backtest {model}", step)
    steps = [s for k, s in out["steps"].items() if k.startswith("backtest_")]
    if steps:
        out["backtest_total"] = {"seconds": round(sum(s["seconds"] for s in steps), 2),
                                 "cpu_seconds": round(sum(s["cpu_seconds"] for s in steps), 2),
                                 "peak_mb": max(s["peak_mb"] for s in steps)}
        _show("backtest (all models)", out["backtest_total"])
    return out


def _show(label: str, step: dict) -> None:
    print(f"  {label:28s} {step['seconds']:9.1f} s wall {step['cpu_seconds']:9.1f} s CPU "
          f"{step['peak_mb']:9.0f} MB peak", flush=True)


def real_panel(workdir: Path) -> Path | None:
    """The 18-unit real UCDP panel built in ``workdir``, or None without ``../shared/data``."""
    events = SHARED / "ucdp_ged_iraq_hdx.csv"
    if not events.exists():
        return None
    panel = workdir / "ucdp.parquet"
    if not panel.exists():
        subprocess.run([*FORECAST, "data", "build", "--events", str(events), "--out", str(panel)], check=True,
                       cwd=ROOT, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return panel


def real_predict(workdir: Path) -> dict | None:
    panel = real_panel(workdir)
    if panel is None:
        return None
    return measure([*FORECAST, "predict", "--panel", str(panel), "--model", "default", "--horizon", "6",
                    "--out", str(workdir / "ucdp_forecast.csv")], ROOT)


def startup(workdir: Path, runs: int, real: bool = True) -> dict:
    """Median wall and CPU seconds of ``runs`` runs each of the floor, the light commands and (with
    ``real``) the real-panel predict, run in turn (round-robin), and their ratios to the floor."""
    panel = real_panel(workdir) if real else None
    commands = {"import pandas, numpy, scipy.special": FLOOR,
                **{label: [*FORECAST, *args] for label, args in LIGHT_COMMANDS.items()}}
    if panel is not None:
        commands["forecast predict --model default (18-unit UCDP)"] = [
            *FORECAST, "predict", "--panel", str(panel), "--model", "default", "--out", str(workdir / "startup.csv")]
    times: dict[str, list[dict]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            times[label].append(measure(cmd, ROOT))
    out = {label: {"seconds": round(statistics.median(t["seconds"] for t in ts), 3),
                   "cpu_seconds": round(statistics.median(t["cpu_seconds"] for t in ts), 3), "runs": runs}
           for label, ts in times.items()}
    floor = out["import pandas, numpy, scipy.special"]
    for label, row in out.items():
        # Wall time is what a user waits; on a loaded machine it is mostly waiting for a core,
        # so the CPU-time ratio is printed too.
        row["over_floor"] = round(row["seconds"] / max(floor["seconds"], 1e-9), 2)
        row["cpu_over_floor"] = round(row["cpu_seconds"] / max(floor["cpu_seconds"], 1e-9), 2)
        print(f"  {label:50s} {row['seconds']:6.2f} s wall {row['cpu_seconds']:6.2f} s CPU (median of {runs}), "
              f"x{row['over_floor']:g} the floor's wall, x{row['cpu_over_floor']:g} its CPU", flush=True)
    return out


def ratios(results: list[dict]) -> list[dict]:
    """Per step, time (wall and CPU) ratio between consecutive sizes over the ratio of units."""
    rows = []
    for small, large in zip(results, results[1:]):
        units = large["units"] / small["units"]
        for key in large["steps"]:
            a, b = small["steps"][key], large["steps"][key]
            rows.append({"step": key, "from": small["units"], "to": large["units"], "units_ratio": round(units, 2),
                         "time_ratio": round(b["seconds"] / max(a["seconds"], 1e-9), 2),
                         "cpu_ratio": round(b["cpu_seconds"] / max(a["cpu_seconds"], 1e-9), 2),
                         "within_target": b["cpu_seconds"] / max(a["cpu_seconds"], 1e-9)
                         <= MAX_RATIO_OVER_LINEAR * units})
    return rows


def main(argv: list[str] | None = None) -> int:
    from forecast.catalog import BENCHMARKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated numbers of units")
    parser.add_argument("--origins", type=int, default=24, help="backtest origins (default 24)")
    parser.add_argument("--models", default=",".join([*BENCHMARKS, "nb_glm", "hgb"]),
                        help="models backtested, one process each (default: the benchmarks, nb_glm, hgb; "
                             "'none' for the predict alone)")
    parser.add_argument("--startup-runs", type=int, default=5,
                        help="runs of each start-up timing, the median is kept (default 5; 0 skips them)")
    parser.add_argument("--predict-model", default="default", help="model of the predict step (default: default)")
    parser.add_argument("--no-real", action="store_true", help="skip the 18-unit real-panel predict")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB)", flush=True)
    models = [m for m in args.models.split(",") if m.strip() and m.strip() != "none"]
    payload: dict = {"load_average_at_start": [round(x, 2) for x in load], "cores": os.cpu_count(),
                     "origins": args.origins, "models": models, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.startup_runs > 0:
            print("start-up of the commands people wait for:", flush=True)
            payload["startup"] = startup(work, args.startup_runs, real=not args.no_real)
        if not args.no_real:
            real = real_predict(work)
            payload["real_predict"] = real
            if real is None:
                print(f"skipping the real-panel predict: {SHARED} is absent")
            else:
                _show("18-unit real UCDP predict", real)
        for n in sizes:
            payload["sizes"].append(run_size(n, work, args.origins, models, args.predict_model))
    payload["ratios"] = ratios(payload["sizes"])
    print("time ratios between sizes (target: CPU ratio <= 1.3 x the units ratio)")
    for row in payload["ratios"]:
        print(f"  {row['step']:24s} {row['from']:>6,} -> {row['to']:>6,} units (x{row['units_ratio']:g}): "
              f"wall x{row['time_ratio']:g}, CPU x{row['cpu_ratio']:g} {'ok' if row['within_target'] else 'OVER'}")
    checks = {}
    for size in payload["sizes"]:
        if size["units"] == 13000:
            peak = max(s["peak_mb"] for s in size["steps"].values()) / 1024
            checks["peak_gb_at_13000"] = (round(peak, 2), peak <= MAX_PEAK_GB)
            wall = size["steps"]["predict_default"]["seconds"]
            checks["predict_13000_seconds"] = (wall, wall <= MAX_PREDICT_13000_S)
    if payload.get("real_predict"):
        wall = payload["real_predict"]["seconds"]
        checks["real_predict_seconds"] = (wall, wall <= MAX_REAL_PREDICT_S)
    for label, row in payload.get("startup", {}).items():
        if label.startswith("forecast predict --model default"):
            checks["real_predict_over_import_floor"] = (row["over_floor"], row["over_floor"] <= MAX_PREDICT_OVER_FLOOR)
            checks["real_predict_cpu_over_import_floor_cpu"] = (row["cpu_over_floor"],
                                                                row["cpu_over_floor"] <= MAX_PREDICT_OVER_FLOOR)
        elif label in LIGHT_COMMANDS:
            checks[f"{label} seconds"] = (row["seconds"], row["seconds"] < MAX_LIGHT_COMMAND_S)
    payload["checks"] = {k: {"value": v, "ok": ok} for k, (v, ok) in checks.items()}
    for key, (value, ok) in checks.items():
        print(f"  {key}: {value} {'ok' if ok else 'OVER'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(payload, indent=1, default=str))
    tmp_out.replace(args.out)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
