"""Tree models (hgb, random_forest): output, determinism, leakage, update, calibration, covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.gazetteer import load_gazetteer
from features.graph import UnitGraph, with_graph
from features.synthetic import SyntheticConfig, simulate_panel, synthetic_gazetteer
from forecast.evaluation.backtest import BacktestDesign, history_at, run_backtest
from forecast.models.base import ModelError, make_model
from forecast.models.ml import HistGradientBoosting, RandomForest, negbin_dispersion
from forecast.schema import QUANTILE_COLUMNS

ORIGIN = pd.Period("2014-06", freq="M")
NAMES = ["hgb", "random_forest"]
#: Cheap settings for tests that check plumbing, not accuracy.
QUICK = {"hgb": {"max_iter": 20}, "random_forest": {"n_estimators": 10}}


@pytest.fixture(scope="module")
def history(synthetic_panel):
    return history_at(synthetic_panel, ORIGIN)


@pytest.fixture(scope="module")
def forecasts(history):
    """name -> (model fitted at ORIGIN, its 6-month forecast)."""
    out = {}
    for name in NAMES:
        model = make_model(name).fit(history)
        out[name] = model, model.predict(6)
    return out


def quick(name, **params):
    return make_model(name, **{**QUICK[name], **params})


def as_history(counts: pd.DataFrame, covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """simulate_panel output -> unit, month (Period[M]), y (+ covariates merged by month)."""
    history = counts[["unit", "month", "incidents"]].rename(columns={"incidents": "y"})
    if covariates is not None:
        history = history.merge(covariates, on="month")
        history["us_troops"] = history["us_troops"].astype(float)
    return history.assign(month=pd.PeriodIndex(history["month"], freq="M"))


@pytest.mark.parametrize("name", NAMES)
def test_forecast_covers_every_unit_and_horizon_with_whole_count_quantiles(name, forecasts, history):
    model, out = forecasts[name]
    assert model.uses_covariates and not model.uses_future_covariates
    units = sorted(history["unit"].unique())
    assert out["unit"].tolist() == list(np.repeat(units, 6))
    assert out["month"].tolist() == list(pd.period_range(ORIGIN + 1, ORIGIN + 6, freq="M")) * len(units)
    assert out["horizon"].tolist() == list(range(1, 7)) * len(units)
    q = out[list(QUANTILE_COLUMNS)].to_numpy()
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all() and (q == np.round(q)).all()
    assert (out["mean"] > 0).all()
    # A high-violence governorate gets a higher forecast than a quiet one.
    mean = out.groupby("unit")["mean"].mean()
    assert mean["Baghdad"] > 5 * mean["Duhok"]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_forecast_and_future_is_ignored(name, forecasts, history):
    model, out = forecasts[name]
    again = make_model(name).fit(history).predict(6)
    pd.testing.assert_frame_equal(out, again)
    scenario = history.loc[history["month"] == ORIGIN].assign(us_troops=1e6)
    pd.testing.assert_frame_equal(model.predict(6, future=scenario), out)


def test_random_forest_seed_changes_the_forest(history):
    a = quick("random_forest", random_state=1).fit(history).predict(1)
    b = quick("random_forest", random_state=2).fit(history).predict(1)
    assert not np.allclose(a["mean"], b["mean"])


@pytest.mark.parametrize("name", NAMES)
def test_fit_keeps_hyperparameters_and_fits_horizons_on_first_use(name, history):
    model = quick(name, min_samples_leaf=7)
    params = model.get_params()
    model.fit(history)
    assert model.get_params() == params
    assert sorted(model.regressors_) == [1]
    model.predict(3)
    assert sorted(model.regressors_) == [1, 2, 3]
    assert all(r.min_samples_leaf == 7 for r in model.regressors_.values())
    # 24 calibration months of 18 units per horizon.
    assert set(model.calibration_rows_.values()) == {24 * 18}


@pytest.mark.parametrize("name", NAMES)
def test_data_after_the_origin_never_changes_a_forecast(name, synthetic_panel):
    later = synthetic_panel["month"] > ORIGIN
    altered = synthetic_panel.copy()
    altered.loc[later, "incidents"] = altered.loc[later, "incidents"] * 7 + 3
    altered.loc[later, "ops_tempo"] = altered.loc[later, "ops_tempo"] * 2 + 1

    def forecast(panel):
        model = quick(name).fit(history_at(panel, ORIGIN - 3))
        first = model.predict(3)
        return first, model.update(history_at(panel, ORIGIN)).predict(3)

    for one, other in zip(forecast(synthetic_panel), forecast(altered)):
        pd.testing.assert_frame_equal(one, other)


@pytest.mark.parametrize("name", NAMES)
def test_update_keeps_the_regressors_and_call_order_does_not_matter(name, synthetic_panel):
    early, late = history_at(synthetic_panel, ORIGIN - 4), history_at(synthetic_panel, ORIGIN)
    a = quick(name).fit(early)
    a.predict(2)
    kept = dict(a.regressors_)
    out_a = a.update(late).predict(4)
    assert all(a.regressors_[h] is kept[h] for h in kept)
    assert out_a["month"].min() == ORIGIN + 1
    # Horizons 3 and 4 were fitted after the update, yet from the fit-time history.
    out_b = quick(name).fit(early).update(late).predict(4)
    pd.testing.assert_frame_equal(out_a, out_b)
    assert not out_a["mean"].equals(quick(name).fit(late).predict(4)["mean"])


@pytest.mark.parametrize("name", NAMES)
def test_90_percent_interval_covers_about_90_percent_out_of_sample(name, synthetic_panel):
    # 15 origins x 3 horizons x 18 units, refitted every 4 origins.
    design = BacktestDesign(start=pd.Period("2012-12", "M"), end=pd.Period("2016-06", "M"), step=3, horizon=3, refit_every=4)
    out = run_backtest(synthetic_panel, {name: lambda: make_model(name)}, design, progress=False)
    out = out.dropna(subset=["y"])
    inside = (out["y"] >= out["q05"]) & (out["y"] <= out["q95"])
    assert 0.75 <= inside.mean() <= 0.98, f"{name}: 90% interval covers {inside.mean():.3f}"
    assert (out["y"] > out["q95"]).mean() <= 0.12


@pytest.mark.parametrize("name", NAMES)
def test_covariates_lower_one_month_ahead_error_when_they_carry_signal(name):
    # The synthetic process with a stronger, more exogenous operations-tempo effect at lag 1
    # (troop effect at lag 2 unchanged). With the default effects (0.01 per point) the
    # benefit on 18 governorates x 9 years is within noise: a few percent either way.
    config = SyntheticConfig(start="2008-01", end="2016-12", beta_ops=0.05, ops_react=5.0, ops_sd=15.0)
    counts, covariates = simulate_panel(config)
    panel = counts.drop(columns="log_intensity").merge(covariates, on="month")
    panel = panel.assign(month=pd.PeriodIndex(panel["month"], freq="M"), us_troops=panel["us_troops"].astype(float))
    # 60 one-month-ahead origins, refitted yearly.
    design = BacktestDesign(start=pd.Period("2011-12", "M"), end=pd.Period("2016-11", "M"), horizon=1, refit_every=12)
    mae = {}
    for label, covs in (("with", None), ("without", [])):
        out = run_backtest(panel, {name: lambda: make_model(name)}, design, covariates=covs, progress=False)
        mae[label] = (out["y"] - out["mean"]).abs().mean()
    assert mae["with"] < 0.95 * mae["without"], mae


def test_units_unknown_to_the_gazetteer_get_the_national_mean_and_no_covariates_are_fine(history):
    small = history[history["unit"].isin(["Baghdad", "Anbar", "Basra", "Duhok"])]
    small = small.assign(unit=small["unit"].map({"Baghdad": "Atlantis", "Anbar": "Anbar"}).fillna(small["unit"] + " X"))
    small = small.drop(columns=["us_troops", "ops_tempo"])
    model = quick("hgb").fit(small)
    out = model.predict(2)
    assert sorted(out["unit"].unique()) == ["Anbar", "Atlantis", "Basra X", "Duhok X"]
    x = pd.DataFrame(model.origin_X_, columns=model.feature_names_, index=model.origin_units_)
    assert not any(c.startswith(("us_troops", "ops_tempo")) for c in model.feature_names_)
    y = x["y_lag0"]
    # Anbar's gazetteer neighbours are not in this history either: all four fall back.
    np.testing.assert_allclose(x["y_neighbour_mean"], (y.sum() - y) / 3)


def test_the_unit_graph_the_history_carries_supplies_the_neighbours(tmp_path):
    path = tmp_path / "lattice.csv"
    synthetic_gazetteer(4).to_csv(path, index=False)
    counts, _ = simulate_panel(SyntheticConfig(start="2010-01", end="2013-12"), gazetteer=str(path))
    graph = UnitGraph.from_gazetteer(load_gazetteer(path))
    model = quick("random_forest").fit(with_graph(as_history(counts), graph))
    x = pd.DataFrame(model.origin_X_, columns=model.feature_names_, index=model.origin_units_)
    # 2 x 2 rook lattice: unit 1 borders units 2 and 3.
    assert x.loc["Unit 0001", "y_neighbour_mean"] == (x.loc["Unit 0002", "y_lag0"] + x.loc["Unit 0003", "y_lag0"]) / 2
    assert len(model.predict(2)) == 8


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("hgb", {"lags": (1, -1)}, r"hgb: lags must be whole numbers >= 0, got \(1, -1\)"),
        ("random_forest", {"windows": (0,)}, r"random_forest: windows must be whole numbers >= 1"),
        ("hgb", {"calibration_months": 0}, r"hgb: calibration_months must be a whole number >= 1, got 0"),
        ("hgb", {"max_iter": 0}, r"hgb: The 'max_iter' parameter of HistGradientBoostingRegressor"),
        ("random_forest", {"n_estimators": -3}, r"random_forest: The 'n_estimators' parameter"),
    ],
)
def test_invalid_hyperparameters_fail_at_fit_with_their_name(name, params, match, history):
    with pytest.raises(ModelError, match=match):
        make_model(name, **params).fit(history)


def test_short_histories_and_changed_covariates_are_clear_errors(history):
    short = history[history["month"] <= history["month"].min() + 3]
    model = quick("hgb").fit(short)
    with pytest.raises(ModelError, match=r"hgb: a history of 4 month\(s\) is too short for horizon 3; it needs at least 5"):
        model.predict(3)
    with pytest.raises(ModelError, match=r"too short for horizon 1"):
        quick("random_forest").fit(short[short["month"] == short["month"].min()])
    with pytest.raises(ModelError, match=r"update history has covariates us_troops but the model was fitted with us_troops, ops_tempo"):
        model.update(history.drop(columns="ops_tempo"))


def test_negbin_dispersion_recovers_the_simulated_dispersion():
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.5, 40.0, 20_000)
    alpha = 0.5
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    assert negbin_dispersion(y, mu) == pytest.approx(alpha, rel=0.05)
    assert negbin_dispersion(rng.poisson(mu), mu) < 0.01


def test_models_are_registered_under_their_names():
    assert isinstance(make_model("hgb"), HistGradientBoosting)
    assert isinstance(make_model("random_forest"), RandomForest)
