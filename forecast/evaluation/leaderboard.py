"""The leaderboard: models ranked by their scores, printed with enough decimals to tell them apart.

One table for every command that ranks models (``forecast backtest``, ``forecast experiment
run``, ``forecast experiment leaderboard``, ``forecast registry list``) and for MLflow's logged
values, which are rounded the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

__all__ = ["decimals", "exact_table", "leaderboard"]

#: The score columns a leaderboard shows, in this order; the first one present ranks.
LEADERBOARD_SCORES = ("crps", "mae", "rmse", "rmsle", "mase", "coverage50", "coverage90", "mis90", "brier",
                      "crps_skill")


def decimals(values: Iterable[float], start: int = 3, limit: int = 8) -> int:
    """Fewest decimals (at least ``start``) that print distinct ``values`` distinctly.

    ``[0.13130, 0.13145]`` needs 4 (``0.1313``, ``0.1315``) where 3 prints both as ``0.131``;
    values equal to ``limit`` decimals are taken as equal.
    """
    finite = sorted({round(float(v), limit) for v in values if v is not None and math.isfinite(float(v))})
    for n in range(start, limit + 1):
        if len({f"{v:.{n}f}" for v in finite}) == len(finite):
            return n
    return limit


def exact_table(frame: pd.DataFrame) -> str:
    """``frame`` as text, each number column with as many decimals as it takes to tell its
    values apart (at least 3): a champion at CRPS 0.13130 and a runner-up at 0.13145 print
    as 0.1313 and 0.1315, not both as 0.131."""
    formatters = {}
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col]):
            n = decimals(frame[col].dropna())
            formatters[col] = lambda v, n=n: "" if pd.isna(v) else f"{v:.{n}f}"
    return frame.to_string(index=False, formatters=formatters)


def leaderboard(scores: pd.DataFrame) -> str:
    """Models ranked by their pooled score over all horizons (CRPS; else the first scored metric)."""
    metrics = [c for c in LEADERBOARD_SCORES if c in scores]
    overall = scores[scores["horizon"].astype(str) == "all"]
    if metrics:
        overall = overall.sort_values(metrics[0], kind="stable")
    table = overall[["model", *metrics]].rename(columns={"crps_skill": "crps skill vs best benchmark"})
    return ("leaderboard (all horizons, lower is better; coverage should be near 0.50 / 0.90):\n"
            + exact_table(table.astype({c: float for c in table.columns if c != "model"})))
