"""Scale: absorbed unit effects equal indicator columns, and the memory guard stops a fit that would not fit."""

from __future__ import annotations

import io
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from synthetic_data import synthetic_history

from features.gazetteer import load_gazetteer
from forecast.catalog import make_model
from forecast.cli import main
from forecast.models.absorbed import draw_params, fit_with_effects
from forecast.models.base import ModelError
from forecast.models.baselines import grid_frame
from forecast.schema import QUANTILES
from forecast.models.memory import MEMORY_LIMIT_ENV, parse_size


def _data(n_groups=40, per=30, seed=1):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=(len(groups), 3))
    effects = rng.normal(0.5, 0.7, n_groups)
    mu = np.exp(x @ np.array([0.3, -0.2, 0.1]) + effects[groups])
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)  # alpha = 0.5
    return x, y, groups, np.column_stack([x, np.eye(n_groups)[groups]])


@pytest.mark.parametrize("family", ["poisson", "binomial", "nb2"])
def test_absorbed_effects_give_the_estimates_of_indicator_columns(family):
    x, y, groups, dense = _data()
    if family == "binomial":
        y = (y > 1).astype(float)
    fit = fit_with_effects(x, y, groups, 40, "poisson" if family == "nb2" else family)
    if family == "nb2":
        start = fit
        fit = fit_with_effects(x, y, groups, 40, "nb2", start=start)
        ref = NegativeBinomial(y, dense, loglike_method="nb2").fit(
            start_params=np.r_[start.params(), 0.5], method="newton", maxiter=100, disp=False)
        np.testing.assert_allclose(np.r_[fit.params(), fit.alpha], ref.params, rtol=1e-6, atol=1e-8)
        # The covariance of the dense coefficients: statsmodels' inverse Hessian.
        np.testing.assert_allclose(fit.dense_cov(), np.asarray(ref.cov_params())[:3, :3], rtol=1e-5)
    else:
        fam = families.Poisson() if family == "poisson" else families.Binomial()
        ref = GLM(y, dense, family=fam).fit()
        np.testing.assert_allclose(fit.params(), ref.params, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(fit.dense_cov(), np.asarray(ref.cov_params())[:3, :3], rtol=1e-5)


@pytest.mark.parametrize("family", ["poisson", "nb2"])
def test_aliased_columns_are_left_out_with_a_zero_coefficient_and_the_others_are_unchanged(family):
    """A column constant within every group (aliased with the effects) and one equal to another
    column made the Hessian singular; they are left out, and the fit is the fit without them."""
    x, y, groups, _ = _data()
    within = np.repeat(np.arange(40) % 3, 30).astype(float)  # constant in each group
    wide = np.column_stack([x[:, 0], within, x[:, 1], x[:, 1], x[:, 2]])
    plain = fit_with_effects(x, y, groups, 40, "poisson")
    fit = fit_with_effects(wide, y, groups, 40, "poisson")
    if family == "nb2":
        plain = fit_with_effects(x, y, groups, 40, "nb2", start=plain)
        fit = fit_with_effects(wide, y, groups, 40, "nb2", start=fit)
        assert fit.alpha == pytest.approx(plain.alpha, rel=1e-8)
    assert fit.aliased == (1, 3)
    np.testing.assert_allclose(fit.beta, [plain.beta[0], 0.0, plain.beta[1], 0.0, plain.beta[2]], atol=1e-10)
    np.testing.assert_allclose(fit.effects, plain.effects, atol=1e-10)
    cov = fit.dense_cov()
    np.testing.assert_allclose(cov[np.ix_([0, 2, 4], [0, 2, 4])], plain.dense_cov(), rtol=1e-8)
    assert np.all(np.abs(cov[[1, 3]]) < 1e-10)  # draws keep the aliased coefficients at 0


def test_effect_draws_have_the_joint_covariance():
    x, y, groups, dense = _data(n_groups=5, per=60)
    fit = fit_with_effects(x, y, groups, 5, "nb2", start=fit_with_effects(x, y, groups, 5, "poisson"))
    ref = NegativeBinomial(y, dense, loglike_method="nb2").fit(
        start_params=np.r_[fit.params(), fit.alpha], method="newton", disp=False)
    draws = draw_params(fit, 200_000, np.random.default_rng(0))
    cov = np.cov(draws, rowvar=False)
    target = np.asarray(ref.cov_params())[:-1, :-1]
    np.testing.assert_allclose(draws.mean(axis=0), fit.params(), atol=0.01)
    np.testing.assert_allclose(cov, target, atol=0.03 * np.abs(target).max())


def test_parse_size_reads_units_and_rejects_nonsense():
    assert parse_size("1500") == 1500 and parse_size("2GB") == 2 << 30 and parse_size("0.5 mb") == 1 << 19
    with pytest.raises(ModelError, match="not a size"):
        parse_size("lots")


@pytest.mark.parametrize("model", ["nb_glm", "hurdle", "nb_glmx", "hgb", "random_forest"])
def test_memory_guard_stops_a_fit_with_a_message(model, monkeypatch):
    history = synthetic_history("2012-01", "2016-12")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64KB")
    with pytest.raises(ModelError) as info:
        make_model(model).fit(history)
    message = str(info.value)
    assert message.startswith(f"{model}: the fit needs about ")
    assert f"{MEMORY_LIMIT_ENV}=64KB" in message and "fewer units" in message
    # With the real available memory (no lower bound) the same fit goes ahead.
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    assert len(make_model(model).fit(history).predict(2)) == 2 * history["unit"].nunique()


def test_memory_guard_message_reaches_the_command_line(tmp_path, monkeypatch):
    history = synthetic_history("2012-01", "2016-12")
    panel = history.rename(columns={"y": "incidents"}).assign(month=lambda d: d["month"].astype(str))
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    out = tmp_path / "forecast.csv"
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "100KB")
    result = CliRunner().invoke(main, ["predict", "--panel", str(path), "--model", "nb_glm", "--out", str(out)])
    assert result.exit_code != 0
    assert "nb_glm: the fit needs about" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_nb_glm_memory_is_linear_in_units():
    """No units x rows block: 4x the units, at most about 4x the peak memory of a fit (indicator
    columns made it 16x)."""
    history = synthetic_history("2012-01", "2016-12")

    def peak(copies: int) -> int:
        panel = pd.concat([history.assign(unit=history["unit"] + f"_{k}") for k in range(copies)], ignore_index=True)
        tracemalloc.start()
        make_model("nb_glm", max_horizon=1).fit(panel)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    small, large = peak(2), peak(8)
    assert large <= 4.5 * small, (small, large)


def test_neighbour_weights_of_units_the_gazetteer_lacks_are_linear_in_units():
    """Units unknown to the gazetteer get the national mean without n_units entries each (at
    13,000 units those were 169 million entries, 4 GB to build); the features are those of
    the dense matrix."""
    from forecast.models.count_design import direct_features, neighbour_weights

    known = ["Baghdad", "Basra", "Diyala", "Kirkuk"]
    units = sorted([*known, *(f"cell_{k:04d}" for k in range(3000))])
    neighbours = load_gazetteer().neighbours()
    weights, source = neighbour_weights(units, neighbours, sparse_matrix=True)
    assert sum(s == "national mean" for s in source.values()) == 3000 + sum(
        source[u] == "national mean" for u in known)
    assert weights.matrix.nnz <= 4 * len(known)  # neighbour pairs only, none per unknown unit
    counts = np.random.default_rng(0).poisson(2, (30, len(units))).astype(float)
    covariates = np.zeros((30, len(units), 0))
    np.testing.assert_allclose(direct_features(counts, weights, covariates),
                               direct_features(counts, weights.toarray(), covariates), rtol=1e-13)
    small = neighbour_weights(units[:40], neighbours)[0]
    np.testing.assert_array_equal(neighbour_weights(units[:40], neighbours, sparse_matrix=True)[0].toarray(), small)


def test_dask_on_a_local_cluster_gives_identical_forecasts_at_350_units(tmp_path):
    """A real LocalCluster (two worker processes on 127.0.0.1) against joblib, 350 units."""
    from dask.distributed import LocalCluster

    from features.gazetteer import load_gazetteer
    from features.panel_files import validate_panel
    from features.synthetic import SyntheticConfig, simulate_panel, synthetic_gazetteer
    from forecast.evaluation.backtest import BacktestDesign, run_backtest

    path = tmp_path / "gazetteer.csv"
    synthetic_gazetteer(350).to_csv(path, index=False)
    counts, covariates = simulate_panel(SyntheticConfig(start="2015-01", end="2019-12"), path)
    panel = counts.drop(columns="log_intensity").merge(covariates, on="month")
    panel = validate_panel(panel.assign(month=pd.PeriodIndex(panel["month"], freq="M"),
                                        us_troops=panel["us_troops"].astype(float)),
                           gazetteer=load_gazetteer(path))
    models = {"locf_negbin": lambda: make_model("locf_negbin"), "croston": lambda: make_model("croston"),
              "nb_glm": lambda: make_model("nb_glm", max_horizon=3)}
    design = BacktestDesign(start=pd.Period("2019-01", "M"), end=pd.Period("2019-06", "M"), step=3, horizon=3,
                            refit_every=1)
    local = run_backtest(panel, models, design, covariates=["us_troops"], progress=False, n_jobs=1)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        remote = run_backtest(panel, models, design, covariates=["us_troops"], progress=False, backend="dask",
                              scheduler=cluster.scheduler_address, n_jobs=2)
    finally:
        cluster.close()
    assert local["unit"].nunique() == 350 and len(local) == 350 * 3 * 2 * 3
    pd.testing.assert_frame_equal(remote, local, check_exact=True)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_fit_shows_progress_with_the_time_left_on_a_terminal(monkeypatch):
    history = synthetic_history("2014-01", "2016-12")
    many = pd.concat([history.assign(unit=history["unit"] + f"_{k}") for k in range(12)], ignore_index=True)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    make_model("nb_glm", max_horizon=3).fit(many)  # 216 units
    frames = terminal.getvalue().split("\r")
    assert any(f.startswith("nb_glm: fitting horizons:") and "/3 [" in f and "<" in f for f in frames), frames[:3]
    # Few units, or no terminal: no bar.
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    make_model("nb_glm", max_horizon=3).fit(history)
    assert quiet.getvalue() == ""


def _many_units(copies: int, start: str = "2013-01", end: str = "2016-12") -> pd.DataFrame:
    history = synthetic_history(start, end)[["unit", "month", "y"]]
    many = pd.concat([history.assign(unit=history["unit"] + f"_{k}") for k in range(copies)], ignore_index=True)
    # A unit without events and one with too few to fit: the fallbacks are kept in parallel too.
    quiet = history[history["unit"] == history["unit"].iloc[0]].assign(unit="zz_quiet", y=0.0)
    return pd.concat([many, quiet], ignore_index=True).sort_values(["unit", "month"], ignore_index=True)


def test_ets_fits_in_parallel_give_the_serial_forecasts_bit_for_bit(monkeypatch):
    import forecast.models.ets as ets_module
    from forecast.models.workers import JOBS_ENV

    history = _many_units(2, end="2017-03")  # 37 units
    fit_on = history[history["month"] <= pd.Period("2016-12", "M")].reset_index(drop=True)
    monkeypatch.setattr(ets_module, "PARALLEL_MIN_UNITS", 10)
    fitted = {}
    for jobs in ("1", "2"):
        monkeypatch.setenv(JOBS_ENV, jobs)
        model = make_model("ets", n_samples=200).fit(fit_on)
        first = model.predict(4)
        fitted[jobs] = (model, first, model.update(history).predict(4))  # then updated, as in a backtest
    serial, parallel = fitted["1"], fitted["2"]
    for k in (1, 2):
        pd.testing.assert_frame_equal(parallel[k], serial[k], check_exact=True)
    assert parallel[0].fallbacks_ == serial[0].fallbacks_ and "zz_quiet" in serial[0].fallbacks_
    assert list(parallel[0].params_) == list(serial[0].params_)
    for unit, params in serial[0].params_.items():
        np.testing.assert_array_equal(parallel[0].params_[unit], params)


def test_unit_jobs_come_from_the_environment_and_a_backtest_worker_uses_one(monkeypatch):
    from forecast.evaluation.backtest import BacktestDesign, run_backtest
    from forecast.models.workers import JOBS_ENV, cores, per_unit_jobs, unit_jobs

    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert unit_jobs() == cores() >= 1
    monkeypatch.setenv(JOBS_ENV, "3")
    assert unit_jobs() == 3
    with per_unit_jobs(1):
        assert unit_jobs() == 1
    assert unit_jobs() == 3
    monkeypatch.setenv(JOBS_ENV, "none")
    with pytest.raises(ModelError, match=f"{JOBS_ENV}='none' must be a whole number >= 1"):
        unit_jobs()
    # A serial backtest leaves the default; in a parallel one every task (a worker process)
    # pins its per-unit fits to itself. The probe forecasts the jobs it would get.
    monkeypatch.setenv(JOBS_ENV, "2")

    class Probe(type(make_model("zero"))):
        def _predict(self, horizon, future):
            n, jobs = len(self.units_), unit_jobs()
            return grid_frame(self.units_, self.origin_, np.full((n, horizon), jobs),
                              np.full((n, horizon, len(QUANTILES)), jobs))

    history = synthetic_history("2014-01", "2016-12")
    panel = history.rename(columns={"y": "incidents"}).assign(deaths=0)
    design = BacktestDesign(start=pd.Period("2016-01", "M"), end=pd.Period("2016-06", "M"), refit_every=3, horizon=1)
    serial = run_backtest(panel, {"probe": Probe}, design, progress=False, n_jobs=1)
    parallel = run_backtest(panel, {"probe": Probe, "zero": lambda: make_model("zero")}, design, progress=False,
                            n_jobs=2)
    assert set(serial["mean"]) == {2.0}
    assert set(parallel.loc[parallel["model"] == "probe", "mean"]) == {1.0}
