"""Render a report to one self-contained HTML file, and print it to PDF with headless Chromium.

The HTML holds everything inline (CSS, SVG figures, the report's own data as JSON) and
references nothing outside itself, so opening it makes no request to any host. Templates are
Jinja2 with autoescaping on for every value: unit names, file names and model labels are
data and are always escaped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from features.atomic import write_bytes_atomically
from features.gazetteer import load_gazetteer
from forecast.evaluation import escalation
from forecast.evaluation.backtest import default_covariates
from forecast.report import charts
from forecast.report.content import (
    HISTORY_MONTHS, backtest_summary, change_since_previous, covariate_label, fmt_count, fmt_interval,
    fmt_month, fmt_prob, fmt_range, fmt_signed, headline, ledger_summary, outlook, source_notes,
)
from forecast.report.inputs import REPORT_DATA_ID, REPORT_DATA_VERSION, ReportError, ReportInputs, dataset_identity
from forecast.schema import FORECAST_COLUMNS

__all__ = ["CHROMIUM_ENV", "find_chromium", "print_pdf", "render_report", "write_report"]

#: Environment variable naming the Chromium (or Chrome) binary used to print PDFs.
CHROMIUM_ENV = "FORECAST_CHROMIUM"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,  # every template, whatever its name: all values are escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(count=fmt_count, prob=fmt_prob, interval=fmt_interval, month=fmt_month,
                       signed=fmt_signed, pct=_pct,
                       score=lambda v: "–" if v is None or not np.isfinite(v) else f"{v:.3f}")
    return env


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.0%}".replace("-", "−")


def _package_version() -> str:
    try:
        return version("insurgency-forecast")
    except PackageNotFoundError:
        return "unknown"


def _covariates(panel: pd.DataFrame, target: str) -> list[str]:
    return [c for c in default_covariates(panel) if c != target and pd.api.types.is_numeric_dtype(panel[c])]


def _is_national(panel: pd.DataFrame, column: str) -> bool:
    return bool((panel.groupby("month")[column].nunique(dropna=False) <= 1).all())


def _scenario_view(result, out, target: str, history: pd.DataFrame) -> dict:
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


def _report_data(inputs: ReportInputs, out, issued: str) -> dict:
    frame = out.forecast[list(FORECAST_COLUMNS)].copy()
    frame["origin"] = frame["origin"].astype(str)
    frame["month"] = frame["month"].astype(str)
    units = out.units[["unit", "tier", "tier_name", "trend", "expected", "p_max", "next_q50"]].copy()
    return {
        "version": REPORT_DATA_VERSION, "origin": str(out.origin), "issued": issued, "target": inputs.target,
        "model": inputs.model, "model_version": inputs.model_version, "vintage": inputs.meta.get("vintage"),
        "horizon": out.horizon, "units": units.to_dict("records"), "forecast": frame.to_dict("records"),
        "dataset": dataset_identity(inputs.meta, inputs.panel["unit"].unique()),
    }


def render_report(inputs: ReportInputs) -> str:
    """The report as one self-contained HTML document.

    Raises
    ------
    ReportError
        When the inputs do not fit together (forecast units or origin not in the panel, a
        backtest without the report's model, a GeoJSON naming unknown units, ...).
    """
    gazetteer = inputs.gazetteer or load_gazetteer()
    unit_word = gazetteer.unit_word
    target = inputs.target
    issued = inputs.issued or datetime.now(timezone.utc).date().isoformat()
    out = outlook(inputs.forecast, inputs.panel, target)
    backtest = backtest_summary(inputs.backtest, inputs.model, target)
    head = headline(out, inputs, unit_word, backtest["coverage90_model"] if backtest else None)
    change = change_since_previous(out, inputs.previous, inputs.panel, target)

    if inputs.geojson is not None:
        map_fig, unmapped = charts.geo_map(out.units, inputs.geojson, gazetteer, target=target, unit_word=unit_word)
        map_kind = "boundaries"
    else:
        map_fig, unmapped = charts.tile_map(out.units, gazetteer, target=target, unit_word=unit_word)
        map_kind = "tiles"

    history = out.history.tail(HISTORY_MONTHS)
    fans = []
    for _, row in out.units.iterrows():
        unit = row["unit"]
        rows = out.forecast[out.forecast["unit"] == unit].sort_values("month")
        fans.append({"unit": unit, "tier": int(row["tier"]), "tier_name": row["tier_name"],
                     "figure": charts.fan_chart(unit, history[unit], rows, float(row["threshold"]), target=target)})

    held = "covariates" in inputs.forecast and (inputs.forecast["covariates"] == "held last value").any()
    panel_upto = inputs.panel[inputs.panel["month"] <= out.origin]
    national_cov, unit_cov = [], {}
    for col in _covariates(inputs.panel, target):
        title, unit_label = covariate_label(col)
        wide = panel_upto.pivot(index="month", columns="unit", values=col).tail(HISTORY_MONTHS)
        if _is_national(inputs.panel, col):
            national_cov.append(charts.covariate_chart(title, unit_label, wide.iloc[:, 0], out.months, held))
        else:
            for unit in out.units["unit"]:
                unit_cov.setdefault(unit, []).append(
                    charts.covariate_chart(f"{title}, {unit}", unit_label, wide[unit], out.months, held,
                                           height=120))
    for fan in fans:
        fan["covariates"] = unit_cov.get(fan["unit"], [])

    score_fig = None
    if backtest:
        hs = [h for h in backtest["horizons"] if h != "all"]
        series = [{"name": m + (" (this report)" if m == inputs.model else ""), "bold": m == inputs.model,
                   "values": [backtest["crps"][m][h] for h in hs]} for m in backtest["order"]]
        score_fig = charts.line_chart(
            "Backtest CRPS by horizon", "CRPS (lower is better) of each model at horizons " + ", ".join(hs) + ": "
            + "; ".join(f"{s['name']} " + ", ".join(f"{v:.2f}" for v in s["values"]) for s in series) + ".",
            [f"{h}" for h in hs], series, "CRPS (incidents)" if target == "incidents" else f"CRPS ({target})",
            x_label="months ahead (horizon)")

    scenario = _scenario_view(inputs.scenarios, out, target, out.history) if inputs.scenarios is not None else None
    sources = source_notes(inputs.meta)
    country = ", ".join(sorted(gazetteer.countries))
    context = {
        "title": f"{target.capitalize()} forecast by {unit_word}: {country}",
        "period": fmt_range(out.months[0], out.months[-1]),
        "issued": issued, "out": out, "inputs": inputs, "unit_word": unit_word, "target": target,
        "head": head, "change": change, "map": map_fig, "map_kind": map_kind, "unmapped": unmapped,
        "tiers": [{"name": n, "range": r, "colour": charts.TIER_COLOURS[i], "text": charts.TIER_TEXT[i]}
                  for i, (n, r) in enumerate(escalation.tier_ranges(target))],
        "tier_colours": charts.TIER_COLOURS, "tier_text": charts.TIER_TEXT,
        "tier_definition": escalation.tier_definition(target, unit_word),
        "escalation_definition": escalation.escalation_definition(target, unit_word),
        "trend_definition": escalation.trend_definition(target),
        "fans": fans, "national_covariates": national_cov, "held": held, "history_months": HISTORY_MONTHS,
        "backtest": backtest, "score_figure": score_fig, "ledger": ledger_summary(inputs.past_forecasts, target),
        "scenario": scenario, "sources": sources, "meta": inputs.meta, "version": _package_version(),
        "first_month": out.months[0], "last_month": out.months[-1],
        "data": _report_data(inputs, out, issued), "data_id": REPORT_DATA_ID,
        "colours": {"forecast": charts.FORECAST, "history": charts.HISTORY, "threshold": charts.THRESHOLD},
    }
    figures = [map_fig, score_fig, *national_cov, *(f["figure"] for f in fans),
               *(c for f in fans for c in f["covariates"])]
    if scenario:
        figures += [f["figure"] for f in scenario["figures"]] + scenario["paths"]
    for i, fig in enumerate(f for f in figures if f is not None):
        fig["id"] = f"fig{i + 1}"
    return _environment().get_template("report.html.j2").render(**context)


# --- PDF ---------------------------------------------------------------------------------------

def find_chromium() -> str:
    """The Chromium binary: ``$FORECAST_CHROMIUM``, else chromium / chromium-browser / google-chrome on PATH.

    Raises
    ------
    ReportError
        When none is found (the message names the environment variable to set).
    """
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        path = shutil.which(named) or (named if Path(named).is_file() else None)
        if not path:
            raise ReportError(f"${CHROMIUM_ENV} is {named!r}, which is not an executable file")
        return path
    for name in _CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ReportError(f"--pdf needs Chromium or Chrome to print the report: none of {', '.join(_CHROMIUM_NAMES)} "
                      f"is on PATH; install one (Debian: apt-get install chromium) or set ${CHROMIUM_ENV} to its path")


def print_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 120.0) -> None:
    """Print an HTML file to PDF with headless Chromium (page size from the report's A4 print CSS)."""
    binary = find_chromium()
    with tempfile.TemporaryDirectory(prefix="forecast-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--metrics-recording-only", "--no-pdf-header-footer", f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}", Path(html_path).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"{binary} did not finish printing {html_path} within {timeout:.0f} s") from None
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise ReportError(f"{binary} failed to print {html_path} to PDF (exit {done.returncode}): {' | '.join(tail)}")
    if not pdf_path.read_bytes()[:5] == b"%PDF-":
        raise ReportError(f"{binary} wrote {pdf_path}, but it is not a PDF")


def write_report(inputs: ReportInputs, out: Path, *, pdf: bool = False) -> dict[str, Path]:
    """Render the report to ``out`` and, with ``pdf``, print it to ``out.with_suffix('.pdf')``.

    Both files are written atomically together: a failure (for instance while printing)
    leaves any earlier report at these paths as it was.

    Returns
    -------
    dict
        ``{"html": out}`` and, with ``pdf``, ``"pdf"``.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"{out}: a report is written as .html")
    html = render_report(inputs).encode("utf-8")
    files = {out: html}
    paths = {"html": out}
    if pdf:
        pdf_path = out.with_suffix(".pdf")
        with tempfile.TemporaryDirectory(prefix="forecast-report-") as tmp:
            page = Path(tmp) / out.name
            page.write_bytes(html)
            printed = Path(tmp) / "report.pdf"
            print_pdf(page, printed)
            files[pdf_path] = printed.read_bytes()
        paths["pdf"] = pdf_path
    write_bytes_atomically(files)
    return paths
