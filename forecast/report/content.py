"""The numbers and sentences of a report, computed from :class:`~forecast.report.ReportInputs`.

Nothing here fits or loads a model: it reads the forecast frame it is given, the panel (for
the recent history, the escalation thresholds, the tier scale and the actuals) and, when
given, backtest and ledger frames. Every generated sentence is hedged ("is projected", "90%
interval"); none says "will".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.evaluation import escalation
from forecast.report.aggregate import NationalTotal, escalation_probability, national_total
from forecast.report.fmt import (
    as_periods, counted, fmt_count, fmt_interval, fmt_month, fmt_prob, fmt_range, fmt_signed,
)
from forecast.report.inputs import ReportError, ReportInputs
from forecast.report.tiers import TierScale, tier_scale
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, validate_forecast

__all__ = ["COVARIATE_LABELS", "Outlook", "WATCH_RISING", "WATCH_TOP", "change_since_previous", "check_forecast",
           "covariate_label", "fmt_count", "fmt_interval", "fmt_month", "fmt_prob", "fmt_range", "fmt_signed",
           "headline", "outlook", "watch_rule"]

#: Readable names and units of the covariates this project knows; others are shown by column name.
COVARIATE_LABELS = {
    "us_troops": ("US troops in Iraq", "US troops"),
    "ops_tempo": ("Operations tempo (coalition and government operations)", "index, 0-100"),
    "coalition_strikes": ("Coalition airstrikes", "airstrikes per month"),
    "coalition_shows_of_force": ("Coalition shows of force", "shows of force per month"),
    "insurgent_attacks_gc": ("Insurgent attacks (geocausal data)", "attacks per month"),
    "sigacts_total": ("SIGACT reports, all types", "SIGACT reports per month"),
    "sigacts_ied": ("SIGACT reports of IEDs", "IED reports per month"),
}
#: The watch list: the first WATCH_TOP rows of the ranked table ...
WATCH_TOP = 3
#: ... and up to WATCH_RISING more whose trend is rising (the largest projected rise first).
WATCH_RISING = 2
#: Months of history in each fan chart.
HISTORY_MONTHS = 36


def covariate_label(column: str) -> tuple[str, str]:
    """(title, unit of measurement) of a covariate column."""
    return COVARIATE_LABELS.get(column, (column.replace("_", " "), "value"))


def watch_rule(unit_word: str) -> str:
    """The watch-list rule in words (the table marks the rows it picks)."""
    return (f"The {unit_word}s to watch are the first {WATCH_TOP} rows of the ranked table (highest tier, then "
            f"highest expected count) and up to {WATCH_RISING} more whose trend is rising, the largest projected "
            f"rise first; the table marks them.")


@dataclass(frozen=True)
class Outlook:
    """One forecast read unit by unit.

    ``units`` has one row per unit, ranked (highest tier, then highest expected count
    first), with the columns ``unit, tier, tier_name, trend, recent, expected, next_mean,
    projected, rise, watch, p_next, p_max, p_max_month, threshold, next_q05, next_q50,
    next_q95, last_mean, last_q05, last_q50, last_q95``; ``recent`` is the recorded average
    per month over the last :data:`~forecast.evaluation.escalation.TREND_WINDOW` months.
    """

    origin: pd.Period
    months: pd.PeriodIndex
    forecast: pd.DataFrame           # validated, Period columns, with ``threshold`` and ``p_escalation``
    units: pd.DataFrame
    national: NationalTotal | None   # the national total per month (None when not asked for)
    history: pd.DataFrame            # months x units of the target, up to the origin
    tiers: TierScale

    @property
    def horizon(self) -> int:
        return len(self.months)


def check_forecast(forecast: pd.DataFrame, panel: pd.DataFrame, what: str = "forecast") -> pd.DataFrame:
    """The forecast frame with Period columns, checked against the panel it is reported with."""
    validate_forecast(forecast, source=what, columns=FORECAST_COLUMNS)
    if forecast.empty:
        raise ReportError(f"{what}: no rows")
    frame = as_periods(forecast, what)
    origins = frame["origin"].unique()
    if len(origins) != 1:
        raise ReportError(f"{what}: one origin expected, found {', '.join(map(str, sorted(origins)))}")
    origin = origins[0]
    if origin not in set(panel["month"]):
        raise ReportError(f"{what}: origin {origin} is not a month of the panel "
                          f"({panel['month'].min()} .. {panel['month'].max()})")
    missing = sorted(set(panel["unit"]) - set(frame["unit"]))
    extra = sorted(set(frame["unit"]) - set(panel["unit"]))
    if missing or extra:
        raise ReportError(f"{what}: units differ from the panel's (missing: {', '.join(missing) or 'none'}; "
                          f"not in the panel: {', '.join(map(str, extra)) or 'none'})")
    horizons = sorted(frame["horizon"].unique())
    if horizons != list(range(1, len(horizons) + 1)):
        raise ReportError(f"{what}: horizons must run 1..H without gaps, found {horizons}")
    dup = frame.duplicated(["unit", "horizon"])
    if dup.any():
        row = frame.loc[dup].iloc[0]
        raise ReportError(f"{what}: unit {row['unit']!r}, horizon {row['horizon']} appears twice")
    counts = frame.groupby("unit").size()
    short = counts[counts != len(horizons)]
    if len(short):
        raise ReportError(f"{what}: unit {short.index[0]!r} has {short.iloc[0]} rows, expected {len(horizons)}")
    bad = frame["month"] != frame["origin"] + frame["horizon"].astype(int)
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise ReportError(f"{what}: unit {row['unit']!r}: month {row['month']} is not origin {row['origin']} "
                          f"+ horizon {row['horizon']}")
    return frame.sort_values(["unit", "horizon"]).reset_index(drop=True)


def outlook(forecast: pd.DataFrame, panel: pd.DataFrame, target: str = "incidents", *,
            what: str = "forecast", backtest: pd.DataFrame | None = None, model: str | None = None,
            national: bool = True) -> Outlook:
    """Tier, trend, escalation probability, key quantiles and the watch list of every unit.

    With ``national``, the national total too (:func:`forecast.report.aggregate.national_total`,
    its dependence estimated from ``backtest`` rows of ``model`` when given).
    """
    if target not in panel:
        raise ReportError(f"panel: no column {target!r} to report on")
    frame = check_forecast(forecast, panel, what)
    origin = frame["origin"].iloc[0]
    upto = panel.loc[panel["month"] <= origin]
    history = upto.pivot(index="month", columns="unit", values=target).astype(float)
    threshold = escalation.escalation_threshold(upto, origin, target=target)
    frame["threshold"] = threshold.reindex(frame["unit"]).to_numpy()
    frame["p_escalation"] = escalation_probability(frame[list(QUANTILE_COLUMNS)].to_numpy(float),
                                                   frame["threshold"].to_numpy())
    g = frame.groupby("unit", sort=False)
    first = frame[frame["horizon"] == 1].set_index("unit")
    last = frame[frame["horizon"] == frame["horizon"].max()].set_index("unit")
    peak = frame.loc[g["p_escalation"].idxmax()].set_index("unit")
    units = pd.DataFrame({
        "expected": g["mean"].mean(),
        "projected": g["q50"].mean(),
        "p_max": peak["p_escalation"],
        "p_max_month": peak["month"],
        "p_next": first["p_escalation"],
        "threshold": first["threshold"],
        "next_mean": first["mean"], "next_q05": first["q05"], "next_q50": first["q50"], "next_q95": first["q95"],
        "last_mean": last["mean"], "last_q05": last["q05"], "last_q50": last["q50"], "last_q95": last["q95"],
    })
    window = history.tail(escalation.TREND_WINDOW)
    units["recent"] = window.mean().reindex(units.index)
    scale = tier_scale(panel, origin, target)
    units["tier"] = scale.tier(units["expected"])
    units["tier_name"] = [escalation.TIER_NAMES[t] for t in units["tier"]]
    units["trend"] = escalation.trend(units["recent"], units["projected"])
    units["rise"] = units["expected"] - units["recent"]
    units = (units.rename_axis("unit").reset_index()
             .sort_values(["tier", "expected", "unit"], ascending=[False, False, True], kind="stable")
             .reset_index(drop=True))
    watch = np.zeros(len(units), dtype=bool)
    watch[:WATCH_TOP] = True
    rising = units.iloc[WATCH_TOP:]
    rising = rising[rising["trend"] == "rising"].sort_values("rise", ascending=False, kind="stable")
    watch[rising.index[:WATCH_RISING]] = True
    units["watch"] = watch
    total = national_total(frame, backtest=backtest, model=model) if national else None
    months = pd.PeriodIndex(sorted(frame["month"].unique()), freq="M")
    return Outlook(origin=origin, months=months, forecast=frame, units=units, national=total,
                   history=history, tiers=scale)


# --- headline --------------------------------------------------------------------------------

def headline(out: Outlook, inputs: ReportInputs, unit_word: str, coverage90: float | None,
             skill: dict | None = None) -> dict:
    """Sentences of the headline, generated from the numbers (each a plain string).

    ``skill`` is :func:`forecast.report.accuracy.escalation_skill`'s summary, when a backtest
    was run: without shown skill the headline says escalation probabilities are not to be
    relied on.
    """
    target = inputs.target
    first, last = out.months[0], out.months[-1]
    vintage = inputs.meta.get("vintage") or str(out.origin)
    period = fmt_range(first, last)
    lines = [
        f"Forecast for {period} ({out.horizon} month{'s' if out.horizon > 1 else ''} ahead), made from "
        f"data up to {fmt_month(out.origin, long=True)} (data vintage {vintage}) with the model "
        f"{inputs.model_version or inputs.model}."
    ]
    nat = out.national.table
    recent = out.history.tail(escalation.TREND_WINDOW).sum(axis=1).mean()

    def month_words(month: pd.Period) -> str:
        r = nat.loc[month]
        return (f"about {counted(r['mean'], target)} are expected in {fmt_month(month, long=True)}, with a median "
                f"of {fmt_count(r['q50'])} (90% interval {fmt_interval(r['q05'], r['q95'])})")

    national = f"Nationally, {month_words(first)}"
    if out.horizon > 1:
        national += f"; {month_words(last)}"
    national += (f". That compares with an average of {fmt_count(recent)} a month recorded over the last "
                 f"{escalation.TREND_WINDOW} months. The expected count is the sum of the {unit_word}s' expected "
                 f"counts in the table; the median and interval come from their forecasts combined "
                 f"({'with the dependence between ' + unit_word + 's estimated from the backtest' if out.national.dependence == 'backtest' else 'as independent: no backtest was run to estimate how they move together'}).")
    lines.append(national)
    focus = []
    shown_skill = bool(skill and skill.get("skilful"))
    for _, row in out.units[out.units["watch"]].iterrows():
        text = (f"{row['tier_name']} tier; about {counted(row['expected'], target)} a month expected "
                f"(median {fmt_count(row['projected'])}), against {fmt_count(row['recent'])} a month recorded over "
                f"the last {escalation.TREND_WINDOW} months ({row['trend']})")
        if shown_skill:
            text += f"; escalation probability up to {fmt_prob(row['p_max'])} ({fmt_month(row['p_max_month'])})"
        focus.append({"unit": row["unit"], "tier": row["tier_name"], "tier_index": int(row["tier"]),
                      "text": text + "."})
    counts = out.units["trend"].value_counts()
    rising = counts.get("rising", 0)
    trend_line = (f"Of {len(out.units)} {unit_word}s, {rising} {'is' if rising == 1 else 'are'} projected to rise, "
                  f"{counts.get('stable', 0)} to stay about level and {counts.get('falling', 0)} to fall.")
    if skill is None:
        escalation_line = ("No backtest was run, so the escalation probabilities in the table have no track "
                           "record here; they do not rank the watch list or set the tiers.")
    elif shown_skill:
        escalation_line = (f"Escalation probabilities beat both the {unit_word}s' own historical escalation rates and "
                           f"'never escalates' in the backtest (Brier score {skill['brier']:.3f} against "
                           f"{skill['brier_rate']:.3f} and {skill['brier_zero']:.3f}); they are shown in the table "
                           "but do not rank the watch list or set the tiers.")
    else:
        escalation_line = (f"Escalation probabilities showed no skill in the backtest: their Brier score "
                           f"({skill['brier']:.3f}) was no better than that of the {unit_word}s' own historical "
                           f"escalation rates ({skill['brier_rate']:.3f}) or of 'never escalates' "
                           f"({skill['brier_zero']:.3f}). They are shown in the table for reference only and do "
                           "not rank the watch list or set the tiers.")
    hedge = ("These are projections, not predictions of certainty: each comes with a 90% interval, the range "
             "the model considers likely")
    if coverage90 is not None and np.isfinite(coverage90):
        hedge += (f"; in the backtest below such intervals contained the recorded count "
                  f"{coverage90:.0%} of the time (90% would be ideal).")
    else:
        hedge += "."
    return {"lines": lines, "focus": focus, "trend": trend_line, "hedge": hedge, "escalation": escalation_line}


# --- change since the previous report --------------------------------------------------------

def change_since_previous(out: Outlook, previous: pd.DataFrame | None, panel: pd.DataFrame,
                          target: str) -> dict | None:
    """Per unit: the change of the next month's median and of the tier since the previous report."""
    if previous is None:
        return None
    prev = as_periods(previous, "previous report")
    validate_forecast(prev, source="previous report", columns=FORECAST_COLUMNS)
    # A ledger may hand over several issues: the latest one before this report's origin counts.
    origins = sorted(o for o in prev["origin"].unique() if o < out.origin)
    if not origins:
        return None
    prev_origin = origins[-1]
    prev = prev[prev["origin"] == prev_origin]
    first = out.months[0]
    same_month = prev[prev["month"] == first].set_index("unit")
    prev_tiers: dict[str, str] = {}
    if prev_origin in set(panel["month"]) and set(prev["unit"]) == set(panel["unit"]):
        try:
            prev_tiers = outlook(prev, panel, target, what="previous report", national=False).units.set_index("unit")[
                "tier_name"].to_dict()
        except ReportError:
            prev_tiers = {}
    changes = {}
    for _, row in out.units.iterrows():
        unit = row["unit"]
        parts = []
        if unit in same_month.index:
            was = float(same_month.at[unit, "q50"])
            parts.append(f"{fmt_signed(row['next_q50'] - was)} (was {fmt_count(was)})")
        else:
            parts.append(f"no forecast for {fmt_month(first)}")
        if unit in prev_tiers:
            was_tier = prev_tiers[unit]
            parts.append("tier unchanged" if was_tier == row["tier_name"] else f"tier {was_tier} → {row['tier_name']}")
        changes[unit] = "; ".join(parts)
    return {"origin": prev_origin, "by_unit": changes,
            "note": (f"Change of the median forecast for {fmt_month(first)} since the previous report "
                     f"(data up to {fmt_month(prev_origin)}) and of the tier.")}
