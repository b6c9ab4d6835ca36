"""Running an experiment, one step a function, so a tracker can wrap each model in its own run."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.gazetteer import load_gazetteer
from features.panel import EventFile, PanelSpec, build_panel
from features.panel_files import read_panel
from forecast.config import parse_coverage_end, parse_month
from forecast.evaluation.backtest import default_covariates, history_at, run_backtest
from forecast.evaluation.scores import add_skill, score_table
from forecast.experiment.spec import ExperimentConfig
from forecast.errors import ConfigError

__all__ = ["ModelOutcome", "combined_scores", "fit_final", "load_data", "model_factories", "run_model"]


# ----------------------------------------------------------------------------------------
# Running


def load_data(config: ExperimentConfig) -> tuple[pd.DataFrame, dict, str]:
    """The panel the experiment runs on, its metadata and where it came from.

    Reads the panel file, or builds the panel from the event files in memory (nothing is
    written). Keeps only ``[target] units`` when given, and checks that the panel has the
    target, the ``[features]`` covariates and room for the backtest origins.

    Returns
    -------
    panel : pandas.DataFrame
    metadata : dict
        The panel metadata (vintage, sources with SHA-256, covariates, ...); for a build from
        events also ``notes`` (the build's notes, e.g. ignored covariate columns).
    source : str
        The panel file, or the event file(s) joined by ", ".
    """
    d = config.data
    if d.panel is not None:
        panel, metadata = read_panel(d.panel, load_gazetteer(d.gazetteer) if d.gazetteer is not None else None)
        source = str(d.panel)
    else:
        spec = PanelSpec(events=tuple(EventFile(p, d.format) for p in d.events), gazetteer=d.gazetteer,
                         covariates=d.covariates, fill=d.fill,
                         coverage_end=parse_coverage_end(d.coverage_end) if d.coverage_end else None)
        build = build_panel(spec)
        panel, metadata = build.panel, dict(build.metadata)
        metadata["notes"] = list(build.notes)
        source = ", ".join(str(p) for p in d.events)

    where = f"{config.path}: "
    if config.target.name not in panel:
        raise ConfigError(f"{where}[target] key 'name': the panel {source} has no column {config.target.name!r}")
    if config.target.units is not None:
        missing = [u for u in config.target.units if u not in set(panel["unit"])]
        if missing:
            raise ConfigError(f"{where}[target] key 'units': {', '.join(missing)} not in the panel {source}")
        panel = panel.loc[panel["unit"].isin(config.target.units)].reset_index(drop=True)
    covariates = _covariate_columns(panel)
    unknown = [c for c in config.features.covariates or () if c not in covariates]
    if unknown:
        close = difflib.get_close_matches(unknown[0], covariates, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{where}[features] key 'covariates': {unknown[0]!r} is not a covariate of the panel {source}; "
                          f"{hint}it has {', '.join(covariates) or 'none'}")
    b = config.backtest
    first, last = panel["month"].min(), panel["month"].max()
    if b.start <= first:
        raise ConfigError(f"{where}[backtest] key 'start': {b.start} leaves no history; the panel starts {first}, "
                          "so start must be later")
    if b.design().origins()[-1] > last:
        raise ConfigError(f"{where}[backtest] key 'end': {b.end} is after the panel's last month {last}")
    return panel, metadata, source


def _covariate_columns(panel: pd.DataFrame) -> list[str]:
    return default_covariates(panel)


def model_factories(config: ExperimentConfig) -> dict[str, Callable[[], Any]]:
    """Label -> zero-argument factory of a fresh unfitted model, as :func:`run_backtest` takes them."""
    return {spec.label: spec.make for spec in config.models}


@dataclass(frozen=True)
class ModelOutcome:
    """The backtest of one model of an experiment."""

    label: str
    #: Registry name.
    model: str
    #: Every hyperparameter set in the file (params and the grid point).
    params: dict[str, Any]
    #: :func:`forecast.evaluation.backtest.run_backtest` output for this model (column ``model`` = label).
    forecasts: pd.DataFrame
    #: :func:`forecast.evaluation.scores.score_table` by model and horizon, with the pooled ``"all"`` row.
    scores: pd.DataFrame
    #: The same scores by model and unit (with an ``"all"`` row).
    scores_by_unit: pd.DataFrame
    #: Wall-clock seconds of the backtest and scoring.
    seconds: float


def run_model(config: ExperimentConfig, panel: pd.DataFrame, label: str, *, progress: bool = False) -> ModelOutcome:
    """Backtest one model of the experiment and score it.

    Parameters
    ----------
    config
        The experiment.
    panel
        From :func:`load_data`.
    label
        One of ``config.labels``.
    progress
        Show the backtest's progress bar.
    """
    spec = config.spec(label)
    began = time.perf_counter()
    forecasts = run_backtest(panel, {spec.label: spec.make}, config.backtest.design(), target=config.target.name,
                             covariates=config.features.covariates, n_jobs=config.backtest.jobs, progress=progress,
                             backend=config.backtest.backend, scheduler=config.backtest.scheduler)
    metrics = list(config.scores.metrics) if config.scores.metrics is not None else None
    scores = score_table(forecasts, metrics=metrics, panel=panel, target=config.target.name)
    by_unit = score_table(forecasts, by=("model", "unit"), metrics=metrics, panel=panel, target=config.target.name)
    return ModelOutcome(label=spec.label, model=spec.model, params=dict(spec.params), forecasts=forecasts,
                        scores=scores, scores_by_unit=by_unit, seconds=time.perf_counter() - began)


def combined_scores(outcomes: Sequence[ModelOutcome], config: ExperimentConfig) -> pd.DataFrame:
    """Every model's scores in one table, with skill against the best benchmark present.

    Skill (``<metric>_skill``, ``<metric>_benchmark``) is added when at least one of the
    experiment's benchmarks is among ``outcomes``; otherwise the table has scores only.
    """
    if not outcomes:
        raise ConfigError(f"{config.path}: no model outcomes to combine")
    table = pd.concat([o.scores for o in outcomes], ignore_index=True)
    present = set(table["model"])
    benchmarks = [b for b in config.benchmarks if b in present]
    if benchmarks:
        table = add_skill(table, benchmarks)
    return table


def fit_final(config: ExperimentConfig, panel: pd.DataFrame, label: str, *, origin: str | pd.Period | None = None):
    """Fit one model of the experiment on all data up to ``origin`` (default the panel's last month).

    The panel from :func:`load_data` ends at its data vintage (trailing partly covered
    months are left out when it is built), so the default is the vintage. Returns the fitted
    :class:`~forecast.models.base.Forecaster`; ``predict(horizon)`` forecasts the months after it.
    """
    spec = config.spec(label)
    if origin is None:
        origin = panel["month"].max()
    else:
        parsed = parse_month(origin) if isinstance(origin, str) else pd.Period(origin, freq="M")
        if parsed is None:
            raise ConfigError(f"origin {origin!r} is not a month; expected \"YYYY-MM\"")
        origin = parsed
    history = history_at(panel, origin, config.target.name, config.features.covariates)
    return spec.make().fit(history)
