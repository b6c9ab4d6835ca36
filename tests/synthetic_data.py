"""Small seeded synthetic panels and histories shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.panel_files import validate_panel
from features.synthetic import SyntheticConfig, simulate_panel


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
