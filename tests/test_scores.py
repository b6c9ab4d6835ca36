"""Scores against hand-computed values on tiny examples (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forecast.evaluation.escalation import (
    ScoringError,
    escalated,
    escalation_threshold,
    exceedance_probability,
    predictive_cdf,
)
from forecast.evaluation.scores import (
    LOSSES,
    METRICS,
    MIN_SCALE,
    absolute_error,
    add_references,
    add_skill,
    brier,
    coverage_50,
    coverage_90,
    crps,
    crps_from_quantiles,
    interval_score_90,
    naive_scale,
    pinball,
    pinball_level,
    scaled_absolute_error,
    score_table,
    skill,
    squared_error,
    squared_log_error,
)
from forecast.schema import QUANTILE_COLUMNS, QUANTILES, ForecastError

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


def rows(*forecasts, **shared) -> pd.DataFrame:
    """A backtest frame from dicts of ``y``, ``q`` (7 quantiles) and optional fields."""
    records = []
    for i, f in enumerate(forecasts):
        f = {**shared, **f}
        q = f.pop("q")
        records.append({
            "unit": f.pop("unit", "Baghdad"),
            "origin": pd.Period(f.pop("origin", "2010-01"), "M"),
            "month": pd.Period(f.pop("month", "2010-02"), "M"),
            "horizon": f.pop("horizon", 1),
            "model": f.pop("model", "m"),
            "mean": f.pop("mean", q[3]),
            **dict(zip(QUANTILE_COLUMNS, map(float, q))),
            "y": f.pop("y"),
            "scale": f.pop("scale", 1.0),
            "threshold": f.pop("threshold", 10.0),
            **f,
        })
    return pd.DataFrame(records)


STEPS = (0, 1, 2, 3, 4, 5, 6)  # quantiles q05..q95 of the worked example


# --- point errors ----------------------------------------------------------------------------

def test_point_errors_pair_the_median_with_mae_and_the_mean_with_rmse():
    frame = rows({"y": 3, "q": STEPS, "mean": 2.5, "scale": 4.0}, {"y": 7, "q": STEPS, "mean": 5.0, "scale": 4.0})
    # |y - q50|: |3 - 3| = 0, |7 - 3| = 4
    np.testing.assert_allclose(absolute_error(frame), [0.0, 4.0])
    # (y - mean)^2: (3 - 2.5)^2 = 0.25, (7 - 5)^2 = 4
    np.testing.assert_allclose(squared_error(frame), [0.25, 4.0])
    # (log1p(mean) - log1p(y))^2: log(3.5/4)^2, log(6/8)^2
    np.testing.assert_allclose(squared_log_error(frame), [math.log(3.5 / 4) ** 2, math.log(6 / 8) ** 2])
    # |y - q50| / scale: 0/4, 4/4
    np.testing.assert_allclose(scaled_absolute_error(frame), [0.0, 1.0])


# --- quantile scores -------------------------------------------------------------------------

def test_pinball_per_level_by_hand():
    frame = rows({"y": 3, "q": STEPS})
    # QS_tau = tau (y - q) if y >= q else (1 - tau) (q - y)
    # q05=0: .05*3 = .15   q10=1: .10*2 = .20   q25=2: .25*1 = .25   q50=3: 0
    # q75=4: .25*1 = .25   q90=5: .10*2 = .20   q95=6: .05*3 = .15
    expected = [0.15, 0.20, 0.25, 0.0, 0.25, 0.20, 0.15]
    for column, value in zip(QUANTILE_COLUMNS, expected):
        np.testing.assert_allclose(pinball_level(frame, column), [value], err_msg=column)
        np.testing.assert_allclose(METRICS[f"pinball_{column}"](frame), [value], err_msg=column)
    # mean over the 7 levels: 1.2 / 7
    np.testing.assert_allclose(pinball(frame), [1.2 / 7])


def test_pinball_weighs_the_side_of_the_level():
    # y = 0 below every quantile: QS_tau = (1 - tau) q; q95 = 6 -> .05 * 6 = .3; q05 = 0 -> 0
    frame = rows({"y": 0, "q": STEPS})
    np.testing.assert_allclose(pinball_level(frame, "q95"), [0.3])
    np.testing.assert_allclose(pinball_level(frame, "q05"), [0.0])
    # y = 10 above every quantile: QS_tau = tau (10 - q); q95 -> .95 * 4 = 3.8; q05 -> .05 * 10 = .5
    frame = rows({"y": 10, "q": STEPS})
    np.testing.assert_allclose(pinball_level(frame, "q95"), [3.8])
    np.testing.assert_allclose(pinball_level(frame, "q05"), [0.5])


def test_crps_is_twice_the_mean_pinball_over_the_seven_levels():
    frame = rows({"y": 3, "q": STEPS}, {"y": 10, "q": STEPS})
    # y = 3: 2 * 1.2 / 7
    # y = 10: QS = .05*10 + .10*9 + .25*8 + .5*7 + .75*6 + .9*5 + .95*4 = 19.7 -> 2 * 19.7 / 7
    np.testing.assert_allclose(crps(frame), [2 * 1.2 / 7, 2 * 19.7 / 7])
    np.testing.assert_allclose(crps(frame), 2 * pinball(frame))


def test_crps_equals_the_weighted_interval_score():
    # WIS (Bracher et al. 2021), canonical weights, median + 50/80/90% intervals:
    # (0.5 |y - m| + sum_k alpha_k / 2 IS_alpha_k) / (K + 0.5), K = 3
    q = np.array([1.0, 2.0, 4.0, 5.0, 7.0, 9.0, 12.0])
    y = 8.0
    def interval(alpha, low, up):
        return (up - low) + 2 / alpha * max(low - y, 0) + 2 / alpha * max(y - up, 0)
    wis = (0.5 * abs(y - q[3]) + 0.05 * interval(0.1, q[0], q[6]) + 0.1 * interval(0.2, q[1], q[5])
           + 0.25 * interval(0.5, q[2], q[4])) / 3.5
    np.testing.assert_allclose(crps(rows({"y": y, "q": q})), [wis])


@pytest.mark.parametrize("y", [0.0, 1.0, -2.0, 3.0])
def test_crps_from_dense_normal_quantiles_matches_the_closed_form(y):
    levels = np.arange(1, 1000) / 1000
    quantiles = stats.norm.ppf(levels)[None, :]
    # Gneiting & Raftery (2007): CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi)
    exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / math.sqrt(math.pi)
    np.testing.assert_allclose(crps_from_quantiles([y], quantiles, levels), [exact], atol=3e-3)


def test_seven_level_crps_runs_about_a_fifth_below_the_full_crps_of_a_calibrated_normal():
    # The bias the module docstring documents: y on a fine stratified grid of N(0, 1), so the
    # average is the expectation under a calibrated forecast (true value 1 / sqrt(pi) = 0.5642).
    y = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    quantiles = np.tile(stats.norm.ppf(QUANTILES), (len(y), 1))
    ratio = crps_from_quantiles(y, quantiles).mean() / (1 / math.sqrt(math.pi))
    assert 0.78 < ratio < 0.83


def test_crps_rejects_levels_that_do_not_match_the_quantiles():
    with pytest.raises(ScoringError, match="2 quantile level"):
        crps_from_quantiles([1.0], [[0.0, 1.0, 2.0]], [0.1, 0.9])
    with pytest.raises(ScoringError, match="increase strictly inside"):
        crps_from_quantiles([1.0], [[0.0, 1.0]], [0.9, 0.1])


def test_pinball_level_rejects_an_unknown_column():
    with pytest.raises(ScoringError, match="'q99' is not a quantile column"):
        pinball_level(rows({"y": 1, "q": STEPS}), "q99")


# --- intervals -------------------------------------------------------------------------------

def test_interval_score_inside_below_and_above():
    q = (2, 3, 4, 5, 6, 7, 8)  # 90% interval [2, 8], width 6; 2 / alpha = 20
    frame = rows({"y": 5, "q": q}, {"y": 0, "q": q}, {"y": 10, "q": q}, {"y": 8, "q": q})
    # inside: 6;  below: 6 + 20 * (2 - 0) = 46;  above: 6 + 20 * (10 - 8) = 46;  on the bound: 6
    np.testing.assert_allclose(interval_score_90(frame), [6.0, 46.0, 46.0, 6.0])


def test_coverage_counts_the_bounds_as_inside():
    q = (2, 3, 4, 5, 6, 7, 8)  # 50%: [4, 6]; 90%: [2, 8]
    frame = rows(*({"y": y, "q": q} for y in (5, 4, 6, 3, 8, 9, 1)))
    np.testing.assert_array_equal(coverage_50(frame), [1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(coverage_90(frame), [1, 1, 1, 1, 1, 0, 0])


def test_indicators_and_interval_score_are_nan_without_an_actual():
    frame = rows({"y": np.nan, "q": STEPS})
    for fn in (coverage_50, coverage_90, interval_score_90, brier, crps, absolute_error):
        assert np.isnan(fn(frame)).all(), fn.__name__


# --- exceedance probability and the escalation Brier score ----------------------------------

def test_exceedance_interpolates_the_cdf_linearly_between_quantiles():
    q = [0, 1, 2, 4, 8, 10, 12]
    # threshold 6.5 -> counts: Y > 6.5 <=> Y > 6; F(6) = .50 + (.75 - .50) (6 - 4) / (8 - 4) = .625
    np.testing.assert_allclose(exceedance_probability([q], 6.5), [0.375])
    # threshold 3 -> F(3) = .25 + .25 (3 - 2) / (4 - 2) = .375
    np.testing.assert_allclose(exceedance_probability([q], 3.0), [0.625])
    # exactly at a quantile: F(8) = .75
    np.testing.assert_allclose(exceedance_probability([q], 8.0), [0.25])


def test_exceedance_with_tied_quantiles_takes_the_highest_tied_level():
    q = [0, 0, 0, 1, 1, 3, 5]
    # F(0) = .25 (q05 = q10 = q25 = 0); F(1) = .75; F(2) = .75 + .15 (2 - 1) / (3 - 1) = .825
    np.testing.assert_allclose(exceedance_probability([q, q, q], [0.0, 1.0, 2.0]), [0.75, 0.25, 0.175])


def test_exceedance_below_all_quantiles_is_at_least_095():
    q = [2, 3, 4, 5, 6, 7, 8]
    # lower tail: F(x) = .05 exp(-(q05 - x) / theta), theta = .05 (q10 - q05) / .05 = 1
    # x = 1: .05 e^-1; x = 0: .05 e^-2 (the mass below 0 sits at 0); x = -1: 0
    np.testing.assert_allclose(
        exceedance_probability([q, q, q], [1.5, 0.0, -0.5]),
        [1 - 0.05 * math.exp(-1), 1 - 0.05 * math.exp(-2), 1.0],
    )
    assert (exceedance_probability([q] * 3, [1.5, 0.0, -0.5]) >= 0.95).all()


def test_exceedance_above_all_quantiles_is_at_most_005():
    q = [2, 3, 4, 5, 6, 7, 8]
    # upper tail: 1 - F(x) = .05 exp(-(x - q95) / theta), theta = .05 (q95 - q90) / .05 = 1
    # x = 8: .05; x = 10: .05 e^-2
    np.testing.assert_allclose(exceedance_probability([q, q], [8.0, 10.9]), [0.05, 0.05 * math.exp(-2)])


def test_exceedance_of_a_point_forecast_is_zero_or_one():
    q = [3] * 7  # flat outer segments: tails of zero width
    np.testing.assert_allclose(exceedance_probability([q] * 3, [2.0, 3.0, 4.0]), [1.0, 0.0, 0.0])


@PROPERTY
@given(
    steps=st.lists(st.floats(0, 20, allow_nan=False), min_size=7, max_size=7),
    thresholds=st.lists(st.floats(-5, 200, allow_nan=False), min_size=2, max_size=2),
)
def test_exceedance_is_a_probability_and_falls_as_the_threshold_rises(steps, thresholds):
    q = np.cumsum(steps)  # monotone, non-negative
    low, high = sorted(thresholds)
    p = exceedance_probability([q, q], [low, high])
    assert ((0 <= p) & (p <= 1)).all()
    assert p[0] >= p[1] - 1e-12
    # the CDF reaches at least each level at its quantile
    assert (predictive_cdf(np.tile(q, (7, 1)), q) >= np.asarray(QUANTILES) - 1e-12).all()


def test_brier_of_an_escalation_by_hand():
    q = [0, 1, 2, 4, 8, 10, 12]
    frame = rows({"y": 7, "q": q, "threshold": 6.5}, {"y": 6, "q": q, "threshold": 6.5})
    # p = 1 - F(6) = .375 (above); y = 7 > 6.5 escalates: (.375 - 1)^2; y = 6 does not: .375^2
    np.testing.assert_allclose(brier(frame), [0.625**2, 0.375**2])


def test_escalation_is_strictly_above_the_threshold():
    np.testing.assert_array_equal(escalated([1, 2, 16, 17], [1.0, 1.0, 16.0, 16.0]), [False, True, False, True])


# --- references: MASE scale and escalation threshold -----------------------------------------

def panel_of(series: dict[str, list[float]], start="2010-01") -> pd.DataFrame:
    months = pd.period_range(start, periods=len(next(iter(series.values()))), freq="M")
    return pd.DataFrame(
        [(u, m, v) for u, values in series.items() for m, v in zip(months, values)],
        columns=["unit", "month", "incidents"],
    )


def test_naive_scale_by_hand():
    panel = panel_of({"A": [0, 2, 1, 4, 10], "B": [5, 5, 5, 5, 5], "C": [0, 0, 0, 3, 3]})
    # A at 2010-03: (|2-0| + |1-2|) / 2 = 1.5; at 2010-04: (2 + 1 + 3) / 3 = 2
    # B: 0 -> the floor (1); C at 2010-04: 3 / 3 = 1; at 2010-03: 0 -> floor
    assert naive_scale(panel, "2010-03").to_dict() == {"A": 1.5, "B": MIN_SCALE, "C": MIN_SCALE}
    assert naive_scale(panel, "2010-04").to_dict() == {"A": 2.0, "B": MIN_SCALE, "C": 1.0}
    # one month of history: no naive error yet -> the floor
    assert naive_scale(panel, "2010-01").to_dict() == {"A": MIN_SCALE, "B": MIN_SCALE, "C": MIN_SCALE}
    # a different floor applies below it, not above: A at 2010-03 keeps 1.5; C at 2010-03 gets .25
    assert naive_scale(panel, "2010-03", floor=0.25).to_dict() == {"A": 1.5, "B": 0.25, "C": 0.25}


def test_escalation_threshold_by_hand():
    values = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 100]  # 2010-01 .. 2011-02
    panel = panel_of({"A": values, "Q": [0] * 14})
    # 2010-12 (12 months 0..11): median 5.5 -> 1.5 * 5.5 + 1 = 9.25
    # 2011-02 (months 2..13 of the list: 2..11, 100, 100): median (7 + 8) / 2 = 7.5 -> 12.25
    # 2010-03 (only 3 months: 0, 1, 2): median 1 -> 2.5; a quiet unit: 1.5 * 0 + 1 = 1
    assert escalation_threshold(panel, "2010-12").to_dict() == {"A": 9.25, "Q": 1.0}
    assert escalation_threshold(panel, "2011-02").to_dict() == {"A": 12.25, "Q": 1.0}
    assert escalation_threshold(panel, pd.Period("2010-03", "M")).to_dict() == {"A": 2.5, "Q": 1.0}
    # so the quiet unit escalates at 2 incidents, not at 1
    assert list(escalated([1, 2], [1.0, 1.0])) == [False, True]


def test_references_do_not_change_when_months_after_the_origin_change():
    rng = np.random.default_rng(3)
    panel = panel_of({u: list(rng.poisson(5, 30)) for u in ("A", "B", "C")})
    origin = pd.Period("2011-03", "M")
    later = panel["month"] > origin
    changed = panel.assign(incidents=np.where(later, panel["incidents"] * 7 + 50, panel["incidents"]))
    pd.testing.assert_series_equal(escalation_threshold(panel, origin), escalation_threshold(changed, origin))
    pd.testing.assert_series_equal(naive_scale(panel, origin), naive_scale(changed, origin))
    frame = rows(*({"unit": u, "origin": str(origin), "y": 1, "q": STEPS} for u in "ABC"))
    before, after = add_references(frame, panel), add_references(frame, changed)
    pd.testing.assert_frame_equal(before, after)
    # and cutting the panel at the origin gives the same values: nothing later was used
    pd.testing.assert_frame_equal(before, add_references(frame, panel.loc[~later]))


def test_references_accept_a_months_by_units_matrix():
    panel = panel_of({"A": [0, 2, 1, 4], "B": [3, 3, 0, 0]})
    wide = panel.pivot(index="month", columns="unit", values="incidents")
    pd.testing.assert_series_equal(naive_scale(wide, "2010-04"), naive_scale(panel, "2010-04"))
    pd.testing.assert_series_equal(escalation_threshold(wide, "2010-04"), escalation_threshold(panel, "2010-04"))


def test_add_references_matches_the_per_origin_functions():
    panel = panel_of({"A": [0, 2, 1, 4, 10, 3], "B": [5, 5, 6, 5, 5, 9]})
    frame = rows(*({"unit": u, "origin": o, "y": 1, "q": STEPS} for u in "AB" for o in ("2010-02", "2010-05")))
    out = add_references(frame, panel)
    for _, row in out.iterrows():
        assert row["scale"] == naive_scale(panel, row["origin"])[row["unit"]]
        assert row["threshold"] == escalation_threshold(panel, row["origin"])[row["unit"]]


def test_reference_input_errors_name_the_problem():
    panel = panel_of({"A": [0, 2, 1]})
    with pytest.raises(ScoringError, match="missing column.*deaths"):
        naive_scale(panel, "2010-02", target="deaths")
    with pytest.raises(ScoringError, match="pass target='y'"):
        naive_scale(panel.rename(columns={"incidents": "y"}), "2010-02")
    with pytest.raises(ScoringError, match="origin 2009-12 is before the history, which starts 2010-01"):
        escalation_threshold(panel, "2009-12")
    with pytest.raises(ScoringError, match="origin 2010-06 is after the history, which ends 2010-03"):
        escalation_threshold(panel, "2010-06")
    with pytest.raises(ScoringError, match="unit 'A', month 2010-02 appears more than once"):
        naive_scale(pd.concat([panel, panel.iloc[[1]]]), "2010-03")
    frame = rows({"unit": "Nineveh", "y": 1, "q": STEPS})
    with pytest.raises(ScoringError, match="unit 'Nineveh', origin 2010-01 is not in the panel"):
        add_references(frame, panel)


# --- aggregation -----------------------------------------------------------------------------

def small_backtest() -> pd.DataFrame:
    return rows(
        {"model": "a", "horizon": 1, "y": 3, "q": STEPS, "mean": 2.0, "scale": 2.0},
        {"model": "a", "horizon": 1, "y": 7, "q": STEPS, "mean": 5.0, "scale": 2.0},
        {"model": "a", "horizon": 2, "y": 0, "q": STEPS, "mean": 3.0, "scale": 2.0},
        {"model": "b", "horizon": 1, "y": 3, "q": STEPS, "mean": 3.0, "scale": 2.0},
        {"model": "b", "horizon": 2, "y": np.nan, "q": STEPS, "mean": 3.0, "scale": 2.0},
    )


def test_score_table_averages_rows_and_roots_the_squared_errors():
    table = score_table(small_backtest())
    a1 = table.set_index(["model", "horizon"]).loc[("a", 1)]
    assert a1["n"] == 2
    # |y - q50|: |3-3| = 0, |7-3| = 4 -> MAE 2; MASE (0/2 + 4/2) / 2 = 1
    assert a1["mae"] == pytest.approx(2.0)
    assert a1["mase"] == pytest.approx(1.0)
    # (y - mean)^2: 1, 4 -> RMSE sqrt(2.5)
    assert a1["rmse"] == pytest.approx(math.sqrt(2.5))
    # 90% interval [0, 6]: 3 inside (6), 7 above (6 + 20 * 1 = 26) -> 16; coverage90 .5
    assert a1["mis90"] == pytest.approx(16.0)
    assert a1["coverage90"] == pytest.approx(0.5)
    # crps: y=3 -> 2.4/7; y=7: QS = .05*7 + .1*6 + .25*5 + .5*4 + .75*3 + .9*2 + .95*1 = 9.2
    assert a1["crps"] == pytest.approx((2.4 / 7 + 18.4 / 7) / 2)


def test_score_table_pools_all_horizons_and_skips_rows_without_an_actual():
    table = score_table(small_backtest()).set_index(["model", "horizon"])
    assert list(table.index) == [("a", 1), ("a", 2), ("b", 1), ("a", "all"), ("b", "all")]
    # model a over all horizons: |y - 3| = 0, 4, 3 -> MAE 7/3; (y - mean)^2 = 1, 4, 9 -> sqrt(14/3)
    assert table.loc[("a", "all"), "n"] == 3
    assert table.loc[("a", "all"), "mae"] == pytest.approx(7 / 3)
    assert table.loc[("a", "all"), "rmse"] == pytest.approx(math.sqrt(14 / 3))
    # model b, horizon 2 has no actual: not scored, so its pooled row is horizon 1 alone
    assert table.loc[("b", "all"), "n"] == 1
    assert table.loc[("b", "all"), "mae"] == 0


def test_score_table_matches_the_per_row_functions_per_unit():
    frame = pd.concat([small_backtest().assign(unit="Basra"), small_backtest()], ignore_index=True)
    frame.loc[frame["unit"] == "Basra", "y"] += 1
    table = score_table(frame, by=("model", "unit"), overall=False).set_index(["model", "unit"])
    scored = frame.dropna(subset=["y"])
    for name, fn in METRICS.items():
        per_row = pd.Series(fn(scored), index=scored.index).groupby([scored["model"], scored["unit"]]).mean()
        expected = np.sqrt(per_row) if name in ("rmse", "rmsle") else per_row
        pd.testing.assert_series_equal(table[name], expected.rename(name), check_names=False)


def test_score_table_computes_references_from_a_panel():
    panel = panel_of({"Baghdad": [0, 2, 1, 4]})
    frame = rows({"y": 3, "q": STEPS}, {"y": 9, "q": STEPS}).drop(columns=["scale", "threshold"])
    # at origin 2010-01 the scale is the floor (1) and the threshold 1.5 * 0 + 1 = 1
    table = score_table(frame, by=("model",), metrics=["mase", "brier"], panel=panel, overall=False)
    # mase: (|3-3| + |9-3|) / 2 / 1 = 3; brier: p = 1 - F(1) = .9, both escalate: (.1^2 + .1^2) / 2
    assert table["mase"].item() == pytest.approx(3.0)
    assert table["brier"].item() == pytest.approx(0.01)


def test_score_table_names_what_is_missing():
    frame = small_backtest()
    with pytest.raises(ScoringError, match=r"missing column\(s\) threshold.*add_references"):
        score_table(frame.drop(columns="threshold"))
    # without brier and mase, no references are needed
    score_table(frame.drop(columns=["threshold", "scale"]), metrics=["crps", "mae"])
    with pytest.raises(ForecastError, match=r"missing column\(s\) y"):
        score_table(frame.drop(columns="y"))
    with pytest.raises(ScoringError, match="unknown metric.*wis; choose from mae"):
        score_table(frame, metrics=["crps", "wis"])


def test_score_table_rejects_crossing_quantiles():
    frame = rows({"y": 3, "q": (0, 1, 2, 3, 2, 5, 6)})
    with pytest.raises(ForecastError, match="quantiles cross"):
        score_table(frame)


def test_score_table_handles_a_backtest_sized_frame():
    # Speed is measured in benchmarks/, not asserted here.
    rng = np.random.default_rng(0)
    n = 130_000
    mu = rng.gamma(2.0, 5.0, n)
    q = mu[:, None] * np.array([0.2, 0.4, 0.7, 1.0, 1.3, 1.7, 2.0])  # (n, 7), monotone
    frame = pd.DataFrame({
        "unit": rng.choice([f"u{i}" for i in range(18)], n), "origin": pd.Period("2010-01", "M"),
        "month": pd.Period("2010-02", "M"), "horizon": rng.integers(1, 7, n),
        "model": rng.choice([f"m{i}" for i in range(12)], n), "mean": mu,
        **dict(zip(QUANTILE_COLUMNS, q.T)), "y": rng.poisson(mu).astype(float),
        "scale": 3.0, "threshold": rng.uniform(1, 30, n),
    })
    table = score_table(frame)
    assert len(table) == 12 * 7
    assert table["n"].sum() == 2 * n  # every row once per horizon group and once in "all"


# --- skill -----------------------------------------------------------------------------------

def test_skill_by_hand():
    assert skill(1.5, 2.0) == pytest.approx(0.25)
    assert skill(3.3, 3.0) == pytest.approx(-0.1)
    assert skill(0.0, 2.0) == 1.0
    assert skill(1.0, 0.0) == -np.inf
    assert np.isnan(skill(0.0, 0.0))


def test_add_skill_uses_the_best_benchmark_of_each_horizon():
    table = pd.DataFrame({
        "model": ["model", "naive", "zero", "model", "naive", "zero"],
        "horizon": [1, 1, 1, 2, 2, 2],
        "crps": [1.5, 2.0, 4.0, 3.3, 5.0, 3.0],
        "coverage90": [0.9] * 6,
    })
    out = add_skill(table, ["naive", "zero"])
    # horizon 1: best benchmark naive (2.0) -> 1 - 1.5/2 = .25, naive 0, zero 1 - 4/2 = -1
    # horizon 2: best benchmark zero (3.0) -> 1 - 3.3/3 = -.1, naive 1 - 5/3, zero 0
    np.testing.assert_allclose(out["crps_skill"], [0.25, 0.0, -1.0, -0.1, 1 - 5 / 3, 0.0])
    assert list(out["crps_benchmark"]) == ["naive"] * 3 + ["zero"] * 3
    assert "coverage90_skill" not in out  # coverage is not a loss


def test_add_skill_on_a_score_table_with_pooled_rows():
    frame = small_backtest()
    table = add_skill(score_table(frame), ["b"], metrics=["mae"])
    pooled = table.set_index(["model", "horizon"]).loc[("a", "all")]
    # a: MAE 7/3 over all horizons; b: 0 -> skill -inf (a perfect benchmark)
    assert pooled["mae_skill"] == -np.inf
    # horizon 2 has no benchmark row (b has no actual there): skill NaN
    assert np.isnan(table.set_index(["model", "horizon"]).loc[("a", 2), "mae_skill"])


def test_add_skill_errors_name_the_models_and_metrics():
    table = pd.DataFrame({"model": ["x", "naive"], "horizon": [1, 1], "crps": [1.0, 2.0], "coverage50": [0.5, 0.5]})
    with pytest.raises(ScoringError, match="benchmark.*navie not in the score table; its models are x, naive"):
        add_skill(table, ["navie"])
    with pytest.raises(ScoringError, match="no skill for coverage50"):
        add_skill(table, ["naive"], metrics=["coverage50"])
    # whole-table comparison when there is no grouping column
    out = add_skill(table.drop(columns="horizon"), ["naive"], within=())
    np.testing.assert_allclose(out["crps_skill"], [0.5, 0.0])


def test_every_loss_is_non_negative_on_random_forecasts():
    rng = np.random.default_rng(1)
    mu = rng.gamma(1.0, 4.0, 200)
    q = stats.nbinom.ppf(np.asarray(QUANTILES)[None, :], 2, 2 / (2 + mu[:, None]))
    frame = rows(*({"y": float(y), "q": qq, "mean": m, "threshold": t}
                   for y, qq, m, t in zip(rng.poisson(mu), q, mu, rng.uniform(1, 10, 200))))
    for name in LOSSES:
        assert (METRICS[name](frame) >= 0).all(), name
