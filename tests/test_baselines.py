"""Baselines: hand-computed forecasts, dispersion estimators, errors, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthetic_data import one_unit, synthetic_history
from forecast.models.base import ModelError
from forecast.models.baselines import (
    HistBootstrap,
    LocfNegbin,
    LocfPoisson,
    MovingAverage,
    SeasonalNaive,
    Zero,
    cameron_trivedi_alpha,
    count_matrix,
)
from forecast.schema import QUANTILE_COLUMNS, QUANTILES

BASELINES = [Zero, LocfPoisson, LocfNegbin, SeasonalNaive, MovingAverage, HistBootstrap]


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history()


def last_values(history: pd.DataFrame) -> pd.Series:
    return history.sort_values("month").groupby("unit")["y"].last()


def test_zero_predicts_zero_mean_and_quantiles(history):
    out = Zero().fit(history).predict(4)
    assert len(out) == 18 * 4
    assert (out[["mean", *QUANTILE_COLUMNS]].to_numpy() == 0).all()


def test_forecast_rows_cover_every_unit_and_the_months_after_the_origin(history):
    out = SeasonalNaive().fit(history).predict(3)
    origin = history["month"].max()
    assert sorted(out["unit"].unique()) == sorted(history["unit"].unique())
    for _, rows in out.groupby("unit"):
        assert list(rows["month"]) == [origin + 1, origin + 2, origin + 3]
        assert list(rows["horizon"]) == [1, 2, 3]


def test_locf_poisson_mean_is_last_value_with_poisson_quantiles(history):
    out = LocfPoisson().fit(history).predict(3)
    last = last_values(history)
    mean = out.set_index("unit")["mean"]
    for unit, value in last.items():
        assert (mean.loc[unit] == value).all()
    row = out[out["unit"] == "Baghdad"].iloc[0]
    expected = stats.poisson.ppf(QUANTILES, last["Baghdad"])
    np.testing.assert_array_equal(row[list(QUANTILE_COLUMNS)].to_numpy(dtype=float), expected)


def test_locf_negbin_dispersion_is_the_moment_estimate_of_recent_changes():
    # Changes 2->4, 4->1, 1->7, 7->3: sum((y_t - y_{t-1})^2 - y_t) = (4 + 9 + 36 + 16) - 15 = 50,
    # sum(y_{t-1}^2) = 4 + 16 + 1 + 49 = 70.
    model = LocfNegbin().fit(one_unit([2, 4, 1, 7, 3]))
    assert model.alpha_[0] == pytest.approx(50 / 70)
    # window=2 keeps the last two changes: (36 + 16 - 10) / (1 + 49).
    assert LocfNegbin(window=2).fit(one_unit([2, 4, 1, 7, 3])).alpha_[0] == pytest.approx(42 / 50)
    out = model.predict(2)
    assert (out["mean"] == 3).all()
    n = 1 / (50 / 70)
    expected = stats.nbinom.ppf(QUANTILES, n, n / (n + 3))
    np.testing.assert_array_equal(out[list(QUANTILE_COLUMNS)].to_numpy()[0], expected)


def test_locf_negbin_floors_dispersion_of_a_steady_unit():
    model = LocfNegbin(min_alpha=0.05).fit(one_unit([4, 4, 4, 4, 4, 4]))
    assert model.alpha_[0] == 0.05


def test_cameron_trivedi_alpha_is_min_alpha_when_means_are_all_zero():
    y = np.array([[0.0, 1.0], [0.0, 3.0]])
    mu = np.array([[0.0, 2.0], [0.0, 2.0]])
    alpha = cameron_trivedi_alpha(y, mu, 0.01)
    assert alpha[0] == 0.01
    assert alpha[1] == pytest.approx(max(((1 - 2) ** 2 - 1 + (3 - 2) ** 2 - 3) / 8, 0.01))


def test_seasonal_naive_repeats_the_value_one_season_before_the_target(history):
    out = SeasonalNaive().fit(history).predict(14)
    origin = history["month"].max()
    y = history.set_index(["unit", "month"])["y"]
    for row in out[out["unit"].isin(["Anbar", "Basra"])].itertuples():
        # Months 13 and 14 ahead reuse the last observed season again.
        source = row.month - 12 if row.horizon <= 12 else row.month - 24
        assert source <= origin
        assert row.mean == y[(row.unit, source)]
    first = out[(out["unit"] == "Anbar") & (out["horizon"] == 1)].iloc[0]
    np.testing.assert_array_equal(first[list(QUANTILE_COLUMNS)].to_numpy(dtype=float),
                                  stats.poisson.ppf(QUANTILES, first["mean"]))


def test_seasonal_naive_negbin_uses_seasonal_changes_for_dispersion():
    values = [1, 2, 3, 4, 9, 5, 2, 8]  # season 4: pairs (1,9), (2,5), (3,2), (4,8)
    model = SeasonalNaive(season=4, distribution="negbin", window=4).fit(one_unit(values))
    num = (9 - 1) ** 2 - 9 + (5 - 2) ** 2 - 5 + (2 - 3) ** 2 - 2 + (8 - 4) ** 2 - 8
    assert model.alpha_[0] == pytest.approx(num / (1 + 4 + 9 + 16))
    assert list(model.predict(5)["mean"]) == [9, 5, 2, 8, 9]


def test_seasonal_naive_rejects_a_history_shorter_than_a_season():
    with pytest.raises(ModelError, match="needs at least one season"):
        SeasonalNaive().fit(one_unit([1, 2, 3]))


def test_moving_average_mean_and_method_of_moments_dispersion():
    model = MovingAverage().fit(one_unit([50, 1, 3, 5, 0, 2, 7]))  # window 6 drops the 50
    assert model.mean_[0] == pytest.approx(3.0)
    # Sample variance (ddof 1) of 1, 3, 5, 0, 2, 7 is 34 / 5; alpha = (6.8 - 3) / 3^2.
    assert model.alpha_[0] == pytest.approx((34 / 5 - 3) / 9)
    out = model.predict(2)
    np.testing.assert_allclose(out["mean"], 3.0)
    n = 1 / model.alpha_[0]
    expected = stats.nbinom.ppf(QUANTILES, n, n / (n + 3))
    np.testing.assert_array_equal(out[list(QUANTILE_COLUMNS)].to_numpy()[1], expected)


def test_moving_average_floors_dispersion_of_an_underdispersed_window():
    assert MovingAverage().fit(one_unit([3, 3, 3, 3, 3, 3])).alpha_[0] == 0.01


def test_hist_bootstrap_quantiles_are_empirical_quantiles_of_last_12_months(history):
    out = HistBootstrap().fit(history).predict(3)
    for unit in ("Anbar", "Duhok", "Kirkuk"):
        last12 = history[history["unit"] == unit].sort_values("month")["y"].to_numpy()[-12:]
        rows = out[out["unit"] == unit]
        for _, row in rows.iterrows():
            expected = np.quantile(last12, QUANTILES)
            np.testing.assert_allclose(row[list(QUANTILE_COLUMNS)].to_numpy(dtype=float), expected)
            assert row["mean"] == pytest.approx(last12.mean())


@pytest.mark.parametrize("model", [LocfNegbin(window=0), MovingAverage(window=2.5), HistBootstrap(window=True),
                                   SeasonalNaive(distribution="gamma"), LocfNegbin(min_alpha=0)])
def test_invalid_hyperparameters_are_rejected_at_fit(model, history):
    with pytest.raises(ModelError, match=f"{model.name}: (window|distribution|min_alpha)"):
        model.fit(history)


def test_incomplete_grid_is_rejected_with_the_missing_unit_and_month(history):
    holed = history.drop(history.index[(history["unit"] == "Basra") & (history["month"] == pd.Period("2012-03", "M"))])
    with pytest.raises(ModelError, match="unit 'Basra' has no row .* for 2012-03"):
        LocfPoisson().fit(holed)


def test_skipped_month_is_rejected():
    history = one_unit([1, 2, 3, 4])
    with pytest.raises(ModelError, match="skips month"):
        count_matrix(history.drop(index=2))


def test_all_zero_unit_gets_zero_forecasts(history):
    quiet = history.copy()
    quiet.loc[quiet["unit"] == "Duhok", "y"] = 0
    for cls in BASELINES:
        out = cls().fit(quiet).predict(3)
        assert (out.loc[out["unit"] == "Duhok", ["mean", *QUANTILE_COLUMNS]].to_numpy() == 0).all(), cls.name


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.name)
def test_values_after_the_origin_change_nothing(cls, history):
    origin, later = pd.Period("2014-06", "M"), pd.Period("2015-06", "M")
    altered = history.copy()
    altered.loc[altered["month"] > later, "y"] += 17

    fitted = cls().fit(history[history["month"] <= origin])
    fitted_altered = cls().fit(altered[altered["month"] <= origin])
    pd.testing.assert_frame_equal(fitted.predict(6), fitted_altered.predict(6))

    updated = cls().fit(history[history["month"] <= origin]).update(history[history["month"] <= later])
    updated_altered = cls().fit(history[history["month"] <= origin]).update(altered[altered["month"] <= later])
    pd.testing.assert_frame_equal(updated.predict(6), updated_altered.predict(6))
    assert updated.predict(1)["month"].iloc[0] == later + 1
