from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.evaluation.backtest import COVARIATES_HELD, COVARIATES_NOT_USED, BacktestDesign, history_at, run_backtest
from forecast.models.base import Forecaster, ModelError, prediction_frame, poisson_quantiles, future_months


class CountingMean(Forecaster):
    """Test model: the mean of the history seen at the last fit, plus the last value seen."""

    name = "counting_mean"
    fits: list = []
    updates: list = []

    def __init__(self, shift: float = 0.0):
        self.shift = shift

    def _fit(self, history):
        CountingMean.fits.append(history["month"].max())
        self.level_ = history.groupby("unit")["y"].mean()

    def _update(self, history):
        CountingMean.updates.append(history["month"].max())

    def _predict(self, horizon, future):
        last = self.history_.groupby("unit")["y"].last()
        units = np.repeat(self.units_, horizon)
        months = np.tile(future_months(self.origin_, horizon), len(self.units_))
        mu = np.repeat((self.level_ + last + self.shift).to_numpy(), horizon)
        return prediction_frame(units, months, np.tile(np.arange(1, horizon + 1), len(self.units_)), mu, poisson_quantiles(mu))


@pytest.fixture(autouse=True)
def _reset_counts():
    CountingMean.fits, CountingMean.updates = [], []


def test_origins_honour_start_end_and_step():
    design = BacktestDesign(start=pd.Period("2014-01", "M"), end=pd.Period("2014-12", "M"), step=5)
    assert [str(o) for o in design.origins()] == ["2014-01", "2014-06", "2014-11"]


def test_history_at_never_contains_months_after_the_origin(synthetic_panel):
    h = history_at(synthetic_panel, pd.Period("2012-03", "M"), target="deaths")
    assert h["month"].max() == pd.Period("2012-03", "M")
    assert list(h.columns) == ["unit", "month", "y", "us_troops", "ops_tempo"]
    assert (h["y"].to_numpy() == synthetic_panel.loc[synthetic_panel["month"] <= "2012-03", "deaths"].to_numpy()).all()


def test_backtest_refits_every_k_origins_and_updates_in_between(synthetic_panel):
    design = BacktestDesign(start=pd.Period("2014-01", "M"), end=pd.Period("2014-07", "M"), horizon=2, refit_every=3)
    out = run_backtest(synthetic_panel, {"m": CountingMean}, design, progress=False)
    assert [str(m) for m in CountingMean.fits] == ["2014-01", "2014-04", "2014-07"]
    assert [str(m) for m in CountingMean.updates] == ["2014-02", "2014-03", "2014-05", "2014-06"]
    assert len(out) == 7 * 18 * 2
    # Forecasts are joined with the actuals of their target months.
    row = out[(out["unit"] == "Baghdad") & (out["month"] == pd.Period("2014-03", "M"))].iloc[0]
    actual = synthetic_panel.set_index(["unit", "month"]).loc[("Baghdad", pd.Period("2014-03", "M")), "incidents"]
    assert row["y"] == actual
    assert set(out["covariates"]) == {COVARIATES_NOT_USED}


def test_results_do_not_depend_on_the_number_of_workers(synthetic_panel):
    design = BacktestDesign(start=pd.Period("2013-01", "M"), end=pd.Period("2013-12", "M"), step=2, horizon=3, refit_every=2)
    models = {"a": CountingMean, "b": lambda: CountingMean(shift=1.0)}
    one = run_backtest(synthetic_panel, models, design, n_jobs=1, progress=False)
    two = run_backtest(synthetic_panel, models, design, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(one, two)


def test_target_months_after_the_panel_have_no_actual(synthetic_panel):
    last = synthetic_panel["month"].max()
    design = BacktestDesign(start=last - 1, end=last, horizon=3)
    out = run_backtest(synthetic_panel, {"m": CountingMean}, design, progress=False)
    assert out.loc[out["month"] > last, "y"].isna().all()
    assert out.loc[out["month"] <= last, "y"].notna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2007-01", "end": "2010-01"}, r"backtest start 2007-01 leaves no history: the panel starts 2008-01"),
        ({"start": "2016-01", "end": "2017-06"}, r"backtest end 2017-06 is after the panel's last month 2016-12"),
    ],
)
def test_impossible_designs_are_rejected(synthetic_panel, kwargs, message):
    design = BacktestDesign(start=pd.Period(kwargs["start"], "M"), end=pd.Period(kwargs["end"], "M"))
    with pytest.raises(ModelError, match=message):
        run_backtest(synthetic_panel, {"m": CountingMean}, design, progress=False)


def test_design_rejects_bad_numbers():
    with pytest.raises(ModelError, match=r"backtest step must be a whole number >= 1, got 0"):
        BacktestDesign(start=pd.Period("2014-01", "M"), end=pd.Period("2014-02", "M"), step=0)
    with pytest.raises(ModelError, match=r"end 2013-01 is before start 2014-01"):
        BacktestDesign(start=pd.Period("2014-01", "M"), end=pd.Period("2013-01", "M"))


def test_unknown_target_and_covariates_are_named(synthetic_panel):
    with pytest.raises(ModelError, match=r"target 'fatalities' is not a panel column"):
        history_at(synthetic_panel, pd.Period("2012-01", "M"), target="fatalities")
    with pytest.raises(ModelError, match=r"covariate\(s\) troops not in the panel; it has us_troops, ops_tempo"):
        history_at(synthetic_panel, pd.Period("2012-01", "M"), covariates=["troops"])


def test_on_synthetic_data_covariates_with_known_paths_improve_the_forecast():
    # The demo process has known effects of troops (lag 2) and operations tempo (lag 1).
    # SARIMAX given the realised covariate paths at the target months (covariates declared
    # known ahead) must beat the same model without covariates.
    from forecast.evaluation.scores import score_table
    from forecast.catalog import make_model
    from synthetic_data import synthetic_panel as build

    panel = build()
    design = BacktestDesign(start=pd.Period("2007-01", "M"), end=pd.Period("2018-12", "M"), step=3, horizon=6, refit_every=4)
    models = {"sarimax": lambda: make_model("sarimax")}
    paths = panel[["unit", "month", "us_troops", "ops_tempo"]]
    with_cov = run_backtest(panel, models, design, progress=False, covariate_paths=paths)
    without = run_backtest(panel, models, design, progress=False, covariates=[])
    assert set(with_cov["covariates"]) == {"scenario"}
    assert set(without["covariates"]) == {COVARIATES_NOT_USED}

    def crps(frame):
        table = score_table(frame, panel=panel)
        return float(table.loc[table["horizon"].astype(str) == "all", "crps"].iloc[0])

    assert crps(with_cov) < 0.97 * crps(without)


def test_models_using_target_month_covariates_hold_the_last_value_by_default(synthetic_panel):
    from forecast.catalog import make_model

    design = BacktestDesign(start=pd.Period("2014-01", "M"), end=pd.Period("2014-01", "M"), horizon=2)
    out = run_backtest(synthetic_panel, {"sarimax": lambda: make_model("sarimax")}, design, progress=False)
    assert set(out["covariates"]) == {COVARIATES_HELD}
