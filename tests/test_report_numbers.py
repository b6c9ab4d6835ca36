"""The report's numbers, checked by hand: the national total from the units' distributions (not
their quantiles summed), tier bounds on the source's own scale, the escalation skill against its
references, and the stale-covariate record and warning of a panel build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.covariates import covariate_staleness, staleness_warnings
from features.gazetteer import load_gazetteer
from features.panel import assemble_panel
from features.sources import read_events
from forecast.evaluation import escalation
from forecast.report.aggregate import (
    FULL_COPULA_UNITS, LARGE_DRAWS, average_correlation, copula_correlation, draw_totals, escalation_probability,
    national_total, quantile_function,
)
from forecast.report.tiers import MIN_BOUND, tier_scale
from forecast.report.track import escalation_skill, historical_rate
from forecast.schema import QUANTILE_COLUMNS, QUANTILES

#: Quantiles of Uniform(0, 10) at the 7 levels: the quantile function is exactly uniform inside.
UNIFORM = np.array([10 * t for t in QUANTILES])


def forecast_frame(quantiles: np.ndarray, means, units, month="2017-01") -> pd.DataFrame:
    rows = []
    for unit, q, mean in zip(units, quantiles, means):
        rows.append({"unit": unit, "origin": pd.Period("2016-12", "M"), "month": pd.Period(month, "M"),
                     "horizon": 1, "model": "m", "mean": mean, **dict(zip(QUANTILE_COLUMNS, q))})
    return pd.DataFrame(rows)


# --- the quantile function ------------------------------------------------------------------

def test_quantile_function_inverts_the_predictive_cdf():
    q = np.array([[0.0, 0.0, 1.0, 2.0, 4.0, 7.0, 9.0], UNIFORM])
    u = np.array([[0.03, 0.2], [0.3, 0.5], [0.8, 0.97], [0.99, 0.6]])
    x = quantile_function(q, u)
    # Inside the quantiles: linear; at the quantile levels: the quantiles themselves.
    np.testing.assert_allclose(quantile_function(q, np.tile(QUANTILES, (2, 1)).T), q.T, atol=1e-12)
    assert x[1, 0] == pytest.approx(1 + (0.3 - 0.25) / 0.25 * 1)      # between q25 = 1 and q50 = 2
    assert x[0, 1] == pytest.approx(2.0)                               # uniform: 10 * 0.2
    # Beyond the outer quantiles the tails are those of predictive_cdf: F(Q(u)) = u.
    for i in range(2):
        for s in range(4):
            if x[s, i] > 0:
                assert escalation.predictive_cdf(q[i:i + 1], [x[s, i]])[0] == pytest.approx(u[s, i], abs=1e-9)
    assert x[0, 0] == 0.0  # the lower tail's mass below 0 sits at 0 (q05 = 0)


# --- the national total ---------------------------------------------------------------------

def test_perfectly_correlated_units_give_the_sum_of_their_quantiles():
    q = np.array([UNIFORM, 2 * UNIFORM, [0, 1, 2, 3, 5, 8, 12]])
    total = draw_totals(q, np.ones((3, 3)), draws=40_000, seed=1)
    # Comonotonic units: the total's quantile at every level is the sum of the units' quantiles.
    np.testing.assert_allclose(np.quantile(total, QUANTILES), q.sum(axis=0), rtol=0.02, atol=0.05)


def test_independent_units_give_the_hand_computed_triangular_total():
    # Two independent Uniform(0, 10): the sum is triangular on (0, 20), median 10,
    # q05 = sqrt(2 * 0.05) * 10 = 3.162, q95 = 20 - 3.162 (tails exponential, not uniform, below
    # 0.5 and above 9.5 of each unit: a 0.05 probability each, which hardly moves these).
    total = draw_totals(np.array([UNIFORM, UNIFORM]), None, draws=100_000, seed=2)
    q05, q50, q95 = np.quantile(total, [0.05, 0.5, 0.95])
    assert q50 == pytest.approx(10.0, abs=0.1)
    assert q05 == pytest.approx(np.sqrt(0.1) * 10, abs=0.15)
    assert q95 == pytest.approx(20 - np.sqrt(0.1) * 10, abs=0.15)
    # Narrower than the sum of quantiles (0.5 + 0.5 to 9.5 + 9.5), which assumes they move together.
    assert q95 - q05 < 0.8 * (2 * 9.5 - 2 * 0.5)


def test_national_total_expected_is_the_sum_of_means_and_median_is_not_the_sum_of_medians():
    # 18 quiet units, each median 0 but mean 0.6: summed medians say 0; the total is around 10.
    q = np.tile([0, 0, 0, 0, 1, 2, 3], (18, 1)).astype(float)
    fc = forecast_frame(q, [0.6] * 18, [f"u{i}" for i in range(18)])
    nat = national_total(fc).table.iloc[0]
    assert nat["mean"] == pytest.approx(18 * 0.6)
    assert 6 <= nat["q50"] <= 12 and nat["q05"] > 0
    again = national_total(fc).table.iloc[0]  # fixed seed: the same figures every time
    assert again.equals(nat)


def backtest_with_dependence(corr: float, n: int = 60, seed: int = 3) -> pd.DataFrame:
    """Two units whose recorded counts rank together with correlation ``corr`` in their forecasts."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1, corr], [corr, 1]], size=n)
    from scipy import stats
    rows = []
    for t in range(n):
        for k, unit in enumerate(("a", "b")):
            # Forecast Uniform(0, 100) every month; y at the drawn rank, whole counts.
            y = float(np.floor(100 * stats.norm.cdf(z[t, k])))
            rows.append({"unit": unit, "origin": pd.Period("2010-01", "M") + t, "horizon": 1, "model": "m",
                         "mean": 50.0, **dict(zip(QUANTILE_COLUMNS, 10 * UNIFORM)), "y": y})
    frame = pd.DataFrame(rows)
    frame["month"] = frame["origin"] + 1
    return frame


@pytest.mark.parametrize("corr", [0.0, 0.8])
def test_copula_correlation_recovers_the_dependence_of_the_backtest_ranks(corr):
    estimated, months = copula_correlation(backtest_with_dependence(corr, n=400), "m", ["a", "b"])
    assert months == 400
    assert estimated[0, 1] == pytest.approx(corr, abs=0.1)
    assert np.allclose(np.diag(estimated), 1)


def test_dependence_from_the_backtest_widens_the_national_interval():
    fc = forecast_frame(np.array([10 * UNIFORM, 10 * UNIFORM]), [50, 50], ["a", "b"])
    together = national_total(fc, backtest=backtest_with_dependence(0.9, n=300), model="m")
    apart = national_total(fc)
    assert together.dependence == "backtest" and apart.dependence == "independent"
    width = lambda n: n.table["q95"].iloc[0] - n.table["q05"].iloc[0]  # noqa: E731
    assert width(together) > 1.2 * width(apart)
    assert "estimated from the backtest" in together.describe("governorate")
    assert "drawn independently" in apart.describe("governorate")


def test_the_one_factor_copula_matches_the_full_one_when_every_pair_has_the_same_correlation():
    rng = np.random.default_rng(4)
    q = np.sort(rng.gamma(1.5, 3.0, size=(40, 7)), axis=1)
    corr = np.full((40, 40), 0.5)
    np.fill_diagonal(corr, 1.0)
    full = np.quantile(draw_totals(q, corr, draws=40_000, seed=5), [0.05, 0.5, 0.95])
    factor = np.quantile(draw_totals(q, 0.5, draws=40_000, seed=6), [0.05, 0.5, 0.95])
    np.testing.assert_allclose(factor, full, rtol=0.03)


def test_the_average_correlation_is_read_from_the_sum_without_the_matrix():
    rng = np.random.default_rng(7)
    units = [f"u{i}" for i in range(30)]
    months = 200
    # Normal scores with one common factor: every pair has correlation 0.4.
    z = np.sqrt(0.4) * rng.standard_normal((months, 1)) + np.sqrt(0.6) * rng.standard_normal((months, 30))
    from scipy import stats
    rows = [{"unit": u, "origin": pd.Period("2000-01", "M") + t, "horizon": 1, "model": "m", "mean": 50.0,
             **dict(zip(QUANTILE_COLUMNS, 10 * UNIFORM)), "y": float(np.floor(100 * stats.norm.cdf(z[t, i])))}
            for t in range(months) for i, u in enumerate(units)]
    frame = pd.DataFrame(rows).assign(month=lambda f: f["origin"] + 1)
    rho, used = average_correlation(frame, "m", units)
    full, _ = copula_correlation(frame, "m", units)
    assert used == months
    # The scores' own average correlation (0.32 in this sample of a 0.4 factor model) ...
    assert rho == pytest.approx(np.corrcoef(z.T)[~np.eye(30, dtype=bool)].mean(), abs=0.03)
    # ... and the average of the full matrix's pairs, without building it.
    assert rho == pytest.approx(full[~np.eye(30, dtype=bool)].mean(), abs=0.01)


def test_many_units_take_the_one_factor_copula_and_fewer_draws():
    n = FULL_COPULA_UNITS + 1
    units = [f"u{i:04d}" for i in range(n)]
    q = np.tile([0, 0, 1, 2, 3, 5, 6], (n, 1)).astype(float)
    fc = forecast_frame(q, [2.2] * n, units)
    backtest = pd.concat([fc.assign(origin=fc["origin"] - k, month=fc["month"] - k, y=float(k % 4))
                          for k in range(1, 15)], ignore_index=True)
    total = national_total(fc, backtest=backtest, model="m")
    assert total.one_factor and total.draws == LARGE_DRAWS
    assert "one-factor Gaussian copula" in total.describe("unit")
    assert total.table["mean"].iloc[0] == pytest.approx(2.2 * n)


# --- tiers on the source's scale ------------------------------------------------------------

def scaled_panel(factor: int) -> pd.DataFrame:
    """Four units x 10 months with counts 0..9 times ``factor`` (hand-checkable percentiles)."""
    months = pd.period_range("2016-03", "2016-12", freq="M")
    rows = [{"unit": u, "month": m, "incidents": factor * ((i + k) % 10)}
            for k, u in enumerate(("a", "b", "c", "d")) for i, m in enumerate(months)]
    return pd.DataFrame(rows)


def test_tier_bounds_are_percentiles_of_the_panel_rounded_to_whole_counts_and_scale_with_the_source():
    small, large = tier_scale(scaled_panel(1), pd.Period("2016-12", "M")), tier_scale(
        scaled_panel(20), pd.Period("2016-12", "M"))
    # 40 unit-months, each of 0..9 four times: numpy's linear percentiles 50/75/90/97.5 are
    # 4.5, 7, 8.1 (0.9 * 39 = 35.1 -> between 8 and 9 at 0.1) and 9; rounded to whole counts
    # (halves up) 5, 7, 8 and 9.
    assert small.raw == pytest.approx((4.5, 7.0, 8.1, 9.0))
    assert small.bounds == (5, 7, 8, 9)
    assert large.bounds == (90, 140, 162, 180)
    expected_small = np.array([0.2, 5.5, 7.5, 8.5, 30])
    assert small.tier(expected_small).tolist() == [0, 1, 2, 3, 4]
    # The same governorate at 20 times the scale (IBC against UCDP, say) gets the same tier.
    assert large.tier(20 * expected_small).tolist() == small.tier(expected_small).tolist()
    ranges = " ".join(f"{n}: {w}" for n, w in small.ranges())
    assert "Severe: 9 or more incidents a month expected: as violent as the worst 1 in 40 months" in ranges
    assert ("Low: 5 to under 7 incidents a month expected: busier than half of the months of "
            "Mar 2016\u2060–\u2060Dec 2016") in ranges
    assert "180 or more" in large.ranges()[-1][1]


def test_tier_bounds_of_a_mostly_quiet_panel_stay_ordered_whole_counts():
    months = pd.period_range("2016-01", "2016-12", freq="M")
    panel = pd.DataFrame([{"unit": u, "month": m, "incidents": 3 if (u == "a" and i == 11) else 0}
                          for u in ("a", "b") for i, m in enumerate(months)])
    scale = tier_scale(panel, months[-1])
    # 23 zeros and one 3: percentiles 0, 0, 0 and (0.975 * 23 = 22.425) 0.425 * 3 = 1.275, rounded
    # 0, 0, 0, 1; the first is raised to MIN_BOUND (1), each next to one more than the one before.
    assert scale.bounds == (MIN_BOUND, 2, 3, 4)
    assert "fewer than 1 incident a month expected" in scale.ranges()[0][1]


def test_tier_bounds_come_from_the_last_years_of_the_panel_only():
    months = pd.period_range("2000-01", "2016-12", freq="M")
    # Ten quiet years, then a violent stretch: bounds over the whole panel would sit near 0.
    panel = pd.DataFrame([{"unit": u, "month": m, "incidents": 0 if m.year < 2012 else 10 + (i % 7)}
                          for u in ("a", "b") for i, m in enumerate(months)])
    recent = tier_scale(panel, months[-1])
    assert (recent.first, recent.last, recent.years) == (pd.Period("2012-01", "M"), months[-1], 5)
    assert recent.unit_months == 2 * 60 and recent.bounds[0] >= 10
    longer = tier_scale(panel, months[-1], years=17)
    assert longer.first == months[0] and longer.bounds[0] == MIN_BOUND
    assert "2012-01 to 2016-12" in recent.definition("governorate")


# --- escalation: probabilities and skill ----------------------------------------------------

def test_escalation_probability_reads_whole_count_quantiles_half_way():
    q = np.array([[0, 0, 1, 2, 3, 5, 6]], dtype=float)
    # P(Y > 2.5) = P(Y >= 3): read at 2.5, half-way between q50 = 2 and q75 = 3 -> 1 - 0.625.
    assert escalation_probability(q, [2.5])[0] == pytest.approx(0.375)
    # Read exactly at the whole count (the old reading) it would be a quantile level: 1 - 0.5.
    assert escalation.exceedance_probability(q, [2.5])[0] == pytest.approx(0.5)


def test_escalation_skill_against_zero_and_the_historical_rate():
    months = pd.period_range("2014-01", "2016-12", freq="M")
    # One unit, 2 a month, escalating (to 10) every fourth month from 2015 on.
    y = [10 if (m.year >= 2015 and m.month % 4 == 0) else 2 for m in months]
    panel = pd.DataFrame({"unit": "a", "month": months, "incidents": y})
    rate = historical_rate(panel, "incidents")["a"]
    assert rate.loc[pd.Period("2014-12", "M")] == 0
    assert rate.loc[pd.Period("2016-12", "M")] == pytest.approx(6 / 35)  # 6 escalations in 35 scored months
    rows = []
    for origin in pd.period_range("2015-06", "2016-11", freq="M"):
        month = origin + 1
        q = [1, 1, 2, 2, 3, 3, 4] if month.month % 4 else [6, 7, 8, 10, 11, 12, 13]  # knows the cycle
        rows.append({"unit": "a", "origin": origin, "month": month, "horizon": 1, "model": "m", "mean": q[3],
                     **dict(zip(QUANTILE_COLUMNS, map(float, q))), "y": float(y[list(months).index(month)])})
    skill = escalation_skill(pd.DataFrame(rows), panel, "m", "incidents")
    # Target months 2015-07..2016-12; escalations in 2015-08, 2015-12, 2016-04, 2016-08, 2016-12.
    assert skill["events"] == 5 and skill["n"] == 18
    assert skill["brier_zero"] == pytest.approx(5 / 18)
    assert skill["skilful"] and skill["brier"] < 0.01
    assert sum(r["n"] for r in skill["reliability"]) == 18
    # A forecast that never sees the escalations has no skill over the rate.
    blind = pd.DataFrame(rows).assign(**{c: v for c, v in zip(QUANTILE_COLUMNS, [1.0, 1, 2, 2, 3, 3, 4])})
    assert not escalation_skill(blind, panel, "m", "incidents")["skilful"]


# --- stale covariates -----------------------------------------------------------------------

def test_staleness_records_the_last_observed_month_and_the_filled_stretches():
    months = pd.period_range("2008-01", "2008-12", freq="M")
    cov = pd.DataFrame({"month": pd.period_range("2008-01", "2008-06", freq="M"),
                        "coalition_strikes": [5.0, 6, np.nan, 7, 8, 9], "us_troops": [1.0] * 6})
    info = covariate_staleness(cov, months, fill="ffill-zero")
    strikes = info["coalition_strikes"]
    assert strikes["last_observed"] == "2008-06"
    assert strikes["filled"] == [["2008-03", "2008-03"], ["2008-07", "2008-12"]]
    assert strikes["filled_months"] == 7 and strikes["longest_fill"] == 6
    warnings = staleness_warnings(info, limit=3)
    assert len(warnings) == 2  # both run out in 2008-06
    assert warnings[0].startswith("warning: covariate 'coalition_strikes' is filled (ffill-zero) for the last 6 "
                                  "months of the panel, 2008-07..2008-12, after its last observation (2008-06), "
                                  "past the limit of 3 months")
    assert staleness_warnings(info, limit=6) == []


def test_a_panel_build_with_a_long_fill_warns_and_records_it(fixtures):
    gaz = load_gazetteer()
    events = read_events(fixtures / "ucdp_ged_hdx.csv", format="ucdp", gazetteer=gaz)
    months = pd.period_range(events.events["date"].min().to_period("M"), periods=3, freq="M")
    cov = pd.DataFrame({"month": [months[0]], "us_troops": [1000.0]})
    build = assemble_panel([events], gaz, covariates=cov, covariate_source="cov.csv", fill="ffill",
                           fill_warn_months=1)
    staleness = build.metadata["covariates"]["staleness"]["us_troops"]
    n_months = build.panel["month"].nunique()
    assert n_months >= 3
    assert staleness["last_observed"] == str(months[0]) and staleness["filled_months"] == n_months - 1
    assert any(n.startswith("warning: covariate 'us_troops' is filled (ffill)") for n in build.notes)
    quiet = assemble_panel([events], gaz, covariates=cov, covariate_source="cov.csv", fill="ffill",
                           fill_warn_months=n_months)
    assert not any(n.startswith("warning:") for n in quiet.notes)


def test_a_gazetteer_without_countries_gives_a_title_without_a_trailing_colon():
    from forecast.report.view import report_title

    assert report_title("incidents", "unit", set()) == "Incidents forecast by unit"
    assert report_title("incidents", "unit", {""}) == "Incidents forecast by unit"
    assert report_title("deaths", "governorate", {"Iraq"}) == "Deaths forecast by governorate: Iraq"


def test_the_split_by_type_allocates_each_units_expected_count_in_its_own_recent_mix():
    from forecast.report.split import type_split

    months = pd.period_range("2016-01", "2016-12", freq="M")
    rows = []
    for m in months:
        # a: 3 state-based + 1 one-sided a month; b: 2 one-sided; c: nothing; a has 1 untyped event too.
        rows.append({"unit": "a", "month": m, "incidents": 5, "incidents_state_based": 3, "incidents_one_sided": 1})
        rows.append({"unit": "b", "month": m, "incidents": 2, "incidents_state_based": 0, "incidents_one_sided": 2})
        rows.append({"unit": "c", "month": m, "incidents": 0, "incidents_state_based": 0, "incidents_one_sided": 0})
    panel = pd.DataFrame(rows)
    split = type_split(panel, months[-1], pd.Series({"a": 10.0, "b": 4.0, "c": 7.0}), "incidents")
    got = {r["type"]: r for r in split["rows"]}
    # a's mix 3/5, 1/5, 1/5 of 10; b's 0, 1, 0 of 4; c recorded none: the national mix (36, 36, 12 of 84).
    assert got["state based"]["expected"] == pytest.approx(6 + 0 + 7 * 36 / 84)
    assert got["one sided"]["expected"] == pytest.approx(2 + 4 + 7 * 36 / 84)
    assert got["no type recorded"]["expected"] == pytest.approx(2 + 0 + 7 * 12 / 84)
    assert sum(r["expected"] for r in split["rows"]) == pytest.approx(21)
    assert got["state based"]["recent"] == pytest.approx(3) and got["one sided"]["share"] == pytest.approx(36 / 84)
    assert "an allocation, not a forecast of each type" in split["text"]
    assert type_split(panel.drop(columns=["incidents_state_based", "incidents_one_sided"]), months[-1],
                      pd.Series({"a": 1.0}), "incidents") is None
