"""Croston, SBA and TSB (``forecast/models/intermittent.py``): the recursions and the forecast
by hand, update semantics, quiet units and parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from synthetic_data import one_unit, until, values, with_quiet_unit
from forecast.models.base import ModelError
from forecast.models.intermittent import Croston, intermittent_recursion


SERIES = np.array([[0.0], [2.0], [0.0], [0.0], [4.0]])


def test_tsb_recursion_hand_computed():
    # p0 = 0.4, z0 = 3; p: 0.2, 0.6, 0.3, 0.15, 0.575; z: 3, 2.5, 2.5, 2.5, 3.25.
    path = intermittent_recursion(SERIES, "tsb", 0.5, 0.5, np.array([3.0]), np.array([0.4]))
    np.testing.assert_allclose(path[:, 0], [1.2, 0.6, 1.5, 0.75, 0.375, 0.575 * 3.25])


def test_croston_and_sba_recursions_hand_computed():
    # interval x0 = 1 / 0.4 = 2.5; after month 1 (waited 2): x = 2.25, z = 2.5; after month 4
    # (waited 3): x = 2.625, z = 3.25.
    path = intermittent_recursion(SERIES, "croston", 0.5, 0.5, np.array([3.0]), np.array([0.4]))
    np.testing.assert_allclose(path[:, 0], [1.2, 1.2, 2.5 / 2.25, 2.5 / 2.25, 2.5 / 2.25, 3.25 / 2.625])
    sba = intermittent_recursion(SERIES, "sba", 0.5, 0.5, np.array([3.0]), np.array([0.4]))
    np.testing.assert_allclose(sba, 0.75 * path)


def test_croston_model_forecast_and_dispersion_hand_computed():
    model = Croston(alpha=0.5, beta=0.5).fit(one_unit(SERIES[:, 0]))
    out = model.predict(2)
    np.testing.assert_allclose(out["mean"], [1.86875, 1.86875])
    # One-step forecasts of months 1..4 are 0.6, 1.5, 0.75, 0.375 (see the TSB test).
    y, f = np.array([2, 0, 0, 4.0]), np.array([0.6, 1.5, 0.75, 0.375])
    assert model.dispersion_[0] == pytest.approx(((y - f) ** 2 - y).sum() / (f**2).sum())


def test_croston_update_keeps_initial_states_and_dispersion(history):
    model = Croston().fit(until(history, "2014-12"))
    size0, prob0, dispersion = model.size0_.copy(), model.prob0_.copy(), model.dispersion_.copy()
    model.update(history)
    np.testing.assert_array_equal(model.size0_, size0)
    np.testing.assert_array_equal(model.dispersion_, dispersion)
    counts = history.pivot(index="month", columns="unit", values="y").to_numpy(dtype=float)
    expected = intermittent_recursion(counts, "tsb", 0.1, 0.1, size0, prob0)[-1]
    np.testing.assert_allclose(model.predict(1)["mean"], expected)


def test_croston_all_zero_unit_predicts_zero(history):
    out = Croston().fit(with_quiet_unit(history)).predict(2)
    assert (values(out[out["unit"] == "Duhok"]) == 0).all()


@pytest.mark.parametrize("params, message", [({"method": "holt"}, "method must be one of"),
                                             ({"alpha": 0}, r"alpha must be in \(0, 1\]"),
                                             ({"beta": 1.5}, r"beta must be in \(0, 1\]")])
def test_croston_rejects_invalid_hyperparameters(params, message, small):
    with pytest.raises(ModelError, match=message):
        Croston(**params).fit(small)
