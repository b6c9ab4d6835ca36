"""One contract, checked for every registered model (statsforecast's assert_class idea)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecast.evaluation.backtest import BacktestDesign, history_at, run_backtest
from forecast.catalog import MODELS, make_model
from forecast.models.base import ModelError, NotFittedError
from forecast.schema import QUANTILE_COLUMNS

ORIGIN = pd.Period("2014-06", freq="M")
H = 3
#: Small, fast settings for the costly models (the contract does not depend on their size).
FAST = {"global_boost": {"max_iter": 20}, "combination": {"eval_months": 12}}


def _make(name: str):
    return make_model(name, **FAST.get(name, {}))


@pytest.fixture(scope="module")
def history(synthetic_panel):
    return history_at(synthetic_panel, ORIGIN)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_honours_the_contract(name, history, synthetic_panel):
    model = _make(name)
    params = model.get_params()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.predict(H)
    assert model.fit(history) is model
    assert model.get_params() == params, "fit must not change hyperparameters"
    out = model.predict(H)
    units = sorted(synthetic_panel["unit"].unique())
    assert sorted(out["unit"].unique()) == units
    assert len(out) == len(units) * H
    assert sorted(out["month"].unique()) == list(pd.period_range(ORIGIN + 1, ORIGIN + H, freq="M"))
    assert set(out["horizon"]) == set(range(1, H + 1))
    q = out[list(QUANTILE_COLUMNS)].to_numpy()
    assert (q >= 0).all() and (q[:, 1:] >= q[:, :-1] - 1e-9).all()
    again = _make(name).fit(history).predict(H)
    pd.testing.assert_frame_equal(out, again, obj=f"{name}: same seed, same forecast")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_changing_or_deleting_data_after_the_origin_changes_no_forecast(name, synthetic_panel):
    # Three origins with one refit, so update() is on the path too.
    design = BacktestDesign(start=ORIGIN - 2, end=ORIGIN, horizon=H, refit_every=3)
    factory = {name: lambda: _make(name)}
    base = run_backtest(synthetic_panel, factory, design, progress=False)
    later = synthetic_panel["month"] > ORIGIN
    altered = synthetic_panel.copy()
    altered.loc[later, "incidents"] = altered.loc[later, "incidents"] * 7 + 3
    for col in ("us_troops", "ops_tempo"):
        altered.loc[later, col] = altered.loc[later, col] * 2 + 1
    cut = synthetic_panel[~later]
    for other in (altered, cut):
        again = run_backtest(other, factory, design, progress=False)
        cols = ["unit", "origin", "month", "mean", *QUANTILE_COLUMNS]
        pd.testing.assert_frame_equal(base[cols], again[cols], obj=f"{name} forecasts")


def test_unknown_model_and_parameter_get_suggestions():
    with pytest.raises(ModelError, match=r"unknown model 'locf_poison'; did you mean locf_poisson"):
        make_model("locf_poison")
    with pytest.raises(ModelError, match=r"model 'moving_average' has no parameter 'windw' \(did you mean 'window'\?\)"):
        make_model("moving_average", windw=3)
