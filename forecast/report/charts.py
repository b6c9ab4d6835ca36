"""Figures of the report as inline SVG, built as plain data for the template to write out.

A figure is a dict: ``width``, ``height``, ``title`` and ``desc`` (its alt text) and
``elements``, each ``{"tag", "attrs", "text", "title"}``. Tag and attribute names come from
this module only; every text and attribute value goes through the template's autoescaping,
so a unit named ``<script>`` is drawn as text. Building SVG by hand instead of through
matplotlib keeps 18+ charts to milliseconds and the markup small and accessible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


#: Okabe-Ito: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: Tier colours, lowest first: ColorBrewer YlOrRd (5 classes), marked colour-blind safe and
#: printable; lightness falls monotonically, so the order reads in greyscale too.
TIER_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
TIER_TEXT = ("#1a1a1a", "#1a1a1a", "#1a1a1a", "#ffffff", "#ffffff")
#: Dash patterns paired with colours, so lines differ in print and for every reader.
DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3", "10 4", "3 6")
FORECAST = "#0072B2"
HISTORY = "#333333"
THRESHOLD = "#D55E00"
GRID = "#dddddd"
#: Fill of a unit outside the report's focus on the maps.
OUT_OF_FOCUS = "#eeeeee"
#: Width of one forecast month in a fan chart, in months of history.
FORECAST_WIDTH = 2.0


def num(value: float) -> str:
    """A coordinate or length as short SVG text (one decimal at most)."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e7 else f"{value:.0f}"


def nice_ticks(top: float, *, n: int = 4, integer: bool = True) -> list[float]:
    """0 and round steps up to at least ``top`` (about ``n`` intervals)."""
    top = float(top) if np.isfinite(top) and top > 0 else 1.0
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(step, 1.0)
        if step != int(step):
            step = math.ceil(step)
    count = int(math.ceil(top / step - 1e-9))
    return [i * step for i in range(count + 1)]


def tick_label(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


class Chart:
    """A plot area with category x positions (months, horizons) and a linear y axis from 0."""

    def __init__(self, n_x: int, y_top: float, *, width: int = 360, height: int = 210,
                 margin: tuple[int, int, int, int] = (46, 10, 16, 30), integer: bool = True) -> None:
        self.left, self.right, self.top, self.bottom = margin
        self.width, self.height = width, height
        self.n_x = max(n_x, 2)
        self.ticks = nice_ticks(y_top, integer=integer)
        self.y_top = self.ticks[-1]
        self.elements: list[dict] = []
        self.plot_w = width - self.left - self.right
        self.plot_h = height - self.top - self.bottom

    def x(self, i: float) -> float:
        return self.left + self.plot_w * i / (self.n_x - 1)

    def y(self, v: float) -> float:
        return self.top + self.plot_h * (1 - min(max(v, 0.0), self.y_top) / self.y_top)

    def add(self, tag: str, text: str | None = None, title: str | None = None, **attrs) -> None:
        self.elements.append({"tag": tag, "attrs": {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()},
                              "text": text, "title": title})

    def shade(self, i0: float, i1: float, label: str) -> None:
        x0, x1 = self.x(i0), self.x(i1)
        self.add("rect", x=num(x0), y=num(self.top), width=num(max(x1 - x0, 0)), height=num(self.plot_h),
                 fill="#f2f2f2")
        self.add("text", label, x=num((x0 + x1) / 2), y=num(self.top + 10), class_="note", text_anchor="middle")

    def grid(self, y_label: str) -> None:
        for v in self.ticks:
            y = num(self.y(v))
            self.add("line", x1=num(self.left), x2=num(self.width - self.right), y1=y, y2=y, stroke=GRID,
                     stroke_width="1")
            self.add("text", tick_label(v), x=num(self.left - 4), y=num(self.y(v) + 3.5), class_="tick",
                     text_anchor="end")
        cy = self.top + self.plot_h / 2
        self.add("text", y_label, x="11", y=num(cy), class_="axis", text_anchor="middle",
                 transform=f"rotate(-90 11 {num(cy)})")

    def x_axis(self, labels: Sequence[tuple[float, str, bool]], x_label: str | None = None) -> None:
        base = num(self.top + self.plot_h)
        self.add("line", x1=num(self.left), x2=num(self.width - self.right), y1=base, y2=base, stroke="#777",
                 stroke_width="1")
        for i, text, major in labels:
            x = num(self.x(i))
            self.add("line", x1=x, x2=x, y1=base, y2=num(self.top + self.plot_h + (5 if major else 3)),
                     stroke="#777", stroke_width="1")
            if text:
                self.add("text", text, x=x, y=num(self.top + self.plot_h + 16), class_="tick", text_anchor="middle")
        if x_label:
            self.add("text", x_label, x=num(self.left + self.plot_w / 2), y=num(self.height - 2), class_="axis",
                     text_anchor="middle")

    def band(self, xs, lo, hi, fill: str, opacity: float) -> None:
        pts = [(self.x(i), self.y(v)) for i, v in zip(xs, hi)] + [(self.x(i), self.y(v)) for i, v in
                                                                 zip(reversed(xs), reversed(list(lo)))]
        self.add("path", d="M" + " L".join(f"{num(a)},{num(b)}" for a, b in pts) + " Z", fill=fill,
                 fill_opacity=f"{opacity:g}", stroke="none")

    def line(self, xs, ys, stroke: str, *, width: float = 1.6, dash: str = "", points: bool = False,
             title: str | None = None) -> None:
        # A missing value breaks the line: the gap is not bridged as if it were data.
        segments, current = [], []
        for i, v in zip(xs, ys):
            if np.isfinite(v):
                current.append((self.x(i), self.y(v)))
            elif current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        pts = [p for seg in segments for p in seg]
        if not pts:
            return
        d = " ".join("M" + " L".join(f"{num(a)},{num(b)}" for a, b in seg) for seg in segments)
        attrs = {"d": d, "fill": "none", "stroke": stroke,
                 "stroke_width": f"{width:g}", "stroke_linejoin": "round"}
        if dash:
            attrs["stroke_dasharray"] = dash
        self.add("path", title=title, **attrs)
        if points:
            for a, b in pts:
                self.add("circle", cx=num(a), cy=num(b), r="1.6", fill=stroke)

    def hline(self, i0: float, i1: float, v: float, stroke: str, dash: str, label: str | None = None) -> None:
        y = num(self.y(v))
        self.add("line", x1=num(self.x(i0)), x2=num(self.x(i1)), y1=y, y2=y, stroke=stroke, stroke_width="1.2",
                 stroke_dasharray=dash)
        if label:
            self.add("text", label, x=num(self.x(i1)), y=num(self.y(v) - 3), class_="note", text_anchor="end",
                     fill=stroke)

    def figure(self, title: str, desc: str) -> dict:
        return {"width": self.width, "height": self.height, "title": title, "desc": desc,
                "elements": self.elements}


def month_ticks(months: pd.PeriodIndex) -> list[tuple[float, str, bool]]:
    """Ticks at each January (labelled with the year) and July; Julys labelled when few Januaries."""
    januaries = [i for i, m in enumerate(months) if m.month == 1]
    sparse = len(januaries) < 2
    out = []
    for i, m in enumerate(months):
        if m.month == 1:
            out.append((i, str(m.year), True))
        elif m.month == 7:
            out.append((i, m.strftime("%b %Y") if sparse else "", False))
    return out


def fan_chart(unit: str, history: pd.Series, forecast: pd.DataFrame, threshold: float | None, *,
              target: str, width: int = 360, height: int = 210, forecast_width: float = FORECAST_WIDTH) -> dict:
    """History and the forecast's median with 50% and 90% bands, fanning out from the last month.

    ``history``: values indexed by month (the last months up to the origin); ``forecast``:
    rows of one unit with ``month, q05, q25, q50, q75, q95``, sorted by month. Each forecast
    month is ``forecast_width`` times as wide as a month of history, so the forecast is not
    squeezed against the right edge; the median is drawn over the axis, with a point per
    month, so a median of 0 stays visible.
    """
    n_h, n_f = len(history), len(forecast)
    months = pd.PeriodIndex([*history.index, *forecast["month"]], freq="M")

    def pos(i: int) -> float:  # x position of month i of `months`
        return float(i) if i < n_h else n_h - 1 + forecast_width * (i - n_h + 1)

    fx = [pos(i) for i in range(n_h - 1, n_h + n_f)]
    last = float(history.iloc[-1])

    def seq(col: str) -> list[float]:
        return [last, *forecast[col].astype(float)]

    top = max(float(np.nanmax(history.to_numpy(float))) if n_h else 0.0, float(forecast["q95"].max()),
              float(threshold or 0) * 1.02, 1.0)
    chart = Chart(int(round(pos(len(months) - 1))) + 1, top * 1.05, width=width, height=height)
    chart.shade(fx[0], fx[-1], "forecast")
    chart.grid(f"{target} per month")
    chart.x_axis([(pos(i), text, major) for i, text, major in month_ticks(months)], "month")
    chart.band(fx, seq("q05"), seq("q95"), FORECAST, 0.18)
    chart.band(fx, seq("q25"), seq("q75"), FORECAST, 0.38)
    if threshold is not None and np.isfinite(threshold):
        chart.hline(fx[0], fx[-1], float(threshold), THRESHOLD, "4 3")
    chart.line(list(range(n_h)), history.to_numpy(float), HISTORY, width=1.4, points=True)
    chart.line(fx, seq("q50"), FORECAST, width=2.2, points=True)
    f0, f1 = forecast.iloc[0], forecast.iloc[-1]
    desc = (f"{unit}: recorded {target} per month from {months[0].strftime('%b %Y')} to "
            f"{history.index[-1].strftime('%b %Y')} (last month {last:g}, highest {np.nanmax(history.to_numpy(float)):g}), "
            f"then the forecast median {f0['q50']:.0f} for {f0['month'].strftime('%b %Y')} "
            f"(90% interval {f0['q05']:.0f} to {f0['q95']:.0f}) and {f1['q50']:.0f} for "
            f"{f1['month'].strftime('%b %Y')} (90% interval {f1['q05']:.0f} to {f1['q95']:.0f})"
            + (f"; escalation means more than {np.floor(threshold):g} a month." if threshold is not None else "."))
    return chart.figure(f"{unit}: recorded and forecast {target}", desc)


def _history_line(chart: Chart, values: np.ndarray, is_filled: np.ndarray, *, colour: str = HISTORY) -> None:
    """Recorded months as a solid line with points, filled (carried, not recorded) months dotted and grey."""
    n_h = len(values)
    observed = np.where(is_filled, np.nan, values)
    # Points mark the recorded months (a month recorded alone between filled ones is a point, not a line).
    chart.line(list(range(n_h)), observed, colour, width=1.4, points=bool(is_filled.any()))
    if is_filled.any():
        # The filled values, dotted, joined to the observation they were carried from.
        join = is_filled | np.roll(is_filled, -1) & ~is_filled
        chart.line(list(range(n_h)), np.where(join, values, np.nan), "#888888", width=1.2, dash="1 3")


def filled_mask(index: pd.PeriodIndex, filled: Sequence[tuple[pd.Period, pd.Period]]) -> np.ndarray:
    """True for the months of ``index`` inside any of the ``filled`` stretches (first, last)."""
    mask = np.zeros(len(index), dtype=bool)
    for first, last in filled:
        mask |= np.asarray((index >= first) & (index <= last))
    return mask


def covariate_chart(title: str, unit_label: str, history: pd.Series, forecast_months: pd.PeriodIndex,
                    held: bool, *, width: int = 360, height: int = 150,
                    filled: Sequence[tuple[pd.Period, pd.Period]] = ()) -> dict:
    """A covariate's recent history, and its value held over the forecast months when models held it.

    ``filled``: stretches of months with no observation (filled by the panel's fill policy):
    shaded, labelled "filled, not recorded", and drawn dotted, so they do not read as data.
    """
    months = pd.PeriodIndex([*history.index, *forecast_months], freq="M")
    values = history.to_numpy(float)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    chart = Chart(len(months), max(top * 1.05, 1e-9), width=width, height=height, integer=top >= 10)
    n_h = len(history)
    is_filled = filled_mask(history.index, filled)
    for i0, i1 in _stretches(is_filled):
        # From the last observed month (or the start) to the last filled one.
        chart.add("rect", x=num(chart.x(max(i0 - 1, 0))), y=num(chart.top),
                  width=num(max(chart.x(i1) - chart.x(max(i0 - 1, 0)), 2)), height=num(chart.plot_h),
                  fill="#e9e4f0", stroke="none")
        if chart.x(i1) - chart.x(max(i0 - 1, 0)) >= 100:  # label only stretches wide enough to hold it
            chart.add("text", "filled, not recorded", x=num((chart.x(max(i0 - 1, 0)) + chart.x(i1)) / 2),
                      y=num(chart.top + 24), class_="note", text_anchor="middle")
    chart.shade(n_h - 1, len(months) - 1, "held at last value" if held else "forecast months")
    chart.grid(unit_label)
    _history_line(chart, values, is_filled)
    if held and np.isfinite(values[-1]):
        chart.line([n_h - 1, len(months) - 1], [values[-1], values[-1]], HISTORY, width=1.2, dash="4 3")
    chart.x_axis(month_ticks(months), "month")
    finite = values[np.isfinite(values) & ~is_filled]
    desc = (f"{title} ({unit_label}) from {months[0].strftime('%b %Y')} to {history.index[-1].strftime('%b %Y')}: "
            + (f"last recorded value {finite[-1]:,.4g}, range {finite.min():,.4g} to {finite.max():,.4g}"
               if len(finite) else "no value recorded in these months")
            + (f"; {int(is_filled.sum())} of these months have no record and are filled." if is_filled.any()
               else "."))
    return chart.figure(title, desc)


def _stretches(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    out, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        if not v and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def line_chart(title: str, desc: str, x_labels: Sequence[str], series: Sequence[dict], y_label: str, *,
               x_label: str, width: int = 600, height: int = 240, legend_width: int = 215) -> dict:
    """Lines over categories with a legend at the right; each series ``{name, values, bold}``."""
    values = np.array([v for s in series for v in s["values"]], dtype=float)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    chart = Chart(len(x_labels), top * 1.1, width=width, height=height,
                  margin=(46, 10 + legend_width, 12, 32), integer=False)
    chart.grid(y_label)
    xs = list(range(len(x_labels)))
    for k, s in enumerate(series):
        colour, dash = OKABE_ITO[k % len(OKABE_ITO)], DASHES[k % len(DASHES)]
        chart.line(xs, s["values"], colour, width=3.0 if s.get("bold") else 1.5, dash=dash, points=True,
                   title=s["name"])
        y = chart.top + 8 + 16 * k
        x0 = width - legend_width + 4
        chart.add("line", x1=num(x0), x2=num(x0 + 24), y1=num(y), y2=num(y), stroke=colour,
                  stroke_width="3" if s.get("bold") else "1.5", stroke_dasharray=dash or "none")
        chart.add("text", s["name"], x=num(x0 + 30), y=num(y + 4), class_="legend-bold" if s.get("bold") else "tick")
    chart.x_axis([(i, t, True) for i, t in enumerate(x_labels)], x_label)
    return chart.figure(title, desc)


def scenario_chart(unit: str, history: pd.Series, frames: Sequence[tuple[str, pd.DataFrame]], *, target: str,
                   width: int = 300, height: int = 190) -> dict:
    """One unit's recent history and each scenario's median and 90% band (first = baseline)."""
    n_h = len(history)
    months = pd.PeriodIndex([*history.index, *frames[0][1]["month"]], freq="M")
    last = float(history.iloc[-1])
    top = max([float(history.max()), 1.0] + [float(f["q95"].max()) for _, f in frames])
    chart = Chart(len(months), top * 1.05, width=width, height=height)
    chart.shade(n_h - 1, len(months) - 1, "scenarios")
    chart.grid(f"{target} per month")
    chart.line(list(range(n_h)), history.to_numpy(float), HISTORY, width=1.3, points=True)
    fx = list(range(n_h - 1, len(months)))
    parts = []
    for k, (name, f) in enumerate(frames):
        colour, dash = OKABE_ITO[k % len(OKABE_ITO)], DASHES[k % len(DASHES)]
        chart.band(fx, [last, *f["q05"]], [last, *f["q95"]], colour, 0.12)
        chart.line(fx, [last, *f["q50"]], colour, width=1.8, dash=dash, title=name)
        parts.append(f"{name}: median {f['q50'].iloc[-1]:.1f} (90% interval {f['q05'].iloc[-1]:.1f} to "
                     f"{f['q95'].iloc[-1]:.1f}) in {f['month'].iloc[-1].strftime('%b %Y')}")
    chart.x_axis(month_ticks(months), "month")
    return chart.figure(f"{unit}: {target} under each scenario", f"{unit}: " + "; ".join(parts) + ".")


def path_chart(title: str, unit_label: str, history: pd.Series, paths: Sequence[tuple[str, pd.Series]], *,
               width: int = 360, height: int = 170, filled: Sequence[tuple[pd.Period, pd.Period]] = ()) -> dict:
    """A covariate's history and its path under each scenario (first = baseline).

    ``filled``: stretches of months the panel filled (no record): drawn dotted and grey, not as data.
    """
    months = pd.PeriodIndex([*history.index, *paths[0][1].index], freq="M")
    n_h = len(history)
    values = np.concatenate([history.to_numpy(float), *[p.to_numpy(float) for _, p in paths]])
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    chart = Chart(len(months), max(top * 1.05, 1e-9), width=width, height=height, integer=top >= 10)
    chart.shade(n_h - 1, len(months) - 1, "scenario paths")
    chart.grid(unit_label)
    is_filled = filled_mask(history.index, filled)
    _history_line(chart, history.to_numpy(float), is_filled)
    fx = list(range(n_h - 1, len(months)))
    last = float(history.iloc[-1]) if n_h else np.nan
    for k, (name, p) in enumerate(paths):
        chart.line(fx, [last, *p.to_numpy(float)], OKABE_ITO[k % len(OKABE_ITO)], width=1.8,
                   dash=DASHES[k % len(DASHES)], title=name)
    chart.x_axis(month_ticks(months), "month")
    desc = f"{title} ({unit_label}): " + "; ".join(
        f"{name} reaches {p.iloc[-1]:,.4g} by {p.index[-1].strftime('%b %Y')}" for name, p in paths) + (
        f"; {int(is_filled.sum())} of the months shown before the origin have no record and are filled"
        if is_filled.any() else "") + "."
    return chart.figure(title, desc)
