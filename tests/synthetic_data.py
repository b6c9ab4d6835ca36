"""Small seeded synthetic panels and histories shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.panel_files import validate_panel
from features.synthetic import SyntheticConfig, simulate_panel
from forecast.schema import QUANTILE_COLUMNS


def synthetic_panel(config: SyntheticConfig = SyntheticConfig()) -> pd.DataFrame:
    """The simulated panel with its national covariates, validated (month as Period[M])."""
    counts, covariates = simulate_panel(config)
    panel = counts.drop(columns="log_intensity").merge(covariates, on="month")
    panel["us_troops"] = panel["us_troops"].astype(float)
    return validate_panel(panel.assign(month=pd.PeriodIndex(panel["month"], freq="M")))


def synthetic_history(start: str = "2010-01", end: str = "2016-12") -> pd.DataFrame:
    """The seeded synthetic panel as a model history: unit, month, y and national covariates."""
    panel = synthetic_panel(SyntheticConfig(start=start, end=end))
    return panel.drop(columns="deaths").rename(columns={"incidents": "y"})


def one_unit(values, start: str = "2020-01", unit: str = "Anbar") -> pd.DataFrame:
    months = pd.period_range(start, periods=len(values), freq="M")
    return pd.DataFrame({"unit": unit, "month": months, "y": np.asarray(values, dtype=float)})


#: Six governorates: a small history for the per-unit models (``small`` in conftest.py).
SMALL_UNITS = ["Anbar", "Baghdad", "Basra", "Duhok", "Kirkuk", "Najaf"]


def until(history: pd.DataFrame, month: str) -> pd.DataFrame:
    """The rows of ``history`` up to ``month`` (YYYY-MM)."""
    return history[history["month"] <= pd.Period(month, "M")].reset_index(drop=True)


def with_quiet_unit(history: pd.DataFrame, unit: str = "Duhok") -> pd.DataFrame:
    """A copy of ``history`` in which ``unit`` never has an event."""
    quiet = history.copy()
    quiet.loc[quiet["unit"] == unit, "y"] = 0
    return quiet


def values(frame: pd.DataFrame) -> np.ndarray:
    """A forecast frame's mean and quantiles as a float array."""
    return frame[["mean", *QUANTILE_COLUMNS]].to_numpy(dtype=float)
