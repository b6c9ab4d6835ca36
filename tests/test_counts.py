"""The pooled count models (``forecast/models/counts.py``): nb_glm trained up to the origin, its
quantiles, update and fallbacks; the hurdle model's mixture distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthetic_data import until, values, with_quiet_unit
from forecast.models.base import ModelError, hold_last_value
from forecast.models.counts import Hurdle, NegBinGLM, hurdle_summary
from forecast.schema import QUANTILE_COLUMNS, QUANTILES


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
