"""Experiment jobs: run one experiment file, tracked in MLflow, and the leaderboard across runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from features.atomic import write_atomically
from features.errors import DataError
from forecast.experiment import ExperimentConfig, combined_scores, fit_final, load_data, load_experiment, run_model
from forecast.jobs.common import Echo, JobError, month_strings, quiet
from forecast.jobs.forecasting import leaderboard
from forecast.models.base import ModelError
from forecast.tracking import ExperimentTracker, ModelRef, TrackingError, compare, eval_window, resolve_tracking_uri

__all__ = ["ExperimentResult", "leaderboard_runs", "run_experiment"]


@dataclass(frozen=True)
class ExperimentResult:
    """One tracked experiment: its scores, the parent run and the logged (maybe registered) final model."""

    config: ExperimentConfig
    scores: pd.DataFrame
    parent_run_id: str
    ref: ModelRef
    tracking_uri: str

    def summary(self) -> str:
        lines = [leaderboard(self.scores),
                 f"\nparent run {self.parent_run_id} in MLflow experiment {self.config.name!r}; "
                 f"final model: {self.ref.model_uri}"]
        if self.ref.registered_name:
            lines.append(f"registered {self.ref.registered_name} version {self.ref.version}; "
                         f"promote with: forecast registry promote {self.ref.registered_name} --version {self.ref.version}")
        lines.append(f"look at it with: mlflow ui --backend-store-uri {self.tracking_uri}")
        return "\n".join(lines)


def run_experiment(path: str | Path, *, tracking_uri: str | None = None, register_as: str | None = None,
                   out_dir: str | Path | None = None, echo: Echo = quiet) -> ExperimentResult:
    """Backtest every model of an experiment file: one parent run, one nested run per model, then
    the best model refitted on the whole panel and logged (registered as ``register_as`` if given).

    Raises
    ------
    DataError, ModelError, TrackingError
        A mistake found before the MLflow run starts (the file, the data, the server).
    JobError
        A failure during the run; the MLflow run is marked FAILED.
    """
    config = load_experiment(path)
    uri = resolve_tracking_uri(tracking_uri)
    tracker = ExperimentTracker(config.name, uri)
    panel, metadata, source = load_data(config)
    echo(f"experiment {config.name}: {len(config.labels)} model run(s), tracking at {uri}")
    outcomes = []
    try:
        with tracker.parent_run(config.name, params=config.as_dict(), config_path=config.path, panel=panel,
                                panel_source=source, panel_metadata=metadata) as parent_id:
            for label in tqdm(config.labels, desc="models", unit="model"):
                spec = config.spec(label)
                with tracker.child_run(label, {"model": spec.model, **spec.params}, model=spec.model) as child:
                    outcome = run_model(config, panel, label)
                    child.log_backtest(outcome.forecasts, outcome.scores)
                outcomes.append(outcome)
            table = combined_scores(outcomes, config)
            overall = table[table["horizon"].astype(str) == "all"].sort_values("crps")
            best = str(overall["model"].iloc[0])
            best_outcome = next(o for o in outcomes if o.label == best)
            with tracker.child_run(f"final: {best}", {"model": best_outcome.model, **best_outcome.params},
                                   model=best_outcome.model) as child:
                final = fit_final(config, panel, best)
                child.crps_ = float(overall["crps"].iloc[0])
                child.eval_window_ = eval_window(best_outcome.forecasts)
                ref = child.log_model(final, final.history_, config.backtest.horizon, registered_name=register_as)
    except (DataError, ModelError, TrackingError) as exc:
        raise JobError(f"{exc} (the MLflow run is marked FAILED)") from None
    if out_dir is not None:
        forecasts = pd.concat([o.forecasts for o in outcomes], ignore_index=True)
        text = month_strings(forecasts)
        out_dir = Path(out_dir)
        write_atomically({out_dir / "forecasts.parquet": lambda tmp: text.to_parquet(tmp, index=False),
                          out_dir / "scores.csv": lambda tmp: table.to_csv(tmp, index=False)})
    return ExperimentResult(config, table, parent_id, ref, uri)


def leaderboard_runs(name: str | None = None, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """The tracked model runs of one experiment (or of all) that hold a backtest, best CRPS first."""
    board = compare(name, resolve_tracking_uri(tracking_uri))
    return board[board["crps"].notna()]  # the 'final:' runs hold a model, not a backtest
