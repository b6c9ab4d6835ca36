"""ETS (``forecast/models/ets.py``): determinism, the mean of back-transformed paths, quiet units,
short histories and update semantics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthetic_data import SMALL_UNITS, until, values, with_quiet_unit
from forecast.models.base import ModelError
from forecast.models.ets import ETS


def test_ets_is_deterministic_given_random_state(small):
    first = ETS(n_samples=200).fit(small).predict(3)
    again = ETS(n_samples=200).fit(small).predict(3)
    other = ETS(n_samples=200, random_state=1).fit(small).predict(3)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(values(first), values(other))


def test_ets_mean_averages_back_transformed_paths(small):
    # expm1 of a roughly symmetric log-scale distribution is right-skewed: the average of the
    # back-transformed paths lies above their median (expm1 of the log-scale median).
    out = ETS().fit(small).predict(3)
    anbar = out[out["unit"] == "Anbar"]
    assert (anbar["mean"] > anbar["q50"]).all()


def test_ets_all_zero_unit_predicts_zero_and_is_recorded(small):
    model = ETS(n_samples=100).fit(with_quiet_unit(small))
    out = model.predict(3)
    assert (values(out[out["unit"] == "Duhok"]) == 0).all()
    assert "no events" in model.fallbacks_["Duhok"]


def test_ets_short_history_falls_back_to_its_recent_months_resampled(small):
    history = until(small, "2010-12")
    model = ETS(n_samples=2000).fit(history)
    assert all("months resampled" in model.fallbacks_[u] for u in SMALL_UNITS if u in model.fallbacks_)
    assert "12 months" in model.fallbacks_["Anbar"]
    out = model.predict(6)
    assert len(out) == 6 * len(SMALL_UNITS)
    # No drift: every horizon's mean is the mean of the recent months (to sampling error),
    # where a log-scale random walk's back-transformed mean grew with the horizon.
    recent = history[history["unit"] == "Anbar"].sort_values("month")["y"].tail(12).mean()
    anbar = out[out["unit"] == "Anbar"]["mean"].to_numpy()
    np.testing.assert_allclose(anbar, recent, rtol=0.15)


def test_ets_update_keeps_parameters_and_moves_the_origin(small):
    model = ETS(n_samples=100).fit(until(small, "2014-12"))
    params = {u: p.copy() for u, p in model.params_.items()}
    model.update(small)
    assert model.params_.keys() == params.keys()
    for unit, p in params.items():
        np.testing.assert_array_equal(model.params_[unit], p)
        np.testing.assert_array_equal(model.unit_states_[unit][1].params, p)
    assert model.predict(1)["month"].iloc[0] == pd.Period("2017-01", "M")


def test_ets_rejects_an_unknown_trend(small):
    with pytest.raises(ModelError, match="ets: trend must be one of"):
        ETS(trend="mul").fit(small)
