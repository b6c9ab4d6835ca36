"""Everything the template shows, computed from :class:`~forecast.report.ReportInputs` (:func:`report_context`)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from features.gazetteer import load_gazetteer
from forecast.evaluation import escalation
from forecast.report import charts, maps
from forecast.report.accuracy import backtest_summary, ledger_summary
from forecast.report.content import (
    HISTORY_MONTHS, RECENT_MONTHS, change_since_previous, covariate_label, filled_stretches, outlook, watch_rule,
)
from forecast.report.fmt import fmt_month, fmt_range
from forecast.report.headline import headline
from forecast.report.inputs import REPORT_DATA_ID, REPORT_DATA_VERSION, ReportInputs, dataset_identity
from forecast.report.numbers import NATIONAL, report_numbers
from forecast.report.scenario_view import scenario_view
from forecast.report.sources import source_notes
from forecast.report.split import type_split
from forecast.report.tiers import trend_definition
from forecast.report.track import accuracy_over_time, escalation_skill, last_forecast
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS, TARGETS

__all__ = ["PROVENANCE_KEYS", "STALE_VINTAGE_MONTHS", "SUMMARY_ABOVE", "SUMMARY_FANS", "SUMMARY_ROWS",
           "report_context", "report_title", "vintage_warning"]

#: What :attr:`ReportInputs.provenance` may hold (each shown when known).
PROVENANCE_KEYS = ("members", "git_commit", "panel_path", "panel_sha256", "mlflow_run", "registered")
#: A data vintage more than this many months before the issue date is flagged in the report.
STALE_VINTAGE_MONTHS = 3
#: Above this many units shown, the report draws summaries instead of one chart per unit ...
SUMMARY_ABOVE = 60
#: ... its tables list this many units (the report's CSV has every one) ...
SUMMARY_ROWS = 30
#: ... and it draws the fan charts of this many units, those with the highest expected counts.
SUMMARY_FANS = 12


def report_title(target: str, unit_word: str, countries) -> str:
    """``Incidents forecast by governorate: Iraq``; without a country, no trailing colon."""
    country = ", ".join(sorted(c for c in countries if c))
    base = f"{target.capitalize()} forecast by {unit_word}"
    return f"{base}: {country}" if country else base


def vintage_warning(vintage: str | None, issued: str, first: pd.Period, last: pd.Period) -> str | None:
    """A warning when the data end more than :data:`STALE_VINTAGE_MONTHS` months before the issue date."""
    if not vintage:
        return None
    try:
        age = pd.Period(issued[:7], freq="M") - pd.Period(str(vintage), freq="M")
    except ValueError:
        return None
    months = age.n
    if months <= STALE_VINTAGE_MONTHS:
        return None
    return (f"Old data: the data end in {vintage}, {months} months before this report was issued ({issued}). "
            f"The forecasts are for {fmt_range(first, last)}, the months after the data end, not for the months "
            "after the issue date; anything since is not in them.")


def _covariates(panel: pd.DataFrame, target: str, used: tuple[str, ...] | None) -> list[str]:
    """The covariates to draw: those the model uses when the caller says, else every numeric one of the panel."""
    if used is None:
        used = tuple(c for c in panel.columns if c not in ("unit", "month", *TARGETS)
                     and not c.startswith(tuple(f"{t}_" for t in TARGETS)))
    return [c for c in used if c in panel and c != target and pd.api.types.is_numeric_dtype(panel[c])]


def _is_national(panel: pd.DataFrame, column: str) -> bool:
    return bool((panel.groupby("month")[column].nunique(dropna=False) <= 1).all())


def _staleness(meta: dict, origin: pd.Period) -> list[dict]:
    """Covariates by how long ago they were last observed (from the panel metadata)."""
    info = (meta.get("covariates") or {}).get("staleness") or {}
    out = []
    for column, s in info.items():
        last = s.get("last_observed")
        age = (origin - pd.Period(last, freq="M")).n if last else None
        title, _ = covariate_label(column, meta)
        out.append({"column": column, "title": title, "last": last, "age": age,
                    "filled_months": s.get("filled_months", 0), "fill": s.get("fill"),
                    "stale": age is None or age > int(meta["covariates"].get("fill_warn_months", 3))})
    return out


def _report_data(inputs: ReportInputs, out, issued: str) -> dict:
    frame = out.forecast[list(FORECAST_COLUMNS)].copy()
    frame["origin"] = frame["origin"].astype(str)
    frame["month"] = frame["month"].astype(str)
    units = out.shown[["unit", "tier", "tier_name", "trend", "expected", "p_max", "next_q50", "p_increase",
                       "watch"]].copy()
    national = out.national.table[["mean", *QUANTILE_COLUMNS]].copy()
    national.index = national.index.astype(str)
    return {
        "version": REPORT_DATA_VERSION, "origin": str(out.origin), "issued": issued, "target": inputs.target,
        "model": inputs.model, "model_version": inputs.model_version, "vintage": inputs.meta.get("vintage"),
        "horizon": out.horizon, "units": units.to_dict("records"), "forecast": frame.to_dict("records"),
        "national": national.rename_axis("month").reset_index().to_dict("records"),
        "national_dependence": out.national.dependence, "tier_bounds": list(out.tiers.bounds),
        "focus": list(out.focus) if out.focus else None,
        # What makes another report comparable as this one's "previous report".
        "dataset": dataset_identity(inputs.meta, inputs.panel["unit"].unique()),
    }


def _score_figure(backtest: dict, model: str, target: str) -> dict:
    hs = [h for h in backtest["horizons"] if h != "all"]
    series = [{"name": m + (" (this report)" if m == model else ""), "bold": m == model,
               "values": [backtest["crps"][m][h] for h in hs]} for m in backtest["order"]]
    return charts.line_chart(
        "Backtest CRPS by horizon", "CRPS (lower is better) of each model at horizons " + ", ".join(hs) + ": "
        + "; ".join(f"{s['name']} " + ", ".join(f"{v:.2f}" for v in s["values"]) for s in series) + ".",
        [f"{h}" for h in hs], series, f"CRPS ({target})", x_label="months ahead (horizon)")


def _next_rows(numbers: pd.DataFrame, shown: pd.DataFrame, limit: int | None) -> tuple[list[dict], dict]:
    """Rows of the next-month table (watch-list units first, then by the probability of an increase,
    then by the expected count) and its national row, read from the report's numbers."""
    first = numbers[numbers["horizon"] == 1]
    national = first[first["scope"] == NATIONAL].iloc[0].to_dict()
    rows = first[first["scope"] != NATIONAL].set_index("unit")
    tier = shown.set_index("unit")["tier"]
    rows = rows.assign(tier_index=tier.reindex(rows.index)).reset_index()
    rows = rows.sort_values(["watch", "p_increase_pct", "mean", "unit"], ascending=[False, False, False, True],
                            kind="stable")
    return rows.head(limit).to_dict("records") if limit else rows.to_dict("records"), national


def _fans(out, inputs: ReportInputs, summary: bool) -> list[dict]:
    """The national total's fan chart, then the shown units' (in summary mode: the highest expected counts)."""
    target = inputs.target
    history = out.history.tail(HISTORY_MONTHS)
    nat = out.national.table.rename_axis("month").reset_index()
    fans = [{"unit": f"National total (all {len(out.units):,})", "national": True,
             "figure": charts.fan_chart("National total", history.sum(axis=1), nat, None, target=target)}]
    shown = out.shown
    if summary:
        shown = shown.sort_values("expected", ascending=False, kind="stable").head(SUMMARY_FANS)
    for _, row in shown.iterrows():
        unit = row["unit"]
        rows = out.forecast[out.forecast["unit"] == unit].sort_values("month")
        fans.append({"unit": unit, "tier": int(row["tier"]), "tier_name": row["tier_name"], "national": False,
                     "figure": charts.fan_chart(unit, history[unit], rows, float(row["threshold"]), target=target)})
    return fans


def _covariate_charts(out, inputs: ReportInputs, fans: list[dict], held: bool) -> tuple[list[str], list[dict]]:
    """(covariates drawn, national covariate charts); each fan's own covariates go into ``fan["covariates"]``."""
    columns = _covariates(inputs.panel, inputs.target, inputs.model_covariates)
    panel_upto = inputs.panel[inputs.panel["month"] <= out.origin]
    national_cov, unit_cov = [], {}
    fan_units = [f["unit"] for f in fans if not f["national"]]
    for col in columns:
        title, unit_label = covariate_label(col, inputs.meta)
        filled = filled_stretches(inputs.meta, col)
        if _is_national(inputs.panel, col):
            series = panel_upto.groupby("month")[col].first().tail(HISTORY_MONTHS)
            national_cov.append(charts.covariate_chart(title, unit_label, series, out.months, held, filled=filled))
            continue
        wide = panel_upto[panel_upto["unit"].isin(fan_units)].pivot(index="month", columns="unit", values=col)
        wide = wide.tail(HISTORY_MONTHS)
        for unit in fan_units:
            unit_cov.setdefault(unit, []).append(
                charts.covariate_chart(f"{title}, {unit}", unit_label, wide[unit], out.months, held, height=120,
                                       filled=filled))
    for fan in fans:
        fan["covariates"] = unit_cov.get(fan["unit"], [])
    return columns, national_cov


def report_context(inputs: ReportInputs, *, version: str, csv_name: str | None = None) -> dict:
    """The template's variables (and ``numbers``, the report's CSV); every figure gets a unique ``id``."""
    gazetteer = inputs.gazetteer or load_gazetteer()
    unit_word = gazetteer.unit_word
    target = inputs.target
    issued = inputs.issued or datetime.now(timezone.utc).date().isoformat()
    out = outlook(inputs.forecast, inputs.panel, target, backtest=inputs.backtest, model=inputs.model,
                  tier_years=inputs.tier_years, focus=inputs.units)
    summary = len(out.shown) > SUMMARY_ABOVE
    backtest = backtest_summary(inputs.backtest, inputs.model, target)
    skill = escalation_skill(inputs.backtest, inputs.panel, inputs.model, target)
    head = headline(out, inputs, unit_word, backtest["coverage90_model"] if backtest else None, skill)
    change = change_since_previous(out, inputs.previous, inputs.panel, target, tier_years=inputs.tier_years)
    numbers = report_numbers(out, inputs.model)
    next_rows, next_national = _next_rows(numbers, out.shown, SUMMARY_ROWS if summary else None)

    map_fig, unmapped, map_kind = None, [], "summary"
    if summary:
        pass  # a map of hundreds of units is unreadable: the tier counts below it say the same
    elif inputs.geojson is not None:
        map_fig, unmapped = maps.geo_map(out.units, inputs.geojson, gazetteer, target=target, unit_word=unit_word)
        map_kind = "boundaries"
    else:
        map_fig, unmapped = maps.tile_map(out.units, gazetteer, target=target, unit_word=unit_word)
        map_kind = "tiles"
    tier_counts = out.shown["tier_name"].value_counts()

    fans = _fans(out, inputs, summary)
    held = "covariates" in inputs.forecast and (inputs.forecast["covariates"] == "held last value").any()
    covariates, national_cov = _covariate_charts(out, inputs, fans, held)

    score_fig = _score_figure(backtest, inputs.model, target) if backtest else None
    scenario = scenario_view(inputs.scenarios, out, target, out.history, meta=inputs.meta, backtest=backtest,
                             units=[f["unit"] for f in fans if not f["national"]]) \
        if inputs.scenarios is not None else None
    sources = source_notes(inputs.meta)
    ledger = ledger_summary(inputs.past_forecasts, target)
    if inputs.past_forecasts is not None and len(inputs.past_forecasts) and "issued" in inputs.past_forecasts:
        record = {"source": "ledger", "last": last_forecast(inputs.past_forecasts, key="issued"),
                  "timeline": accuracy_over_time(inputs.past_forecasts, key="issued")}
    else:
        record = {"source": "backtest", "last": last_forecast(inputs.backtest, model=inputs.model),
                  "timeline": accuracy_over_time(inputs.backtest, model=inputs.model)}
    tiers = [{"name": n, "range": r, "colour": charts.TIER_COLOURS[i], "text": charts.TIER_TEXT[i],
              "count": int(tier_counts.get(n, 0))} for i, (n, r) in enumerate(out.tiers.ranges())]
    title = report_title(target, unit_word, gazetteer.countries)
    period = fmt_range(out.months[0], out.months[-1])
    ranked = out.shown.head(SUMMARY_ROWS) if summary else out.shown
    context = {
        "title": title, "period": period,
        "running_title": f"{title}, {period}",
        "running_flag": "SYNTHETIC DEMO DATA: not real events" if sources["synthetic"] else "",
        "running_vintage": f"Data vintage {inputs.meta.get('vintage') or out.origin} · issued {issued}",
        "issued": issued, "out": out, "inputs": inputs, "unit_word": unit_word, "target": target,
        "head": head, "change": change, "map": map_fig, "map_kind": map_kind, "unmapped": unmapped,
        "tiers": tiers, "tier_colours": charts.TIER_COLOURS, "tier_text": charts.TIER_TEXT,
        "tier_definition": out.tiers.definition(unit_word),
        "escalation_definition": escalation.escalation_definition(target, unit_word),
        "trend_definition": trend_definition(target), "watch_rule": watch_rule(unit_word, target),
        "national_definition": out.national.describe(unit_word), "national": out.national.table,
        "next_rows": next_rows, "next_national": next_national, "ranked": ranked.to_dict("records"),
        "numbers": numbers, "csv_name": csv_name, "summary": summary, "n_shown": len(out.shown),
        "summary_above": SUMMARY_ABOVE, "summary_rows": SUMMARY_ROWS, "summary_fans": SUMMARY_FANS,
        "recent_months": RECENT_MONTHS, "year_ago_month": out.year_ago_month,
        "fans": fans, "national_covariates": national_cov, "covariates_drawn": covariates,
        "model_covariates": inputs.model_covariates, "held": held, "history_months": HISTORY_MONTHS,
        "backtest": backtest, "score_figure": score_fig, "ledger": ledger, "skill": skill, "record": record,
        "scenario": scenario, "sources": sources, "meta": inputs.meta, "version": version,
        "first_month": out.months[0], "last_month": out.months[-1], "recent_first": out.origin - (RECENT_MONTHS - 1),
        "staleness": [c for c in _staleness(inputs.meta, out.origin) if c["column"] in covariates],
        "vintage_warning": vintage_warning(inputs.meta.get("vintage"), issued, out.months[0], out.months[-1]),
        "split": type_split(inputs.panel if out.focus is None else inputs.panel[inputs.panel["unit"].isin(out.focus)],
                            out.origin, out.shown.set_index("unit")["expected"], target),
        "provenance": {key: (inputs.provenance or {}).get(key) for key in PROVENANCE_KEYS},
        "data": _report_data(inputs, out, issued), "data_id": REPORT_DATA_ID,
        "colours": {"forecast": charts.FORECAST, "history": charts.HISTORY, "threshold": charts.THRESHOLD},
        "month_long": lambda m: fmt_month(m, long=True),
    }
    figures = [map_fig, score_fig, *national_cov, *(f["figure"] for f in fans),
               *(c for f in fans for c in f["covariates"])]
    if scenario and scenario["responsive"]:
        figures += [f["figure"] for f in scenario["figures"]] + scenario["paths"]
    for i, fig in enumerate(f for f in figures if f is not None):
        fig["id"] = f"fig{i + 1}"
    return context
