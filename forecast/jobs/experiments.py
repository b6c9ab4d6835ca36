"""Experiment jobs: run one experiment file, tracked in MLflow, and the leaderboard across runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from features.atomic import write_atomically
from features.errors import DataError
from features.gazetteer import load_gazetteer
from forecast.evaluation.leaderboard import leaderboard
from forecast.experiment import ExperimentConfig, combined_scores, fit_final, load_data, load_experiment, run_model
from forecast.jobs.common import Echo, JobError, quiet
from forecast.schema import month_strings
from forecast.limits import mlflow_http_bounded
from forecast.models.base import ModelError
from forecast.tracking import (
    ExperimentTracker,
    ModelRef,
    VIEW_KEY,
    TrackingError,
    check_reachable,
    compare,
    list_models,
    list_versions,
    panel_params,
    resolve_tracking_uri,
)

__all__ = ["ExperimentResult", "leaderboard_runs", "panel_country", "registered_models",
           "run_experiment", "runs_page"]

@dataclass(frozen=True)
class ExperimentResult:
    """One tracked experiment: its scores, the parent run and the logged (maybe registered) final model."""

    config: ExperimentConfig
    scores: pd.DataFrame
    parent_run_id: str
    experiment_id: str
    ref: ModelRef
    tracking_uri: str

    def summary(self) -> str:
        lines = [leaderboard(self.scores),
                 f"\nparent run {self.parent_run_id} in MLflow experiment {self.config.name!r}; "
                 f"final model: {self.ref.model_uri}"]
        if self.ref.registered_name:
            lines.append(f"registered {self.ref.registered_name} version {self.ref.version}; "
                         f"promote with: forecast registry promote {self.ref.registered_name} --version {self.ref.version}")
        page = runs_page(self.experiment_id)
        if self.tracking_uri.startswith(("http://", "https://")):
            lines.append(f"look at it in the MLflow UI: {self.tracking_uri.rstrip('/')}/{page}")
        else:
            lines.append(f"look at it with: mlflow ui --backend-store-uri {self.tracking_uri}  "
                         f"(then open http://127.0.0.1:5000/{page})")
        return "\n".join(lines)


def runs_page(experiment_id: str) -> str:
    """The MLflow UI's runs page of an experiment in the saved leaderboard view: every model's
    run, sorted by ``crps_h1``, with the per-horizon CRPS columns (:mod:`forecast.tracking.winners`)."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}"


def panel_country(config: ExperimentConfig, metadata: dict) -> str | None:
    """The country (or countries) of the panel's gazetteer: the one it was built with when that
    file is still there, else the experiment's ``[data] gazetteer``; None when neither names one."""
    recorded = metadata.get("gazetteer")
    path = recorded if isinstance(recorded, str) and Path(recorded).is_file() else config.data.gazetteer
    if path is None:
        return None
    try:
        countries = load_gazetteer(path).countries
    except (DataError, OSError):
        return None  # the name of a dataset is no reason to stop an experiment
    return " / ".join(sorted(countries)) or None


def run_experiment(path: str | Path, *, tracking_uri: str | None = None, register_as: str | None = None,
                   out_dir: str | Path | None = None, echo: Echo = quiet) -> ExperimentResult:
    """Backtest every model of an experiment file: one parent run, one nested run per model, then
    the best model refitted on the whole panel and logged in a final run (registered as
    ``register_as`` if given).

    The file and the data are checked in full (models, covariates, units, dates) before
    anything is sent to MLflow, so a mistake leaves no experiment or run behind.

    Raises
    ------
    DataError, ModelError, TrackingError
        A mistake found before the MLflow run starts (the file, the data, the server).
    JobError
        A failure during the run; the MLflow run is marked FAILED (or, when the server is
        gone, left for the next run of the experiment to mark).
    """
    config = load_experiment(path)
    uri = resolve_tracking_uri(tracking_uri)
    panel, metadata, source = load_data(config)
    check_reachable(uri)
    with mlflow_http_bounded():
        return _run_tracked(config, uri, panel, metadata, source, register_as, out_dir, echo)


def _run_tracked(config: ExperimentConfig, uri: str, panel: pd.DataFrame, metadata: dict, source: str,
                 register_as: str | None, out_dir: str | Path | None, echo: Echo) -> ExperimentResult:
    tracker = ExperimentTracker(config.name, uri, description=config.description)
    echo(f"experiment {config.name}: {len(config.labels)} model run(s), tracking at {uri}")
    outcomes, children = [], {}
    params = {**config.run_params(), **panel_params(panel, metadata)}
    try:
        with tracker.parent_run(config.name, params=params, config_path=config.path, panel=panel,
                                panel_source=source, panel_metadata=metadata, description=config.description,
                                country=panel_country(config, metadata), target=config.target.name) as parent_id:
            for label in tqdm(config.labels, desc="models", unit="model"):
                spec = config.spec(label)
                with tracker.child_run(label, spec.logged_params(), model=spec.model) as child:
                    outcome = run_model(config, panel, label)
                    child.log_backtest(outcome.forecasts, outcome.scores)
                outcomes.append(outcome)
                children[label] = child
            table = combined_scores(outcomes, config)
            for label, child in children.items():
                child.log_skill(table[table["model"] == label].reset_index(drop=True))
            winners = tracker.log_winners(table)
            best = str(winners.loc[winners["horizon"] == "all", "winner"].iloc[0])
            with tracker.final_run(children[best], config.spec(best).logged_params()) as final_run:
                final = fit_final(config, panel, best)
                ref = final_run.log_model(final, final.history_, config.backtest.horizon, registered_name=register_as)
    except (DataError, ModelError, TrackingError) as exc:
        if tracker.unclosed_:
            raise JobError(f"{exc}. Run(s) {', '.join(tracker.unclosed_)} could not be marked FAILED; the next "
                           f"'forecast experiment run' of {config.name!r} marks them once {uri} answers") from None
        raise JobError(f"{exc} (the MLflow run is marked FAILED)") from None
    if out_dir is not None:
        forecasts = pd.concat([o.forecasts for o in outcomes], ignore_index=True)
        text = month_strings(forecasts)
        out_dir = Path(out_dir)
        write_atomically({out_dir / "forecasts.parquet": lambda tmp: text.to_parquet(tmp, index=False),
                          out_dir / "scores.csv": lambda tmp: table.to_csv(tmp, index=False)})
    return ExperimentResult(config, table, parent_id, tracker.experiment_id, ref, uri)


def leaderboard_runs(name: str | None = None, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """The tracked backtest runs of one experiment (or of all) that hold scores, best CRPS first."""
    board = compare(name, resolve_tracking_uri(tracking_uri))
    return board[board["crps"].notna()]


def registered_models(name: str | None = None, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """The versions of one registered model, or of every one (then with a ``name`` column)."""
    uri = resolve_tracking_uri(tracking_uri)
    return list_versions(name, uri) if name else list_models(uri)
