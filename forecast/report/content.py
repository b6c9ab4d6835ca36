"""A report's numbers unit by unit (:func:`outlook`), and the change since the previous report.

Nothing here fits or loads a model: it reads the forecast frame it is given, the panel (for
the recent history, the escalation thresholds, the tier scale and the actuals) and, when
given, a backtest frame. The sentences built on these numbers are in
:mod:`forecast.report.headline`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.evaluation import escalation
from forecast.report.aggregate import NationalTotal, escalation_probability, national_total
from forecast.report.fmt import as_periods, fmt_count, fmt_month, fmt_signed, round_count
from forecast.report.tiers import DEFAULT_TIER_YEARS, TIER_NAMES, TREND_WINDOW, TierScale, tier_scale, trend
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, validate_forecast
from forecast.errors import ReportError

__all__ = ["COVARIATE_LABELS", "HISTORY_MONTHS", "Outlook", "RECENT_MONTHS", "WATCH_P", "WATCH_RISE",
           "change_since_previous", "check_forecast", "covariate_label", "filled_stretches", "outlook", "watch_rule"]

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
#: The recent level every "increase" is measured against: the average of the last RECENT_MONTHS months.
RECENT_MONTHS = TREND_WINDOW
#: The watch list: units whose probability of more than their recent level next month is at least WATCH_P ...
WATCH_P = 0.5
#: ... and whose expected count next month is at least WATCH_RISE above that level.
WATCH_RISE = 1.0
#: Months of history in each fan chart.
HISTORY_MONTHS = 24


def covariate_label(column: str, meta: dict | None = None) -> tuple[str, str]:
    """(title, unit of measurement) of a covariate column: a context series counted from events says
    what it counts (the panel metadata's ``context``), a known covariate its readable name."""
    context = ((meta or {}).get("context") or {}).get(column)
    if isinstance(context, dict) and context.get("counts"):
        what = str(context["counts"])
        kind = what.split(" (")[0]
        return f"{column.replace('_', ' ').capitalize()}: {what}", f"{kind} per month"
    return COVARIATE_LABELS.get(column, (column.replace("_", " "), "value"))


def filled_stretches(meta: dict, column: str) -> list[tuple[pd.Period, pd.Period]]:
    """The stretches (first, last month) of a covariate the panel filled, from its metadata's staleness record."""
    info = (((meta or {}).get("covariates") or {}).get("staleness") or {}).get(column) or {}
    return [(pd.Period(a, freq="M"), pd.Period(b, freq="M")) for a, b in info.get("filled", [])]


def watch_rule(unit_word: str, target: str = "incidents") -> str:
    """The watch-list rule in words (the tables mark the rows it picks)."""
    return (f"A {unit_word} is on the watch list when next month's forecast gives an increase over its recent "
            f"level (the average of its last {RECENT_MONTHS} recorded months) a probability of at least "
            f"{WATCH_P:.0%}, and its expected {target} next month are at least {WATCH_RISE:g} above that level.")


@dataclass(frozen=True)
class Outlook:
    """One forecast read unit by unit.

    ``units`` has one row per unit, ranked (highest tier, then highest expected count
    first), with the columns ``unit, tier, tier_name, trend, recent, expected, next_mean,
    projected, rise, watch, focus, p_next, p_max, p_max_month, threshold, next_q05, next_q50,
    next_q95, last_mean, last_q05, last_q50, last_q95, last_month, year_ago, p_increase``:
    ``recent`` is the recorded average per month over the last :data:`RECENT_MONTHS`
    months, ``last_month`` the count recorded at the origin, ``year_ago`` the count recorded
    twelve months before the first forecast month (NaN before the panel starts),
    ``p_increase`` the probability that next month exceeds ``recent``, and ``focus`` whether
    the report shows the unit (every unit unless the report focuses on some).
    ``national_recent``, ``national_last`` and ``national_year_ago`` are the same for the
    national total.
    """

    origin: pd.Period
    months: pd.PeriodIndex
    forecast: pd.DataFrame           # validated, Period columns, with ``threshold`` and ``p_escalation``
    units: pd.DataFrame
    national: NationalTotal | None   # the national total per month (None when not asked for)
    history: pd.DataFrame            # months x units of the target, up to the origin
    tiers: TierScale
    focus: tuple[str, ...] | None = None
    national_recent: float = np.nan
    national_last: float = np.nan
    national_year_ago: float = np.nan

    @property
    def shown(self) -> pd.DataFrame:
        """The rows of :attr:`units` the report shows (the focus units, or all), in ranked order."""
        return self.units[self.units["focus"]].reset_index(drop=True)

    @property
    def year_ago_month(self) -> pd.Period:
        return self.months[0] - 12

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
            national: bool = True, tier_years: int = DEFAULT_TIER_YEARS,
            focus: tuple[str, ...] | None = None) -> Outlook:
    """Tier, trend, changes, probabilities of increase and escalation, and the watch list of every unit.

    With ``national``, the national total too (:func:`forecast.report.aggregate.national_total`
    over every unit, whatever ``focus`` says; its dependence estimated from ``backtest`` rows
    of ``model`` when given).
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
    recent = history.tail(RECENT_MONTHS).mean()
    units["recent"] = recent.reindex(units.index)
    units["last_month"] = history.iloc[-1].reindex(units.index)
    year_ago = first["month"].iloc[0] - 12
    units["year_ago"] = (history.loc[year_ago].reindex(units.index) if year_ago in history.index
                         else pd.Series(np.nan, index=units.index))
    units["p_increase"] = escalation_probability(first.loc[units.index, list(QUANTILE_COLUMNS)].to_numpy(float),
                                                 units["recent"].to_numpy(float))
    scale = tier_scale(panel, origin, target, years=tier_years)
    units["tier"] = scale.tier(units["expected"])
    units["tier_name"] = [TIER_NAMES[t] for t in units["tier"]]
    units["trend"] = trend(units["recent"], units["projected"])
    units["rise"] = units["expected"] - units["recent"]
    units["watch"] = (units["p_increase"] >= WATCH_P) & (units["next_mean"] - units["recent"] >= WATCH_RISE)
    units["focus"] = units.index.isin(focus) if focus is not None else True
    units = (units.rename_axis("unit").reset_index()
             .sort_values(["tier", "expected", "unit"], ascending=[False, False, True], kind="stable")
             .reset_index(drop=True))
    total = national_total(frame, backtest=backtest, model=model) if national else None
    months = pd.PeriodIndex(sorted(frame["month"].unique()), freq="M")
    sums = history.sum(axis=1)
    return Outlook(origin=origin, months=months, forecast=frame, units=units, national=total,
                   history=history, tiers=scale, focus=focus,
                   national_recent=float(sums.tail(RECENT_MONTHS).mean()), national_last=float(sums.iloc[-1]),
                   national_year_ago=float(sums.loc[year_ago]) if year_ago in sums.index else np.nan)


# --- change since the previous report --------------------------------------------------------

def change_since_previous(out: Outlook, previous: pd.DataFrame | None, panel: pd.DataFrame,
                          target: str, tier_years: int = DEFAULT_TIER_YEARS) -> dict | None:
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
            prev_tiers = outlook(prev, panel, target, what="previous report", national=False,
                                 tier_years=tier_years).units.set_index("unit")["tier_name"].to_dict()
        except ReportError:
            prev_tiers = {}
    changes = {}
    for _, row in out.shown.iterrows():
        unit = row["unit"]
        parts = []
        if unit in same_month.index:
            was = float(same_month.at[unit, "q50"])
            parts.append(f"{fmt_signed(round_count(row['next_q50']) - round_count(was))} (was {fmt_count(was)})")
        else:
            parts.append(f"no forecast for {fmt_month(first)}")
        if unit in prev_tiers:
            was_tier = prev_tiers[unit]
            parts.append("tier unchanged" if was_tier == row["tier_name"] else f"tier {was_tier} → {row['tier_name']}")
        changes[unit] = "; ".join(parts)
    return {"origin": prev_origin, "by_unit": changes,
            "note": (f"Change of the median forecast for {fmt_month(first)} since the previous report "
                     f"(data up to {fmt_month(prev_origin)}) and of the tier.")}
