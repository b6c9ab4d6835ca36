"""How good the forecasts have been: the backtest against the benchmarks, and the ledger of issued forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.evaluation import scores
from forecast.report.aggregate import national_total
from forecast.report.fmt import as_periods, fmt_count, fmt_interval, fmt_mean, fmt_month
from forecast.errors import ReportError

__all__ = ["backtest_summary", "ledger_summary"]

_SCORE_METRICS = ("crps", "mae", "coverage50", "coverage90")


def backtest_summary(backtest: pd.DataFrame | None, model: str, target: str) -> dict | None:
    """Scores of the model and its benchmarks by horizon, with skill and a plain summary.

    ``best_benchmark`` is the benchmark with the lowest CRPS over all horizons and ``ratio`` the
    model's CRPS over that benchmark's (below 1: better than every benchmark).
    """
    if backtest is None or backtest.empty:
        return None
    bt = as_periods(backtest, "backtest")
    models = list(pd.unique(bt["model"]))
    if model not in models:
        raise ReportError(f"backtest: no rows for the report's model {model!r}; it has {', '.join(map(str, models))}")
    scored = bt["y"].notna()
    if not scored.any():
        return None
    # One model at a time: the scores' temporaries are a model's rows, not the whole backtest's.
    table = pd.concat([scores.score_table(bt[scored & (bt["model"] == m)], metrics=list(_SCORE_METRICS))
                       for m in models if (scored & (bt["model"] == m)).any()], ignore_index=True)
    benchmarks = [m for m in models if m != model]
    if benchmarks:
        table = scores.add_skill(table, benchmarks, metrics=["crps", "mae"])
    table["horizon"] = table["horizon"].astype(str)
    overall = table[table["horizon"] == "all"].set_index("model")
    order = [model] + sorted(benchmarks, key=lambda m: overall.at[m, "crps"])
    horizons = [h for h in table["horizon"].unique() if h != "all"]
    horizons = sorted(horizons, key=int) + ["all"]
    crps = {m: {h: float(table.loc[(table["model"] == m) & (table["horizon"] == h), "crps"].iloc[0])
                for h in horizons} for m in order}
    cover = {m: {h: float(table.loc[(table["model"] == m) & (table["horizon"] == h), "coverage90"].iloc[0])
                 for h in horizons} for m in order}
    rows = []
    for m in order:
        o = overall.loc[m]
        rows.append({"model": m, "used": m == model, "crps": o["crps"], "mae": o["mae"],
                     "coverage50": o["coverage50"], "coverage90": o["coverage90"],
                     "skill": o.get("crps_skill", np.nan) if m == model and benchmarks else np.nan})
    origins = sorted(bt["origin"].unique())
    me = overall.loc[model]
    text = [f"Rolling-origin backtest: {len(origins)} forecast origins from {fmt_month(origins[0])} to "
            f"{fmt_month(origins[-1])}, horizons 1–{len(horizons) - 1}, each forecast made only from data up to "
            f"its origin and scored against the recorded {target} ({int(me['n']):,} forecasts of the model)."]
    if benchmarks:
        best = me["crps_benchmark"]
        sk = me["crps_skill"]
        if np.isfinite(sk):
            better = "lower (better)" if sk > 0 else "higher (worse)"
            text.append(f"Averaged over all horizons, the CRPS of {model} was {abs(sk):.0%} {better} than that "
                        f"of the best benchmark, {best}.")
    text.append(f"Its 90% intervals contained the recorded count {me['coverage90']:.0%} of the time and its 50% "
                f"intervals {me['coverage50']:.0%} (90% and 50% would be ideal; lower means the intervals were "
                "too narrow).")
    best_name = order[1] if len(order) > 1 else None
    ratio = float(me["crps"] / overall.at[best_name, "crps"]) if best_name and overall.at[best_name, "crps"] > 0 \
        else np.nan
    return {"rows": rows, "horizons": horizons, "crps": crps, "coverage90": cover, "order": order,
            "text": text, "coverage90_model": float(me["coverage90"]), "model": model,
            "best_benchmark": best_name, "ratio": ratio}


def ledger_summary(past: pd.DataFrame | None, target: str) -> dict:
    """How the previously issued forecasts did, scored where their actuals are known."""
    if past is None or past.empty:
        return {"issued": 0, "text": "No forecasts have been issued yet: this section fills in as the "
                                     "ledger of issued forecasts grows and their months are recorded."}
    frame = as_periods(past, "past forecasts").copy()
    if "model_version" not in frame:
        raise ReportError("past forecasts: no column 'model_version'")
    frame["model_version"] = frame["model_version"].fillna(frame["model"]).astype(str)
    n_issued = frame["issued"].nunique() if "issued" in frame else frame["origin"].nunique()
    known = frame[frame["y"].notna()]
    out = {"issued": int(n_issued), "forecasts": len(frame), "scored": len(known)}
    if known.empty:
        out["text"] = (f"{n_issued} forecast issue(s) on record ({len(frame):,} forecasts); none of their "
                       f"target months has recorded {target} yet, so none can be scored.")
        return out
    table = scores.score_table(known, by=("model_version", "horizon"), metrics=list(_SCORE_METRICS))
    table["horizon"] = table["horizon"].astype(str)
    out["rows"] = table.to_dict("records")
    overall = table[table["horizon"] == "all"]
    cov = float((overall["coverage90"] * overall["n"]).sum() / overall["n"].sum())
    out["text"] = (f"{n_issued} forecast issue(s) on record; {len(known):,} of their {len(frame):,} forecasts "
                   f"have a recorded outcome. Their 90% intervals contained the recorded count {cov:.0%} of "
                   "the time.")
    # National view at horizon 1: what each issue said about the next month, and what happened.
    h1 = known[known["horizon"] == 1]
    if len(h1):
        key = "issued" if "issued" in h1 else "origin"
        national = []
        for issue, block in sorted(h1.groupby(key, sort=True), key=lambda kv: str(kv[0]))[-12:]:
            # The issue's one-month-ahead distributions combined (not their quantiles summed).
            total = national_total(block, draws=4000).table.iloc[0]
            y = float(block["y"].sum())
            national.append({"issued": str(issue), "month": fmt_month(block["month"].iloc[0]),
                             "expected": fmt_mean(total["mean"]), "median": fmt_count(total["q50"]),
                             "interval": fmt_interval(total["q05"], total["q95"]), "actual": fmt_count(y),
                             "inside": bool(total["q05"] <= y <= total["q95"])})
        out["national"] = national
    return out
