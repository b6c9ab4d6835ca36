"""Statistical models: hand-computed recursions and distributions, fallbacks, covariates,
update semantics, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthetic_data import one_unit, synthetic_history
from features.gazetteer import load_gazetteer
from forecast.models.base import ModelError, hold_last_value
from forecast.models.common import censored_normal_summary
from forecast.models.count_design import DIRECT_FEATURES, direct_features, neighbour_weights
from forecast.models.counts import Hurdle, NegBinGLM, hurdle_summary
from forecast.models.ets import ETS
from forecast.models.intermittent import Croston, intermittent_recursion
from forecast.models.sarimax import Sarimax
from forecast.schema import QUANTILE_COLUMNS, QUANTILES

SMALL_UNITS = ["Anbar", "Baghdad", "Basra", "Duhok", "Kirkuk", "Najaf"]


def until(history: pd.DataFrame, month: str) -> pd.DataFrame:
    return history[history["month"] <= pd.Period(month, "M")].reset_index(drop=True)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history()


@pytest.fixture(scope="module")
def small(history) -> pd.DataFrame:
    return history[history["unit"].isin(SMALL_UNITS)].reset_index(drop=True)


def with_quiet_unit(history: pd.DataFrame, unit: str = "Duhok") -> pd.DataFrame:
    quiet = history.copy()
    quiet.loc[quiet["unit"] == unit, "y"] = 0
    return quiet


def values(frame: pd.DataFrame) -> np.ndarray:
    return frame[["mean", *QUANTILE_COLUMNS]].to_numpy(dtype=float)


# ----------------------------------------------------------------------------------------
# ETS


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


# ----------------------------------------------------------------------------------------
# SARIMAX


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


@pytest.mark.parametrize("log1p", [True, False])
def test_censored_normal_summary_matches_simulation(log1p):
    m, v = np.array([0.3, 1.5, -0.5]), np.array([0.8, 0.2, 1.0])
    mean, quantiles = censored_normal_summary(m, v, log1p)
    draws = np.random.default_rng(0).normal(m, np.sqrt(v), size=(400_000, 3))
    draws = np.maximum(np.expm1(draws) if log1p else draws, 0.0)
    np.testing.assert_allclose(mean, draws.mean(axis=0), rtol=0.01)
    np.testing.assert_allclose(quantiles, np.quantile(draws, QUANTILES, axis=0).T, rtol=0.02, atol=0.01)


# ----------------------------------------------------------------------------------------
# Direct features (nb_glm, hurdle)


def test_direct_features_hand_computed():
    counts = np.array([[0, 4], [2, 0], [1, 3], [5, 1]], dtype=float)  # 4 months x 2 units
    weights = np.array([[0.0, 1.0], [1.0, 0.0]])  # each unit's neighbour is the other
    covariates = np.arange(8, dtype=float).reshape(4, 2, 1)
    features = direct_features(counts, weights, covariates)
    assert features.shape == (4, 2, len(DIRECT_FEATURES) + 1)
    t, unit = 3, 0  # month 3 of unit 0: y = 5, previous 1, 2, 0
    np.testing.assert_allclose(
        features[t, unit],
        np.log1p([5, (1 + 5 + 2) / 3, (0 + 2 + 1 + 5) / 4, 1, 6]).tolist() + [6.0],
    )
    np.testing.assert_allclose(features[0, 1, :3], np.log1p([4, 4, 4]))  # short windows at the start


def test_direct_features_are_prefix_invariant(history):
    counts = history.pivot(index="month", columns="unit", values="y").to_numpy(dtype=float)
    weights, _ = neighbour_weights(sorted(history["unit"].unique()), load_gazetteer().neighbours())
    covariates = np.zeros((len(counts), counts.shape[1], 0))
    full = direct_features(counts, weights, covariates)
    cut = direct_features(counts[:40], weights, covariates[:40])
    np.testing.assert_array_equal(full[:40], cut)


def test_neighbours_come_from_the_unit_graph_or_fall_back_to_the_national_mean():
    weights, source = neighbour_weights(["Duhok", "Erbil", "Ninewa", "Atlantis"], load_gazetteer().neighbours())
    assert source == {"Duhok": "neighbours", "Erbil": "neighbours", "Ninewa": "neighbours",
                      "Atlantis": "national mean"}
    _, alone = neighbour_weights(["Duhok", "Erbil"])
    assert alone == {"Duhok": "national mean", "Erbil": "national mean"}
    np.testing.assert_allclose(weights[0], [0, 0.5, 0.5, 0])  # Duhok borders Erbil and Ninewa
    np.testing.assert_allclose(weights[3], [0.25] * 4)


# ----------------------------------------------------------------------------------------
# nb_glm


@pytest.fixture(scope="module")
def nb_glm(history) -> NegBinGLM:
    return NegBinGLM().fit(until(history, "2015-06"))


def test_nb_glm_trains_each_horizon_only_on_targets_up_to_the_origin(nb_glm):
    assert sorted(nb_glm.coefs_) == [1, 2, 3, 4, 5, 6]
    for fit in nb_glm.coefs_.values():
        assert fit["last_target"] == pd.Period("2015-06", "M")


def test_nb_glm_needs_no_future_covariates(nb_glm):
    assert nb_glm.uses_covariates and not nb_glm.uses_future_covariates
    future = hold_last_value(nb_glm.history_, 3).assign(us_troops=1e9, ops_tempo=-1e9)
    pd.testing.assert_frame_equal(nb_glm.predict(3), nb_glm.predict(3, future))


def test_nb_glm_predicts_negative_binomial_quantiles_of_its_mean(nb_glm):
    out = nb_glm.predict(2)
    row = out[(out["unit"] == "Anbar") & (out["horizon"] == 2)].iloc[0]
    n = 1 / nb_glm.coefs_[2]["alpha"]
    expected = stats.nbinom.ppf(QUANTILES, n, n / (n + row["mean"]))
    np.testing.assert_array_equal(row[list(QUANTILE_COLUMNS)].to_numpy(dtype=float), expected)


def test_nb_glm_fits_a_longer_horizon_on_the_fit_history(history):
    short = NegBinGLM(max_horizon=2).fit(until(history, "2014-12")).update(until(history, "2015-12"))
    full = NegBinGLM(max_horizon=4).fit(until(history, "2014-12")).update(until(history, "2015-12"))
    pd.testing.assert_frame_equal(short.predict(4), full.predict(4))
    assert short.coefs_[4]["last_target"] == pd.Period("2014-12", "M")


def test_nb_glm_update_keeps_coefficients(history):
    model = NegBinGLM().fit(until(history, "2014-12"))
    beta = {h: fit["beta"].copy() for h, fit in model.coefs_.items()}
    model.update(history)
    for h, b in beta.items():
        np.testing.assert_array_equal(model.coefs_[h]["beta"], b)


def test_nb_glm_all_zero_unit_predicts_zero(history):
    model = NegBinGLM().fit(with_quiet_unit(history))
    out = model.predict(3)
    assert (values(out[out["unit"] == "Duhok"]) == 0).all()
    assert "no events among the training targets" in model.fallbacks_["Duhok"]
    # Without unit effects the quiet unit gets the pooled rate of units with no recent events.
    pooled = NegBinGLM(unit_effects=False).fit(with_quiet_unit(history)).predict(3)
    duhok = pooled[pooled["unit"] == "Duhok"]
    assert duhok["mean"].max() < 0.5
    assert (duhok["q50"] == 0).all()


def test_nb_glm_rejects_a_history_too_short_for_its_horizons(history):
    with pytest.raises(ModelError, match="nb_glm: needs at least 29 months"):
        NegBinGLM().fit(until(history, "2011-06"))


# ----------------------------------------------------------------------------------------
# hurdle


def brute_force_hurdle(pi: float, mu: float, alpha: float | None):
    k = np.arange(5000)
    if alpha is None:
        pmf = stats.poisson.pmf(k, mu)
    else:
        n = 1 / alpha
        pmf = stats.nbinom.pmf(k, n, n / (n + mu))
    probs = np.r_[1 - pi, pi * pmf[1:] / (1 - pmf[0])]
    cdf = np.cumsum(probs)
    quantiles = [int(np.argmax(cdf >= q - 1e-12)) for q in QUANTILES]
    return float(k @ probs), np.asarray(quantiles, dtype=float)


@pytest.mark.parametrize("pi, mu, alpha", [(0.3, 2.0, 0.5), (0.85, 15.0, None), (1.0, 0.5, 1.0), (0.0, 3.0, 0.5),
                                           (0.97, 40.0, 2.0), (0.6, 0.05, None)])
def test_hurdle_summary_matches_the_mixture_distribution(pi, mu, alpha):
    mean, quantiles = hurdle_summary(np.array([pi]), np.array([mu]), alpha)
    expected_mean, expected_quantiles = brute_force_hurdle(pi, mu, alpha)
    assert mean[0] == pytest.approx(expected_mean, rel=1e-6)
    np.testing.assert_array_equal(quantiles[0], expected_quantiles)


def test_hurdle_summary_of_a_vanishing_count_mean_is_a_point_mass_at_one():
    mean, quantiles = hurdle_summary(np.array([0.5]), np.array([1e-14]), 0.5)
    assert mean[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(quantiles[0], [0, 0, 0, 0, 1, 1, 1])


def test_hurdle_fits_up_to_the_origin_and_zeroes_a_quiet_unit(history):
    model = Hurdle().fit(with_quiet_unit(until(history, "2015-06")))
    assert all(fit["last_target"] == pd.Period("2015-06", "M") for fit in model.coefs_.values())
    out = model.predict(3)
    assert (values(out[out["unit"] == "Duhok"]) == 0).all()
    assert "all zero" in model.fallbacks_["Duhok"]
    assert out.loc[out["unit"] == "Baghdad", "mean"].min() > 0.5


# ----------------------------------------------------------------------------------------
# Croston / TSB

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


# ----------------------------------------------------------------------------------------
# No look-ahead, for every model of this module


@pytest.mark.parametrize("cls", [ETS, Sarimax, NegBinGLM, Hurdle, Croston], ids=lambda c: c.name)
def test_values_after_the_origin_change_nothing(cls, history):
    altered = history.copy()
    altered.loc[altered["month"] > pd.Period("2015-06", "M"), ["y", "us_troops"]] *= 3

    fitted = cls().fit(until(history, "2014-06"))
    fitted_altered = cls().fit(until(altered, "2014-06"))
    pd.testing.assert_frame_equal(fitted.predict(3), fitted_altered.predict(3))

    updated = cls().fit(until(history, "2014-06")).update(until(history, "2015-06"))
    updated_altered = cls().fit(until(history, "2014-06")).update(until(altered, "2015-06"))
    pd.testing.assert_frame_equal(updated.predict(3), updated_altered.predict(3))
