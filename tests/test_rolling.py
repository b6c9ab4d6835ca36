"""forecast/models/rolling.py gives exactly what each model's fit and predict give, origin by origin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.gazetteer import load_gazetteer
from features.panel import assemble_panel
from features.sources import read_events
from forecast.catalog import make_model
from forecast.evaluation.backtest import history_at
from forecast.models.baselines import count_matrix
from forecast.models.rolling import rolling_forecasts
from forecast.schema import QUANTILE_COLUMNS

SHORTCUTS = [("hist_bootstrap", {}), ("moving_average", {}), ("locf_negbin", {}), ("long_run_mean", {}),
             ("ses_negbin", {}), ("ses_negbin", {"dispersion": "moments", "fit_months": 24}), ("ses_trend", {}),
             ("ses_trend", {"months": 3, "damping": 0.5}), ("moving_average", {"window": 24}),
             ("hist_bootstrap", {"window": 5})]


@pytest.fixture(scope="module")
def ucdp_panel(shared_data):
    gaz = load_gazetteer()
    return assemble_panel([read_events(shared_data / "ucdp_ged_iraq_hdx.csv", gazetteer=gaz)], gaz).panel


def _check(panel: pd.DataFrame, name: str, params: dict, origins: list, horizon: int = 6) -> None:
    full = history_at(panel, origins[-1] + horizon)
    counts, _, months = count_matrix(full)
    ends = [o.ordinal - months[0].ordinal for o in origins]
    mean, quantiles = rolling_forecasts(make_model(name, **params), counts, ends, horizon)
    for k, origin in enumerate(origins):
        pred = make_model(name, **params).fit(history_at(panel, origin)).predict(horizon)
        n_units = pred["unit"].nunique()
        np.testing.assert_array_equal(mean[k], pred["mean"].to_numpy().reshape(n_units, horizon), err_msg=f"{name} {origin}")
        np.testing.assert_array_equal(quantiles[k], pred[list(QUANTILE_COLUMNS)].to_numpy().reshape(n_units, horizon, 7),
                                      err_msg=f"{name} {origin}")


@pytest.mark.parametrize(("name", "params"), SHORTCUTS)
def test_rolling_forecasts_equal_the_fits_on_the_synthetic_panel(synthetic_panel, name, params):
    start = synthetic_panel["month"].min()
    # From the 12th month (the shortest history the smoothing shortcut takes) to years later.
    _check(synthetic_panel, name, params, [start + 11, start + 12, start + 23, start + 24, start + 40, start + 90])


@pytest.mark.parametrize(("name", "params"), SHORTCUTS[:7])
def test_rolling_forecasts_equal_the_fits_on_the_real_ucdp_panel(ucdp_panel, name, params):
    _check(ucdp_panel, name, params, list(pd.period_range("2013-01", "2014-12", freq="M")[::5]))


def test_other_models_and_short_histories_have_no_shortcut():
    counts = np.ones((30, 3))
    assert rolling_forecasts(make_model("croston"), counts, [20], 3) is None
    assert rolling_forecasts(make_model("ses_negbin"), counts, [5, 20], 3) is None  # the level would start from 6 months
    assert rolling_forecasts(make_model("hist_bootstrap"), counts, [5, 20], 3) is not None
