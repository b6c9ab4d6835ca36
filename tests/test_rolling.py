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
from forecast.models.rolling import rolling_blocks, rolling_forecasts
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


@pytest.mark.parametrize(("name", "params"), SHORTCUTS)
@pytest.mark.parametrize("block_units", [1, 4, 7])
def test_forecasts_by_blocks_of_units_are_those_of_the_whole_panel(synthetic_panel, name, params, block_units):
    counts, _, months = count_matrix(synthetic_panel.rename(columns={"incidents": "y"}))
    ends = [11, 12, 23, 40, 90, len(counts) - 2]
    mean, quantiles = rolling_forecasts(make_model(name, **params), counts, ends, 6)
    blocks = list(rolling_blocks(make_model(name, **params), counts, ends, 6, block_units=block_units))
    assert counts.shape[1] == 18 and len(blocks) == -(-18 // block_units)  # more than one block, the last short
    assert [b[0] for b in blocks] == [slice(i, min(i + block_units, 18)) for i in range(0, 18, block_units)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks], axis=1), mean)
    np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks], axis=1), quantiles)


def test_a_block_size_that_is_not_a_whole_number_is_named():
    with pytest.raises(ValueError, match="block_units must be a whole number >= 1, got 0"):
        rolling_blocks(make_model("ses_negbin"), np.ones((30, 3)), [20], 3, block_units=0)
