"""The combination (forecast/ensemble.py) and its level members (forecast/models/levels.py).

What the skill issue asks of the combination, on synthetic panels: in a steady regime it
does not fall behind the 12-month bootstrap and its forecast converges to the bootstrap's;
after a fall it follows the new level while the bootstrap still averages the old one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.catalog import make_model
from forecast.ensemble import linear_pool, toward_prior
from forecast.evaluation.backtest import BacktestDesign, history_at, run_backtest
from forecast.evaluation.scores import crps
from forecast.models.base import ModelError, negbin_quantiles, poisson_quantiles
from forecast.models.levels import national_growth

MONTHS = pd.period_range("2010-01", periods=96, freq="M")


def _panel(levels: np.ndarray, seed: int) -> pd.DataFrame:
    """Poisson counts around ``levels`` (n_months, n_units), as a panel."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(levels)
    n_months, n_units = levels.shape
    return pd.DataFrame({
        "unit": np.repeat([f"U{i:02d}" for i in range(n_units)], n_months),
        "month": np.tile(MONTHS[:n_months], n_units),
        "incidents": counts.T.reshape(-1),
        "deaths": counts.T.reshape(-1),
    })


def _backtest(panel: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    models = {m: (lambda m=m: make_model(m)) for m in ("combination", "hist_bootstrap")}
    bt = run_backtest(panel, models, BacktestDesign(start=pd.Period(start, "M"), end=pd.Period(end, "M"), horizon=3),
                      covariates=[], progress=False)
    return bt.assign(crps=crps(bt))


def test_in_a_steady_regime_the_combination_does_not_fall_behind_the_bootstrap_and_converges_to_it():
    levels = np.broadcast_to(np.linspace(1.0, 25.0, 8), (96, 8))
    bt = _backtest(_panel(levels, seed=1), "2015-01", "2016-12")
    by_model = bt.groupby("model")["crps"].mean()
    assert by_model["combination"] <= 1.02 * by_model["hist_bootstrap"]
    # The two forecasts of the same unit and month: the combination's mean is within the
    # bootstrap's own sampling error (the sd of a 12-month mean) of it.
    wide = bt.pivot_table(index=["unit", "origin", "month"], columns="model", values="mean")
    level = wide.index.get_level_values("unit").str[1:].astype(int).map(dict(enumerate(levels[0]))).to_numpy()
    gap = np.abs(wide["combination"] - wide["hist_bootstrap"]) / np.sqrt(level / 12.0)
    assert gap.mean() < 1.0


def test_after_a_fall_the_combination_follows_the_level_and_the_bootstrap_does_not():
    levels = np.ones((96, 8)) * np.linspace(10.0, 40.0, 8)
    levels[60:] /= 5.0  # every unit falls to a fifth of its level at 2015-01
    panel = _panel(levels, seed=2)
    bt = _backtest(panel, "2015-03", "2015-08")
    after = bt[bt["origin"] >= pd.Period("2015-06", "M")]
    true = after["unit"].str[1:].astype(int).map(dict(enumerate(levels[-1]))).to_numpy()
    combination = after["model"] == "combination"
    # Six months after the fall the bootstrap still averages six months of the old level.
    assert np.mean(after.loc[combination, "mean"] / true[combination]) < 1.3
    assert np.mean(after.loc[~combination, "mean"] / true[~combination]) > 2.0
    by_model = bt.groupby("model")["crps"].mean()
    assert by_model["combination"] < 0.7 * by_model["hist_bootstrap"]
    # The weights moved off the steady-regime members.
    model = make_model("combination").fit(history_at(panel, pd.Period("2015-08", "M")))
    steady = model.horizon_weights_[["hist_bootstrap", "long_run_mean"]].sum(axis=1)
    assert (steady < 0.2).all()


def test_linear_pool_matches_the_mixture_of_two_poissons():
    # Equal weights on Poisson(2) and Poisson(20): the mixture's quantiles, by brute force.
    q = np.stack([poisson_quantiles(np.array([2.0])), poisson_quantiles(np.array([20.0]))])
    got = linear_pool(q, np.full((2, 1), 0.5))[0]
    grid = np.arange(60)
    from scipy import stats
    mixture = 0.5 * stats.poisson.cdf(grid, 2.0) + 0.5 * stats.poisson.cdf(grid, 20.0)
    exact = [grid[np.argmax(mixture >= tau)] for tau in (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)]
    # The members' CDFs are read from 7 quantiles each, so a level may land one count off.
    assert np.abs(got - exact).max() <= 1
    assert got[3] > 4 and got[3] < 16  # the median of two far-apart members is between them
    # One member with all the weight gives that member back.
    only = linear_pool(q, np.array([[1.0], [0.0]]))[0]
    np.testing.assert_array_equal(only, q[0, 0])


def test_weights_move_to_the_prior_member_while_few_origins_were_scored():
    weights = pd.DataFrame({"a": [0.5, 0.5], "b": [0.5, 0.5]}, index=pd.Index([1, 2], name="horizon"))
    scored = pd.DataFrame({"origin": [1, 2, 3, 1], "horizon": [1, 1, 1, 2], "model": "a", "crps": 1.0})
    got = toward_prior(weights, scored, "b", origins=3.0)
    # Horizon 1: 3 origins, lambda = 1/2; horizon 2: 1 origin, lambda = 1/4.
    np.testing.assert_allclose(got["a"], [0.25, 0.125])
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    np.testing.assert_allclose(toward_prior(weights, None, "b", 3.0)["b"], 1.0)


def test_a_short_history_gives_the_prior_member_all_the_weight_and_says_so():
    panel = _panel(np.full((5, 3), 4.0), seed=3)
    model = make_model("combination").fit(history_at(panel, MONTHS[4]))
    assert (model.horizon_weights_["ses_negbin"] == 1.0).all()
    assert "all weight on ses_negbin" in model.fallbacks_["weights"]


@pytest.mark.parametrize(("params", "message"), [
    ({"pooling": "mean"}, "pooling must be one of vincent, linear"),
    ({"prior": "zero"}, "prior 'zero' must be one of the members"),
    ({"prior_origins": -1}, "prior_origins must be a number >= 0"),
])
def test_bad_combination_settings_are_named(params, message):
    with pytest.raises(ModelError, match=message):
        make_model("combination", **params)


def test_long_run_mean_is_the_window_mean_with_its_ml_dispersion():
    panel = _panel(np.full((30, 2), 6.0), seed=4)
    history = history_at(panel, MONTHS[29])
    out = make_model("long_run_mean", window=12).fit(history).predict(2)
    last = panel[panel["month"] > MONTHS[17]].groupby("unit")["incidents"].mean()
    np.testing.assert_allclose(out.groupby("unit")["mean"].first(), last)
    assert (out.groupby("unit")["q50"].nunique() == 1).all()  # the same distribution at every horizon


def test_ses_trend_follows_a_national_fall_and_damps_it():
    levels = np.outer(0.9 ** np.arange(40), np.array([50.0, 100.0, 200.0]))
    history = history_at(_panel(levels, seed=5), MONTHS[39])
    trend = make_model("ses_trend").fit(history)
    level = make_model("ses_negbin").fit(history).predict(6)
    out = trend.predict(6)
    ratio = (out["mean"] / level["mean"]).to_numpy().reshape(3, 6)
    assert (ratio < 1).all() and (np.diff(ratio, axis=1) < 0).all()  # lower, and lower further ahead
    # Damped: the factor between horizons shrinks toward 1.
    steps = ratio[:, 1:] / ratio[:, :-1]
    assert (np.diff(steps, axis=1) > 0).all()
    assert make_model("ses_trend", damping=0.0).fit(history).predict(3)["mean"].round(9).tolist() == \
        level[level["horizon"] <= 3]["mean"].round(9).tolist()


def test_national_growth_is_capped_and_one_before_its_window():
    levels = np.array([[1.0], [1.0], [100.0], [100.0]])
    growth = national_growth(levels, months=2, cap=1.5, floor=0.5)
    np.testing.assert_allclose(growth[:2], 1.0)
    np.testing.assert_allclose(growth[2:], np.sqrt(1.5))


def test_negbin_members_and_the_mixture_stay_whole_counts():
    q = np.stack([negbin_quantiles(np.array([3.0, 0.5]), 0.5), poisson_quantiles(np.array([7.0, 0.1]))])
    pooled = linear_pool(q, np.array([[0.3, 0.6], [0.7, 0.4]]))
    np.testing.assert_array_equal(pooled, np.round(pooled))
    assert (np.diff(pooled, axis=1) >= 0).all()


@pytest.mark.parametrize("params", [{}, {"half_life": None, "prior": None, "members": "ses_negbin,croston,long_run_mean"},
                                    {"weighting": "crps", "members": "ses_trend,hist_bootstrap", "prior": "ses_trend"}])
def test_scoring_the_units_in_blocks_gives_the_weights_and_forecasts_of_the_whole_panel(synthetic_panel, params):
    history = history_at(synthetic_panel, pd.Period("2014-06", freq="M"))
    whole = make_model("combination", **params)
    whole.block_units = 10_000
    blocks = make_model("combination", **params)
    blocks.block_units = 4  # 18 units: five blocks, the last of two
    whole.fit(history)
    blocks.fit(history)
    pd.testing.assert_frame_equal(blocks.horizon_scores_, whole.horizon_scores_, check_exact=True)
    pd.testing.assert_frame_equal(blocks.horizon_weights_, whole.horizon_weights_, check_exact=True)
    pd.testing.assert_series_equal(blocks.member_scores_, whole.member_scores_, check_exact=True)
    pd.testing.assert_frame_equal(blocks.predict(6), whole.predict(6), check_exact=True)
    assert whole.horizon_weights_.std(axis=1).gt(0).all()  # the members were told apart, not weighted alike
