"""The scenario section of the report, read from a :class:`forecast.scenario.ScenarioResult`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast.report import charts
from forecast.report.content import covariate_label
from forecast.report.fmt import fmt_signed

__all__ = ["scenario_view"]


def scenario_view(result, out, target: str, history: pd.DataFrame) -> dict:
    """The scenario section from a ScenarioResult (see forecast.scenario)."""
    names = [s.name for s in result.scenarios]
    fc = result.forecasts.copy()
    for col in ("month", "origin"):
        if col in fc and not isinstance(fc[col].dtype, pd.PeriodDtype):
            fc[col] = pd.PeriodIndex(fc[col].astype(str), freq="M")
    figures = []
    recent = history.tail(12)
    for unit in out.units["unit"]:
        frames = [(n, fc[(fc["scenario"] == n) & (fc["unit"] == unit)].sort_values("month")) for n in names]
        frames = [(n, f) for n, f in frames if len(f)]
        if not frames:
            continue
        figures.append({"unit": unit, "figure": charts.scenario_chart(unit, recent[unit], frames, target=target)})
    diffs = result.differences.copy()
    if len(diffs) and not isinstance(diffs["month"].dtype, pd.PeriodDtype):
        diffs["month"] = pd.PeriodIndex(diffs["month"].astype(str), freq="M")
    others = [n for n in names if n != result.baseline]
    table, diff_month = [], None
    if len(diffs):
        diff_month = diffs["month"].max()
        at = diffs[diffs["month"] == diff_month].set_index(["unit", "scenario"])
        for unit in out.units["unit"]:
            cells = []
            for n in others:
                if (unit, n) in at.index:
                    r = at.loc[(unit, n)]
                    cells.append(f"{fmt_signed(r['q50'])} ({fmt_signed(r['q05'])} to {fmt_signed(r['q95'])})")
                else:
                    cells.append("–")
            table.append({"unit": unit, "cells": cells})
    paths_fig = []
    paths = result.paths.copy()
    hist = result.history.copy()
    for frame in (paths, hist):
        if len(frame) and not isinstance(frame["month"].dtype, pd.PeriodDtype):
            frame["month"] = pd.PeriodIndex(frame["month"].astype(str), freq="M")
    for cov in pd.unique(paths["covariate"]) if len(paths) else []:
        title, unit_label = covariate_label(str(cov))
        h = hist[hist["covariate"] == cov]
        p = paths[paths["covariate"] == cov]
        national = h.groupby("month")["value"].nunique().le(1).all() and p.groupby(["scenario", "month"])[
            "value"].nunique().le(1).all()
        units = [None] if national else list(pd.unique(p["unit"]))
        for unit in units:
            hs = h if unit is None else h[h["unit"] == unit]
            ps = p if unit is None else p[p["unit"] == unit]
            series = hs.groupby("month")["value"].first().sort_index().tail(24)
            lines = [(n, ps[ps["scenario"] == n].groupby("month")["value"].first().sort_index()) for n in names]
            lines = [(n, s) for n, s in lines if len(s)]
            if len(series) and lines:
                label = title if unit is None else f"{title}, {unit}"
                paths_fig.append(charts.path_chart(label, unit_label, series, lines))
    scenarios = [{"name": s.name, "description": s.description, "rationale": s.rationale,
                  "file": Path(str(s.path)).name if getattr(s, "path", None) else None,
                  "baseline": s.name == result.baseline, "colour": charts.OKABE_ITO[k % len(charts.OKABE_ITO)],
                  "dash": charts.DASHES[k % len(charts.DASHES)]} for k, s in enumerate(result.scenarios)]
    national = []
    nat = getattr(result, "national", None)
    if nat is not None and len(nat):
        nat = nat.copy()
        if not isinstance(nat["month"].dtype, pd.PeriodDtype):
            nat["month"] = pd.PeriodIndex(nat["month"].astype(str), freq="M")
        for month, rows in nat.sort_values("month").groupby("month", sort=True):
            by = rows.set_index("scenario")
            national.append({"month": month, "cells": [
                f"{fmt_signed(by.at[n, 'q50'])} ({fmt_signed(by.at[n, 'q05'])} to {fmt_signed(by.at[n, 'q95'])})"
                if n in by.index else "–" for n in others]})
    return {"model": result.model, "baseline": result.baseline, "scenarios": scenarios, "others": others,
            "national": national, "notes": list(getattr(result, "notes", ()) or ()),
            "method": getattr(result, "method", "") or "",
            "figures": figures, "table": table, "diff_month": diff_month, "paths": paths_fig,
            "blind": list(result.blind_models), "responsive": bool(result.responsive)}
