"""The numbers a report shows, as one table: the page's next-month table is read from it, and the
report's ``.csv`` is it, so the two cannot disagree.

One row per shown unit and forecast month, and one per forecast month for the national total,
rounded as the page shows them: expected counts and averages to one decimal, quantiles and
recorded counts to whole numbers, probabilities to whole percent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.report.aggregate import escalation_probability
from forecast.report.content import Outlook
from forecast.report.fmt import round_count, round_mean
from forecast.schema import QUANTILE_COLUMNS

__all__ = ["NUMBER_COLUMNS", "NATIONAL", "percent", "report_numbers"]

#: Columns of the report's CSV.
NUMBER_COLUMNS = (
    "scope", "unit", "origin", "month", "horizon", "model", "mean", *QUANTILE_COLUMNS,
    "recent_level", "recorded_last_month", "change_vs_last_month", "recorded_year_earlier",
    "change_vs_year_earlier", "p_increase_pct", "p_escalation_pct", "escalation_threshold", "tier", "watch",
)
#: ``scope`` of the national rows.
NATIONAL = "national"


def percent(p) -> np.ndarray:
    """Probabilities as whole percent, as the page shows them (below 1% is 0, above 99% is 100)."""
    return round_count(np.asarray(p, dtype=float) * 100)


def report_numbers(out: Outlook, model: str) -> pd.DataFrame:
    """Every number of the next-month table and the forecasts, per shown unit and month, then the national total."""
    shown = out.shown.set_index("unit")
    rows = out.forecast[out.forecast["unit"].isin(shown.index)].copy()
    unit = rows["unit"]
    recent = unit.map(shown["recent"]).to_numpy(float)
    history = out.history
    keys = pd.MultiIndex.from_arrays([pd.PeriodIndex(rows["month"], freq="M") - 12, unit.to_numpy()])
    year_earlier = history.stack().reindex(keys).to_numpy(float)
    last = unit.map(shown["last_month"]).to_numpy(float)
    mean = round_mean(rows["mean"].to_numpy(float))
    p_increase = escalation_probability(rows[list(QUANTILE_COLUMNS)].to_numpy(float), recent)
    units = pd.DataFrame({
        "scope": "unit", "unit": unit.to_numpy(), "origin": rows["origin"].astype(str).to_numpy(),
        "month": rows["month"].astype(str).to_numpy(), "horizon": rows["horizon"].to_numpy(int),
        "model": model, "mean": mean,
        **{q: round_count(rows[q].to_numpy(float)) for q in QUANTILE_COLUMNS},
        "recent_level": round_mean(recent), "recorded_last_month": round_count(last),
        "change_vs_last_month": round_mean(mean - round_count(last)),
        "recorded_year_earlier": round_count(year_earlier),
        "change_vs_year_earlier": round_mean(mean - round_count(year_earlier)),
        "p_increase_pct": percent(p_increase), "p_escalation_pct": percent(rows["p_escalation"]),
        "escalation_threshold": np.floor(rows["threshold"].to_numpy(float)),
        "tier": unit.map(shown["tier_name"]).to_numpy(), "watch": unit.map(shown["watch"]).to_numpy(bool),
    })
    # Keep the order of the ranked table, then the months.
    order = {u: i for i, u in enumerate(shown.index)}
    units = units.sort_values(["unit", "horizon"], key=lambda c: c.map(order) if c.name == "unit" else c,
                              kind="stable")
    nat = out.national.table
    sums = history.sum(axis=1)
    n_mean = round_mean(nat["mean"].to_numpy(float))
    n_year = np.array([sums.get(m - 12, np.nan) for m in nat.index], dtype=float)
    national = pd.DataFrame({
        "scope": NATIONAL, "unit": f"national (all {len(out.units):,} units)", "origin": str(out.origin),
        "month": [str(m) for m in nat.index], "horizon": np.arange(1, len(nat) + 1), "model": model,
        "mean": n_mean, **{q: round_count(nat[q].to_numpy(float)) for q in QUANTILE_COLUMNS},
        "recent_level": round_mean(out.national_recent), "recorded_last_month": round_count(out.national_last),
        "change_vs_last_month": round_mean(n_mean - round_count(out.national_last)),
        "recorded_year_earlier": round_count(n_year),
        "change_vs_year_earlier": round_mean(n_mean - round_count(n_year)),
        "p_increase_pct": percent(escalation_probability(nat[list(QUANTILE_COLUMNS)].to_numpy(float),
                                                         np.full(len(nat), out.national_recent))),
        "p_escalation_pct": np.nan, "escalation_threshold": np.nan, "tier": "", "watch": False,
    })
    return pd.concat([units, national], ignore_index=True)[list(NUMBER_COLUMNS)]
