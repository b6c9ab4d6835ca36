"""The parent run of an experiment as its leaderboard: which model wins, overall and at each horizon.

Once every model's backtest is scored, :func:`log_winners` writes onto the parent run

- the run description (``mlflow.note.content``, what the run page shows first): the
  experiment's description, the winner overall and the winner at each horizon;
- tags ``forecast.winner`` and ``forecast.winner_h1``.. (the runs table can show tags as columns);
- metrics ``best/crps`` and ``best/crps_h1``..: the winning score, pooled and per horizon;
- artifacts the UI shows as they are: ``winners_by_horizon.csv`` (a table: winner, score,
  runner-up, margin and the winner's coverage at each horizon), ``scores_by_model_and_horizon.csv``
  (every model x horizon x score) and ``crps_coverage_by_horizon.png`` (every model's CRPS and
  interval coverage against the horizon).

and onto the experiment a saved view of its runs table, :data:`VIEW_KEY` (the experiment tag
``mlflow.sharedViewState.<key>`` that the MLflow UI opens with ``?viewStateShareKey=<key>``):
sorted by ``crps_h1``, best first, with the columns ``crps_h1``.. and the pooled scores. Sorted
by a metric, the UI lists every model's run; nested runs are folded only in date order.

The winner is the model with the lowest score (CRPS unless told otherwise); ties keep the
table's order.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from forecast.tracking.metrics import horizon_key, rounded
from forecast.tracking.plots import plot_models_by_horizon
from forecast.evaluation.leaderboard import decimals
from forecast.tracking.store import log_batch

__all__ = ["PLOT", "SCORES_TABLE", "VIEW_KEY", "WINNERS_TABLE", "leaderboard_view", "log_winners",
           "winners_by_horizon", "winners_text"]

WINNERS_TABLE = "winners_by_horizon.csv"
SCORES_TABLE = "scores_by_model_and_horizon.csv"
PLOT = "crps_coverage_by_horizon.png"
#: Coverage columns reported beside the winner (those the table has).
_COVERAGES = ("coverage50", "coverage90")
#: The saved view of the runs table (``?viewStateShareKey=forecast-leaderboard``).
VIEW_KEY = "forecast-leaderboard"
_VIEW_TAG = "mlflow.sharedViewState."


def _horizons(table: pd.DataFrame) -> list:
    """The table's horizons in order (1, 2, ...), then ``all``."""
    per_h = sorted({int(h) for h in table["horizon"] if str(h) != "all"})
    return [*per_h, *(["all"] if (table["horizon"].astype(str) == "all").any() else [])]


def winners_by_horizon(table: pd.DataFrame, score: str = "crps") -> pd.DataFrame:
    """One row per horizon (then ``all``): ``horizon, winner, <score>, runner_up,
    runner_up_<score>, margin`` (the runner-up's score over the winner's, minus 1) and the
    winner's coverages.

    ``table`` is a combined score table (``model, horizon, n, <scores>``, every model).
    """
    rows = []
    for h in _horizons(table):
        at = table.loc[table["horizon"].astype(str) == str(h)].dropna(subset=[score])
        ranked = at.sort_values(score, kind="stable")
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        row = {"horizon": str(h), "winner": str(best["model"]), score: float(best[score])}
        if len(ranked) > 1:
            second = ranked.iloc[1]
            row.update({"runner_up": str(second["model"]), f"runner_up_{score}": float(second[score]),
                        "margin": float(second[score]) / float(best[score]) - 1 if float(best[score]) else float("nan")})
        row.update({c: float(best[c]) for c in _COVERAGES if c in ranked})
        rows.append(row)
    return pd.DataFrame(rows)


def winners_text(winners: pd.DataFrame, score: str = "crps", description: str | None = None) -> str:
    """The run description: ``description``, the winner overall and at each horizon (Markdown),
    each score with as many decimals as it takes to tell it from the runner-up's."""
    n = decimals([*winners[score], *winners.get(f"runner_up_{score}", pd.Series(dtype=float)).dropna()])
    name = score.upper()

    def shown(row) -> str:
        text = f"**{row['winner']}** ({name} {row[score]:.{n}f}"
        if isinstance(row.get("runner_up"), str):
            text += f"; runner-up {row['runner_up']} {row[f'runner_up_{score}']:.{n}f}"
        return text + ")"

    lines = [description.strip()] if description and description.strip() else []
    overall = winners.loc[winners["horizon"] == "all"]
    if len(overall):
        lines.append(f"Winner over all horizons: {shown(overall.iloc[0])}.")
    per_h = winners.loc[winners["horizon"] != "all"]
    if len(per_h):
        lines.append("Winner by horizon (months ahead):\n\n"
                     + "\n".join(f"- {row['horizon']}: {shown(row)}" for _, row in per_h.iterrows()))
    return "\n\n".join(lines)


def leaderboard_view(table: pd.DataFrame, score: str = "crps") -> str:
    """The saved view of the module docstring, as the JSON the MLflow UI reads: the runs table
    sorted by ``<score>_h1`` (ascending), showing ``<score>_h1``.. and the pooled score and
    coverages (the columns MLflow shows by default, source, models and dataset, make room)."""
    horizons = [h for h in _horizons(table) if h != "all"]
    pooled = [score, *(c for c in _COVERAGES if c in table)]
    columns = [*(f"metrics.`{horizon_key(score, h)}`" for h in horizons), *(f"metrics.`{c}`" for c in pooled)]
    return json.dumps({"orderByKey": f"metrics.`{horizon_key(score, horizons[0] if horizons else 1)}`",
                       "orderByAsc": True, "selectedColumns": columns, "columnOrder": columns})


def log_winners(client: MlflowClient, run_id: str, table: pd.DataFrame, *, description: str | None = None,
                score: str = "crps", experiment_id: str | None = None) -> pd.DataFrame:
    """Write the leaderboard of the module docstring onto the parent run ``run_id`` (and the
    saved view onto ``experiment_id``); returns the :func:`winners_by_horizon` table."""
    winners = winners_by_horizon(table, score)
    metrics, tags = {}, {}
    for _, row in winners.iterrows():
        h = row["horizon"]
        suffix = "" if h == "all" else f"_h{h}"
        metrics[f"best/{score}" if h == "all" else f"best/{horizon_key(score, int(h))}"] = rounded(row[score])
        tags[f"forecast.winner{suffix}"] = row["winner"]
    tags["mlflow.note.content"] = winners_text(winners, score, description)
    log_batch(client, run_id, metrics=metrics, tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        winners.to_csv(tmp / WINNERS_TABLE, index=False, float_format="%.6g")
        table.to_csv(tmp / SCORES_TABLE, index=False, float_format="%.6g")
        plot_models_by_horizon(table, tmp / PLOT, score)
        for name in (WINNERS_TABLE, SCORES_TABLE, PLOT):
            client.log_artifact(run_id, str(tmp / name))
    if experiment_id is not None:
        client.set_experiment_tag(experiment_id, _VIEW_TAG + VIEW_KEY, leaderboard_view(table, score))
    return winners
