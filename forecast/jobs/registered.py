"""Forecasts with a registered model: the champion the report and the refresh use, conditioned on a panel.

Apart from :mod:`forecast.jobs.forecasting` because it reaches the MLflow registry: fitting a
model (``forecast predict --model``) imports no MLflow.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

from forecast.errors import ModelError
from forecast.evaluation.backtest import history_at
from forecast.jobs.common import load_panel, origin_in_panel
from forecast.jobs.forecasting import Prediction, write_prediction
from forecast.tracking import RegisteredForecaster, load_registered, resolve_tracking_uri
from forecast.tracking.model import same_history

__all__ = ["predict_registered", "registered_at"]


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
    if not (set(prior.columns) == set(history.columns) and same_history(history, prior[list(history.columns)])):
        fitted = copy.deepcopy(fitted).update(history)
    return fitted, history, registered


def predict_registered(panel_path: str | Path, *, out: str | Path, registry_model: str, tracking_uri: str | None = None,
                       horizon: int = 6, origin: pd.Period | str | None = None, target: str = "incidents",
                       gazetteer: str | Path | None = None) -> Prediction:
    """The forecast of registered model ``registry_model`` (``NAME@ALIAS`` or ``NAME/VERSION``) conditioned
    on the panel up to ``origin`` (:func:`registered_at`), written as :func:`~forecast.jobs.forecasting.predict`
    writes its own: the forecast ``forecast report --registry-model`` shows."""
    panel, meta = load_panel(panel_path, gazetteer)
    origin_p = origin_in_panel(panel, meta, origin)
    forecaster, history, _ = registered_at(registry_model, tracking_uri, panel, origin_p, target)
    return write_prediction(forecaster, history, out=out, name=forecaster.name, target=target, horizon=horizon)
