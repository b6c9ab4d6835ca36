"""Run artifacts drawn with matplotlib's object API and the Agg canvas (no pyplot, no global
backend switch). matplotlib is imported when a figure is made, not with the module.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Scores drawn in the score-by-horizon plot.
PLOTTED_SCORES = ("crps", "mae")


def _figure(width: float = 7.0, height: float = 3.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig

def plot_scores_by_horizon(scores: pd.DataFrame, path: Path, title: str) -> Path:
    per_h = scores.loc[scores["horizon"].astype(str) != "all"].copy()
    per_h["horizon"] = per_h["horizon"].astype(int)
    per_h = per_h.sort_values("horizon")
    shown = [s for s in PLOTTED_SCORES if s in per_h]
    fig = _figure(3.5 * max(1, len(shown)), 3.2)
    for i, score in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        ax.plot(per_h["horizon"], per_h[score], marker="o")
        ax.set_xlabel("horizon (months)")
        ax.set_ylabel(score.upper())
        ax.set_xticks(per_h["horizon"].tolist())
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path

def plot_fan(forecasts: pd.DataFrame, unit: str, path: Path, title: str) -> Path:
    """One-month-ahead forecasts of one unit against the actuals: median, 50% and 90% bands."""
    rows = forecasts.loc[(forecasts["unit"] == unit) & (forecasts["horizon"] == 1)].sort_values("month")
    x = rows["month"].dt.to_timestamp() if isinstance(rows["month"].dtype, pd.PeriodDtype) \
        else pd.to_datetime(rows["month"].astype(str))
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(x, rows["q05"], rows["q95"], alpha=0.2, color="C0", label="90% interval")
    ax.fill_between(x, rows["q25"], rows["q75"], alpha=0.4, color="C0", label="50% interval")
    ax.plot(x, rows["q50"], color="C0", label="median")
    if "y" in rows:
        ax.plot(x, rows["y"], "o", color="k", markersize=3, label="actual")
    ax.set_ylabel("count")
    ax.set_title(f"{title}: {unit}, 1 month ahead")
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return path
