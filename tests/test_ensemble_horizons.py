"""``ses_negbin``, the default model (``combination``) and the ensemble's weights per horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from forecast.catalog import DEFAULT_MODEL, make_model
from forecast.ensemble import DEFAULT_MEMBERS, crps_weights, horizon_weights
from forecast.evaluation.scores import crps_from_quantiles
from forecast.models.baselines import cameron_trivedi_alpha
from forecast.models.base import ModelError
from forecast.models.smoothing import SMOOTHING_GRID, negbin_ml_alpha, one_step_errors, smoothed_levels
from forecast.schema import QUANTILE_COLUMNS


def frame(counts: np.ndarray, start: str = "2010-01") -> pd.DataFrame:
    """A long history from a (months x units) array."""
    months = pd.period_range(start, periods=counts.shape[0], freq="M")
    units = [f"u{j}" for j in range(counts.shape[1])]
    return pd.DataFrame([{"unit": u, "month": m, "y": float(counts[i, j])}
                         for j, u in enumerate(units) for i, m in enumerate(months)])


def test_smoothing_constant_follows_the_persistence_of_the_panel():
    rng = np.random.default_rng(1)
    walk = np.maximum(200 + np.cumsum(rng.normal(0, 25, (120, 4)), axis=0), 1).round()
    noise = rng.poisson(3.0, (120, 4)).astype(float)
    persistent = make_model("ses_negbin").fit(frame(walk))
    noisy = make_model("ses_negbin").fit(frame(noise))
    assert persistent.smoothing_ >= 0.8, "a random walk is best followed by its last values"
    assert noisy.smoothing_ <= 0.1, "independent noise around a constant is best averaged"
    # The forecast mean is the level: near the last value for the walk, near 3 for the noise.
    out = noisy.predict(6)
    assert np.allclose(out.groupby("unit")["mean"].std().fillna(0), 0)
    assert abs(out["mean"].mean() - 3.0) < 0.6


def test_ses_intervals_widen_with_the_horizon_on_a_random_walk():
    rng = np.random.default_rng(2)
    walk = np.maximum(300 + np.cumsum(rng.normal(0, 30, (150, 3)), axis=0), 1).round()
    out = make_model("ses_negbin").fit(frame(walk)).predict(6)
    width = (out["q95"] - out["q05"]).groupby(out["horizon"]).mean()
    assert width[6] > 1.5 * width[1]


def test_ses_errors_match_a_direct_computation_and_pick_the_argmin():
    rng = np.random.default_rng(3)
    counts = rng.poisson(5, (40, 3)).astype(float)
    first = 12
    direct = []
    for a in SMOOTHING_GRID:
        levels = smoothed_levels(counts, a)
        direct.append(((counts[first:] - levels[first - 1:-1]) ** 2).sum())
    assert np.allclose(one_step_errors(counts, np.asarray(SMOOTHING_GRID), first), direct)
    model = make_model("ses_negbin").fit(frame(counts))
    assert model.smoothing_ == SMOOTHING_GRID[int(np.argmin(direct))]


@pytest.mark.parametrize("months", [2, 3, 7])
def test_ses_forecasts_from_a_short_history(months):
    counts = np.array([[4.0, 0.0], [6.0, 0.0], [5.0, 0.0], [9.0, 0.0], [7.0, 1.0], [3.0, 0.0], [8.0, 0.0]])[:months]
    out = make_model("ses_negbin").fit(frame(counts)).predict(6)
    assert len(out) == 12 and np.isfinite(out[list(QUANTILE_COLUMNS)].to_numpy()).all()
    assert (out.loc[out["unit"] == "u0", "mean"] > 0).all()


def test_ses_needs_two_months():
    with pytest.raises(Exception, match="at least 2 months"):
        make_model("ses_negbin").fit(frame(np.array([[3.0]])))


def test_ml_dispersion_recovers_the_negative_binomial_it_was_drawn_from():
    rng = np.random.default_rng(4)
    mu = rng.uniform(2, 40, (400, 3))
    alphas = np.array([0.05, 0.5, 2.0])
    n = 1 / alphas
    y = rng.negative_binomial(n, n / (n + mu)).astype(float)
    y[::7, 0] = np.nan  # ignored, not read as zeros
    estimate = negbin_ml_alpha(y, mu, 0.001)
    grid = np.geomspace(0.001, 20, 40)
    assert np.isin(estimate, grid).all()
    step = grid[1] / grid[0]
    for j in range(3):  # within one grid step of the continuous maximum, which is near the truth
        seen = ~np.isnan(y[:, j])
        best = optimize.minimize_scalar(
            lambda la: -stats.nbinom.logpmf(y[seen, j], 1 / np.exp(la), 1 / (1 + np.exp(la) * mu[seen, j])).sum(),
            bounds=(np.log(1e-3), np.log(20)), method="bounded")
        assert 1 / step <= estimate[j] / np.exp(best.x) <= step
        assert 0.6 < estimate[j] / alphas[j] < 1.5


def test_ml_dispersion_is_not_blown_up_by_one_huge_month():
    """One month of hundreds of deaths inflates the moment estimate for every month; ML much less."""
    rng = np.random.default_rng(5)
    mu = np.full((60, 1), 4.0)
    y = rng.poisson(4.0, (60, 1)).astype(float)
    y[30] = 400.0
    ml = negbin_ml_alpha(y, mu, 0.001)[0]
    moments = cameron_trivedi_alpha(y, mu, 0.001)[0]
    assert moments > 5 * ml


def test_ses_ml_dispersion_keeps_the_distribution_where_the_months_are():
    rng = np.random.default_rng(6)
    counts = rng.poisson(6, (72, 4)).astype(float)
    counts[40, :] = 150.0  # one heavy-tailed month in every unit
    ml = make_model("ses_negbin").fit(frame(counts)).predict(3)
    mo = make_model("ses_negbin", dispersion="moments").fit(frame(counts)).predict(3)
    assert np.allclose(ml["mean"], mo["mean"])
    # Months are Poisson(6) but one: the ML distribution's middle sits on them, the moment
    # estimate's (inflated by the one month) puts the median at 0 and the top far out.
    assert (ml["q50"].between(5, 7)).all() and (mo["q50"] <= 1).all()
    assert (ml["q95"] < mo["q95"]).all()
    with pytest.raises(ModelError, match="dispersion must be one of ml, moments"):
        make_model("ses_negbin", dispersion="mle")


def test_the_default_model_is_the_combination_and_the_ensemble_combines_cheap_members():
    # Chosen by the worst window of benchmarks/skill.py (docs/models.md); the issue asks for the
    # 12-month bootstrap and the long-run mean among its members.
    assert DEFAULT_MODEL == "combination"
    assert {"hist_bootstrap", "long_run_mean", "ses_negbin"} <= set(make_model(DEFAULT_MODEL).member_names())
    assert make_model("ensemble").member_names() == DEFAULT_MEMBERS
    assert "random_forest" not in DEFAULT_MEMBERS and "ses_negbin" in DEFAULT_MEMBERS


@pytest.mark.parametrize("months", [6, 12, 21])
def test_ses_on_a_short_history_forecasts_and_says_what_it_stood_on(months):
    rng = np.random.default_rng(months)
    counts = rng.poisson(8, (months, 3)).astype(float)
    model = make_model("ses_negbin").fit(frame(counts))
    out = model.predict(6)
    assert len(out) == 18 and np.isfinite(out[list(QUANTILE_COLUMNS)].to_numpy()).all()
    assert (out["q95"] >= out["q05"]).all() and (out["q95"] > out["q05"]).any()
    note = model.fallbacks_["history"]
    assert note.startswith(f"{months} months of history (< 24)") and f"from the {months - 1} month(s)" in note
    # A history of 24 months or more starts the level on its first 12 and has no such note.
    assert "history" not in make_model("ses_negbin").fit(frame(rng.poisson(8, (30, 3)).astype(float))).fallbacks_


def test_weights_differ_by_horizon_when_the_members_do():
    # Member a is best at h1, b at h2 and h3: the weights say so horizon by horizon.
    scores = pd.DataFrame({"a": [1.0, 3.0, 3.0], "b": [2.0, 1.5, 1.0]}, index=pd.Index([1, 2, 3], name="horizon"))
    w = horizon_weights(scores, "inverse", 10.0, scored=pd.DataFrame())
    assert w.loc[1, "a"] > 0.99 and w.loc[2, "b"] > 0.99 and w.loc[3, "b"] > 0.99
    assert np.allclose(w.sum(axis=1), 1.0)
    best = horizon_weights(scores, "best", 10.0, scored=pd.DataFrame())
    assert best.loc[1].tolist() == [1.0, 0.0] and best.loc[3].tolist() == [0.0, 1.0]
    # A power of 100 and a CRPS of 0 do not overflow.
    extreme = horizon_weights(pd.DataFrame({"a": [0.0], "b": [1e-3]}, index=[1]), "inverse", 100.0, scored=pd.DataFrame())
    assert np.isfinite(extreme.to_numpy()).all() and extreme.loc[1, "a"] == 1.0
    equal = horizon_weights(scores, "inverse", 10.0, scored=None)
    assert np.allclose(equal.to_numpy(), 0.5)


def test_crps_weights_find_the_member_that_is_right_and_never_lose_to_equal_weights():
    rng = np.random.default_rng(4)
    y = rng.poisson(6, 300).astype(float)
    spread = np.array([-4, -3, -1, 0, 1, 3, 4], dtype=float)
    good = np.maximum(y[:, None] + spread, 0)  # centred on the truth
    bad = np.maximum(good + 10, 0)
    q = np.stack([bad, good], axis=1)
    w = crps_weights(q, y)
    assert w[1] > 0.99 and abs(w.sum() - 1) < 1e-9
    # On noisy members the optimum scores at least as well as equal weights, in sample.
    a = np.sort(rng.poisson(5, (300, 7)), axis=1).astype(float)
    b = np.sort(rng.poisson(8, (300, 7)), axis=1).astype(float)
    q = np.stack([a, b], axis=1)
    w = crps_weights(q, y)
    mixed = np.einsum("rmk,m->rk", q, w)
    assert crps_from_quantiles(y, mixed).mean() <= crps_from_quantiles(y, q.mean(axis=1)).mean() + 1e-9
    assert np.allclose(crps_weights(np.zeros((0, 2, 7)), np.zeros(0)), 0.5)


def test_ensemble_weights_per_horizon_come_from_the_history_only(synthetic_panel):
    from forecast.evaluation.backtest import history_at
    origin = pd.Period("2014-06", freq="M")
    history = history_at(synthetic_panel, origin)
    model = make_model("ensemble").fit(history)
    table = model.horizon_weights_
    assert list(table.index) == [1, 2, 3, 4, 5, 6] and list(table.columns) == list(DEFAULT_MEMBERS)
    assert np.allclose(table.sum(axis=1), 1.0)
    assert np.isclose(model.weights_.sum(), 1.0)
    out = model.predict(8)  # past eval_horizon: the weights of horizon 6
    assert set(out["horizon"]) == set(range(1, 9))
    # The forecast at h is the h-weighted average of the members' forecasts.
    members = {m: make_model(m).fit(history).predict(8) for m in DEFAULT_MEMBERS}
    for h in (1, 6, 8):
        row = table.loc[min(h, 6)]
        expected = sum(row[m] * members[m].loc[members[m]["horizon"] == h, "mean"].to_numpy() for m in DEFAULT_MEMBERS)
        assert np.allclose(out.loc[out["horizon"] == h, "mean"].to_numpy(), expected)
    assert "weights" not in model.fallbacks_


@pytest.mark.parametrize("months, note", [(5, "no in-history backtest, equal weights"),
                                          (12, "in-history backtest on 6 origin(s)")])
def test_ensemble_on_a_short_history_degrades_and_says_so(synthetic_panel, months, note):
    last = pd.Period("2014-06", freq="M")
    cut = synthetic_panel[(synthetic_panel["month"] > last - months) & (synthetic_panel["month"] <= last)]
    history = cut.rename(columns={"incidents": "y"})[["unit", "month", "y"]]
    model = make_model("ensemble").fit(history)
    assert note in model.fallbacks_["weights"]
    out = model.predict(6)
    assert np.isfinite(out[["mean", *QUANTILE_COLUMNS]].to_numpy()).all()


def test_in_history_scores_are_those_of_a_rolling_backtest_of_the_members(synthetic_panel):
    from forecast.evaluation.backtest import BacktestDesign, history_at, run_backtest
    from forecast.evaluation.scores import crps
    origin = pd.Period("2013-06", freq="M")
    history = history_at(synthetic_panel, origin)
    members = ("ses_negbin", "moving_average", "croston")
    model = make_model("ensemble", members=members, eval_months=12).fit(history)
    # The same members backtested the ordinary way, refitted at every in-history origin and
    # scored on the target months up to the origin.
    design = BacktestDesign(start=origin - 12, end=origin - 1, horizon=6, refit_every=1)
    bt = run_backtest(synthetic_panel[synthetic_panel["month"] <= origin],
                      {m: (lambda m=m: make_model(m)) for m in members}, design, progress=False)
    bt = bt[bt["y"].notna()]
    expected = bt.assign(crps=crps(bt)).groupby(["horizon", "model"])["crps"].mean().unstack("model")
    pd.testing.assert_frame_equal(model.horizon_scores_[list(members)], expected[list(members)],
                                  check_names=False, check_exact=False, rtol=1e-12)
