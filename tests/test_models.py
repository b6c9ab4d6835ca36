"""One contract, checked for every registered model (statsforecast's assert_class idea)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import forecast.models
from synthetic_data import synthetic_history, until
from forecast.evaluation.backtest import BacktestDesign, history_at, run_backtest
from forecast.catalog import MODELS, make_model
from forecast.models.base import ModelError
from forecast.models.counts import Hurdle, NegBinGLM
from forecast.models.ets import ETS
from forecast.models.intermittent import Croston
from forecast.models.sarimax import Sarimax
from forecast.schema import QUANTILE_COLUMNS
from forecast.errors import NotFittedError

ORIGIN = pd.Period("2014-06", freq="M")
H = 3
#: Small, fast settings for the costly models (the contract does not depend on their size).
FAST = {"global_boost": {"max_iter": 20}, "combination": {"eval_months": 12}}


def _make(name: str):
    return make_model(name, **FAST.get(name, {}))


@pytest.fixture(scope="module")
def history(synthetic_panel):
    return history_at(synthetic_panel, ORIGIN)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_honours_the_contract(name, history, synthetic_panel):
    model = _make(name)
    params = model.get_params()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.predict(H)
    assert model.fit(history) is model
    assert model.get_params() == params, "fit must not change hyperparameters"
    out = model.predict(H)
    units = sorted(synthetic_panel["unit"].unique())
    assert sorted(out["unit"].unique()) == units
    assert len(out) == len(units) * H
    assert sorted(out["month"].unique()) == list(pd.period_range(ORIGIN + 1, ORIGIN + H, freq="M"))
    assert set(out["horizon"]) == set(range(1, H + 1))
    q = out[list(QUANTILE_COLUMNS)].to_numpy()
    assert (q >= 0).all() and (q[:, 1:] >= q[:, :-1] - 1e-9).all()
    again = _make(name).fit(history).predict(H)
    pd.testing.assert_frame_equal(out, again, obj=f"{name}: same seed, same forecast")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_changing_or_deleting_data_after_the_origin_changes_no_forecast(name, synthetic_panel):
    # Three origins with one refit, so update() is on the path too.
    design = BacktestDesign(start=ORIGIN - 2, end=ORIGIN, horizon=H, refit_every=3)
    factory = {name: lambda: _make(name)}
    base = run_backtest(synthetic_panel, factory, design, progress=False)
    later = synthetic_panel["month"] > ORIGIN
    altered = synthetic_panel.copy()
    altered.loc[later, "incidents"] = altered.loc[later, "incidents"] * 7 + 3
    for col in ("us_troops", "ops_tempo"):
        altered.loc[later, col] = altered.loc[later, col] * 2 + 1
    cut = synthetic_panel[~later]
    for other in (altered, cut):
        again = run_backtest(other, factory, design, progress=False)
        cols = ["unit", "origin", "month", "mean", *QUANTILE_COLUMNS]
        pd.testing.assert_frame_equal(base[cols], again[cols], obj=f"{name} forecasts")


def test_unknown_model_and_parameter_get_suggestions():
    with pytest.raises(ModelError, match=r"unknown model 'locf_poison'; did you mean locf_poisson"):
        make_model("locf_poison")
    with pytest.raises(ModelError, match=r"model 'moving_average' has no parameter 'windw' \(did you mean 'window'\?\)"):
        make_model("moving_average", windw=3)


def _defined_models() -> dict[str, type]:
    """Every class with ``@register``: each module of forecast.models, and the ensemble, imported."""
    for info in pkgutil.iter_modules(forecast.models.__path__, "forecast.models."):
        importlib.import_module(info.name)
    importlib.import_module("forecast.ensemble")
    return MODELS.registered()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_registry_line_of_each_model_says_what_its_class_says(name):
    cls = MODELS[name]
    assert cls.name == name
    assert cls.__module__ == MODELS.module(name), f"{name}: its registry line points at the wrong module"
    assert MODELS.summary(name) == cls.summary, (
        f"{name}: the summary in forecast.models.MODELS differs from {cls.__qualname__}.summary; make them the same")


def test_every_registered_class_has_a_registry_line():
    missing = sorted(set(_defined_models()) - set(MODELS))
    assert not missing, f"models with @register but no line in forecast.models.MODELS: {missing}"


def test_an_unknown_name_is_a_key_error_and_a_line_without_a_class_says_so():
    from forecast.models import Registry

    registry = Registry({"ghost": ("forecast.models.baselines", "not defined there")})
    with pytest.raises(KeyError):
        registry["zero"]
    assert "zero" not in registry and "ghost" in registry and registry.summary("ghost") == "not defined there"
    with pytest.raises(TypeError, match=r"forecast.models.baselines registers no model 'ghost'"):
        registry["ghost"]


def test_listing_and_naming_models_imports_no_model_module():
    code = ("import sys; from forecast.catalog import MODELS, DEFAULT_MODEL\n"
            "names = sorted(MODELS); [MODELS.summary(n) for n in names]; assert DEFAULT_MODEL in MODELS\n"
            "heavy = {MODELS.module(n) for n in names} | {'forecast.models.base'}\n"
            "print(sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in ('pandas', 'numpy', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("cls", [ETS, Sarimax, NegBinGLM, Hurdle, Croston], ids=lambda c: c.name)
def test_values_after_the_origin_change_nothing(cls):
    # The statistical models fitted and updated directly, not through the backtest.
    history = synthetic_history()
    altered = history.copy()
    altered.loc[altered["month"] > pd.Period("2015-06", "M"), ["y", "us_troops"]] *= 3

    fitted = cls().fit(until(history, "2014-06"))
    fitted_altered = cls().fit(until(altered, "2014-06"))
    pd.testing.assert_frame_equal(fitted.predict(3), fitted_altered.predict(3))

    updated = cls().fit(until(history, "2014-06")).update(until(history, "2015-06"))
    updated_altered = cls().fit(until(history, "2014-06")).update(until(altered, "2015-06"))
    pd.testing.assert_frame_equal(updated.predict(3), updated_altered.predict(3))


def test_the_quantile_helpers_give_scipy_stats_own_numbers():
    from scipy import stats

    from forecast.models.base import negbin_quantiles, poisson_quantiles
    from forecast.schema import QUANTILES

    rng = np.random.default_rng(0)
    mu = np.concatenate([rng.gamma(0.5, 20, 5000), [0.0, 1e-6, 0.01, 0.5, 1, 2, 3, 10, 100, 1e4, 1e6]])
    alpha = rng.gamma(1, 0.5, len(mu))
    levels = np.asarray(QUANTILES)[None, :]
    safe = np.maximum(mu, 1e-12)
    np.testing.assert_array_equal(poisson_quantiles(mu), stats.poisson.ppf(levels, safe[:, None]))
    n = 1.0 / np.maximum(alpha, 1e-8)
    np.testing.assert_array_equal(negbin_quantiles(mu, alpha), stats.nbinom.ppf(levels, n[:, None], (n / (n + safe))[:, None]))
