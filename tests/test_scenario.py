"""Scenario projections: files, paths, the known troop effect, blind models, tracking, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from features.synthetic import SyntheticConfig
from forecast.scenario import (
    METHOD_CRN,
    METHOD_DRAWS,
    Scenario,
    blind_models,
    load_scenario,
    run_scenarios,
    run_scenarios_fitted,
    summary_text,
    track_scenarios,
)
from synthetic_data import synthetic_panel as build_panel
from forecast.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "experiments" / "scenarios"
FILES = {stem: SHIPPED / f"{stem}.toml" for stem in ("baseline", "partial_withdrawal", "full_withdrawal", "ops_surge")}


@pytest.fixture(scope="module")
def demo_panel() -> pd.DataFrame:
    """The demo data's panel (2004-01..2024-12), whose generator has a known troop effect."""
    return build_panel(SyntheticConfig())


@pytest.fixture(scope="module")
def shipped() -> dict[str, Scenario]:
    return {stem: load_scenario(path) for stem, path in FILES.items()}


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEAD = 'name = "test"\ndescription = "a test scenario"\n'


# ----------------------------------------------------------------------------------------
# The known effect


@pytest.mark.parametrize("origin", ["2010-06", "2024-12"])
def test_full_withdrawal_recovers_sign_and_size_of_the_generators_troop_effect(origin, demo_panel, shipped):
    config = SyntheticConfig()
    beta = config.true_effects()["us_troops_per_10k_lag2"]  # on log E[incidents] per 10,000 troops
    origin = pd.Period(origin, "M")
    result = run_scenarios(demo_panel, "nb_glmx", [shipped["baseline"], shipped["full_withdrawal"]], 6, origin=origin)
    assert result.responsive and result.method == METHOD_DRAWS and result.blind_models == ()
    troops = float(demo_panel.loc[demo_panel["month"] == origin, "us_troops"].iloc[0])
    assert troops > 0
    implied = beta * (0.0 - troops) / 10_000  # the generator's change of log E[y], full from lag 2 on
    nat = result.national.set_index("horizon")
    for h in range(config.troops_lag + 1, 7):  # the change reaches y[t] through troops[t - 2]
        row = nat.loc[h]
        estimated = math.log(row["scenario_mean"] / row["baseline_mean"])
        assert np.sign(estimated) == np.sign(implied) > 0, (h, estimated, implied)
        assert 1 / 3 < estimated / implied < 3, f"horizon {h}: estimated {estimated:+.3f} vs generator {implied:+.3f}"
        # The band of the national difference is clear of zero and contains the point estimate.
        assert 0 < row["q05"] <= row["mean"] <= row["q95"]


def test_withdrawal_differences_grow_with_the_size_of_the_cut(demo_panel, shipped):
    result = run_scenarios(demo_panel, "nb_glmx", list(shipped.values()), 6, origin=pd.Period("2010-06", "M"))
    assert [s.name for s in result.scenarios][0] == "baseline" == result.baseline
    nat = result.national.set_index(["scenario", "horizon"])["mean"]
    assert 0 < nat[("partial withdrawal", 6)] < nat[("full withdrawal", 6)]
    assert set(result.differences["scenario"]) == {"partial withdrawal", "full withdrawal", "operations surge"}
    assert "baseline" not in set(result.differences["scenario"])
    d = result.differences
    assert (d["q05"] <= d["q50"] + 1e-12).all() and (d["q50"] <= d["q95"] + 1e-12).all()
    text = summary_text(result)
    assert "not causal estimates" in text and "full withdrawal" in text and "national, horizon 6" in text


# ----------------------------------------------------------------------------------------
# Paths: relative months, ramps, per-governorate changes


def test_relative_months_follow_the_origin_and_ramps_move_in_equal_steps(demo_panel, shipped):
    for origin in (pd.Period("2016-03", "M"), pd.Period("2020-09", "M")):
        result = run_scenarios(demo_panel, "nb_glmx", [shipped["partial_withdrawal"]], 5, origin=origin)
        p = result.paths[(result.paths["covariate"] == "us_troops") & (result.paths["unit"] == "Anbar")]
        base = p[p["scenario"] == "baseline"].set_index("month")["value"]
        cut = p[p["scenario"] == "partial withdrawal"].set_index("month")["value"]
        last = demo_panel.loc[(demo_panel["month"] == origin) & (demo_panel["unit"] == "Anbar"), "us_troops"].iloc[0]
        assert list(base.index) == list(pd.period_range(origin + 1, origin + 5, freq="M"))
        assert np.allclose(base, last)
        assert np.allclose(cut / last, [0.8, 0.6, 0.4, 0.4, 0.4])


def test_absolute_months_set_and_ramp_to_a_value(demo_panel, tmp_path):
    path = _write(tmp_path, HEAD + """
[[change]]
covariate = "ops_tempo"
operation = "set"
value = 50
from = "2016-03"

[[change]]
covariate = "us_troops"
operation = "ramp"
value = 10000
from = "2016-02"
to = "2016-05"
""")
    origin = pd.Period("2015-12", "M")
    result = run_scenarios(demo_panel, "nb_glmx", [load_scenario(path)], 6, origin=origin)
    p = result.paths[(result.paths["scenario"] == "test") & (result.paths["unit"] == "Basra")]
    ops = p[p["covariate"] == "ops_tempo"].set_index("month")["value"]
    troops = p[p["covariate"] == "us_troops"].set_index("month")["value"]
    last = demo_panel.loc[(demo_panel["month"] == origin) & (demo_panel["unit"] == "Basra")].iloc[0]
    assert np.allclose(ops, [last["ops_tempo"]] * 2 + [50.0] * 4)
    steps = [0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert np.allclose(troops, [last["us_troops"] + w * (10000 - last["us_troops"]) for w in steps])


def test_per_governorate_changes_move_only_those_governorates(demo_panel, tmp_path):
    path = _write(tmp_path, HEAD + """
[[change]]
covariate = "us_troops"
operation = "set"
value = 0
units = ["Anbar", "Nineveh"]
""")
    scenario = load_scenario(path)
    assert scenario.changes[0].units == ("Anbar", "Ninewa")  # resolved through the gazetteer
    result = run_scenarios(demo_panel, "nb_glmx", [scenario], 6, origin=pd.Period("2010-06", "M"))
    late = result.differences[result.differences["horizon"] >= 3]
    moved = set(late.loc[late["mean"].abs() > 1e-9, "unit"])
    assert moved == {"Anbar", "Ninewa"}
    assert (late.loc[~late["unit"].isin(["Anbar", "Ninewa"]), ["mean", "q05", "q95"]].abs() < 1e-9).all().all()
    p = result.paths[(result.paths["scenario"] == "test") & (result.paths["covariate"] == "us_troops")]
    assert set(p.loc[p["value"] == 0, "unit"]) == {"Anbar", "Ninewa"}
    assert any("national in the history" in n for n in result.notes)


# ----------------------------------------------------------------------------------------
# Blind models


def test_a_blind_model_is_listed_and_never_reported_as_no_effect(demo_panel, shipped):
    result = run_scenarios(demo_panel, "moving_average", list(shipped.values()), 4, origin=pd.Period("2012-06", "M"))
    assert not result.responsive
    assert result.differences.empty and result.national.empty
    assert "moving_average" in result.blind_models and "ensemble" in result.blind_models
    assert "nb_glmx" not in result.blind_models and "sarimax" not in result.blind_models
    assert set(blind_models()) == set(result.blind_models)
    by = result.forecasts.groupby("scenario")
    assert len(by) == 4 and all(len(g) == 18 * 4 for _, g in by)
    first = result.forecasts[result.forecasts["scenario"] == "baseline"]["mean"].to_numpy()
    for name, g in by:
        assert np.array_equal(g["mean"].to_numpy(), first)
    text = summary_text(result)
    assert "SCENARIO-BLIND" in text and "nb_glmx" in text and "+0.00" not in text


def test_a_responsive_model_fitted_without_covariates_is_blind(demo_panel):
    panel = demo_panel.drop(columns=["us_troops", "ops_tempo"])
    result = run_scenarios(panel, "nb_glmx", [], 3, origin=pd.Period("2012-06", "M"))
    assert not result.responsive and result.differences.empty
    assert "fitted without covariates" in result.notes[0]


def test_sarimax_differences_use_common_random_numbers(demo_panel, shipped):
    result = run_scenarios(demo_panel, "sarimax", [shipped["ops_surge"]], 3, origin=pd.Period("2016-12", "M"))
    assert result.responsive and result.method == METHOD_CRN
    assert not any("the first the panel has" in n for n in result.notes)  # ops_tempo is the first name
    nat = result.national
    assert (nat["mean"] > 0).all() and (nat["q05"] <= nat["q95"]).all()


# ----------------------------------------------------------------------------------------
# No leakage, fitted models


def test_data_after_the_origin_changes_no_scenario_forecast(demo_panel, shipped):
    origin = pd.Period("2015-06", "M")
    scenarios = [shipped["full_withdrawal"], shipped["ops_surge"]]
    later = demo_panel["month"] > origin
    altered = demo_panel.copy()
    altered.loc[later, "incidents"] = altered.loc[later, "incidents"] * 5 + 2
    altered.loc[later, ["us_troops", "ops_tempo"]] = 7.0
    results = [run_scenarios(p, "nb_glmx", scenarios, 4, origin=origin) for p in (demo_panel, altered,
                                                                                  demo_panel[~later])]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0].forecasts, other.forecasts)
        pd.testing.assert_frame_equal(results[0].differences, other.differences)
        pd.testing.assert_frame_equal(results[0].paths, other.paths)


def test_run_scenarios_fitted_matches_a_fit_at_the_origin(demo_panel, shipped):
    from forecast.evaluation.backtest import history_at
    from forecast.catalog import make_model

    origin = pd.Period("2014-06", "M")
    history = history_at(demo_panel, origin)
    model = make_model("nb_glmx").fit(history)
    fitted = run_scenarios_fitted(model, history, [shipped["full_withdrawal"]], 3)
    fresh = run_scenarios(demo_panel, "nb_glmx", [shipped["full_withdrawal"]], 3, origin=origin)
    pd.testing.assert_frame_equal(fitted.differences, fresh.differences)
    # A longer history conditions a copy on it (parameters kept); the given model is untouched.
    longer = history_at(demo_panel, origin + 2)
    moved = run_scenarios_fitted(model, longer, [shipped["full_withdrawal"]], 3)
    assert moved.origin == origin + 2 and model.origin_ == origin


# ----------------------------------------------------------------------------------------
# Validation: as clear as experiment files


@pytest.mark.parametrize("body, message", [
    ('nme = "x"\ndescription = "d"\n', r"s\.toml: top level 'nme': unknown key; did you mean 'name'\?"),
    ('description = "d"\n', r"top level key 'name': is required"),
    ('name = "x"\n', r"top level key 'description': is required"),
    (HEAD + 'rationale = """two\nlines"""\n', r"'rationale': must be one line"),
    (HEAD + '[change]\ncovariate = "us_troops"\n', r"write each change as a \[\[change\]\] table"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "scale"\nfactr = 2\n',
     r"\[\[change\]\] #1 'factr': unknown key; did you mean 'factor'\?"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "scal"\nfactor = 2\n',
     r"\[\[change\]\] #1 key 'operation': 'scal' is not allowed; did you mean 'scale'\?"),
    (HEAD + '[[change]]\noperation = "set"\nvalue = 1\n', r"#1 key 'covariate': is required"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\n', r"key 'value': is required for operation \"set\""),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = "none"\n', r"key 'value': must be a number"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "scale"\nfactor = -1\n', r"key 'factor': must be between 0 and 100"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "scale"\nfactor = 1e6\n', r"key 'factor': must be between 0 and 100"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = -50000\n',
     r"key 'value': must be between 0 and 1e\+12 \(covariates are levels and counts"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = 1\nfactor = 2\n',
     r"key 'factor': does not apply to operation \"set\"; use \"scale\""),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "ramp"\nvalue = 1\nfactor = 2\nto = "+3"\n',
     r"exactly one of value .* or factor"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "ramp"\nfactor = 0.5\n', r"key 'to': is required for operation \"ramp\""),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "ramp"\nfactor = 0.5\nfrom = "+4"\nto = "+2"\n',
     r"key 'to': '\+2' is before from '\+4'"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = 0\nfrom = "2025/01"\n',
     r"key 'from': '2025/01' is not a month; write \"YYYY-MM\" or \"\+N\""),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = 0\nfrom = "+0"\n', r"key 'from': '\+0' is not a month"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = 0\nfrom = 1\n', r"key 'from': 1 is not a month"),
    (HEAD + '[[change]]\ncovariate = "us_troops"\noperation = "set"\nvalue = 0\nunits = ["Anbr"]\n',
     r"key 'units': unknown governorate 'Anbr'; closest known: Anbar"),
    (HEAD + '[[change]]\ncovariate = ""\noperation = "set"\nvalue = 0\n', r"key 'covariate': must be a column name"),
    ('name = "x\n', r"not valid TOML"),
])
def test_scenario_files_get_clear_errors(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_scenario(_write(tmp_path, body))


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


@pytest.mark.parametrize("change, message", [
    ('covariate = "us_troop"\noperation = "set"\nvalue = 0\n',
     r"s\.toml: \[\[change\]\] #1 key 'covariate': 'us_troop' is not a covariate of the panel; "
     r"did you mean 'us_troops'\? it has us_troops, ops_tempo"),
    ('covariate = ["air_strikes", "coalition_strikes"]\noperation = "scale"\nfactor = 2\n',
     r"none of 'air_strikes', 'coalition_strikes' is a covariate of the panel; it has us_troops, ops_tempo"),
    ('covariate = "us_troops"\noperation = "set"\nvalue = 0\nfrom = "2005-01"\n',
     r"key 'from': 2005-01 is not after the forecast origin 2005-10"),
    ('covariate = "us_troops"\noperation = "ramp"\nfactor = 0.5\nfrom = "2006-03"\nto = "+1"\n',
     r"key 'to': \+1 \(2005-11\) is before from 2006-03"),
    ('covariate = "us_troops"\noperation = "set"\nvalue = 0\nunits = ["Basra"]\n',
     r"key 'units': Basra not in the panel \(its units: Anbar, Ninewa\)"),
])
def test_scenarios_are_checked_against_the_data_before_any_fitting(demo_panel, tmp_path, change, message):
    # Ten months: fitting nb_glmx would fail with a ModelError, so a ConfigError proves the
    # scenarios were checked first.
    panel = demo_panel[(demo_panel["month"] <= pd.Period("2005-10", "M")) & demo_panel["unit"].isin(["Anbar", "Ninewa"])]
    scenario = load_scenario(_write(tmp_path, HEAD + "[[change]]\n" + change))
    with pytest.raises(ConfigError, match=message):
        run_scenarios(panel.reset_index(drop=True), "nb_glmx", [scenario], 3)


def test_scenario_names_must_be_unique(demo_panel, shipped, tmp_path):
    twin = load_scenario(_write(tmp_path, 'name = "full withdrawal"\ndescription = "d"\n'
                                          '[[change]]\ncovariate = "us_troops"\noperation = "scale"\nfactor = 0.5\n'))
    with pytest.raises(ConfigError, match=r"two scenarios are named 'full withdrawal'"):
        run_scenarios(demo_panel, "nb_glmx", [shipped["full_withdrawal"], twin], 3)


def test_shipped_scenarios_have_a_description_and_a_one_line_rationale(shipped):
    assert [s.name for s in shipped.values()] == ["baseline", "partial withdrawal", "full withdrawal",
                                                  "operations surge"]
    for s in shipped.values():
        assert s.description and s.rationale and "\n" not in s.rationale
    assert shipped["baseline"].is_baseline and not shipped["ops_surge"].is_baseline
    # The operations change names the real-data column as an alternative.
    assert shipped["ops_surge"].changes[0].covariate == ("ops_tempo", "coalition_strikes")


def test_an_alternative_covariate_name_is_used_and_reported(demo_panel, shipped):
    panel = demo_panel.rename(columns={"ops_tempo": "coalition_strikes"})
    result = run_scenarios(panel, "nb_glmx", [shipped["ops_surge"]], 3, origin=pd.Period("2016-06", "M"))
    assert set(result.paths["covariate"]) == {"us_troops", "coalition_strikes"}
    assert (result.national["mean"] > 0).all()
    assert ("operations surge: the change names ops_tempo or coalition_strikes, the first the panel has; the panel "
            "has no ops_tempo, so it changes coalition_strikes") in result.notes
    assert not any(n.startswith("warning:") for n in result.notes)  # no staleness record: no warning


def test_a_scenario_that_moves_a_stale_covariate_is_warned(demo_panel, shipped):
    origin = pd.Period("2016-06", "M")
    staleness = {"ops_tempo": {"last_observed": "2008-06", "fill": "ffill-zero"},
                 "us_troops": {"last_observed": "2016-06", "fill": "ffill-zero"}}
    result = run_scenarios(demo_panel, "nb_glmx", [shipped["ops_surge"], shipped["full_withdrawal"]], 3,
                           origin=origin, staleness=staleness)
    warned = [n for n in result.notes if n.startswith("warning:")]
    # 2008-06 to 2016-06 is 96 months; troops were observed at the origin: no warning for them.
    assert warned == ["warning: operations surge moves ops_tempo, last recorded 2008-06, 96 months before the "
                      "origin 2016-06: its values since are filled (ffill-zero), not recorded, so this projection "
                      "moves a number nobody observed"]
    assert warned[0] in summary_text(result).splitlines()
    recent = {**staleness, "ops_tempo": {"last_observed": "2016-03", "fill": "ffill"}}  # 3 months: not stale
    assert not any(n.startswith("warning:") for n in run_scenarios(
        demo_panel, "nb_glmx", [shipped["ops_surge"]], 3, origin=origin, staleness=recent).notes)


# ----------------------------------------------------------------------------------------
# MLflow and the CLI


def test_scenario_runs_are_nested_under_the_models_run(demo_panel, shipped, tmp_path):
    from mlflow import MlflowClient

    from forecast.tracking import ExperimentTracker, compare

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_scenarios(demo_panel, "nb_glmx", [shipped["partial_withdrawal"], shipped["full_withdrawal"]], 3,
                           origin=pd.Period("2016-06", "M"))
    tracker = ExperimentTracker("scenarios", uri)
    parent, children = track_scenarios(result, tracker, params={}, panel=demo_panel, panel_source="synthetic://demo")
    client = MlflowClient(tracking_uri=uri)
    nested = client.search_runs([tracker.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.info.run_name for r in nested) == ["baseline", "full withdrawal", "partial withdrawal"]
    assert {r.info.run_id for r in nested} == set(children.values())
    for run in nested:
        assert run.info.status == "FINISHED" and run.data.tags["forecast.kind"] == "scenario"
        assert "national_mean_h3" in run.data.metrics
    full = client.get_run(children["full withdrawal"])
    assert full.data.metrics["national_diff_h3"] > 0
    assert full.data.metrics["national_diff_q05_h3"] <= full.data.metrics["national_diff_q95_h3"]
    artifacts = {a.path for a in client.list_artifacts(full.info.run_id, "config")}
    assert artifacts == {"config/full_withdrawal.toml"}
    top = client.get_run(parent)
    assert top.data.params["model"] == "nb_glmx" and top.data.tags["forecast.kind"] == "scenario-model"
    assert compare("scenarios", uri).empty  # scenario runs are not backtests on the leaderboard


def test_cli_scenario_run_end_to_end(demo_panel, tmp_path):
    from features.panel_files import panel_to_text
    from forecast.cli import main

    panel = tmp_path / "panel.csv"
    panel_to_text(demo_panel[demo_panel["month"] <= pd.Period("2016-12", "M")]).to_csv(panel, index=False)
    out = tmp_path / "out"
    files = ",".join(str(FILES[s]) for s in ("partial_withdrawal", "full_withdrawal", "ops_surge"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(main, ["scenario", "run", "--panel", str(panel), "--model", "nb_glmx", "--scenarios",
                                       files, "--horizon", "4", "--out", str(out), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "full withdrawal" in result.output and "national, horizon 4" in result.output
    assert "nested run per scenario" in result.output
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert list(forecasts.columns) == ["unit", "origin", "month", "horizon", "model", "mean", "q05", "q10", "q25",
                                       "q50", "q75", "q90", "q95", "scenario"]
    assert forecasts["scenario"].unique().tolist() == ["baseline", "partial withdrawal", "full withdrawal",
                                                       "operations surge"]
    diffs = pd.read_csv(out / "differences.csv")
    assert len(diffs) == 3 * 18 * 4 and set(diffs["month"]) == {"2017-01", "2017-02", "2017-03", "2017-04"}
    assert set(pd.read_csv(out / "paths.csv")["covariate"]) == {"us_troops", "ops_tempo"}
    assert len(pd.read_csv(out / "national.csv")) == 3 * 4

    # A blind model: forecasts written, no differences, said plainly.
    blind = CliRunner().invoke(main, ["scenario", "run", "--panel", str(panel), "--model", "moving_average",
                                      "--scenarios", files, "--out", str(tmp_path / "blind"), "--no-track"])
    assert blind.exit_code == 0 and "SCENARIO-BLIND" in blind.output
    assert pd.read_csv(tmp_path / "blind" / "differences.csv").empty

    # Mistakes: a clean message, exit 1, nothing written.
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '[[change]]\ncovariate = "troops"\noperation = "set"\nvalue = 0\n', encoding="utf-8")
    for args, message in (
        (["--scenarios", str(bad)], "'troops' is not a covariate of the panel; did you mean 'us_troops'?"),
        (["--scenarios", files, "--model", "nb_glmz"], "unknown model 'nb_glmz'; did you mean nb_glm, nb_glmx"),
        (["--scenarios", files, "--origin", "2030-01"], "origin 2030-01 is outside the panel"),
    ):
        argv = ["scenario", "run", "--panel", str(panel), "--model", "nb_glmx", "--out", str(tmp_path / "never"),
                "--no-track", *args]
        failed = CliRunner().invoke(main, argv)
        assert failed.exit_code == 1 and message in failed.output, failed.output
        assert "Traceback" not in failed.output
    assert not (tmp_path / "never").exists()


def test_a_scenario_equal_to_the_baseline_says_so(demo_panel, shipped):
    # In 2012 the generator has no troops left, so a full withdrawal changes nothing.
    result = run_scenarios(demo_panel, "nb_glmx", [shipped["full_withdrawal"]], 3, origin=pd.Period("2012-06", "M"))
    assert (result.differences["mean"].abs() < 1e-12).all()
    assert any("full withdrawal: its covariate paths equal the baseline's" in n for n in result.notes)


# ----------------------------------------------------------------------------------------
# One covariate series moved in chosen units and months


def test_a_per_unit_covariate_moved_in_one_unit_moves_only_that_units_forecast(demo_panel):
    """The shipped "operations tempo in Anbar falls by 60% from the origin", on a per-governorate ops_tempo column."""
    # Each governorate its own operations tempo (as panels with per-governorate context columns have).
    scale = {u: 0.5 + k / 17 for k, u in enumerate(sorted(demo_panel["unit"].unique()))}
    panel = demo_panel.assign(ops_tempo=demo_panel["ops_tempo"] * demo_panel["unit"].map(scale))
    scenario = load_scenario(SHIPPED / "anbar_ops_cut.toml")
    assert scenario.changes[0].units == ("Anbar",) and scenario.rationale and "\n" not in scenario.rationale
    origin = pd.Period("2016-06", "M")
    result = run_scenarios(panel, "nb_glmx", [scenario], 4, origin=origin)
    paths = result.paths[result.paths["covariate"] == "ops_tempo"].pivot_table(
        index=["unit", "month"], columns="scenario", values="value")
    last = panel[panel["month"] == origin].set_index("unit")["ops_tempo"]
    anbar = paths.loc["Anbar"]
    assert np.allclose(anbar["baseline"], last["Anbar"])
    assert np.allclose(anbar["Anbar operations cut"], 0.4 * last["Anbar"])
    others = paths.drop(index="Anbar", level="unit")
    assert np.allclose(others["baseline"], others["Anbar operations cut"])
    moved = set(result.differences.loc[result.differences["mean"].abs() > 1e-9, "unit"])
    assert moved == {"Anbar"}
    # A per-governorate column has no "national covariate" caveat.
    assert not any("national in the history" in n for n in result.notes)


def test_until_ends_a_change_and_the_path_returns_to_the_baseline(demo_panel, tmp_path):
    change = {"covariate": '"us_troops"', "operation": '"set"', "value": 0, "from": '"+2"', "until": '"+3"',
              "units": '["Anbar"]'}
    path = _write(tmp_path, HEAD + "[[change]]\n" + "".join(f"{k} = {v}\n" for k, v in change.items()))
    scenario = load_scenario(path)
    assert scenario.changes[0].describe() == "us_troops: set to 0 from +2 until +3 (Anbar)"
    origin = pd.Period("2010-06", "M")
    result = run_scenarios(demo_panel, "nb_glmx", [scenario], 5, origin=origin)
    p = result.paths[(result.paths["covariate"] == "us_troops") & (result.paths["unit"] == "Anbar")]
    test = p[p["scenario"] == "test"].set_index("month")["value"]
    base = p[p["scenario"] == "baseline"].set_index("month")["value"]
    assert list(test.index) == list(pd.period_range(origin + 1, origin + 5, freq="M"))
    assert test.tolist() == [base.iloc[0], 0.0, 0.0, base.iloc[3], base.iloc[4]]


@pytest.mark.parametrize("change, message", [
    ('covariate = "us_troops"\noperation = "set"\nvalue = 0\nfrom = "+3"\nuntil = "+2"',
     r"\[\[change\]\] #1 key 'until': '\+2' is before from '\+3'"),
    ('covariate = "us_troops"\noperation = "ramp"\nvalue = 0\nfrom = "+1"\nto = "+4"\nuntil = "+2"',
     r"\[\[change\]\] #1 key 'until': '\+2' is before to '\+4'"),
    ('covariate = "us_troops"\noperation = "set"\nvalue = 0\nuntil = "soon"',
     r"\[\[change\]\] #1 key 'until': 'soon' is not a month"),
])
def test_a_bad_until_is_refused_naming_the_change_and_key(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_scenario(_write(tmp_path, HEAD + "[[change]]\n" + change + "\n"))


def test_a_summary_with_no_difference_never_prints_an_empty_interval_source(demo_panel, shipped):
    """A scenario file named "baseline" and one that moves nothing the model uses: no "(90% interval from )"."""
    panel = demo_panel.drop(columns="ops_tempo")
    only_troops = run_scenarios(panel, "nb_glmx", [shipped["baseline"]], 3, origin=pd.Period("2012-06", "M"))
    text = summary_text(only_troops)
    assert "interval from )" not in text and "from )" not in text
    assert only_troops.method == "" and only_troops.responsive


def test_no_shipped_scenario_speaks_of_the_demo_data():
    """A report of real data prints the scenarios' descriptions and rationales: no demo wording there."""
    for path in sorted(SHIPPED.glob("*.toml")):
        scenario = load_scenario(path)
        words = f"{scenario.name} {scenario.description} {scenario.rationale}".lower()
        assert "demo" not in words and "synthetic" not in words, path.name
