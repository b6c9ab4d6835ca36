"""The numbers and sentences of a report, computed from :class:`~forecast.report.ReportInputs`.

Nothing here fits or loads a model: it reads the forecast frame it is given, the panel (for
the recent history, the escalation thresholds and the actuals) and, when given, backtest and
ledger frames. Every generated sentence is hedged ("is projected", "90% interval"); none says
"will".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.evaluation import escalation, scores
from forecast.report.inputs import ReportError, ReportInputs
from forecast.report.licences import LICENCES, SYNTHETIC
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, validate_forecast

__all__ = ["COVARIATE_LABELS", "Outlook", "backtest_summary", "change_since_previous", "covariate_label",
           "fmt_count", "fmt_interval", "fmt_month", "fmt_prob", "headline", "ledger_summary", "outlook",
           "source_notes"]

#: Readable names and units of the covariates this project knows; others are shown by column name.
COVARIATE_LABELS = {
    "us_troops": ("US troops in Iraq", "US troops"),
    "ops_tempo": ("Operations tempo (coalition and government operations)", "index, 0-100"),
    "coalition_strikes": ("Coalition airstrikes", "airstrikes per month"),
    "coalition_shows_of_force": ("Coalition shows of force", "shows of force per month"),
    "insurgent_attacks_gc": ("Insurgent attacks (geocausal data)", "attacks per month"),
    "sigacts_total": ("SIGACT reports", "reports per month"),
    "sigacts_ied": ("SIGACT IED reports", "reports per month"),
}
#: Escalation probability from which a unit counts as notable for the headline.
HEADLINE_PROBABILITY = 0.3
HEADLINE_MIN, HEADLINE_MAX = 3, 5
#: Months of history in each fan chart.
HISTORY_MONTHS = 36


def covariate_label(column: str) -> tuple[str, str]:
    """(title, unit of measurement) of a covariate column."""
    return COVARIATE_LABELS.get(column, (column.replace("_", " "), "value"))


# --- formatting ------------------------------------------------------------------------------

def fmt_count(value: float) -> str:
    """Counts as readers take them in: one decimal below 10, whole numbers with separators above."""
    if value is None or not np.isfinite(value):
        return "–"
    value = float(value)
    if abs(value) >= 9.95 or abs(value - round(value)) < 0.05:
        text = f"{value:,.0f}"
        return "0" if text == "-0" else text
    return f"{value:.1f}"


def fmt_signed(value: float) -> str:
    text = fmt_count(abs(value))
    if text in ("0", "0.0"):
        return "±0"
    return ("+" if value > 0 else "−") + text


def counted(value: float, noun: str) -> str:
    """``"1 incident"``, ``"2.5 incidents"``: the count and its noun (given in the plural)."""
    text = fmt_count(value)
    return f"{text} {noun[:-1] if text == '1' and noun.endswith('s') else noun}"


def fmt_interval(lo: float, hi: float) -> str:
    return f"{fmt_count(lo)}–{fmt_count(hi)}"


def fmt_prob(p: float) -> str:
    """A probability in words a reader cannot over-read: never 0% or 100%."""
    if p is None or not np.isfinite(p):
        return "–"
    if p < 0.01:
        return "<1%"
    if p > 0.99:
        return ">99%"
    return f"{p:.0%}"


def fmt_month(month: pd.Period, *, long: bool = False) -> str:
    return month.strftime("%B %Y" if long else "%b %Y")


def fmt_range(first: pd.Period, last: pd.Period) -> str:
    if first == last:
        return fmt_month(first, long=True)
    if first.year == last.year:
        return f"{first.strftime('%B')}–{fmt_month(last, long=True)}"
    return f"{fmt_month(first, long=True)}–{fmt_month(last, long=True)}"


# --- the outlook per unit --------------------------------------------------------------------

@dataclass(frozen=True)
class Outlook:
    """One forecast read unit by unit.

    ``units`` has one row per unit, ranked (highest tier, then highest escalation
    probability, then highest expected count first), with the columns ``unit, tier,
    tier_name, trend, recent, last3, expected, projected, p_next, p_max, p_max_month,
    threshold, next_q05, next_q50, next_q95, last_q05, last_q50, last_q95``.
    """

    origin: pd.Period
    months: pd.PeriodIndex
    forecast: pd.DataFrame           # validated, Period columns, with ``threshold`` and ``p_escalation``
    units: pd.DataFrame
    national: pd.DataFrame           # per month: mean and quantiles summed over units
    history: pd.DataFrame            # months x units of the target, up to the origin

    @property
    def horizon(self) -> int:
        return len(self.months)


def _periods(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    out = frame.copy()
    for col in ("origin", "month"):
        if not isinstance(out[col].dtype, pd.PeriodDtype):
            try:
                out[col] = pd.PeriodIndex(out[col].astype(str), freq="M")
            except (ValueError, TypeError) as exc:
                raise ReportError(f"{what}: column {col!r} does not hold months (YYYY-MM): {exc}") from None
    return out


def check_forecast(forecast: pd.DataFrame, panel: pd.DataFrame, what: str = "forecast") -> pd.DataFrame:
    """The forecast frame with Period columns, checked against the panel it is reported with."""
    validate_forecast(forecast, source=what, columns=FORECAST_COLUMNS)
    if forecast.empty:
        raise ReportError(f"{what}: no rows")
    frame = _periods(forecast, what)
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
            what: str = "forecast") -> Outlook:
    """Tier, trend, escalation probability and key quantiles of every unit."""
    if target not in panel:
        raise ReportError(f"panel: no column {target!r} to report on")
    frame = check_forecast(forecast, panel, what)
    origin = frame["origin"].iloc[0]
    upto = panel.loc[panel["month"] <= origin]
    history = upto.pivot(index="month", columns="unit", values=target).astype(float)
    threshold = escalation.escalation_threshold(upto, origin, target=target)
    frame["threshold"] = threshold.reindex(frame["unit"]).to_numpy()
    frame["p_escalation"] = escalation.exceedance_probability(frame[list(QUANTILE_COLUMNS)].to_numpy(float),
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
        "next_q05": first["q05"], "next_q50": first["q50"], "next_q95": first["q95"],
        "last_q05": last["q05"], "last_q50": last["q50"], "last_q95": last["q95"],
    })
    window = history.tail(escalation.TREND_WINDOW)
    units["recent"] = window.mean().reindex(units.index)
    units["last3"] = window.sum().reindex(units.index)
    units["tier"] = escalation.threat_tier(units["expected"], units["p_max"])
    units["tier_name"] = [escalation.TIER_NAMES[t] for t in units["tier"]]
    units["trend"] = escalation.trend(units["recent"], units["projected"])
    units = (units.rename_axis("unit").reset_index()
             .sort_values(["tier", "p_max", "expected", "unit"], ascending=[False, False, False, True],
                          kind="stable").reset_index(drop=True))
    national = frame.groupby("month")[["mean", *QUANTILE_COLUMNS]].sum()
    months = pd.PeriodIndex(sorted(frame["month"].unique()), freq="M")
    return Outlook(origin=origin, months=months, forecast=frame, units=units, national=national,
                   history=history)


# --- headline --------------------------------------------------------------------------------

def focus_units(units: pd.DataFrame) -> pd.DataFrame:
    """The 3-5 units with the highest escalation probability or the largest projected rise.

    The three with the highest escalation probability always; up to two more that are
    rising or reach :data:`HEADLINE_PROBABILITY`; and the unit with the largest projected
    rise whenever its trend is rising.
    """
    rise = units["projected"] - units["recent"]
    ranked = units.assign(rise=rise).sort_values(["p_max", "rise", "unit"], ascending=[False, False, True],
                                                 kind="stable")
    chosen = list(ranked.index[:HEADLINE_MIN])
    rest = ranked.iloc[HEADLINE_MIN:]
    notable = rest.index[((rest["trend"] == "rising") | (rest["p_max"] >= HEADLINE_PROBABILITY)).to_numpy()]
    chosen += list(notable[: HEADLINE_MAX - HEADLINE_MIN])
    rising = ranked[ranked["trend"] == "rising"]
    if len(rising):
        top = rising["rise"].idxmax()
        if top not in chosen:
            if len(chosen) >= HEADLINE_MAX:
                chosen[-1] = top
            else:
                chosen.append(top)
    return ranked.loc[chosen]


def headline(out: Outlook, inputs: ReportInputs, unit_word: str, coverage90: float | None) -> dict:
    """Sentences of the headline, generated from the numbers (each a plain string)."""
    target = inputs.target
    first, last = out.months[0], out.months[-1]
    vintage = inputs.meta.get("vintage") or str(out.origin)
    period = fmt_range(first, last)
    lines = [
        f"Forecast for {period} ({out.horizon} month{'s' if out.horizon > 1 else ''} ahead), made from "
        f"data up to {fmt_month(out.origin, long=True)} (data vintage {vintage}) with the model "
        f"{inputs.model_version or inputs.model}."
    ]
    nat = out.national
    recent = out.history.tail(escalation.TREND_WINDOW).sum(axis=1).mean()
    national = (
        f"Nationally, the median forecast is {counted(nat['q50'].iloc[0], target)} in "
        f"{fmt_month(first, long=True)} (90% interval {fmt_interval(nat['q05'].iloc[0], nat['q95'].iloc[0])})"
    )
    if out.horizon > 1:
        national += (f" and {counted(nat['q50'].iloc[-1], target)} in {fmt_month(last, long=True)} (90% interval "
                     f"{fmt_interval(nat['q05'].iloc[-1], nat['q95'].iloc[-1])})")
    national += (f", against an average of {fmt_count(recent)} a month over the last {escalation.TREND_WINDOW} months "
                 "recorded.")
    lines.append(national)
    focus = []
    for _, row in focus_units(out.units).iterrows():
        focus.append({
            "unit": row["unit"],
            "tier": row["tier_name"],
            "tier_index": int(row["tier"]),
            "text": (
                f"{row['tier_name']} tier; escalation probability up to {fmt_prob(row['p_max'])} "
                f"({fmt_month(row['p_max_month'])}); about {counted(row['expected'], target)} a month expected "
                f"(median {fmt_count(row['projected'])}), against {fmt_count(row['recent'])} a month over the "
                f"last {escalation.TREND_WINDOW} months ({row['trend']})."
            ),
        })
    counts = out.units["trend"].value_counts()
    rising = counts.get("rising", 0)
    trend_line = (f"Of {len(out.units)} {unit_word}s, {rising} {'is' if rising == 1 else 'are'} projected to rise, "
                  f"{counts.get('stable', 0)} to stay about level and {counts.get('falling', 0)} to fall.")
    hedge = ("These are projections, not predictions of certainty: each comes with a 90% interval, the range "
             "the model considers likely")
    if coverage90 is not None and np.isfinite(coverage90):
        hedge += (f"; in the backtest below such intervals contained the recorded count "
                  f"{coverage90:.0%} of the time (90% would be ideal).")
    else:
        hedge += "."
    return {"lines": lines, "focus": focus, "trend": trend_line, "hedge": hedge}


# --- change since the previous report --------------------------------------------------------

def change_since_previous(out: Outlook, previous: pd.DataFrame | None, panel: pd.DataFrame,
                          target: str) -> dict | None:
    """Per unit: the change of the next month's median and of the tier since the previous report."""
    if previous is None:
        return None
    prev = _periods(previous, "previous report")
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
            prev_tiers = outlook(prev, panel, target, what="previous report").units.set_index("unit")[
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


# --- how good the forecasts have been ----------------------------------------------------------

_SCORE_METRICS = ("crps", "mae", "coverage50", "coverage90")


def backtest_summary(backtest: pd.DataFrame | None, model: str, target: str) -> dict | None:
    """Scores of the model and its benchmarks by horizon, with skill and a plain summary."""
    if backtest is None or backtest.empty:
        return None
    bt = _periods(backtest, "backtest")
    models = list(pd.unique(bt["model"]))
    if model not in models:
        raise ReportError(f"backtest: no rows for the report's model {model!r}; it has {', '.join(map(str, models))}")
    scored = bt[bt["y"].notna()]
    if scored.empty:
        return None
    table = scores.score_table(scored, metrics=list(_SCORE_METRICS))
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
    return {"rows": rows, "horizons": horizons, "crps": crps, "coverage90": cover, "order": order,
            "text": text, "coverage90_model": float(me["coverage90"]), "model": model}


def ledger_summary(past: pd.DataFrame | None, target: str) -> dict:
    """How the previously issued forecasts did, scored where their actuals are known."""
    if past is None or past.empty:
        return {"issued": 0, "text": "No forecasts have been issued yet: this section fills in as the "
                                     "ledger of issued forecasts grows and their months are recorded."}
    frame = _periods(past, "past forecasts")
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
        keys = ["issued", "month"] if "issued" in h1 else ["origin", "month"]
        nat = h1.groupby(keys, sort=True).agg(q05=("q05", "sum"), q50=("q50", "sum"), q95=("q95", "sum"),
                                              y=("y", "sum"), units=("unit", "size")).reset_index().tail(12)
        out["national"] = [{"issued": str(r[keys[0]]), "month": fmt_month(r["month"]),
                            "median": fmt_count(r["q50"]), "interval": fmt_interval(r["q05"], r["q95"]),
                            "actual": fmt_count(r["y"]), "inside": bool(r["q05"] <= r["y"] <= r["q95"])}
                           for _, r in nat.iterrows()]
    return out


# --- sources, licences, caveats --------------------------------------------------------------



def _sample_digests() -> set[str]:
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    out = set()
    for path in sample.glob("*.csv") if sample.is_dir() else []:
        out.add(hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def is_synthetic(source: dict) -> bool:
    """A source is the synthetic demo data when it is a bundled sample file or named like one."""
    name = Path(str(source.get("path", ""))).name.lower()
    if "synthetic" in name or name in ("ucdp_ged_demo.csv", "covariates_demo.csv"):
        return True
    return bool(source.get("sha256")) and source["sha256"] in _sample_digests()


def source_notes(meta: dict) -> dict:
    """Sources with their licence and citation, covariates and the quarantine count."""
    sources = []
    synthetic = False
    for src in meta.get("sources") or []:
        fake = is_synthetic(src)
        synthetic |= fake
        title, licence, cite = SYNTHETIC if fake else LICENCES.get(src.get("format"), LICENCES["generic"])
        sources.append({
            "file": Path(str(src.get("path", "?"))).name, "format": src.get("format", "?"),
            "title": title, "licence": licence, "citation": cite,
            "rows": src.get("rows"), "events": src.get("events"), "quarantined": src.get("quarantined", 0),
            "filtered_out": src.get("filtered_out", 0), "last_date": src.get("last_date"),
            "sha256": str(src.get("sha256") or "")[:12], "filters": src.get("filters"),
        })
    cov = meta.get("covariates") or None
    if cov:
        fake_cov = is_synthetic(cov)
        synthetic |= fake_cov
        cov = {"file": Path(str(cov.get("path", "?"))).name, "columns": cov.get("columns", []),
               "scope": cov.get("scope"), "fill": cov.get("fill"), "synthetic": fake_cov,
               "sha256": str(cov.get("sha256") or "")[:12]}
    quarantined = sum(int(s.get("quarantined") or 0) for s in meta.get("sources") or [])
    return {"sources": sources, "covariates": cov, "quarantined": quarantined, "synthetic": synthetic,
            "recorded": bool(meta.get("sources"))}
