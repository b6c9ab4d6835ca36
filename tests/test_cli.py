from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
from click.testing import CliRunner

from features.panel_files import read_panel
from forecast.evaluation.leaderboard import leaderboard
from forecast.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_data_build_writes_the_panel_and_prints_a_summary(fixtures, tmp_path):
    out = tmp_path / "panel.parquet"
    result = _run("data", "build", "--events", fixtures / "ucdp_ged_hdx.csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert "units: 18  months: 3 (2014-01 .. 2014-03)  data vintage: 2014-03" in result.output
    assert "totals: incidents 5  deaths 23" in result.output
    assert "6 rows, 5 events used, 1 quarantined, 0 filtered out" in result.output
    assert f"quarantined: 1 row(s) -> {tmp_path / 'panel.parquet.quarantine.csv'}" in result.output
    panel, meta = read_panel(out)
    assert panel["incidents"].sum() == 5
    assert meta["sources"][0]["format"] == "ucdp"


def test_data_build_with_several_sources_forced_format_and_filters(fixtures, tmp_path):
    out = tmp_path / "panel.csv"
    result = _run(
        "data", "build", "--events", fixtures / "acled_export.csv", "--events", fixtures / "gtd_export.csv",
        "--start", "2015-01", "--end", "2020-12", "--actor", "Islamic State", "--out", out,
    )
    assert result.exit_code == 0, result.output
    panel, meta = read_panel(out)
    assert [s["format"] for s in meta["sources"]] == ["acled", "gtd"]
    # A month is complete only when every source covers it: GTD ends 2015-03-31, so the 4
    # ACLED Islamic State events of 2020 fall after the vintage; GTD has 3 usable ISIL events.
    assert meta["vintage"] == "2015-03"
    assert meta["events_outside_panel"] == 4
    assert panel["incidents"].sum() == 3


def test_bad_input_exits_non_zero_with_a_message_and_writes_nothing(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("when,where\n2018-01-01,Anbar\n", encoding="utf-8")
    out = tmp_path / "panel.parquet"
    result = CliRunner().invoke(main, ["data", "build", "--events", str(events), "--out", str(out)])
    assert result.exit_code == 1
    assert "Error: " in result.output and "cannot tell the format" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [events]


def test_a_failed_rebuild_keeps_the_previous_panel(fixtures, tmp_path):
    out = tmp_path / "panel.csv"
    assert _run("data", "build", "--events", fixtures / "generic_events.csv", "--out", out).exit_code == 0
    before = out.read_bytes()
    cov = tmp_path / "cov.csv"
    cov.write_text("month,x\n2018-01,1\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["data", "build", "--events", str(fixtures / "generic_events.csv"), "--covariates", str(cov), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "column 'x': no value for 2 panel month(s): 2018-02, 2018-03" in result.output
    assert out.read_bytes() == before


def test_bad_dates_on_the_command_line_are_usage_errors(fixtures, tmp_path):
    result = CliRunner().invoke(
        main, ["data", "build", "--events", str(fixtures / "generic_events.csv"), "--start", "last year", "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 2
    assert "'last year' is not a date (YYYY-MM or YYYY-MM-DD)" in result.output


def test_console_script_and_module_entry_point_run_for_real(fixtures, tmp_path):
    exe = Path(sys.executable).with_name("forecast")
    for cmd in ([str(exe)], [sys.executable, "-m", "forecast"]):
        out = tmp_path / "panel.csv"
        done = subprocess.run(
            [*cmd, "data", "build", "--events", str(fixtures / "ibc_incidents.csv"), "--out", str(out)],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "data vintage: 2007-03" in done.stdout
        bad = subprocess.run([*cmd, "data", "build", "--events", str(tmp_path / "missing.csv"), "--out", str(out)],
                             capture_output=True, text=True, check=False)
        assert bad.returncode == 1
        assert "missing.csv: file not found" in bad.stderr


def _all_options(group: click.Group, prefix=()) -> list[tuple[str, str]]:
    found = []
    for name in group.list_commands(None):  # the lazy top-level group imports each command here
        command = group.get_command(None, name)
        if isinstance(command, click.Group):
            found += _all_options(command, prefix + (name,))
            continue
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{' '.join(prefix + (name,))} {param.opts[0]} has no help text"
                found.append((" ".join(prefix + (name,)), param.opts[0]))
    return found


def test_every_cli_option_has_help_and_is_documented_in_the_readme():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/*.md is missing: the README links to the details there"
    docs = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    missing = [f"{cmd} {opt}" for cmd, opt in _all_options(main) if not re.search(re.escape(opt) + r"\b", docs)]
    assert not missing, f"options not in README.md or docs/*.md: {missing}"


def test_demo_runs_every_stage_and_ends_with_the_report(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _run("demo", "--out-dir", tmp_path, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("demo: ")]
    assert [s.split(" ", 2)[1] for s in steps] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6", "done."], steps
    assert steps[0] == "demo: 1/6 building the panel from data/sample/ucdp_ged_demo.csv"
    assert "units: 18  months: 252 (2004-01 .. 2024-12)  data vintage: 2024-12" in result.output
    assert "quarantined: 0 rows" in result.output
    assert "promoted: version 1 is the first champion" in result.output
    assert f"mlflow ui --backend-store-uri {uri}" in result.output
    report = tmp_path / "reports" / "2025-01.html"
    assert result.output.rstrip().splitlines()[-2] == f"demo: done. The analyst's report: {report.resolve()}"
    html = report.read_text(encoding="utf-8")
    assert "demo-incidents version 1 (champion)" in html and "synthetic" in html.lower()
    differences = pd.read_csv(tmp_path / "scenarios" / "differences.csv")
    assert set(differences["scenario"]) == {"partial withdrawal", "full withdrawal", "operations surge"}
    assert "nothing new" in result.output
    assert (tmp_path / "refresh" / "reports").is_dir()
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert forecast["unit"].nunique() == 18 and set(forecast["horizon"]) == set(range(1, 7))
    panel, meta = read_panel(tmp_path / "panel.parquet")
    assert list(panel.columns) == ["unit", "month", "incidents", "deaths", "us_troops", "ops_tempo"]
    assert meta["covariates"]["columns"] == ["us_troops", "ops_tempo"]


def test_synthetic_command_writes_a_lattice_that_builds_into_a_panel(tmp_path):
    out = tmp_path / "syn"
    result = _run("data", "synthetic", "--out", out, "--units", 30, "--start", "2015-01", "--end", "2016-12")
    assert result.exit_code == 0, result.output
    build = _run(
        "data", "build", "--events", out / "ucdp_ged_demo.csv", "--gazetteer", out / "gazetteer.csv",
        "--covariates", out / "covariates_demo.csv", "--coverage-end", "2016-12", "--out", tmp_path / "p.csv",
    )
    assert build.exit_code == 0, build.output
    assert "units: 30  months: 24 (2015-01 .. 2016-12)" in build.output
    assert "quarantined: 0 rows" in build.output


def test_predict_ignores_rows_after_the_origin(tmp_path, synthetic_panel):
    from features.panel_files import panel_to_text

    full, cut = tmp_path / "full.csv", tmp_path / "cut.csv"
    panel_to_text(synthetic_panel).to_csv(full, index=False)
    panel_to_text(synthetic_panel[synthetic_panel["month"] <= pd.Period("2015-06", "M")]).to_csv(cut, index=False)
    outs = []
    for path in (full, cut):
        out = tmp_path / f"forecast_{path.stem}.csv"
        result = _run("predict", "--panel", path, "--model", "sarimax", "--origin", "2015-06", "--horizon", 3, "--out", out)
        assert result.exit_code == 0, result.output
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    frame = pd.read_csv(tmp_path / "forecast_full.csv")
    assert list(frame.columns[:13]) == ["unit", "origin", "month", "horizon", "model", "mean", "q05", "q10", "q25", "q50", "q75", "q90", "q95"]
    assert set(frame["month"]) == {"2015-07", "2015-08", "2015-09"}
    assert set(frame["covariates"]) == {"held last value"}


def test_predict_and_backtest_reject_bad_input_cleanly(tmp_path, synthetic_panel):
    from features.panel_files import panel_to_text

    panel = tmp_path / "p.csv"
    panel_to_text(synthetic_panel).to_csv(panel, index=False)
    result = CliRunner().invoke(main, ["predict", "--panel", str(panel), "--model", "prophet", "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 1 and "unknown model 'prophet'" in result.output
    result = CliRunner().invoke(main, ["backtest", "--panel", str(panel), "--models", "zero", "--param", "zero.alpha=1",
                                       "--start", "2014-01", "--end", "2014-06", "--out", str(tmp_path / "bt")])
    assert result.exit_code == 1 and "model 'zero' has no parameter 'alpha'" in result.output
    assert not (tmp_path / "bt").exists()
    first = synthetic_panel["month"].min()
    for origin, message in ((first - 1, f"origin {first - 1} is outside the panel"),
                            (first, f"origin {first} is the panel's first month ({first} .. ")):
        out = tmp_path / "f.csv"
        result = CliRunner().invoke(main, ["predict", "--panel", str(panel), "--origin", str(origin), "--out", str(out)])
        assert result.exit_code == 1 and message in result.output and not out.exists(), result.output
    assert "a forecast needs at least 2 months of history up to its origin" in result.output
    result = CliRunner().invoke(main, ["predict", "--panel", str(panel), "--origin", str(first + 1), "--out", str(out)])
    assert result.exit_code == 0 and "fit notes (" in result.output, result.output
    assert "no in-history backtest, all weight on ses_negbin" in result.output, result.output


def test_backtest_command_writes_forecasts_scores_and_a_leaderboard(tmp_path, synthetic_panel):
    from features.panel_files import panel_to_text

    panel = tmp_path / "p.csv"
    panel_to_text(synthetic_panel).to_csv(panel, index=False)
    result = _run("backtest", "--panel", panel, "--models", "zero,moving_average", "--start", "2015-01", "--end", "2015-12",
                  "--step", 3, "--horizon", 2, "--out", tmp_path / "bt")
    assert result.exit_code == 0, result.output
    assert "leaderboard" in result.output and "crps skill vs best benchmark" in result.output
    scores = pd.read_csv(tmp_path / "bt" / "scores.csv")
    assert set(scores["horizon"].astype(str)) == {"1", "2", "all"}
    forecasts = pd.read_parquet(tmp_path / "bt" / "forecasts.parquet")
    assert len(forecasts) == 2 * 4 * 18 * 2


def test_experiment_failing_halfway_marks_the_run_failed_and_keeps_earlier_runs(tmp_path):
    from mlflow import MlflowClient

    text = (ROOT / "experiments" / "benchmarks.toml").read_text(encoding="utf-8")
    text = text.replace("../data/sample/", str(ROOT / "data" / "sample") + "/")
    # Parameter values are checked before any model runs; a horizon longer than the history
    # allows is found only when the model is fitted, after others ran.
    text += '\n[[models]]\nname = "nb_glm"\nlabel = "broken"\nparams = { max_horizon = 400 }\n'
    exp = tmp_path / "halfway.toml"
    exp.write_text(text, encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(main, ["experiment", "run", str(exp), "--tracking-uri", uri])
    assert result.exit_code == 1, result.output
    assert "the MLflow run is marked FAILED" in result.output
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("halfway")
    runs = client.search_runs([experiment.experiment_id])
    status = {r.info.run_name: r.info.status for r in runs}
    assert status["halfway"] == "FAILED"
    assert status["broken"] == "FAILED"
    assert status["zero"] == "FINISHED" and status["moving_average"] == "FINISHED"
    assert all(s != "RUNNING" for s in status.values())


def test_leaderboard_shows_only_the_metrics_an_experiment_scored():
    scores = pd.DataFrame({"model": ["a", "b", "a", "b"], "horizon": ["1", "1", "all", "all"],
                           "mae": [2.0, 1.0, 2.5, 1.5]})
    text = leaderboard(scores)
    rows = text.splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["b", "a"] and "crps" not in text.splitlines()[1]


def test_the_cli_restates_the_constants_of_the_modules_it_does_not_import():
    from forecast.cli import forecasting
    from forecast.evaluation.backtest import BACKENDS, BacktestDesign
    from forecast.schema import MAX_HORIZON

    assert forecasting.MAX_HORIZON == MAX_HORIZON
    assert forecasting.BACKENDS == BACKENDS
    assert forecasting.DESIGN_DEFAULTS == {k: getattr(BacktestDesign, k) for k in forecasting.DESIGN_DEFAULTS}
    assert set(forecasting.DESIGN_DEFAULTS) == {"horizon", "step", "refit_every"}


def test_models_lists_names_and_summaries_and_details_the_ones_named():
    from forecast.catalog import DEFAULT_MODEL, MODELS

    listing = _run("models")
    assert listing.exit_code == 0
    assert listing.output.splitlines() == [
        f"{n}{' (default)' if n == DEFAULT_MODEL else ''}: {MODELS.summary(n)}" for n in sorted(MODELS)]
    detail = _run("models", "default", "nb_glmx", "ensemble")
    assert detail.exit_code == 0, detail.output
    lines = detail.output.splitlines()
    assert lines[0].startswith(f"{DEFAULT_MODEL}: {MODELS.summary(DEFAULT_MODEL)} [no covariates; parameters: ")
    assert "[covariates at target months; parameters: lags=(0, 1, 2)" in lines[1]
    assert "[covariates known at the origin; parameters: members=(" in lines[2]
    unknown = CliRunner().invoke(main, ["models", "prophet"])
    assert unknown.exit_code == 1 and "unknown model 'prophet'" in unknown.output


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    """The top-level modules (and forecast's own) a ``forecast`` command leaves imported, in a new process."""
    code = ("import sys; from forecast.cli import main\n"
            f"try:\n    main({args!r}, prog_name='forecast')\nexcept SystemExit as exc:\n    assert not exc.code, exc\n"
            "print(' '.join(sorted(m for m in sys.modules)), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    return set(out.stderr.strip().splitlines()[-1].split())


def test_models_and_predict_help_import_no_pandas_and_no_model(tmp_path):
    from forecast.catalog import MODELS

    models = {MODELS.module(name) for name in MODELS} | {"forecast.models.base"}
    for args in (["models"], ["predict", "--help"]):
        loaded = _modules_after(args, tmp_path)
        heavy = sorted(m for m in loaded if m.split(".")[0] in ("pandas", "numpy", "scipy")
                       or m in models or m.startswith("forecast.jobs"))
        assert not heavy, f"forecast {' '.join(args)} imported {heavy[:10]}"


def test_predict_with_the_default_model_imports_no_statsmodels_sklearn_or_mlflow(tmp_path, synthetic_panel):
    from features.panel_files import panel_to_text

    panel = tmp_path / "p.csv"
    panel_to_text(synthetic_panel).to_csv(panel, index=False)
    loaded = _modules_after(["predict", "--panel", str(panel), "--model", "default", "--out", str(tmp_path / "f.csv")],
                            tmp_path)
    assert "forecast.models.smoothing" in loaded and (tmp_path / "f.csv").exists()
    heavy = sorted({m.split(".")[0] for m in loaded} & {"statsmodels", "sklearn", "mlflow"})
    assert not heavy, f"forecast predict --model default imported {heavy}"
