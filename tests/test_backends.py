"""Parallel backends, memoised fits and sliced features change no number; capped fits are reported.

A real ``dask.distributed.LocalCluster`` (two single-threaded worker processes on 127.0.0.1)
is started once for the module.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import forecast.evaluation.parallel
from features.gazetteer import load_gazetteer
from features.transforms import PrefixFeatures, build_features, direct_targets
from forecast.evaluation.backtest import BacktestDesign, fit_notes, history_at, run_backtest
from forecast.catalog import make_model
from forecast.models.base import FitCache, ModelError, fit_cache
from forecast.errors import BackendError

DESIGN = BacktestDesign(start=pd.Period("2014-01", freq="M"), end=pd.Period("2015-12", freq="M"), step=2,
                        horizon=3, refit_every=4)


def _models() -> dict:
    # The ensemble shares its members' fits with the random forest and croston run on their
    # own (same, default, hyperparameters); sarimax needs covariates at target months; hgb
    # and the forest slice their features.
    return {
        "locf_negbin": lambda: make_model("locf_negbin"),
        "croston": lambda: make_model("croston"),
        "random_forest": lambda: make_model("random_forest"),
        "hgb": lambda: make_model("hgb", max_iter=20),
        "sarimax": lambda: make_model("sarimax", maxiter=20),
        "ensemble": lambda: make_model("ensemble", members=("random_forest", "croston"), eval_months=12),
    }


@pytest.fixture(scope="module")
def panel(synthetic_panel):
    return synthetic_panel[synthetic_panel["month"] >= pd.Period("2010-01", freq="M")].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(panel):
    """One process, every fit and feature build from scratch: the simple approach."""
    return run_backtest(panel, _models(), DESIGN, covariates=["us_troops"], progress=False, reuse=False)


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    yield cluster
    cluster.close()


def _run(panel, **kwargs):
    return run_backtest(panel, _models(), DESIGN, covariates=["us_troops"], progress=False, **kwargs)


def _assert_same(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(result, expected, check_exact=False, rtol=1e-9, atol=1e-12)
    assert result.attrs["fit_notes"] == expected.attrs["fit_notes"]


def test_memoised_fits_and_sliced_features_give_the_results_of_the_simple_approach(panel, reference):
    _assert_same(_run(panel, n_jobs=1), reference)


def test_results_do_not_depend_on_the_number_of_joblib_workers(panel, reference):
    _assert_same(_run(panel, n_jobs=2), reference)


def test_dask_cluster_at_an_address_gives_the_same_results(panel, reference, cluster):
    _assert_same(_run(panel, backend="dask", scheduler=cluster.scheduler_address, n_jobs=2), reference)


def test_dask_without_an_address_starts_and_stops_a_local_cluster(panel, reference):
    from dask.distributed import Client

    result = _run(panel, backend="dask", n_jobs=2)
    _assert_same(result, reference)
    # Nothing of the cluster it started is left behind: no current client.
    with pytest.raises(ValueError, match="No clients found"):
        Client.current()


def test_an_unreachable_scheduler_fails_within_seconds_with_a_clear_error(panel, monkeypatch):
    monkeypatch.setattr(forecast.evaluation.parallel, "CONNECT_TIMEOUT", 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(BackendError, match=rf"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}' within 2 s"):
        run_backtest(panel, {"zero": lambda: make_model("zero")}, DESIGN, backend="dask",
                     scheduler=f"tcp://127.0.0.1:{port}", progress=False)


def test_a_scheduler_port_that_accepts_and_never_answers_fails_within_the_timeout(panel, monkeypatch):
    monkeypatch.setattr(forecast.evaluation.parallel, "CONNECT_TIMEOUT", 2)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the TCP handshakes; nothing ever reads or answers
    port = silent.getsockname()[1]
    try:
        start = time.monotonic()
        with pytest.raises(BackendError, match=rf"at 'tcp://127.0.0.1:{port}' within 2 s \(no answer\)"):
            run_backtest(panel, {"zero": lambda: make_model("zero")}, DESIGN, backend="dask",
                         scheduler=f"tcp://127.0.0.1:{port}", progress=False)
        assert time.monotonic() - start < 30  # bounded: the old client waited for good
    finally:
        silent.close()


def test_unknown_backend_and_a_scheduler_without_dask_are_rejected(panel):
    with pytest.raises(ModelError, match="backend must be one of joblib, dask"):
        run_backtest(panel, {"zero": lambda: make_model("zero")}, DESIGN, backend="spark", progress=False)
    with pytest.raises(ModelError, match="needs backend 'dask'"):
        run_backtest(panel, {"zero": lambda: make_model("zero")}, DESIGN, scheduler="tcp://127.0.0.1:8786",
                     progress=False)


def test_cli_backtest_reports_an_unreachable_scheduler_without_a_traceback(tmp_path, panel, monkeypatch):
    from forecast.cli import main

    monkeypatch.setattr(forecast.evaluation.parallel, "CONNECT_TIMEOUT", 2)
    path = tmp_path / "panel.parquet"
    panel.assign(month=panel["month"].astype(str)).to_parquet(path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["backtest", "--panel", str(path), "--models", "zero", "--start", "2015-01", "--end", "2015-03",
            "--out", str(tmp_path / "out"), "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{port}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "cannot reach the Dask scheduler" in result.output
    assert not (tmp_path / "out").exists()


def test_repeated_fits_are_taken_from_the_cache(panel):
    # Refits every 2 origins, step 6: the calibration regressors of each refit are the final
    # regressors of the refit 24 months earlier, and the ensemble refits its members.
    design = BacktestDesign(start=pd.Period("2012-01", freq="M"), end=pd.Period("2015-12", freq="M"), step=6,
                            horizon=2, refit_every=2)
    models = {"random_forest": lambda: make_model("random_forest"),
              "ensemble": lambda: make_model("ensemble", members=("random_forest",), weighting="equal")}
    with fit_cache(FitCache(models=True)) as cache:
        cached = run_backtest(panel, models, design, covariates=["us_troops"], progress=False)
    assert cache.hits >= 10
    simple = run_backtest(panel, models, design, covariates=["us_troops"], progress=False, reuse=False)
    _assert_same(cached, simple)


def test_the_plan_runs_every_block_once_keeps_shared_fits_together_and_starts_the_longest_tasks_first():
    from forecast.evaluation.backtest import _plan

    models = {**_models(), "nb_glm": lambda: make_model("nb_glm"), "zero": lambda: make_model("zero")}
    cost = {name: factory().cost for name, factory in models.items()}
    n_blocks = 6
    for workers in (1, 2, 4):
        tasks = _plan(models, n_blocks, workers)
        runs = sorted((name, b) for task in tasks for name in task.models for b in task.blocks)
        assert runs == sorted((name, b) for name in models for b in range(n_blocks))
        groups = {name: {t.models for t in tasks if name in t.models} for name in models}
        # The ensemble, its members and the members run on their own form one group.
        assert groups["ensemble"] == groups["random_forest"] == groups["croston"]
        assert len(groups["ensemble"]) == 1 and len(next(iter(groups["ensemble"]))) == 3
        if workers == 1:
            assert all(len(t.blocks) == n_blocks for t in tasks)
            continue
        # A model heavier than a worker's share of the work is split into runs of refits.
        assert len(groups["hgb"]) == 1 and sum("hgb" in t.models for t in tasks) == (1 if workers == 2 else 2)
        task_costs = [sum(cost[n] for n in t.models) * len(t.blocks) for t in tasks]
        assert task_costs == sorted(task_costs, reverse=True)


# ----------------------------------------------------------------------------------------
# Features: built once, sliced per origin, never leaking


def test_sliced_features_equal_features_built_on_the_history_cut_at_the_origin(panel):
    full = history_at(panel, panel["month"].max(), covariates=["us_troops"])
    store = PrefixFeatures(full)
    params = {"lags": (1, 3, 12), "windows": (3, 12), "neighbours": {"Anbar": ["Ninewa"]}, "log1p": True}
    for origin in ["2010-01", "2012-06", "2014-12", str(panel["month"].max())]:
        cut = history_at(panel, pd.Period(origin, freq="M"), covariates=["us_troops"])
        pd.testing.assert_frame_equal(store.features(cut, **params), build_features(cut, **params))
    assert store.builds == 1 and store.slices == 4


def test_a_history_that_is_not_a_prefix_gets_its_own_features(panel):
    full = history_at(panel, panel["month"].max(), covariates=["us_troops"])
    store = PrefixFeatures(full)
    cut = history_at(panel, pd.Period("2013-06", freq="M"), covariates=["us_troops"])
    edited = cut.copy()
    edited.loc[edited["month"] == pd.Period("2013-06", freq="M"), "y"] += 7
    got = store.features(edited)
    pd.testing.assert_frame_equal(got, build_features(edited))
    assert not got.equals(build_features(cut))
    assert store.slices == 0


def test_direct_targets_never_cross_the_origin(panel):
    cut = history_at(panel, pd.Period("2013-06", freq="M"))
    features = build_features(cut)
    for h in (1, 3, 6):
        target = direct_targets(cut, h)
        target_month = features["month"] + h
        assert target[target_month > pd.Period("2013-06", freq="M")].isna().all()
        assert target[target_month <= pd.Period("2013-06", freq="M")].notna().all()


def test_changing_the_panel_after_an_origin_changes_no_forecast_made_at_it(panel):
    models = {"hgb": lambda: make_model("hgb", max_iter=20), "random_forest": lambda: make_model("random_forest",
                                                                                                  n_estimators=20)}
    before = run_backtest(panel, models, DESIGN, covariates=["us_troops"], progress=False)
    cut = pd.Period("2014-09", freq="M")
    later = panel["month"] > cut
    edited = panel.copy()
    edited.loc[later, "incidents"] = edited.loc[later, "incidents"] * 3 + 5
    edited.loc[later, "us_troops"] = 0.0
    after = run_backtest(edited, models, DESIGN, covariates=["us_troops"], progress=False)
    keep = ["unit", "origin", "month", "horizon", "model", "mean", "q05", "q50", "q95"]
    old = before.loc[before["origin"] <= cut, keep].reset_index(drop=True)
    new = after.loc[after["origin"] <= cut, keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(new, old)
    assert not before.loc[before["origin"] > cut, "mean"].equals(after.loc[after["origin"] > cut, "mean"])


def test_the_random_forest_shortcut_predicts_exactly_what_scikit_learn_predicts(panel):
    model = make_model("random_forest", n_estimators=30).fit(history_at(panel, pd.Period("2014-12", freq="M")))
    regressor = model.regressors_[1]
    X = np.vstack([model.origin_X_, model.train_X_[:200]])
    X[3, 0] = np.nan  # a missing value takes the trees' learned default branch
    assert np.array_equal(model._predict_regressor(regressor, X), regressor.predict(X))


# ----------------------------------------------------------------------------------------
# Capped fits


def test_fits_that_do_not_converge_are_capped_and_reported(panel):
    models = {"ets": lambda: make_model("ets", maxiter=1, n_samples=100),
              "nb_glm": lambda: make_model("nb_glm", maxiter=1),
              "locf_poisson": lambda: make_model("locf_poisson")}
    result = run_backtest(panel, models, DESIGN, covariates=["us_troops"], progress=False)
    notes = fit_notes(result)
    assert set(notes["model"]) == {"ets", "nb_glm"}
    assert notes["note"].str.contains("did not converge").all()
    ets = notes[notes["model"] == "ets"]
    # Noted when fitted at each refit (every 4th origin), for every unit with events.
    assert set(ets["origin"]) == {str(o) for o in DESIGN.origins()[:: DESIGN.refit_every]}
    assert (ets["when"] == "fit").all()
    assert ets.groupby("origin")["subject"].nunique().min() >= 10
    # The forecasts are still there, from the documented fallbacks.
    assert result.groupby("model").size().nunique() == 1


# ----------------------------------------------------------------------------------------
# Cheaper fits and shared predictions, the same numbers


def test_predictions_are_shared_only_after_the_same_fit_and_the_same_updates(panel):
    h0, h1, h2 = (history_at(panel, pd.Period(m, freq="M"), covariates=["us_troops"])
                  for m in ("2014-01", "2014-02", "2014-03"))
    with fit_cache(FitCache(models=True)) as cache:
        first = make_model("croston").fit(h0).update(h1).predict(3)
        hits = cache.hits
        again = make_model("croston").fit(h0).update(h1).predict(3)
        assert cache.hits == hits + 2  # the fit and the prediction
        other = make_model("croston").fit(h0).update(h2).predict(3)
        assert cache.hits == hits + 3  # the fit only: another update history, another prediction
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(other, make_model("croston").fit(h0).update(h2).predict(3))
    assert not other.equals(first)


def test_sarimax_without_covariance_and_smoother_forecasts_what_the_default_fit_does():
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from forecast.models.sarimax import _fit_sarimax

    rng = np.random.default_rng(3)
    z, x = np.log1p(rng.poisson(4, 120).astype(float)), rng.normal(size=(120, 1))
    default = SARIMAX(z, exog=x, order=(1, 0, 0), trend="c").fit(disp=False, maxiter=50)
    cheap = _fit_sarimax(SARIMAX(z, exog=x, order=(1, 0, 0), trend="c"), 50)
    np.testing.assert_allclose(cheap.params, default.params, rtol=1e-12)
    for a, b in ((default, cheap), (default.apply(z[:100], exog=x[:100]), cheap.apply(z[:100], exog=x[:100]))):
        fa, fb = a.get_forecast(4, exog=x[:4]), b.get_forecast(4, exog=x[:4])
        np.testing.assert_allclose(fb.predicted_mean, fa.predicted_mean, rtol=1e-12)
        np.testing.assert_allclose(fb.var_pred_mean, fa.var_pred_mean, rtol=1e-12)


def test_sparse_neighbour_weights_equal_the_dense_ones(panel):
    from forecast.models.count_design import direct_features, neighbour_weights

    units = [*sorted(panel["unit"].unique()), "Atlantis"]
    neighbours = load_gazetteer().neighbours()
    dense, source = neighbour_weights(units, neighbours)
    sparse, sparse_source = neighbour_weights(units, neighbours, sparse_matrix=True)
    assert source == sparse_source and source["Atlantis"] == "national mean"
    np.testing.assert_array_equal(sparse.toarray(), dense)
    counts = np.random.default_rng(0).poisson(3, (30, len(units))).astype(float)
    covariates = np.zeros((30, len(units), 0))
    np.testing.assert_allclose(direct_features(counts, sparse, covariates), direct_features(counts, dense, covariates),
                               rtol=1e-12)


def test_ets_fitted_without_the_hessian_has_the_estimates_and_forecasts_of_the_default_fit():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    from forecast.models.ets import _ETSSmoother

    z = np.log1p(np.random.default_rng(5).poisson(6, 96).astype(float))
    spec = {"error": "add", "trend": "add", "damped_trend": True, "seasonal": None}
    default = ETSModel(z, **spec).fit(disp=False, maxiter=200)
    cheap = _ETSSmoother(z, **spec).fit(disp=False, maxiter=200)
    np.testing.assert_array_equal(cheap.params, default.params)
    errors = np.random.default_rng(0).choice(np.asarray(default.resid), size=(6, 50))
    np.testing.assert_allclose(cheap.simulate(6, anchor="end", repetitions=50, random_errors=errors),
                               default.simulate(6, anchor="end", repetitions=50, random_errors=errors), rtol=1e-12)
