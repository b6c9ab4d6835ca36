"""Report scale benchmark: ``forecast report`` against ``forecast predict`` from 1,000 to 10,000 units.

Run from the repository root::

    .venv/bin/python benchmarks/report_scale.py                    # 1,000, 3,000 and 10,000 units
    .venv/bin/python benchmarks/report_scale.py --sizes 200,600    # a quicker look

For every size N it makes a synthetic panel (``forecast data synthetic --units N``, 2001-01..
2020-12, then ``forecast data build``; not timed: :func:`scale.build_synthetic`), then runs,
each in a fresh process whose wall time, CPU time (process tree) and peak resident memory
(summed over the process tree) are measured with :func:`scale.measure`:

1. ``forecast predict --model default --horizon 6`` (the reference);
2. ``forecast report --model default --horizon 6`` (its default 24-origin backtest against the
   benchmarks, capped at :data:`forecast.benchmarking.MAX_UNIT_ORIGINS` unit-origins).

It prints, per size, the report's time and memory against the predict's (the target: peak
memory at most 2 x the predict's), the time ratio between consecutive sizes against the ratio
of units (the target: at most linear), and whether the report drew summaries (above
:data:`forecast.report.view.SUMMARY_ABOVE` units). The load average at the start is printed
first: the machine is shared. Figures go to ``benchmarks/results/report_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import FORECAST, ROOT, build_synthetic, measure  # noqa: E402  (the sibling script's timer)

RESULTS = ROOT / "benchmarks" / "results" / "report_scale.json"
SIZES = (1000, 3000, 10000)
MAX_MEMORY_OVER_PREDICT = 2.0


def run_size(units: int, work: Path) -> dict:
    panel, gazetteer = build_synthetic(units, work)
    common = ["--panel", str(panel), "--gazetteer", str(gazetteer), "--model", "default", "--horizon", "6"]
    predict = measure(FORECAST + ["predict", *common, "--out", str(work / f"predict_{units}.csv")], ROOT)
    report_path = work / f"reports_{units}" / "2021-01.html"
    report = measure(FORECAST + ["report", *common, "--out", str(report_path)], ROOT)
    page = report_path.read_text(encoding="utf-8")
    keep = ("seconds", "cpu_seconds", "peak_mb")
    return {"units": units, "predict": {k: predict[k] for k in keep}, "report": {k: report[k] for k in keep},
            "memory_over_predict": report["peak_mb"] / predict["peak_mb"],
            "summary_mode": 'id="summary-note"' in page, "html_mb": len(page.encode("utf-8")) / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated unit counts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file for the figures")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="report-scale-") as tmp:
        for units in sizes:
            row = run_size(units, Path(tmp))
            rows.append(row)
            p, r = row["predict"], row["report"]
            print(f"{units:>6,} units: predict {p['seconds']:7.1f} s wall, {p['cpu_seconds']:7.1f} s CPU, "
                  f"{p['peak_mb']:7,.0f} MB | report {r['seconds']:7.1f} s wall, {r['cpu_seconds']:7.1f} s CPU, "
                  f"{r['peak_mb']:7,.0f} MB"
                  f" ({row['memory_over_predict']:.2f} x the predict's memory; summaries: "
                  f"{'yes' if row['summary_mode'] else 'no'}; page {row['html_mb']:.1f} MB)", flush=True)
    ok = True
    for a, b in zip(rows, rows[1:]):
        units_ratio = b["units"] / a["units"]
        cpu_ratio = b["report"]["cpu_seconds"] / a["report"]["cpu_seconds"]
        print(f"{a['units']:,} -> {b['units']:,} units ({units_ratio:.1f} x): report CPU {cpu_ratio:.2f} x "
              f"({cpu_ratio / units_ratio:.2f} x linear)")
        ok &= cpu_ratio <= units_ratio * 1.3
    worst = max(r["memory_over_predict"] for r in rows)
    print(f"report memory at most {worst:.2f} x the predict's (target {MAX_MEMORY_OVER_PREDICT:g} x)")
    ok &= worst <= MAX_MEMORY_OVER_PREDICT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=2) + "\n",
                        encoding="utf-8")
    print(f"figures: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
