"""The scenario section of the report, read from a :class:`forecast.scenario.ScenarioResult`.

A model that does not respond to covariates at the forecast months gets one sentence and no
chart (its projections equal the baseline's, and drawing them would suggest a finding). A
responding model's projections come with its backtest record against the best benchmark,
said first when it forecast worse than that benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecast.report import charts
from forecast.report.content import covariate_label, filled_stretches
from forecast.report.fmt import fmt_signed

__all__ = ["scenario_view", "skill_sentence"]


def _periods(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    frame = frame.copy()
    for col in columns:
        if col in frame and len(frame) and not isinstance(frame[col].dtype, pd.PeriodDtype):
            frame[col] = pd.PeriodIndex(frame[col].astype(str), freq="M")
    return frame


def _band(r) -> str:
    return f"{fmt_signed(r['q50'], 1)} ({fmt_signed(r['q05'], 1)} to {fmt_signed(r['q95'], 1)})"


def skill_sentence(model: str, backtest: dict | None) -> tuple[str, bool]:
    """(the model's backtest record against the best benchmark in words, whether it was worse)."""
    if backtest is None or backtest.get("best_benchmark") is None or not np.isfinite(backtest.get("ratio", np.nan)):
        return (f"No backtest was run with this report, so how well {model} forecast before is not known here; "
                "read its projections with that in mind."), False
    ratio, best = backtest["ratio"], backtest["best_benchmark"]
    if ratio > 1:
        return (f"Read with care: in the backtest, {model}'s forecasts were {ratio - 1:.0%} worse than those of "
                f"the best benchmark, {best} (CRPS ratio {ratio:.2f}), so these projections come from a model that "
                "forecast worse than a simple benchmark."), True
    return (f"In the backtest, {model}'s forecasts were {1 - ratio:.0%} better than those of the best benchmark, "
            f"{best} (CRPS ratio {ratio:.2f})."), False


def _path_figures(result, names: list[str], meta: dict) -> list[dict]:
    """One chart per covariate the scenarios move (per unit only where a unit's path differs from the baseline)."""
    paths = _periods(result.paths, "month")
    hist = _periods(result.history, "month")
    figures = []
    for cov in pd.unique(paths["covariate"]) if len(paths) else []:
        title, unit_label = covariate_label(str(cov), meta)
        h = hist[hist["covariate"] == cov]
        p = paths[paths["covariate"] == cov]
        wide = p.pivot_table(index=["unit", "month"], columns="scenario", values="value", aggfunc="first")
        moved = [u for u, block in wide.groupby(level="unit")
                 if not all(np.allclose(block[n].to_numpy(float), block[names[0]].to_numpy(float), equal_nan=True)
                            for n in names[1:] if n in block)]
        if not moved:
            continue  # no scenario moves this covariate: nothing to draw
        national = h.groupby("month")["value"].nunique().le(1).all() and p.groupby(["scenario", "month"])[
            "value"].nunique().le(1).all()
        for unit in ([None] if national else moved):
            hs = h if unit is None else h[h["unit"] == unit]
            ps = p if unit is None else p[p["unit"] == unit]
            series = hs.groupby("month")["value"].first().sort_index().tail(24)
            lines = [(n, ps[ps["scenario"] == n].groupby("month")["value"].first().sort_index()) for n in names]
            lines = [(n, s) for n, s in lines if len(s)]
            if len(series) and lines:
                label = title if unit is None else f"{title}, {unit}"
                figures.append(charts.path_chart(label, unit_label, series, lines,
                                                 filled=filled_stretches(meta, str(cov))))
    return figures


def scenario_view(result, out, target: str, history: pd.DataFrame, *, meta: dict | None = None,
                  backtest: dict | None = None, units: list[str] | None = None) -> dict:
    """The scenario section from a ScenarioResult (see forecast.scenario).

    ``units``: the units whose projections are drawn (default every shown unit); ``backtest``:
    :func:`forecast.report.accuracy.backtest_summary` of the model, for its record.
    """
    names = [s.name for s in result.scenarios]
    others = [n for n in names if n != result.baseline]
    view = {"model": result.model, "baseline": result.baseline, "responsive": bool(result.responsive),
            "blind": list(result.blind_models), "others": others}
    if not result.responsive:
        responders = ", ".join(sorted(set(getattr(result, "responders", ()) or ())))
        view["sentence"] = (f"{result.model} does not respond to covariates at the forecast months, so every "
                            f"scenario's projection equals its forecast above and no scenario is drawn"
                            + (f"; models that respond: {responders}." if responders else "."))
        return view
    skill, worse = skill_sentence(result.model, backtest)
    fc = _periods(result.forecasts, "month", "origin")
    shown = list(units) if units is not None else list(out.shown["unit"])
    recent = history.tail(12)
    figures = []
    for unit in shown:
        frames = [(n, fc[(fc["scenario"] == n) & (fc["unit"] == unit)].sort_values("month")) for n in names]
        frames = [(n, f) for n, f in frames if len(f)]
        if frames:
            figures.append({"unit": unit, "figure": charts.scenario_chart(unit, recent[unit], frames, target=target)})
    diffs = _periods(result.differences, "month")
    table, diff_month = [], None
    if len(diffs):
        diff_month = diffs["month"].max()
        at = diffs[diffs["month"] == diff_month].set_index(["unit", "scenario"])
        for unit in out.shown["unit"]:
            table.append({"unit": unit, "cells": [_band(at.loc[(unit, n)]) if (unit, n) in at.index else "–"
                                                  for n in others]})
    scenarios = [{"name": s.name, "description": s.description, "rationale": s.rationale,
                  "file": Path(str(s.path)).name if getattr(s, "path", None) else None,
                  "baseline": s.name == result.baseline, "colour": charts.OKABE_ITO[k % len(charts.OKABE_ITO)],
                  "dash": charts.DASHES[k % len(charts.DASHES)]} for k, s in enumerate(result.scenarios)]
    national = []
    nat = _periods(getattr(result, "national", pd.DataFrame()), "month")
    if len(nat):
        for month, rows in nat.sort_values("month").groupby("month", sort=True):
            by = rows.set_index("scenario")
            national.append({"month": month, "cells": [_band(by.loc[n]) if n in by.index else "–" for n in others]})
    view.update({"skill": skill, "worse": worse, "scenarios": scenarios, "national": national,
                 "notes": list(getattr(result, "notes", ()) or ()), "method": getattr(result, "method", "") or "",
                 "figures": figures, "table": table, "diff_month": diff_month,
                 "paths": _path_figures(result, names, meta or {})})
    return view
