"""Forecast skill on four real panels, window by window: a model against the field's benchmarks.

Run from the repository root, with ``../shared/data`` beside it::

    .venv/bin/python benchmarks/skill.py                           # the default model, every panel
    .venv/bin/python benchmarks/skill.py --candidate ses=ses_negbin --candidate ens=ensemble
    .venv/bin/python benchmarks/skill.py --sources ucdp --targets incidents --quick

Panels (built here from the event files in ``../shared/data``, no covariates):

=========== ===================================================== ======== =====================
panel       events                                                units    months
=========== ===================================================== ======== =====================
ucdp        UCDP GED Iraq                                         18       1990-01 .. 2016-12
ibc         Iraq Body Count (coverage end 2010-01-31)             18       2003-01 .. 2010-01
syria       UCDP GED Syria, with ``data/reference/syria_...csv``  14       2016-01 .. 2018-11
geocausal   geocausal insurgent attacks (``--actor insurgents``)  18       2007-03 .. 2008-06
=========== ===================================================== ======== =====================

Both targets where the source has them: the geocausal file has no deaths, so that panel is
scored on incidents only.

Windows. Each panel's history is cut into yearly windows of origins: every month of the year
is an origin, horizons 1..6, scored on the target months the panel holds; every model is
fitted afresh at every origin, as ``forecast predict`` would fit it. UCDP: 2004..2016
(before 2003 the extract has 2-87 events a year; 2016 ends at the origin 2016-11). IBC:
2004..2009 (2003 is the invasion). The short panels take what fits: Syria's origins start
2016-07 (6 months of history; seasonal_naive, which needs 12, is left out of the benchmarks
where it cannot be fitted), so its windows are 2016-07..2016-12, 2017 and 2018-01..2018-10;
geocausal has 16 months and one window, 2007-08..2008-05 (5 to 14 months of history).

Per panel x target x window x candidate it prints and writes (``benchmarks/results/skill.json``):

ratio [lo, hi]
    CRPS of the candidate over the CRPS of the best of the field's benchmarks
    (:data:`forecast.catalog.BENCHMARKS`, the best chosen in that window over all horizons;
    ``best`` names it), with a 90% interval from a circular block bootstrap over the window's
    origin months (:func:`block_bootstrap`; the best benchmark is chosen again in each
    replicate). Blocks are 6 origins long: forecasts from origins less than 6 months apart
    share target months at horizons 1..6, so their errors are not independent, and a block
    keeps them together. A window of fewer than 12 origins gets blocks of half its origins
    (two blocks a replicate at least), which understates the dependence there. Per horizon
    in the JSON.
cov50, cov90
    Share of actuals inside ``[q25, q75]`` and ``[q05, q95]`` (closed intervals).
pit50, pit90, pit
    The same coverages read from the non-randomised PIT (:mod:`forecast.evaluation.calibration`),
    which does not count a month of 0 as covered by an interval that is the point 0, and the
    PIT's distance from uniform (per horizon in the JSON).
mean/act
    National total of the forecast means over the national total recorded.
bss
    Brier skill of the escalation probability against climatology: each unit's own historical
    escalation rate at that horizon from months before the origin (:func:`climatology`).

Then, per candidate, the worst window and the mean over windows (every panel and target),
its CRPS over the 12-month bootstrap's per source and target (all windows together: a
default that falls behind the bootstrap on a source is a regression), and a
leave-one-source-out summary: for each panel, the candidate with the best worst window
on the other three panels (ties: the lower mean) and its figures on the one left out. The
choice is by the worst window, not the mean.

``--candidate LABEL=MODEL`` (or ``LABEL=MODEL:{"json": "params"}``, repeatable) names the
settings to judge; without one, the default model (:data:`forecast.catalog.DEFAULT_MODEL`).
``--other-target LABEL`` gives that candidate the other target as a covariate column (the
level models ignore it; ``global_boost`` uses its lags). ``--cache DIR``
keeps each backtest in DIR, keyed by panel, target, model, parameters and
origins, and reads it back on the next run: delete DIR when a model's code changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.gazetteer import load_gazetteer  # noqa: E402
from features.panel import assemble_panel  # noqa: E402
from features.sources import EventFilters, read_events  # noqa: E402
from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, make_model  # noqa: E402
from forecast.errors import ModelError  # noqa: E402
from forecast.evaluation.backtest import BacktestDesign, run_backtest  # noqa: E402
from forecast.evaluation.calibration import pit_coverage, pit_distance  # noqa: E402
from forecast.evaluation.escalation import threshold_table, wide_history  # noqa: E402
from forecast.evaluation.scores import add_references, brier, coverage_50, coverage_90, crps  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HORIZON = 6
#: Origins per bootstrap block (see the module docstring), replicates, and the interval.
BLOCK = 6
REPLICATES = 2000
INTERVAL = (0.05, 0.95)


@dataclass(frozen=True)
class Source:
    events: str
    windows: tuple[tuple[str, str, str], ...]
    targets: tuple[str, ...] = ("incidents", "deaths")
    gazetteer: str | None = None
    coverage_end: str | None = None
    actor: str | None = None
    months: tuple[str, str] | None = None


def _years(first: int, last: int, last_origin: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((str(y), f"{y}-01", f"{y}-12" if y < last else last_origin) for y in range(first, last + 1))


SOURCES = {
    "ucdp": Source("ucdp_ged_iraq_hdx.csv", _years(2004, 2016, "2016-11")),
    "ibc": Source("ibc_iraq_events.csv", _years(2004, 2009, "2009-12"), coverage_end="2010-01-31"),
    "syria": Source("ucdp_ged_syria_2016_2018.csv",
                    (("2016H2", "2016-07", "2016-12"), ("2017", "2017-01", "2017-12"), ("2018", "2018-01", "2018-10")),
                    gazetteer="data/reference/syria_governorates.csv"),
    "geocausal": Source("iraq_geocausal_airstrikes_insurgencies_events.csv",
                        (("2007-08..2008-05", "2007-08", "2008-05"),), targets=("incidents",),
                        actor="insurgents", months=("2007-03", "2008-06")),
}


def real_panel(source: str) -> pd.DataFrame:
    spec = SOURCES[source]
    gaz = load_gazetteer(ROOT / spec.gazetteer if spec.gazetteer else None)
    filters = EventFilters(actor=spec.actor) if spec.actor else None
    result = read_events(SHARED / spec.events, gazetteer=gaz, filters=filters)
    end = pd.Timestamp(spec.coverage_end) if spec.coverage_end else None
    first, last = (pd.Period(m, "M") for m in spec.months) if spec.months else (None, None)
    return assemble_panel([result], gaz, coverage_end=end, start=first, end=last).panel


def parse_candidate(text: str) -> tuple[str, str, dict]:
    """``LABEL=MODEL`` or ``LABEL=MODEL:{json params}`` -> (label, model, params)."""
    label, sep, rest = text.partition("=")
    if not sep or not label.strip() or not rest.strip():
        raise SystemExit(f"skill.py: --candidate {text!r}: expected LABEL=MODEL or LABEL=MODEL:{{json}}")
    model, colon, params = rest.partition(":")
    try:
        parsed = json.loads(params) if colon else {}
    except json.JSONDecodeError as exc:
        raise SystemExit(f"skill.py: --candidate {text!r}: parameters are not JSON ({exc})") from None
    return label.strip(), model.strip(), parsed


def climatology(panel: pd.DataFrame, target: str, frame: pd.DataFrame) -> np.ndarray:
    """Each row's unit's historical escalation rate at its horizon, from months <= its origin."""
    wide = wide_history(panel, target)
    thr = threshold_table(wide)  # threshold at each month taken as origin, from months <= it
    y = wide.to_numpy(dtype=float)
    t = thr.to_numpy(dtype=float)
    months = wide.index
    out = np.full(len(frame), np.nan)
    rows = months.get_indexer(pd.PeriodIndex(frame["origin"], freq="M"))
    cols = wide.columns.get_indexer(frame["unit"])
    for h in range(1, HORIZON + 1):
        hit = np.full_like(y, np.nan)
        hit[:-h] = (y[h:] > t[:-h]).astype(float)  # origin t escalates at t + h
        # Known at origin o: hits of origins t <= o - h (their month t + h <= o).
        known = pd.DataFrame(hit, index=months, columns=wide.columns).shift(h).expanding(min_periods=1).mean()
        sel = frame["horizon"].to_numpy() == h
        out[sel] = known.to_numpy()[rows[sel], cols[sel]]
    pooled = np.nanmean(out) if np.isfinite(out).any() else 0.0
    return np.where(np.isnan(out), pooled, out)


def block_bootstrap(model: np.ndarray, benchmarks: np.ndarray, block: int = BLOCK, replicates: int = REPLICATES,
                    seed: int = 0) -> tuple[float, float]:
    """90% interval of ``sum(model) / min_b sum(benchmarks[b])`` over resampled origins.

    ``model`` holds one CRPS sum per origin (n,), ``benchmarks`` one per benchmark and origin
    (n_benchmarks, n). Circular blocks of ``block`` consecutive origins are drawn with
    replacement until n origins are drawn (Politis and Romano 1992); the best benchmark is
    taken again in each replicate.
    """
    n = len(model)
    block = max(1, min(int(block), -(-n // 2)))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(replicates, -(-n // block)))
    index = ((starts[:, :, None] + np.arange(block)[None, None, :]) % n).reshape(replicates, -1)[:, :n]
    ratios = model[index].sum(axis=1) / benchmarks[:, index].sum(axis=2).min(axis=0)
    low, high = np.quantile(ratios, INTERVAL)
    return float(low), float(high)


def score_rows(bt: pd.DataFrame, panel: pd.DataFrame, target: str) -> pd.DataFrame:
    bt = add_references(bt.loc[bt["y"].notna()].reset_index(drop=True), panel, target=target)
    return bt.assign(crps=crps(bt), cov50=coverage_50(bt), cov90=coverage_90(bt), brier=brier(bt))


def summarise(scored: dict[str, pd.DataFrame], label: str, panel: pd.DataFrame, target: str) -> dict:
    """Figures of candidate ``label`` in one window; ``scored`` holds every model's scored rows."""
    keys = ["unit", "origin", "horizon"]
    d = scored[label]
    benches = [b for b in BENCHMARKS if b in scored]
    # Only rows every model forecast (a benchmark that could not be fitted is not in `scored`).
    common = d[keys]
    for b in benches:
        common = common.merge(scored[b][keys], on=keys)
    sums = {}
    for name in [label, *benches]:
        rows = scored[name].merge(common, on=keys)
        sums[name] = rows.groupby(["origin", "horizon"])["crps"].agg(["sum", "count"])
    d = d.merge(common, on=keys)
    per_origin = {m: s["sum"].groupby(level="origin").sum() for m, s in sums.items()}
    totals = {b: per_origin[b].sum() for b in benches}
    best = min(totals, key=totals.get)
    low, high = block_bootstrap(per_origin[label].to_numpy(), np.stack([per_origin[b].to_numpy() for b in benches]))
    p_clim = climatology(panel, target, d)
    event = (d["y"].to_numpy() > d["threshold"].to_numpy()).astype(float)
    national = d.groupby(["origin", "month"])[["mean", "y"]].sum()
    out = {
        "ratio": float(per_origin[label].sum() / totals[best]), "lo": low, "hi": high, "best": best,
        "crps": float(d["crps"].mean()), "cov50": float(d["cov50"].mean()), "cov90": float(d["cov90"].mean()),
        "pit50": pit_coverage(d, 0.5), "pit90": pit_coverage(d, 0.9), "pit": pit_distance(d),
        "mean_over_actual": float(national["mean"].sum() / max(national["y"].sum(), 1e-9)),
        "bss": float(1 - d["brier"].mean() / max(((p_clim - event) ** 2).mean(), 1e-12)),
        "origins": int(d["origin"].nunique()), "n": int(len(d)), "by_horizon": {},
        "crps_sum": float(per_origin[label].sum()), "benchmark_sums": {b: float(v) for b, v in totals.items()},
    }
    for h in range(1, HORIZON + 1):
        at = {m: s.xs(h, level="horizon")["sum"].sum() for m, s in sums.items()}
        best_h = min(benches, key=at.get)
        dh = d[d["horizon"] == h]
        out["by_horizon"][h] = {"ratio": float(at[label] / at[best_h]), "best": best_h, "pit": pit_distance(dh),
                                "pit90": pit_coverage(dh, 0.9), "cov90": float(dh["cov90"].mean())}
    return out


def backtest(panel, target, model, params, start, end, step, jobs, cache: Path | None,
             covariates: tuple[str, ...] = ()) -> tuple[pd.DataFrame, float]:
    """One model's rolling-origin backtest (origins start..end every ``step``), and its seconds.

    Every model is fitted afresh at every origin (``refit_every=1``), as ``forecast predict``
    fits it for each forecast: a combination's weights then move with every origin, as they
    do in use (with the backtest's default of a refit every 12 origins they would be kept for
    a year).
    """
    design = BacktestDesign(start=pd.Period(start, "M"), end=pd.Period(end, "M"), step=step, horizon=HORIZON,
                            refit_every=1)
    path = None
    if cache is not None:
        key = json.dumps([panel.attrs.get("skill_source"), target, model, params, start, end, step, "refit1",
                          *covariates], sort_keys=True)
        path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.pkl"
        if path.exists():
            frame = pd.read_pickle(path)
            return frame, float(frame.attrs.get("seconds", 0.0))
    began = time.perf_counter()
    frame = run_backtest(panel, {model: lambda: make_model(model, **params)}, design, target=target,
                         covariates=list(covariates), n_jobs=jobs, progress=False)
    frame.attrs = {"seconds": time.perf_counter() - began}
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        frame.to_pickle(path)
    return frame, float(frame.attrs["seconds"])


def benchmark_runs(panel, target, windows, step, jobs, cache) -> dict[str, pd.DataFrame]:
    """Every benchmark over every window; one that cannot be fitted at a window's origins
    (seasonal_naive on less than 12 months) is left out of that window."""
    out: dict[str, list[pd.DataFrame]] = {}
    for name in BENCHMARKS:
        try:
            out[name] = [backtest(panel, target, name, {}, windows[0][1], windows[-1][2], step, jobs, cache)[0]]
        except ModelError:
            parts = []
            for _, start, end in windows:
                try:
                    parts.append(backtest(panel, target, name, {}, start, end, step, jobs, cache)[0])
                except ModelError:
                    print(f"  {name}: cannot be fitted at origins {start}..{end} (left out there)")
            out[name] = parts
    return {name: pd.concat(parts, ignore_index=True) for name, parts in out.items() if parts}


def choose(rows: list[dict], labels: list[str], sources: list[str]) -> str:
    """The candidate with the best worst window on ``sources`` (ties: the lower mean)."""
    def key(label):
        ratios = [r["ratio"] for r in rows if r["candidate"] == label and r["source"] in sources]
        return (max(ratios), float(np.mean(ratios))) if ratios else (np.inf, np.inf)
    return min(labels, key=key)


def overview(rows: list[dict], labels: list[str], sources: list[str]) -> dict:
    summary = {}
    for label in labels:
        mine = [r for r in rows if r["candidate"] == label]
        if not mine:
            continue
        worst = max(mine, key=lambda r: r["ratio"])
        summary[label] = {"worst": worst["ratio"], "worst_window": f"{worst['source']} {worst['target']} {worst['window']}",
                          "worst_interval": [worst["lo"], worst["hi"]], "mean": float(np.mean([r["ratio"] for r in mine])),
                          "windows": len(mine), "above_095": sum(r["ratio"] > 0.95 for r in mine),
                          "cov90_range": [min(r["cov90"] for r in mine), max(r["cov90"] for r in mine)],
                          "seconds": float(sum(r["seconds"] for r in mine))}
        print(f"{label:14} worst {worst['ratio']:.3f} [{worst['lo']:.3f}, {worst['hi']:.3f}] ({summary[label]['worst_window']}), "
              f"mean {summary[label]['mean']:.3f} over {len(mine)} windows, {summary[label]['above_095']} above 0.95, "
              f"backtests {summary[label]['seconds']:.0f} s")
    print("\nagainst the 12-month bootstrap (hist_bootstrap), CRPS summed over each source's windows:")
    against = {}
    for label in labels:
        mine = [r for r in rows if r["candidate"] == label and "hist_bootstrap" in r["benchmark_sums"]]
        keys = sorted({(r["source"], r["target"]) for r in mine})
        against[label] = {f"{s} {t}": sum(r["crps_sum"] for r in mine if (r["source"], r["target"]) == (s, t))
                          / sum(r["benchmark_sums"]["hist_bootstrap"] for r in mine if (r["source"], r["target"]) == (s, t))
                          for s, t in keys}
        print(f"{label:14} " + "  ".join(f"{k} {v:.3f}" for k, v in against[label].items()))
    loso = []
    if len(sources) > 1 and len(labels) > 1:
        print("\nleave one source out (chosen by the worst window on the other sources):")
        for held in sources:
            picked = choose(rows, labels, [s for s in sources if s != held])
            mine = [r for r in rows if r["candidate"] == picked and r["source"] == held]
            entry = {"held_out": held, "chosen": picked, "worst": max(r["ratio"] for r in mine),
                     "mean": float(np.mean([r["ratio"] for r in mine])), "windows": len(mine)}
            loso.append(entry)
            print(f"  {held:10} chosen on the others: {picked:14} on {held}: worst {entry['worst']:.3f}, mean {entry['mean']:.3f}")
    return {"candidates": summary, "against_bootstrap": against, "leave_one_source_out": loso,
            "chosen_by_worst_window": choose(rows, labels, sources) if labels else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--targets", default="incidents,deaths")
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL=MODEL[:JSON]",
                        help="a setting to judge (repeatable); default: the default model")
    parser.add_argument("--step", type=int, default=1, help="months between origins")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the last window of each panel, every third origin")
    parser.add_argument("--cache", type=Path, default=None, help="keep and reuse backtests in this folder")
    parser.add_argument("--other-target", action="append", default=[], metavar="LABEL",
                        help="give candidate LABEL the other target (deaths for incidents and back) as a covariate "
                             "(repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "skill.json")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"skill.py: {SHARED} is missing: the real data must sit beside the repository", file=sys.stderr)
        return 2
    candidates = [parse_candidate(c) for c in args.candidate] or [(DEFAULT_MODEL, DEFAULT_MODEL, {})]
    labels = [c[0] for c in candidates]
    step = 3 if args.quick else args.step
    sources = [s for s in args.sources.split(",") if s]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for source in sources:
        panel = real_panel(source)
        panel.attrs["skill_source"] = source
        for target in [t for t in args.targets.split(",") if t]:
            if target not in SOURCES[source].targets:
                print(f"\n{source}: has no {target} (skipped)")
                continue
            windows = SOURCES[source].windows[-1:] if args.quick else SOURCES[source].windows
            print(f"\n{source} {target}: {panel['unit'].nunique()} units, origins {windows[0][1]}..{windows[-1][2]} every {step}")
            runs = benchmark_runs(panel, target, windows, step, args.jobs, args.cache)
            judged = {}
            other = tuple(t for t in ("incidents", "deaths") if t != target and t in SOURCES[source].targets)
            for label, model, params in candidates:
                judged[label] = backtest(panel, target, model, params, windows[0][1], windows[-1][2], step, args.jobs,
                                         args.cache, other if label in args.other_target else ())
            print(f"{'candidate':14} {'window':16} {'ratio':>6} {'90% interval':>15} {'best':15} {'cov50':>5} {'cov90':>5} "
                  f"{'pit50':>5} {'pit90':>5} {'pit':>5} {'m/act':>5} {'bss':>6}")
            for name, start, end in windows:
                inside = {m: bt[bt["origin"].between(pd.Period(start, "M"), pd.Period(end, "M"))] for m, bt in runs.items()}
                scored = {m: score_rows(bt, panel, target) for m, bt in inside.items() if len(bt)}
                for label, model, params in candidates:
                    bt, seconds = judged[label]
                    bt = bt[bt["origin"].between(pd.Period(start, "M"), pd.Period(end, "M"))]
                    scored[label] = score_rows(bt.assign(model=label), panel, target)
                    r = summarise(scored, label, panel, target)
                    share = seconds * r["origins"] / max(judged[label][0]["origin"].nunique(), 1)
                    rows.append({"candidate": label, "model": model, "params": params, "source": source, "target": target,
                                 "window": name, "start": start, "end": end, "step": step, "seconds": round(share, 1), **r})
                    print(f"{label:14} {name:16} {r['ratio']:6.3f} [{r['lo']:.3f}, {r['hi']:.3f}] {r['best']:15} "
                          f"{r['cov50']:5.2f} {r['cov90']:5.2f} {r['pit50']:5.2f} {r['pit90']:5.2f} {r['pit']:5.3f} "
                          f"{r['mean_over_actual']:5.2f} {r['bss']:6.3f}")
    print("\nsummary over every window (worst window first: its 90% interval):")
    summary = overview(rows, labels, sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"windows": rows, **summary}, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
