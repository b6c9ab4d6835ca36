"""SARIMAX (``forecast/models/sarimax.py``): covariates at the target months, standardised on the
history only, update semantics and fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthetic_data import SMALL_UNITS, until, values, with_quiet_unit
from forecast.models.base import ModelError, hold_last_value
from forecast.models.sarimax import Sarimax


def test_sarimax_responds_to_future_covariates(small):
    model = Sarimax().fit(small)
    held = hold_last_value(small, 3)
    surge = held.assign(us_troops=held["us_troops"] + 100_000)
    base, scenario = model.predict(3, held), model.predict(3, surge)
    pd.testing.assert_frame_equal(model.predict(3), base)  # held last value is the default
    assert not np.allclose(base["mean"], scenario["mean"])


def test_sarimax_standardises_covariates_with_the_history_only(history):
    model = Sarimax().fit(until(history, "2013-12"))
    cut = until(history, "2013-12")
    assert model.exog_columns_ == ["us_troops", "ops_tempo"]
    np.testing.assert_allclose(model.exog_mean_, cut[["us_troops", "ops_tempo"]].mean().to_numpy())
    np.testing.assert_allclose(model.exog_sd_, cut[["us_troops", "ops_tempo"]].std(ddof=0).to_numpy())


def test_sarimax_update_keeps_parameters(small):
    model = Sarimax().fit(until(small, "2014-12"))
    params = {u: p.copy() for u, p in model.params_.items()}
    before = model.predict(2)
    model.update(small)
    for unit, p in params.items():
        np.testing.assert_array_equal(model.params_[unit], p)
        np.testing.assert_array_equal(model.unit_states_[unit][1].params, p)
    after = model.predict(2)
    assert after["month"].iloc[0] == pd.Period("2017-01", "M")
    assert not np.allclose(before["mean"], after["mean"])


def test_sarimax_without_covariates_is_a_plain_arima(small):
    model = Sarimax().fit(small[["unit", "month", "y"]])
    assert model.exog_columns_ == []
    assert model.fallbacks_ == {}
    assert len(model.predict(4)) == 4 * len(SMALL_UNITS)


def test_sarimax_future_without_a_target_month_is_rejected(small):
    model = Sarimax().fit(small)
    future = hold_last_value(small, 3)
    future = future[future["month"] != pd.Period("2017-02", "M")]
    with pytest.raises(ModelError, match="future has no row for unit 'Anbar', month 2017-02"):
        model.predict(3, future)


def test_sarimax_non_converged_fit_falls_back_to_least_squares(small):
    model = Sarimax(maxiter=1).fit(small)
    assert set(model.fallbacks_) == set(SMALL_UNITS)
    assert all("least squares" in why for why in model.fallbacks_.values())
    out = model.predict(3)
    assert np.isfinite(values(out)).all()


def test_sarimax_all_zero_unit_predicts_zero(small):
    out = Sarimax().fit(with_quiet_unit(small)).predict(3)
    assert (values(out[out["unit"] == "Duhok"]) == 0).all()
