"""Forecasting jobs: one forecast from a panel file (``predict``) and rolling-origin backtests."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.atomic import write_atomically
from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, MODELS, make_model
from forecast.evaluation.backtest import (
    BacktestDesign,
    actual_months_missing,
    fit_notes,
    forecast_at,
    history_at,
    model_notes,
    run_backtest,
)
from forecast.evaluation.leaderboard import leaderboard
from forecast.evaluation.scores import add_skill, score_table
from forecast.jobs.common import load_panel, origin_in_panel
from forecast.schema import month_strings
from forecast.models.base import ModelError
from forecast.tracking import RegisteredForecaster, load_registered, resolve_tracking_uri

__all__ = ["BacktestRun", "Prediction", "backtest", "model_names", "predict", "registered_at"]


def model_names(models: str | Sequence[str]) -> list[str]:
    """Model names from ``"a,b"`` or a list; ``"all"`` is every registered model."""
    if isinstance(models, str):
        if models.strip() == "all":
            return sorted(MODELS)
        models = models.split(",")
    return [m.strip() for m in models if m.strip()]


#: Fit notes a forecast's summary prints in full; the rest are counted.
NOTES_SHOWN = 3


@dataclass(frozen=True)
class Prediction:
    """A forecast written by :func:`predict`."""

    forecasts: pd.DataFrame
    out: Path
    model: str
    origin: pd.Period
    target: str
    horizon: int
    notes: Mapping[str, str]  # what the fit fell back to, by subject (a short history, a unit)

    def summary(self) -> str:
        national = self.forecasts.groupby("month")["mean"].sum()
        text = (f"forecast: {self.out} ({self.forecasts['unit'].nunique()} units x {self.horizon} months, model "
                f"{self.model}, origin {self.origin}, target {self.target})\n"
                "  national mean: " + ", ".join(f"{m} {v:,.1f}" for m, v in national.items()))
        if self.notes:
            shown = [f"{subject}: {note}" for subject, note in list(self.notes.items())[:NOTES_SHOWN]]
            more = len(self.notes) - len(shown)
            text += f"\n  fit notes ({len(self.notes)}): " + "; ".join(shown) + (f"; and {more} more" if more else "")
        return text


def _same_history(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    if not (a["unit"].astype(str).to_numpy() == b["unit"].astype(str).to_numpy()).all():
        return False
    if not (a["month"].astype(str).to_numpy() == b["month"].astype(str).to_numpy()).all():
        return False
    rest = [c for c in a.columns if c not in ("unit", "month")]
    return np.array_equal(a[rest].to_numpy(float), b[rest].to_numpy(float), equal_nan=True)


def registered_at(ref: str, tracking_uri: str | None, panel: pd.DataFrame, origin: pd.Period,
                  target: str) -> tuple[Any, pd.DataFrame, RegisteredForecaster]:
    """A registered model conditioned on the panel up to ``origin``: (model, its history, registry entry).

    The model keeps its fitted parameters (as the registry's pyfunc wrapper serves it): on
    longer or revised data a copy is conditioned with ``update``, never refitted, so
    ``forecast predict --registry-model`` and ``forecast report --registry-model`` give the same
    forecast. A model trained on another target than ``target`` is refused, naming both.
    """
    registered = load_registered(ref, resolve_tracking_uri(tracking_uri))
    if registered.target is not None and registered.target != target:
        raise ModelError(f"{ref} ({registered.label}) was trained on {registered.target}, not on {target}: "
                         f"forecasting {target} with it would give {registered.target} counts under another name; "
                         f"register a model trained on {target} (an experiment with [target] name = \"{target}\"), "
                         f"or leave out --target {target}")
    fitted = registered.forecaster
    history = history_at(panel, origin, target, list(fitted.covariates_))
    prior = fitted.history_
    if not (set(prior.columns) == set(history.columns) and _same_history(history, prior[list(history.columns)])):
        fitted = copy.deepcopy(fitted).update(history)
    return fitted, history, registered


def predict(panel_path: str | Path, *, out: str | Path, model: str = "default", horizon: int = 6,
            origin: pd.Period | str | None = None, target: str = "incidents",
            covariates: Sequence[str] | None = None, params: Mapping[str, Any] | None = None,
            gazetteer: str | Path | None = None, registry_model: str | None = None,
            tracking_uri: str | None = None) -> Prediction:
    """Fit ``model`` on the panel up to ``origin`` (default its data vintage), forecast every unit
    for the ``horizon`` months after it, and write the forecast CSV atomically.

    With ``registry_model`` (``NAME@ALIAS`` or ``NAME/VERSION`` from ``tracking_uri``) the
    registered model is conditioned on the panel instead (:func:`registered_at`), the forecast
    ``forecast report --registry-model`` shows.
    """
    panel, meta = load_panel(panel_path, gazetteer)
    origin_p = origin_in_panel(panel, meta, origin)
    if registry_model is not None:
        if params or covariates is not None:
            raise ModelError("hyperparameters and covariates apply to a model fitted here, not to a registered "
                             "model (it keeps those it was trained with)")
        forecaster, history, _ = registered_at(registry_model, tracking_uri, panel, origin_p, target)
        name = forecaster.name
    else:
        name = DEFAULT_MODEL if model == "default" else model
        forecaster = make_model(name, **dict(params or {}))
        history = history_at(panel, origin_p, target, covariates)
        forecaster.fit(history)
    frame = forecast_at(forecaster, history, horizon, name=name)
    text = month_strings(frame)
    out = Path(out)
    write_atomically({out: lambda tmp: text.to_csv(tmp, index=False)})
    return Prediction(frame, out, name, origin_p, target, horizon, model_notes(forecaster))


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
