"""The non-randomised PIT for count forecasts (forecast/evaluation/calibration.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.evaluation.calibration import pit_bounds, pit_coverage, pit_curve, pit_distance, pit_histogram
from forecast.evaluation.scores import coverage_50
from forecast.models.base import negbin_quantiles, poisson_quantiles
from forecast.schema import QUANTILE_COLUMNS


def _frame(quantiles, y) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(quantiles, dtype=float), columns=list(QUANTILE_COLUMNS))
    frame["y"] = np.asarray(y, dtype=float)
    return frame


def test_pit_matches_a_hand_computation():
    # Row 1: a point mass at 0 and y = 0: F(-1) = 0, F(0) = 1, so its PIT is uniform.
    # Row 2: quantiles 0..6 and y = 3: F(3) = G(3.5) = 0.5 + 0.25 * 0.5 = 0.625 (half-way from
    # q50 = 3 to q75 = 4), F(2) = G(2.5) = 0.25 + 0.25 * 0.5 = 0.375.
    frame = _frame([[0] * 7, [0, 1, 2, 3, 4, 5, 6]], [0, 3])
    np.testing.assert_allclose(pit_bounds(frame), [[0.0, 1.0], [0.375, 0.625]])
    # Row 2's conditional PIT is uniform on [0.375, 0.625]: at u = 0.5 both rows give 0.5.
    np.testing.assert_allclose(pit_curve(frame, [0.0, 0.5, 1.0]), [0.0, 0.5, 1.0])
    # Four bins: row 1 puts 1/4 in each, row 2 half in the second and half in the third.
    np.testing.assert_allclose(pit_histogram(frame, bins=4), [0.125, 0.375, 0.375, 0.125])
    # Total variation from flat: 0.5 * (0.125 + 0.125 + 0.125 + 0.125).
    assert pit_distance(frame, bins=4) == pytest.approx(0.25)
    # The central 50%: row 1 has 0.5 of its mass in [0.25, 0.75], row 2 all of it.
    assert pit_coverage(frame, 0.5) == pytest.approx(0.75)


def test_a_count_the_forecast_gave_no_mass_steps_at_the_top_and_missing_actuals_are_left_out():
    # All quantiles 0 and y = 2: F(1) = F(2) = 1, the PIT is 1 (the count was above everything).
    frame = _frame([[0] * 7, [0] * 7], [2, np.nan])
    np.testing.assert_allclose(pit_bounds(frame)[0], [1.0, 1.0])
    assert np.isnan(pit_bounds(frame)[1]).all()
    np.testing.assert_allclose(pit_curve(frame, [0.5, 0.999, 1.0]), [0.0, 0.0, 1.0])
    assert pit_distance(frame, bins=10) == pytest.approx(0.9)
    assert np.isnan(pit_curve(_frame([[0] * 7], [np.nan]), 0.5))


@pytest.mark.parametrize(("mu", "calibrated_below"), [(0.3, 0.12), (3.0, 0.06), (30.0, 0.06), ("mixed", 0.03)])
def test_calibrated_poisson_forecasts_are_near_uniform_and_biased_or_wide_ones_are_not(mu, calibrated_below):
    rng = np.random.default_rng(2009)
    means = rng.gamma(0.5, 10.0, 20_000) if mu == "mixed" else np.full(20_000, mu)
    y = rng.poisson(means)
    calibrated = pit_distance(_frame(poisson_quantiles(means), y))
    assert calibrated < calibrated_below
    doubled = pit_distance(_frame(poisson_quantiles(2 * means), y))
    assert doubled > 0.13 and doubled > 1.15 * calibrated
    if mu != 0.3:  # at 0.3 the 7 quantiles barely tell a wide distribution from a narrow one
        wide = pit_distance(_frame(negbin_quantiles(means, 1.0), y))
        assert wide > 2.5 * calibrated


def test_pit_coverage_is_nominal_for_calibrated_small_counts_where_the_closed_interval_is_not():
    rng = np.random.default_rng(7)
    means = np.full(20_000, 0.4)
    frame = _frame(poisson_quantiles(means), rng.poisson(means))
    # q25 = q75 = 0: every month of 0 (67% of them) counts as inside the closed interval.
    assert np.nanmean(coverage_50(frame)) > 0.65
    assert pit_coverage(frame, 0.5) == pytest.approx(0.5, abs=0.06)
    assert pit_coverage(frame, 0.9) == pytest.approx(0.9, abs=0.06)
