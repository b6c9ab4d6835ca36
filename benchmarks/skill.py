"""Forecast skill on the real panels: the default model against the field's benchmarks.

Run from the repository root, with ``../shared/data`` beside it::

    .venv/bin/python benchmarks/skill.py                    # both sources, both targets
    .venv/bin/python benchmarks/skill.py --sources ucdp --targets incidents --quick

For each real source x target x window x horizon it prints, from rolling-origin backtests on
the training parts of ``../shared/data`` only (UCDP GED up to 2016-12, IBC up to 2010-01):

ratio
    CRPS of the default model (:data:`forecast.catalog.DEFAULT_MODEL`) over the CRPS of the
    best of the field's benchmarks (:data:`forecast.catalog.BENCHMARKS`) at that horizon and
    in that window: below 1 is better than every benchmark. ``best`` names that benchmark.
cov50, cov90
    Share of actuals inside the default model's 50% (q25..q75) and 90% (q05..q95) intervals.
mean/actual
    The national total of the default model's ``mean`` over the national total recorded,
    summed over the window's origins: 1 is unbiased.
bss
    Brier skill score of the default model's escalation probability against climatology,
    ``1 - Brier(model) / Brier(climatology)``. Climatology is each unit's own historical
    escalation rate at that horizon, from the months before the origin only: the share of
    earlier origins t (with t + h <= origin) whose month t + h escalated. Above 0 is skill.

Windows. ``tune`` is the early window that settings may be chosen on; ``report`` is the later
window that was not looked at while choosing them, and is the one to quote. UCDP: tune
2009-01..2012-12, report 2013-01..2016-06. IBC: tune 2005-01..2007-12, report 2008-01..2009-07.
Origins every month (``--step``), horizons 1-6, the default refit policy.

Short histories (``--short 12,21``, report window, every third origin): each origin's history
is cut to its last N months before anything is fitted, as for a panel that starts N months
before the origin; benchmarks and default model see the same cut history.

Results go to ``benchmarks/results/skill.json``. The panels are built here from the event
files, without covariates (the default model then uses none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.gazetteer import load_gazetteer  # noqa: E402
from features.panel import assemble_panel  # noqa: E402
from features.sources import read_events  # noqa: E402
from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, make_model  # noqa: E402
from forecast.evaluation.backtest import BacktestDesign, run_backtest  # noqa: E402
from forecast.evaluation.escalation import threshold_table, wide_history  # noqa: E402
from forecast.evaluation.scores import add_references, brier, coverage_50, coverage_90, crps  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SOURCES = {
    "ucdp": {"events": "ucdp_ged_iraq_hdx.csv", "coverage_end": None,
             "windows": {"tune": ("2009-01", "2012-12"), "report": ("2013-01", "2016-06")}},
    "ibc": {"events": "ibc_iraq_events.csv", "coverage_end": "2010-01-31",
            "windows": {"tune": ("2005-01", "2007-12"), "report": ("2008-01", "2009-07")}},
}
TARGETS = ("incidents", "deaths")
HORIZON = 6


def real_panel(source: str) -> pd.DataFrame:
    spec = SOURCES[source]
    gaz = load_gazetteer()
    result = read_events(SHARED / spec["events"], gazetteer=gaz)
    end = pd.Timestamp(spec["coverage_end"]) if spec["coverage_end"] else None
    return assemble_panel([result], gaz, coverage_end=end).panel


#: Hyperparameters of the judged model (``--param key=value``), by model name.
PARAMS: dict[str, dict] = {}


def factories(models) -> dict:
    return {m: (lambda m=m: make_model(m, **PARAMS.get(m, {}))) for m in models}


def parse_param(text: str) -> tuple[str, object]:
    """``power=4`` -> ("power", 4); values are JSON (numbers, "text", [lists]) or else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"skill.py: --param {text!r}: expected key=value")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value.strip()


def climatology(panel: pd.DataFrame, target: str, frame: pd.DataFrame) -> np.ndarray:
    """Each row's unit's historical escalation rate at its horizon, from months <= its origin."""
    wide = wide_history(panel, target)
    thr = threshold_table(wide)  # threshold at each month taken as origin, from months <= it
    y = wide.to_numpy(dtype=float)
    t = thr.to_numpy(dtype=float)
    months = wide.index
    out = np.full(len(frame), np.nan)
    rates = {}
    for h in range(1, HORIZON + 1):
        hit = np.full_like(y, np.nan)
        hit[:-h] = (y[h:] > t[:-h]).astype(float)  # origin t escalates at t + h
        # Known at origin o: hits of origins t <= o - h (their month t + h <= o).
        known = pd.DataFrame(hit, index=months, columns=wide.columns).shift(h).expanding(min_periods=1).mean()
        rates[h] = known
    rows = months.get_indexer(pd.PeriodIndex(frame["origin"], freq="M"))
    cols = wide.columns.get_indexer(frame["unit"])
    for h, known in rates.items():
        sel = (frame["horizon"].to_numpy() == h)
        out[sel] = known.to_numpy()[rows[sel], cols[sel]]
    pooled = np.nanmean(out) if np.isfinite(out).any() else 0.0
    return np.where(np.isnan(out), pooled, out)


def summarise(bt: pd.DataFrame, panel: pd.DataFrame, target: str, model: str = DEFAULT_MODEL) -> list[dict]:
    bt = add_references(bt.loc[bt["y"].notna()], panel, target=target)
    bt = bt.assign(crps=crps(bt), cov50=coverage_50(bt), cov90=coverage_90(bt), brier=brier(bt))
    default = bt[bt["model"] == model].copy()
    p_clim = climatology(panel, target, default)
    event = (default["y"].to_numpy() > default["threshold"].to_numpy()).astype(float)
    default["brier_clim"] = (p_clim - event) ** 2
    by_h = bt.groupby(["model", "horizon"])["crps"].mean().unstack("model")
    bench = by_h[[b for b in BENCHMARKS if b in by_h]]
    rows = []
    for h in [*range(1, HORIZON + 1), "all"]:
        d = default if h == "all" else default[default["horizon"] == h]
        if h == "all":
            model_crps = d["crps"].mean()
            bench_means = bt[bt["model"].isin(bench.columns)].groupby("model")["crps"].mean()
        else:
            model_crps = by_h.loc[h, model]
            bench_means = bench.loc[h]
        best = bench_means.idxmin()
        national = d.groupby(["origin", "month"])[["mean", "y"]].sum()
        rows.append({
            "horizon": h, "ratio": float(model_crps / bench_means[best]), "best": best,
            "crps": float(model_crps), "best_crps": float(bench_means[best]),
            "cov50": float(d["cov50"].mean()), "cov90": float(d["cov90"].mean()),
            "mean_over_actual": float(national["mean"].sum() / max(national["y"].sum(), 1e-9)),
            "bss": float(1 - d["brier"].mean() / max(d["brier_clim"].mean(), 1e-12)),
            "n": int(len(d)),
        })
    return rows


def full_history(panel, target, start, end, step, jobs, model=DEFAULT_MODEL) -> pd.DataFrame:
    design = BacktestDesign(start=pd.Period(start, "M"), end=pd.Period(end, "M"), step=step, horizon=HORIZON)
    return run_backtest(panel, factories([*BENCHMARKS, model]), design, target=target, covariates=[],
                        n_jobs=jobs, progress=False)


def short_history(panel, target, start, end, step, months, jobs, model=DEFAULT_MODEL) -> pd.DataFrame:
    """Each origin backtested on the panel cut to its last ``months`` months before the origin."""
    frames = []
    for origin in pd.period_range(start, end, freq="M")[::step]:
        cut = panel[panel["month"] > origin - months]
        design = BacktestDesign(start=origin, end=origin, horizon=HORIZON)
        frames.append(run_backtest(cut, factories([*BENCHMARKS, model]), design, target=target,
                                   covariates=[], n_jobs=jobs, progress=False))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="ucdp,ibc")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--windows", default="tune,report")
    parser.add_argument("--short", default="12,21", help="history cuts in months for the short variants ('' for none)")
    parser.add_argument("--step", type=int, default=1, help="months between origins (full histories)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model to judge (default: the default model)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter of the judged model (repeatable), e.g. --param power=4")
    parser.add_argument("--quick", action="store_true", help="every sixth origin, report window, no short variants")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "skill.json")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"skill.py: {SHARED} is missing: the real data must sit beside the repository", file=sys.stderr)
        return 2
    PARAMS[args.model] = dict(parse_param(p) for p in args.param)
    step = 6 if args.quick else args.step
    windows = ["report"] if args.quick else [w for w in args.windows.split(",") if w]
    shorts = [] if args.quick else [int(s) for s in args.short.split(",") if s]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = []
    header = f"{'source':6} {'target':9} {'window':10} {'h':>3} {'ratio':>6} {'best':15} {'cov50':>6} {'cov90':>6} {'mean/act':>8} {'bss':>7} {'n':>6}"
    for source in [s for s in args.sources.split(",") if s]:
        panel = real_panel(source)
        for target in [t for t in args.targets.split(",") if t]:
            runs = [(w, *SOURCES[source]["windows"][w], step, None) for w in windows]
            runs += [(f"short{m}", *SOURCES[source]["windows"]["report"], 3, m) for m in shorts]
            for window, start, end, every, cut in runs:
                began = time.perf_counter()
                bt = (full_history(panel, target, start, end, every, args.jobs, args.model) if cut is None
                      else short_history(panel, target, start, end, every, cut, args.jobs, args.model))
                rows = summarise(bt, panel, target, args.model)
                seconds = time.perf_counter() - began
                print(f"\n{args.model}{PARAMS[args.model] or ''}: {source} {target} {window} ({start}..{end}, every {every} month(s), {seconds:.0f} s)")
                print(header)
                for r in rows:
                    print(f"{source:6} {target:9} {window:10} {str(r['horizon']):>3} {r['ratio']:6.3f} {r['best']:15} "
                          f"{r['cov50']:6.3f} {r['cov90']:6.3f} {r['mean_over_actual']:8.3f} {r['bss']:7.3f} {r['n']:6d}")
                    results.append({"model": args.model, "params": PARAMS[args.model], "source": source, "target": target, "window": window, "start": start, "end": end,
                                    "step": every, "history_months": cut, "seconds": round(seconds, 1), **r})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
