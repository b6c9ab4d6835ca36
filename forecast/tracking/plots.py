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


#: Nominal level of each coverage score, drawn as a dashed line.
_NOMINAL = {"coverage90": 0.9, "coverage50": 0.5}


def plot_models_by_horizon(table: pd.DataFrame, path: Path, score: str = "crps") -> Path:
    """Every model's ``score`` and interval coverage (``coverage90``, else ``coverage50``) against
    the horizon, one line per model; the winner over all horizons drawn thickest."""
    per_h = table.loc[table["horizon"].astype(str) != "all"].copy()
    per_h["horizon"] = per_h["horizon"].astype(int)
    pooled = table.loc[table["horizon"].astype(str) == "all"].sort_values(score, kind="stable")
    models = list(pooled["model"]) or list(dict.fromkeys(per_h["model"]))
    coverage = next((c for c in _NOMINAL if c in per_h), None)
    shown = [score, *([coverage] if coverage else [])]
    width = 5.2 * len(shown) + 2.2
    fig = _figure(width, 4.2)
    axes = [fig.add_subplot(1, len(shown), i + 1) for i in range(len(shown))]
    horizons = sorted(per_h["horizon"].unique())
    for rank, model in enumerate(models):
        rows = per_h.loc[per_h["model"] == model].sort_values("horizon")
        style = {"marker": "o", "markersize": 3, "color": f"C{rank % 10}",
                 "linestyle": "-" if rank < 10 else "--", "linewidth": 2.6 if rank == 0 else 1.1}
        for ax, column in zip(axes, shown):
            ax.plot(rows["horizon"], rows[column], label=model if ax is axes[0] else None, **style)
    for ax, column in zip(axes, shown):
        if column in _NOMINAL:
            ax.axhline(_NOMINAL[column], color="k", linestyle=":", linewidth=1, label=None)
        ax.set_xlabel("horizon (months ahead)")
        ax.set_ylabel(column.upper() if column == score else f"{column} (nominal {_NOMINAL[column]:g})")
        ax.set_xticks(horizons)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{score.upper()} by horizon (lower is better)")
    if coverage:
        axes[1].set_title(f"{coverage} by horizon (nearer {_NOMINAL[coverage]:g} is better)")
    right = 1 - 2.1 / width
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(loc="center left", bbox_to_anchor=(right, 0.5), fontsize="small", title="model (best first)")
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
