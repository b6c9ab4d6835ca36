"""The forecasts' track record: does escalation have skill, what did the last forecast miss, how has it done over time.

* :func:`escalation_skill`: the Brier score of the escalation probabilities in a backtest,
  against ``zero`` (never escalates) and against each unit's own historical escalation rate,
  with a reliability table. The report leads with escalation only when it beats both.
* :func:`last_forecast`: the latest forecast one month ahead whose outcome is recorded, unit
  by unit, largest misses first (as ACLED CAST shows its last forecast against what happened).
* :func:`accuracy_over_time`: per forecast origin, the CRPS and the 90% coverage one month ahead.

Each takes a frame of scored forecasts (a backtest, or the ledger's issued forecasts): the
forecast columns and the recorded ``y``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.evaluation import escalation, scores
from forecast.report.aggregate import escalation_probability
from forecast.report.fmt import as_periods, fmt_count, fmt_interval, fmt_month
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["RELIABILITY_BINS", "accuracy_over_time", "escalation_skill", "historical_rate", "last_forecast"]

#: Bins of forecast probability in the reliability table (lower bound inclusive).
RELIABILITY_BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)
#: Units shown under "largest misses".
MISSES_SHOWN = 5
#: Origins shown in the accuracy over time.
TIMELINE_SHOWN = 12


def historical_rate(panel: pd.DataFrame, target: str) -> pd.DataFrame:
    """Each unit's own escalation rate up to every month (months x units).

    Month m of the history escalated when ``y[m]`` exceeded the threshold set at m - 1
    (:func:`~forecast.evaluation.escalation.threshold_table`); the rate at origin T is the
    share of escalated months up to T. It uses only months up to T, like the forecast.
    """
    wide = escalation.wide_history(panel, target)
    threshold = escalation.threshold_table(wide).shift(1)
    events = pd.DataFrame(escalation.escalated(wide, threshold).astype(float), index=wide.index, columns=wide.columns)
    events = events.where(threshold.notna() & wide.notna())
    return events.expanding(min_periods=1).mean()


def _events(frame: pd.DataFrame, panel: pd.DataFrame, target: str) -> pd.DataFrame:
    """Scored rows with the threshold at their origin, the event, its probability and the unit's rate."""
    wide = escalation.wide_history(panel, target)
    thresholds = escalation.threshold_table(wide).stack().rename("threshold")
    rates = historical_rate(panel, target).stack().rename("rate")
    keys = pd.MultiIndex.from_arrays([frame["origin"], frame["unit"]])
    out = frame.assign(threshold=thresholds.reindex(keys).to_numpy(), rate=rates.reindex(keys).to_numpy())
    out = out[out["threshold"].notna()]
    out["rate"] = out["rate"].fillna(0.0)
    out["p"] = escalation_probability(out[list(QUANTILE_COLUMNS)].to_numpy(float), out["threshold"].to_numpy())
    out["event"] = escalation.escalated(out["y"], out["threshold"]).astype(float)
    return out


def escalation_skill(frame: pd.DataFrame | None, panel: pd.DataFrame, model: str, target: str) -> dict | None:
    """Brier scores of the escalation probabilities, against ``zero`` and the units' historical rates.

    Returns None without scored rows of ``model``. Otherwise ``brier``, ``brier_zero``,
    ``brier_rate``, ``skill_rate`` (1 - brier / brier_rate), ``skilful`` (better than both),
    ``events`` and ``n``, and ``reliability``: per probability bin, the forecasts in it, their
    mean probability and how often the unit escalated.
    """
    if frame is None or frame.empty:
        return None
    rows = as_periods(frame, "backtest")
    rows = rows[(rows["model"] == model) & rows["y"].notna()]
    if rows.empty:
        return None
    ev = _events(rows, panel, target)
    if ev.empty:
        return None
    e, p, r = ev["event"].to_numpy(), ev["p"].to_numpy(), ev["rate"].to_numpy()
    brier, brier_zero, brier_rate = (float(np.mean((x - e) ** 2)) for x in (p, np.zeros_like(e), r))
    edges = np.asarray(RELIABILITY_BINS)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    table = []
    for k in range(len(edges) - 1):
        inside = which == k
        table.append({"bin": f"{edges[k]:.0%}–{edges[k + 1]:.0%}", "n": int(inside.sum()),
                      "mean_p": float(p[inside].mean()) if inside.any() else np.nan,
                      "observed": float(e[inside].mean()) if inside.any() else np.nan,
                      "mean_rate": float(r[inside].mean()) if inside.any() else np.nan})
    return {"brier": brier, "brier_zero": brier_zero, "brier_rate": brier_rate,
            "skill_rate": 1 - brier / brier_rate if brier_rate > 0 else np.nan,
            "skilful": bool(brier < brier_rate and brier < brier_zero), "events": int(e.sum()), "n": int(len(e)),
            "reliability": table, "distinct_p": int(len(np.unique(np.round(p, 4))))}


def last_forecast(frame: pd.DataFrame | None, *, key: str = "origin", model: str | None = None) -> dict | None:
    """The latest one-month-ahead forecast with recorded outcomes, largest misses first.

    ``key`` names the column that tells issues apart (``origin`` for a backtest, ``issued``
    for the ledger); ``model`` keeps only its rows (a backtest holds the benchmarks too).
    """
    if frame is None or frame.empty:
        return None
    rows = as_periods(frame, "scored forecasts")
    rows = rows[(rows["horizon"] == 1) & rows["y"].notna()]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        return None
    latest = rows[rows[key] == rows[key].max()].copy()
    latest["miss"] = latest["y"] - latest["q50"]
    latest = latest.reindex(latest["miss"].abs().sort_values(ascending=False, kind="stable").index)
    inside = (latest["q05"] <= latest["y"]) & (latest["y"] <= latest["q95"])
    shown = [{"unit": r["unit"], "median": fmt_count(r["q50"]), "interval": fmt_interval(r["q05"], r["q95"]),
              "actual": fmt_count(r["y"]), "miss": r["miss"], "inside": bool(ok)}
             for (_, r), ok in zip(latest.head(MISSES_SHOWN).iterrows(), inside.head(MISSES_SHOWN))]
    return {"issue": str(latest[key].iloc[0]), "month": fmt_month(latest["month"].iloc[0], long=True),
            "units": len(latest), "inside": int(inside.sum()), "misses": shown}


def accuracy_over_time(frame: pd.DataFrame | None, *, key: str = "origin", model: str | None = None) -> list[dict]:
    """Per issue (latest :data:`TIMELINE_SHOWN`), the CRPS and 90% coverage one month ahead, over all units."""
    if frame is None or frame.empty:
        return []
    rows = as_periods(frame, "scored forecasts")
    rows = rows[(rows["horizon"] == 1) & rows["y"].notna()]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        return []
    table = scores.score_table(rows, by=(key,), metrics=["crps", "coverage90"], overall=False)
    months = rows.groupby(key)["month"].first()
    table = table.sort_values(key).tail(TIMELINE_SHOWN)
    return [{"issue": str(r[key]), "month": fmt_month(months[r[key]]), "crps": float(r["crps"]),
             "coverage90": float(r["coverage90"]), "n": int(r["n"])} for _, r in table.iterrows()]
