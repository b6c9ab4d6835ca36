"""What each context family is worth: a model with and without it, window by window, on real panels.

Run from the repository root, with ``../shared/data`` beside it::

    .venv/bin/python benchmarks/context.py                                   # nb_glmx, every panel
    .venv/bin/python benchmarks/context.py --model nb_glm                    # neighbours only
    .venv/bin/python benchmarks/context.py --model global_boost --step 3     # the global model
    .venv/bin/python benchmarks/context.py --sources ucdp --quick

It follows the protocol of ``benchmarks/skill.py`` (its windows, its scoring, its block
bootstrap): every model is fitted afresh at every origin, horizons 1..6, CRPS from the 7
quantiles, each window's origins resampled in circular blocks of 6.

Panels, built here with ``features.panel.build_panel`` from the files in ``../shared/data``:

============ ========================================================= ==========================
panel        events (target) and context                               windows of origins
============ ========================================================= ==========================
ucdp         UCDP GED Iraq; type split, operations tempo               2004 .. 2016 (yearly)
syria        UCDP GED Syria; type split, operations tempo              2016H2, 2017, 2018
iraq_syria   both UCDP files, 32 units; type split, operations tempo   2016H2, 2017, 2018
geocausal    geocausal insurgent attacks; coalition airstrikes          2007-08 .. 2008-05
============ ========================================================= ==========================

Variants of the model, one family changed at a time against ``counts`` (the unit's own counts
and its neighbours, no context columns):

``+type_split``
    the counts of state-based, non-state and one-sided violence as covariates;
``+ops_tempo``
    the operations tempo (events with a state or the coalition as side A; on geocausal, the
    coalition's airstrikes) as a covariate;
``-neighbours``
    no neighbours at all (every unit's neighbour list emptied);
``-cross_border``
    (two-country panel only) the neighbours across the national border removed, the others kept.

A model without covariates (``nb_glm``) is judged on the neighbour variants only. A window
whose origins have too little history for the model (``nb_glmx`` needs 30 months) is named
and left out.

Per panel x target x window x variant it prints the variant's CRPS over the best benchmark's
(as skill.py does) and over the ``counts`` variant's, each with a 90% block-bootstrap interval
over the window's origins; then, per variant, the worst window and the mean. Figures go to
``benchmarks/results/context_<model>.json``; ``docs/models.md`` quotes them.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import skill  # noqa: E402  (benchmarks/skill.py: windows, scoring, bootstrap)

from features.context import ContextSeries  # noqa: E402
from features.graph import UnitGraph, unit_graph, with_graph  # noqa: E402
from features.panel import EventFile, PanelSpec, build_panel  # noqa: E402
from features.sources import EventFilters  # noqa: E402
from forecast.catalog import BENCHMARKS, make_model  # noqa: E402
from forecast.errors import ModelError  # noqa: E402

ROOT = skill.ROOT
SHARED = skill.SHARED
TYPE_SPLIT = ("incidents_state_based", "incidents_non_state", "incidents_one_sided")
TWO_COUNTRY_WINDOWS = (("2016H2", "2016-07", "2016-11"), ("2017", "2017-01", "2017-12"), ("2018", "2018-01", "2018-10"))


def _ucdp(name: str) -> EventFile:
    return EventFile(SHARED / name, "ucdp")


def panel_specs() -> dict[str, tuple[PanelSpec, tuple, tuple[str, ...]]]:
    """Per panel: its build, its windows and the context columns of the +ops_tempo variant."""
    ops = ContextSeries("ops_tempo", operations=True)
    syria_gaz = ROOT / "data" / "reference" / "syria_governorates.csv"
    both_gaz = ROOT / "data" / "reference" / "iraq_syria_governorates.csv"
    iraq, syria = _ucdp("ucdp_ged_iraq_hdx.csv"), _ucdp("ucdp_ged_syria_2016_2018.csv")
    geocausal = SHARED / "iraq_geocausal_airstrikes_insurgencies_events.csv"
    return {
        "ucdp": (PanelSpec(events=(iraq,), type_split=True, context=(ops,)),
                 skill.SOURCES["ucdp"].windows, ("ops_tempo",)),
        "syria": (PanelSpec(events=(syria,), gazetteer=syria_gaz, type_split=True, context=(ops,)),
                  skill.SOURCES["syria"].windows, ("ops_tempo",)),
        "iraq_syria": (PanelSpec(events=(iraq, syria), gazetteer=both_gaz, type_split=True, context=(ops,)),
                       TWO_COUNTRY_WINDOWS, ("ops_tempo",)),
        "geocausal": (PanelSpec(events=(geocausal,), filters=EventFilters(start=pd.Timestamp("2007-03-01"),
                                end=pd.Timestamp("2008-06-30"), actor="insurgents"),
                                context=(ContextSeries("airstrikes", events=(geocausal,), event_types=("Airstrike",)),)),
                      skill.SOURCES["geocausal"].windows, ("airstrikes",)),
    }


def without_neighbours(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with every unit's neighbour list emptied (countries kept)."""
    graph = unit_graph(panel)
    units = graph.units if graph is not None else sorted(panel["unit"].unique())
    country = graph.country if graph is not None else None
    return with_graph(panel.copy(), UnitGraph({u: () for u in units}, country))


def without_cross_border(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with the neighbours in another country removed, the others kept."""
    graph = unit_graph(panel)
    if graph is None:
        return panel
    country = graph.country
    kept = {u: tuple(n for n in near if country.get(n) == country.get(u)) for u, near in graph.neighbours.items()}
    return with_graph(panel.copy(), UnitGraph(kept, country))


def variants(panel: pd.DataFrame, ops_columns: tuple[str, ...],
             covariates: bool = True) -> dict[str, tuple[pd.DataFrame, tuple[str, ...]]]:
    """Variant label -> (panel, covariate columns); families whose columns the panel lacks, or
    (``covariates`` False) that a model without covariates cannot take, are left out."""
    out = {"counts": (panel.copy(), ())}  # copies: each variant's attrs name its cached backtests
    if covariates and set(TYPE_SPLIT) <= set(panel.columns):
        out["+type_split"] = (panel.copy(), TYPE_SPLIT)
    if covariates and set(ops_columns) <= set(panel.columns):
        out["+ops_tempo"] = (panel.copy(), ops_columns)
    out["-neighbours"] = (without_neighbours(panel), ())
    graph = unit_graph(panel)
    if graph is not None and any(graph.cross_border.values()):
        out["-cross_border"] = (without_cross_border(panel), ())
    return out


def paired_interval(variant: np.ndarray, base: np.ndarray) -> tuple[float, float, float]:
    """``sum(variant) / sum(base)`` over a window's origins and its 90% block-bootstrap interval."""
    low, high = skill.block_bootstrap(variant, base[None, :])
    return float(variant.sum() / base.sum()), low, high


def per_origin(scored: pd.DataFrame, common: pd.DataFrame) -> pd.Series:
    return scored.merge(common, on=["unit", "origin", "horizon"]).groupby("origin")["crps"].sum()


def run(model: str, sources: list[str], targets: list[str], step: int, jobs: int, quick: bool,
        cache: Path | None) -> list[dict]:
    rows = []
    specs = panel_specs()
    for source in sources:
        spec, windows, ops_columns = specs[source]
        began = time.perf_counter()
        panel = build_panel(spec).panel
        panel.attrs["skill_source"] = f"context-{source}"
        print(f"\n== {source}: {panel['unit'].nunique()} units, {panel['month'].min()}..{panel['month'].max()} "
              f"(built in {time.perf_counter() - began:.0f} s)", flush=True)
        if quick:
            windows = windows[-1:]
        runs = variants(panel, ops_columns, make_model(model).uses_covariates)
        for target in [t for t in targets if t in panel.columns and panel[t].notna().any()]:
            if source == "geocausal" and target == "deaths":
                continue  # the geocausal file records no deaths
            bench = skill.benchmark_runs(panel, target, windows, step, jobs, cache)
            for window, start, end in windows:
                frames = {}
                try:
                    for label, (vpanel, covariates) in runs.items():
                        vpanel.attrs["skill_source"] = f"context-{source}-{label}"  # the cache's key
                        frames[label] = skill.backtest(vpanel, target, model, {}, start, end, step, jobs, cache,
                                                       covariates)
                except ModelError as exc:
                    print(f"  {target:9} {window:8} {model} cannot be fitted at these origins: {exc}", flush=True)
                    continue
                lo_o, hi_o = pd.Period(start, "M"), pd.Period(end, "M")

                def cut(frame: pd.DataFrame) -> pd.DataFrame:
                    origin = pd.PeriodIndex(frame["origin"], freq="M")
                    return frame.loc[(origin >= lo_o) & (origin <= hi_o)]

                scored = {b: skill.score_rows(cut(f), panel, target) for b, f in bench.items()}
                scored = {b: s for b, s in scored.items() if len(s)}
                variant_scored = {label: skill.score_rows(cut(f), panel, target) for label, (f, _) in frames.items()}
                if not all(len(s) for s in variant_scored.values()) or not scored:
                    continue
                keys = ["unit", "origin", "horizon"]
                common = variant_scored["counts"][keys]
                for s in [*variant_scored.values(), *scored.values()]:
                    common = common.merge(s[keys], on=keys)
                base = per_origin(variant_scored["counts"], common)
                for label, s in variant_scored.items():
                    fig = skill.summarise({**scored, label: s.merge(common, on=keys)}, label, panel, target)
                    mine = per_origin(s, common).reindex(base.index)
                    ratio, low, high = paired_interval(mine.to_numpy(), base.to_numpy())
                    rows.append({"source": source, "target": target, "window": window, "variant": label,
                                 "covariates": list(runs[label][1]), "over_best_benchmark": fig["ratio"],
                                 "benchmark_interval": [fig["lo"], fig["hi"]], "best": fig["best"],
                                 "over_counts": ratio, "counts_interval": [low, high], "origins": fig["origins"],
                                 "cov90": fig["cov90"], "seconds": frames[label][1]})
                    print(f"  {target:9} {window:8} {label:14} over best benchmark {fig['ratio']:.3f} "
                          f"[{fig['lo']:.3f}, {fig['hi']:.3f}] ({fig['best']}); over counts {ratio:.3f} "
                          f"[{low:.3f}, {high:.3f}]", flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Per variant: the worst window over the best benchmark, the mean, and its effect against counts."""
    out = {}
    print("\nper variant, every window of every panel (worst first):")
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        worst = max(mine, key=lambda r: r["over_best_benchmark"])
        better = sum(r["counts_interval"][1] < 1 for r in mine)
        worse = sum(r["counts_interval"][0] > 1 for r in mine)
        out[label] = {
            "worst": worst["over_best_benchmark"], "worst_window": f"{worst['source']} {worst['target']} {worst['window']}",
            "worst_interval": worst["benchmark_interval"],
            "mean": float(np.mean([r["over_best_benchmark"] for r in mine])),
            "mean_over_counts": float(np.mean([r["over_counts"] for r in mine])),
            "windows": len(mine), "better_than_counts": better, "worse_than_counts": worse,
            "by_source": {s: float(np.mean([r["over_counts"] for r in mine if r["source"] == s]))
                          for s in dict.fromkeys(r["source"] for r in mine)},
        }
        o = out[label]
        print(f"  {label:14} worst {o['worst']:.3f} [{o['worst_interval'][0]:.3f}, {o['worst_interval'][1]:.3f}] "
              f"({o['worst_window']}), mean {o['mean']:.3f}; over counts: mean {o['mean_over_counts']:.3f}, "
              f"better in {better} and worse in {worse} of {len(mine)} windows (90% interval clear of 1); "
              + ", ".join(f"{s} {v:.3f}" for s, v in o["by_source"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="nb_glmx", help="a model that takes covariates and neighbours")
    parser.add_argument("--sources", default="ucdp,syria,iraq_syria,geocausal")
    parser.add_argument("--targets", default="incidents,deaths")
    parser.add_argument("--step", type=int, default=1, help="months between origins")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the last window of each panel only")
    parser.add_argument("--cache", type=Path, default=None, help="keep and reuse the benchmarks' backtests here")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"context.py: {SHARED} is absent; it holds the real event files this benchmark reads")
        return 2
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(sources) - set(panel_specs()))
    if unknown:
        parser.error(f"--sources: unknown panel(s) {', '.join(unknown)}; known: {', '.join(panel_specs())}")
    load = os.getloadavg()
    print(f"model {args.model}, step {args.step}; load average at the start {load[0]:.2f} ({os.cpu_count()} cores); "
          f"benchmarks {', '.join(BENCHMARKS)}", flush=True)
    began = time.perf_counter()
    rows = run(args.model, sources, [t.strip() for t in args.targets.split(",")], args.step, args.jobs, args.quick,
               args.cache)
    payload = {"model": args.model, "step": args.step, "load_average_at_start": [round(x, 2) for x in load],
               "seconds": round(time.perf_counter() - began), "rows": rows, "summary": summary(rows)}
    out = args.out or ROOT / "benchmarks" / "results" / f"context_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {out} ({payload['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
