"""Leak-free features: hand-checked values, prefix invariance, direct targets, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.errors import DataError
from features.transforms import build_features, direct_targets, feature_names

NAN = np.nan


def make_history(ys: dict[str, list[float]], start: str = "2020-01", **covariates: dict[str, list[float]]) -> pd.DataFrame:
    """A complete grid from per-unit series (all of the same length)."""
    n = len(next(iter(ys.values())))
    months = pd.period_range(start, periods=n, freq="M")
    frame = pd.DataFrame(
        {
            "unit": np.repeat(list(ys), n),
            "month": pd.PeriodIndex(np.tile(months, len(ys)), freq="M"),
            "y": np.concatenate([np.asarray(v, dtype=float) for v in ys.values()]),
        }
    )
    for name, per_unit in covariates.items():
        frame[name] = np.concatenate([np.asarray(per_unit[u], dtype=float) for u in ys])
    return frame


@pytest.fixture
def tiny():
    """Three units, six months: A borders B, B borders A, C and an unknown Z; C has none."""
    history = make_history(
        {"A": [0, 2, 1, 5, 0, 3], "B": [4, 4, 4, 4, 4, 4], "C": [1, 0, 0, 0, 9, 0]},
        cov={"A": [0, 1, 2, 3, 4, 5], "B": [6, 7, 8, 9, 10, 11], "C": [12, 13, 14, 15, 16, 17]},
    )
    neighbours = {"A": ["B"], "B": ["A", "C", "Z"]}
    feats = build_features(history, lags=(1, 2), windows=(3,), neighbours=neighbours, covariate_lags=(1,))
    return feats.set_index(["unit", feats["month"].astype(str)])


def column(feats, unit, name):
    return feats.loc[unit, name].to_numpy()


def test_lags_are_counts_of_earlier_months_as_of_t(tiny):
    np.testing.assert_array_equal(column(tiny, "A", "y_lag0"), [0, 2, 1, 5, 0, 3])
    np.testing.assert_array_equal(column(tiny, "A", "y_lag1"), [NAN, 0, 2, 1, 5, 0])
    np.testing.assert_array_equal(column(tiny, "A", "y_lag2"), [NAN, NAN, 0, 2, 1, 5])


def test_rolling_windows_end_at_t_and_need_a_full_window(tiny):
    np.testing.assert_allclose(column(tiny, "A", "y_rollmean3"), [NAN, NAN, 1, 8 / 3, 2, 8 / 3])
    np.testing.assert_array_equal(column(tiny, "A", "y_rollmax3"), [NAN, NAN, 2, 5, 5, 5])
    np.testing.assert_array_equal(column(tiny, "C", "y_rollmax3"), [NAN, NAN, 1, 0, 9, 9])


def test_months_since_spike_compares_with_the_quantile_of_earlier_months_only(tiny):
    # A: 2 > q90([0]) = 0 spike; 1 < q90([0, 2]) = 1.8; 5 > q90([0, 2, 1]) = 1.8 spike;
    # 3 < q90([0, 2, 1, 5, 0]) = 3.8. The first month is never a spike.
    np.testing.assert_array_equal(column(tiny, "A", "y_months_since_spike"), [NAN, 0, 1, 0, 1, 2])
    # B is constant: never above its own quantile.
    assert np.isnan(column(tiny, "B", "y_months_since_spike")).all()
    # C: 9 > q90([1, 0, 0, 0]) = 0.7.
    np.testing.assert_array_equal(column(tiny, "C", "y_months_since_spike"), [NAN, NAN, NAN, NAN, 0, 1])


def test_neighbour_mean_ignores_unknown_names_and_falls_back_to_the_national_mean(tiny):
    np.testing.assert_array_equal(column(tiny, "A", "y_neighbour_mean"), [4, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(column(tiny, "B", "y_neighbour_mean"), [0.5, 1, 0.5, 2.5, 4.5, 1.5])
    # C has no neighbours: mean of A and B.
    np.testing.assert_array_equal(column(tiny, "C", "y_neighbour_mean"), [2, 3, 2.5, 4.5, 2, 3.5])


def test_national_total_log1p_and_month_harmonics(tiny):
    np.testing.assert_array_equal(column(tiny, "B", "national_total"), [5, 6, 5, 9, 13, 7])
    np.testing.assert_allclose(column(tiny, "B", "national_total_log1p"), np.log1p([5, 6, 5, 9, 13, 7]))
    np.testing.assert_allclose(column(tiny, "A", "y_rollmean3_log1p"), np.log1p([NAN, NAN, 1, 8 / 3, 2, 8 / 3]))
    m = np.arange(1, 7)
    np.testing.assert_allclose(column(tiny, "C", "month_sin"), np.sin(2 * np.pi * m / 12))
    np.testing.assert_allclose(column(tiny, "C", "month_cos"), np.cos(2 * np.pi * m / 12))


def test_covariates_at_t_and_lagged_within_each_unit(tiny):
    np.testing.assert_array_equal(column(tiny, "B", "cov_lag0"), [6, 7, 8, 9, 10, 11])
    np.testing.assert_array_equal(column(tiny, "B", "cov_lag1"), [NAN, 6, 7, 8, 9, 10])


def test_columns_follow_feature_names_and_rows_are_sorted_whatever_the_input_order(tiny):
    history = make_history({"b": [1, 2, 3], "a": [0, 0, 7]}, troops={"b": [1, 1, 2], "a": [1, 1, 2]})
    shuffled = history.sample(frac=1.0, random_state=3)
    feats = build_features(shuffled)
    assert list(feats.columns) == ["unit", "month", *feature_names(covariates=["troops"])]
    assert feats["unit"].tolist() == ["a"] * 3 + ["b"] * 3
    assert feats["month"].dtype == pd.PeriodDtype("M")
    pd.testing.assert_frame_equal(feats, build_features(history))
    assert list(build_features(history, covariates=[], log1p=False).columns[2:]) == feature_names(log1p=False)


def test_a_single_unit_gets_no_neighbour_mean():
    feats = build_features(make_history({"only": [3, 1, 4]}))
    assert np.isnan(feats["y_neighbour_mean"]).all()
    np.testing.assert_array_equal(feats["national_total"], [3, 1, 4])


def test_direct_targets_are_the_count_h_months_later_and_nan_beyond_the_history():
    history = make_history({"A": [0, 2, 1, 5], "B": [4, 3, 2, 1]})
    lead = direct_targets(history.iloc[::-1], 2)
    assert lead.name == "y_lead2"
    np.testing.assert_array_equal(lead, [1, 5, NAN, NAN, 2, 1, NAN, NAN])
    # Aligned with build_features: the target of row (unit, t) is y_lag0 of (unit, t + h).
    feats = build_features(history)
    for i in range(len(feats)):
        later = feats[(feats["unit"] == feats["unit"][i]) & (feats["month"] == feats["month"][i] + 2)]
        expected = later["y_lag0"].iloc[0] if len(later) else NAN
        np.testing.assert_array_equal(lead[i], expected)
    assert np.isnan(direct_targets(history, 4)).all()


@st.composite
def panels(draw):
    n_units = draw(st.integers(1, 4))
    n_months = draw(st.integers(1, 30))
    names = [f"u{i}" for i in range(n_units)]
    counts = st.lists(st.integers(0, 60), min_size=n_months, max_size=n_months)
    ys = {u: draw(counts) for u in names}
    floats = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=n_months, max_size=n_months)
    troops = {u: draw(floats) for u in names}
    history = make_history(ys, start=draw(st.sampled_from(["1999-11", "2020-01"])), troops=troops)
    pool = [*names, "unknown"]
    neighbours = {u: draw(st.lists(st.sampled_from(pool), max_size=3)) for u in draw(st.lists(st.sampled_from(pool), max_size=4))}
    cut = draw(st.integers(0, n_months - 1))
    return history, neighbours, history["month"].min() + cut


@settings(max_examples=80, deadline=None, derandomize=True)
@given(case=panels(), lags=st.sampled_from([(1, 2, 3, 6, 12), (1,), (0, 4)]), windows=st.sampled_from([(3, 6, 12), (1, 2)]))
def test_features_are_prefix_invariant(case, lags, windows):
    history, neighbours, cut = case
    kwargs = dict(lags=lags, windows=windows, neighbours=neighbours, covariate_lags=(1, 3))
    full = build_features(history, **kwargs)
    on_cut = build_features(history[history["month"] <= cut], **kwargs)
    expected = full[full["month"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(on_cut, expected, check_exact=True)
    for h in (1, 2):
        lead = direct_targets(history[history["month"] <= cut], h)
        # A target on the cut history is either the true count or NaN, never a later value.
        true = direct_targets(history, h)[(full["month"] <= cut).to_numpy()].reset_index(drop=True)
        beyond = (on_cut["month"] + h > cut).to_numpy()
        assert lead[beyond].isna().all()
        pd.testing.assert_series_equal(lead[~beyond], true[~beyond])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: h.drop(columns="y"), r"history lacks column\(s\) y"),
        (lambda h: h.assign(month=h["month"].dt.to_timestamp()), r"'month' must hold monthly periods"),
        (lambda h: h.assign(y=h["y"].where(h.index != 4, -1.0)), r"unit 'B', month 2020-02 has -1.0"),
        (lambda h: h.drop(index=4), r"unit 'B' has no row for month 2020-02"),
        (lambda h: pd.concat([h, h.iloc[[2]]]), r"more than one row for unit 'A', month 2020-03"),
        (lambda h: h.assign(cov="x"), r"covariate 'cov' must be numeric"),
        (lambda h: h.iloc[:0], r"history is empty"),
    ],
)
def test_unusable_histories_are_rejected_with_the_offending_value(edit, match):
    history = make_history({"A": [1, 2, 3], "B": [0, 0, 1]}, cov={"A": [1, 2, 3], "B": [1, 2, 3]})
    with pytest.raises(DataError, match=match):
        build_features(edit(history))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(lags=(1, -2)), r"lags must be whole numbers >= 0, got -2"),
        (dict(windows=(0,)), r"windows must be whole numbers >= 1, got 0"),
        (dict(covariate_lags=(1.5,)), r"covariate_lags must be whole numbers >= 0, got 1.5"),
        (dict(spike_quantile=1.0), r"spike_quantile must lie strictly between 0 and 1"),
    ],
)
def test_invalid_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_features(make_history({"A": [1, 2, 3]}), **kwargs)


def test_unknown_covariate_and_bad_horizon_are_named():
    history = make_history({"A": [1, 2, 3]}, troops={"A": [1, 2, 3]})
    with pytest.raises(DataError, match=r"covariate\(s\) 'tempo' not in the history; it has troops"):
        build_features(history, covariates=["tempo"])
    with pytest.raises(ValueError, match=r"horizon must be a whole number >= 1, got 0"):
        direct_targets(history, 0)
