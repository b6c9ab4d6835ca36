"""The forecasting job: one forecast from a panel file (``forecast predict``).

It imports what a fit needs and no more (no scores, no MLflow): the backtest job is
:mod:`forecast.jobs.backtesting`, a registered model's forecast :mod:`forecast.jobs.registered`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.atomic import write_atomically
from forecast.catalog import DEFAULT_MODEL, MODELS, make_model
from forecast.evaluation.backtest import forecast_at, history_at, model_notes
from forecast.jobs.common import load_panel, origin_in_panel
from forecast.schema import month_strings

__all__ = ["Prediction", "model_names", "predict", "write_prediction"]


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


def predict(panel_path: str | Path, *, out: str | Path, model: str = "default", horizon: int = 6,
            origin: pd.Period | str | None = None, target: str = "incidents",
            covariates: Sequence[str] | None = None, params: Mapping[str, Any] | None = None,
            gazetteer: str | Path | None = None) -> Prediction:
    """Fit ``model`` on the panel up to ``origin`` (default its data vintage), forecast every unit
    for the ``horizon`` months after it, and write the forecast CSV atomically.

    (:func:`forecast.jobs.registered.predict_registered` forecasts with a registered model
    instead.)
    """
    panel, meta = load_panel(panel_path, gazetteer)
    origin_p = origin_in_panel(panel, meta, origin)
    name = DEFAULT_MODEL if model == "default" else model
    forecaster = make_model(name, **dict(params or {}))
    history = history_at(panel, origin_p, target, covariates)
    forecaster.fit(history)
    return write_prediction(forecaster, history, out=out, name=name, target=target, horizon=horizon)


def write_prediction(forecaster, history: pd.DataFrame, *, out: str | Path, name: str, target: str,
                     horizon: int) -> Prediction:
    """Forecast from a fitted model and write the forecast CSV atomically."""
    frame = forecast_at(forecaster, history, horizon, name=name)
    text = month_strings(frame)
    out = Path(out)
    write_atomically({out: lambda tmp: text.to_csv(tmp, index=False)})
    return Prediction(frame, out, name, history["month"].max(), target, horizon, model_notes(forecaster))
