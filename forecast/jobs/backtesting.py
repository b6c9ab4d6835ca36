"""The backtest job: rolling-origin backtests of several models from a panel file (``forecast backtest``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.atomic import write_atomically
from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, make_model
from forecast.errors import ModelError
from forecast.evaluation.backtest import BacktestDesign, actual_months_missing, fit_notes, run_backtest
from forecast.evaluation.leaderboard import leaderboard
from forecast.evaluation.scores import add_skill, score_table
from forecast.jobs.common import load_panel
from forecast.jobs.forecasting import model_names
from forecast.schema import month_strings

__all__ = ["BacktestRun", "backtest"]


@dataclass(frozen=True)
class BacktestRun:
    """What :func:`backtest` computed and wrote."""

    forecasts: pd.DataFrame
    scores: pd.DataFrame
    by_unit: pd.DataFrame
    notes: pd.DataFrame
    design: BacktestDesign
    models: list[str]
    units: int
    out_dir: Path

    def summary(self) -> str:
        lines = [leaderboard(self.scores)]
        if len(self.notes):
            counts = self.notes.groupby("model").size()
            lines.append("\nfit notes (fallbacks, e.g. fits that hit their iteration cap): "
                         + ", ".join(f"{m} {n}" for m, n in counts.items()) + f"; see {self.out_dir / 'fit_notes.csv'}")
        missing = actual_months_missing(self.forecasts)
        lines.append(f"\n{len(self.design.origins())} origins x {self.design.horizon} horizons x {self.units} units x "
                     f"{len(self.models)} models; {missing:,} forecast rows have no actual yet (not scored)")
        out = self.out_dir
        lines.append(f"written: {out / 'forecasts.parquet'}, {out / 'scores.csv'}, {out / 'scores_by_unit.csv'}")
        return "\n".join(lines)


def backtest(panel_path: str | Path, *, models: str | Sequence[str], design: BacktestDesign, out_dir: str | Path,
             target: str = "incidents", jobs: int = 1, covariates: Sequence[str] | None = None,
             params: Mapping[str, Mapping[str, Any]] | None = None, gazetteer: str | Path | None = None,
             backend: str = "joblib", scheduler: str | None = None) -> BacktestRun:
    """Rolling-origin backtest of several models; writes forecasts, scores, scores by unit and fit notes.

    ``params`` maps a model name to its hyperparameters. Every model and parameter is checked
    before any work starts.
    """
    names = [DEFAULT_MODEL if n == "default" else n for n in model_names(models)]
    if not names:
        raise ModelError(f"--models {models!r} names no model; give names such as zero,moving_average "
                         "('forecast models' lists them, 'all' runs every one)")
    per_model = dict(params or {})
    stray = [m for m in per_model if m not in names]
    if stray:
        raise ModelError(f"--param names model {stray[0]!r}, which is not in --models")
    for name in names:  # fail on a bad name or parameter before any work starts
        make_model(name, **per_model.get(name, {}))
    panel, _ = load_panel(panel_path, gazetteer)
    factories = {n: (lambda n=n: make_model(n, **per_model.get(n, {}))) for n in names}
    forecasts = run_backtest(panel, factories, design, target=target, n_jobs=jobs, covariates=covariates,
                             backend=backend, scheduler=scheduler)
    scores = score_table(forecasts, panel=panel, target=target)
    benchmarks = [b for b in BENCHMARKS if b in names]
    if benchmarks:
        scores = add_skill(scores, benchmarks)
    by_unit = score_table(forecasts, by=("model", "unit"), panel=panel, target=target)
    text = month_strings(forecasts)
    notes = fit_notes(forecasts)
    out_dir = Path(out_dir)
    write_atomically({
        out_dir / "forecasts.parquet": lambda tmp: text.to_parquet(tmp, index=False),
        out_dir / "scores.csv": lambda tmp: scores.to_csv(tmp, index=False),
        out_dir / "scores_by_unit.csv": lambda tmp: by_unit.to_csv(tmp, index=False),
        out_dir / "fit_notes.csv": lambda tmp: notes.to_csv(tmp, index=False),
    })
    return BacktestRun(forecasts, scores, by_unit, notes, design, names, int(panel["unit"].nunique()), out_dir)
