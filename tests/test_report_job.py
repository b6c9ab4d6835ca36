"""The report job (forecast/jobs/report.py) and the command line around it: one set of numbers with
``forecast predict --registry-model``, reports of two targets side by side, a champion of another
target refused, the focus units checked, and the refresh's ``report_units`` key.

Everything runs in-process (click's runner) on the demo panel, with a real MLflow SQLite store,
and writes only under pytest's temporary folders.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from features.panel_files import read_panel
from forecast.catalog import make_model
from forecast.evaluation.backtest import history_at
from forecast.jobs.demo import DEMO_EVENTS
from forecast.refresh.config import load_config
from forecast.report import read_report_data
from forecast.report.fmt import round_mean
from forecast.tracking import ExperimentTracker
from forecast.tracking.registry import promote
from test_report import demo_panel  # noqa: F401  (the demo panel fixture, built once per module)
from forecast.errors import ConfigError


@pytest.fixture(scope="module")
def champion(demo_panel, tmp_path_factory) -> str:
    """A moving average trained on incidents, registered and promoted in a real SQLite store; its URI."""
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    panel, _ = read_panel(demo_panel)
    history = history_at(panel, panel["month"].max(), "incidents")
    model = make_model("moving_average", window=6).fit(history)
    tracker = ExperimentTracker("report-job", uri, artifact_location=(folder / "artifacts").as_uri())
    with tracker.parent_run("report-job", {"model": "moving_average", "target": {"name": "incidents"}}):
        with tracker.child_run("final: moving_average", {"window": 6}, model="moving_average") as child:
            child.crps_, child.eval_window_ = 0.5, "2024-01..2024-06 h1-6"
            ref = child.log_model(model, history, 3, "job-incidents")
    assert promote("job-incidents", ref.version, uri).promoted
    return uri


def forecast_cli(*args):
    from forecast.cli import main

    return CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)


def test_predict_with_the_registry_model_gives_the_means_the_report_shows(demo_panel, champion, tmp_path):
    report = tmp_path / "reports" / "2025-01.html"
    done = forecast_cli("report", "--panel", demo_panel, "--registry-model", "job-incidents@champion",
                        "--tracking-uri", champion, "--horizon", 3, "--backtest-months", 0, "--out", report)
    assert done.exit_code == 0, done.output
    assert f"numbers: {report.with_suffix('.csv')}" in done.output
    predicted = tmp_path / "predict.csv"
    done = forecast_cli("predict", "--panel", demo_panel, "--registry-model", "job-incidents@champion",
                        "--tracking-uri", champion, "--horizon", 3, "--out", predicted)
    assert done.exit_code == 0, done.output
    ours = pd.read_csv(predicted).set_index(["unit", "month"])["mean"]
    shown = pd.read_csv(report.with_suffix(".csv"))
    shown = shown[shown["scope"] == "unit"].set_index(["unit", "month"])["mean"]
    assert len(shown) == len(ours) == 18 * 3
    pd.testing.assert_series_equal(pd.Series(round_mean(ours.to_numpy()), index=ours.index).sort_index(),
                                   shown.sort_index(), check_names=False)
    # Both are the registered model's forecast, not the default model's.
    assert set(pd.read_csv(predicted)["model"]) == {"moving_average"}
    both = forecast_cli("predict", "--panel", demo_panel, "--registry-model", "job-incidents@champion",
                        "--model", "zero", "--out", tmp_path / "x.csv")
    assert both.exit_code == 2 and "not both" in both.output


def test_a_champion_trained_on_another_target_is_refused_naming_both(demo_panel, champion, tmp_path):
    for command, out in (("report", tmp_path / "2025-01-deaths.html"), ("predict", tmp_path / "deaths.csv")):
        extra = ["--backtest-months", 0] if command == "report" else []
        done = forecast_cli(command, "--panel", demo_panel, "--registry-model", "job-incidents@champion",
                            "--tracking-uri", champion, "--target", "deaths", *extra, "--out", out)
        assert done.exit_code == 1, done.output
        assert "was trained on incidents, not on deaths" in done.output and "Traceback" not in done.output
        assert not out.exists()


def test_a_deaths_report_never_replaces_an_incidents_report_without_force(demo_panel, tmp_path):
    out = tmp_path / "2025-01.html"
    common = ["report", "--panel", demo_panel, "--model", "moving_average", "--horizon", 3, "--backtest-months", 0]
    assert forecast_cli(*common, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    refused = forecast_cli(*common, "--target", "deaths", "--out", out)
    assert refused.exit_code == 1
    assert (f"{out} is a report of incidents; this report is of deaths" in refused.output
            and f"--out {tmp_path / '2025-01-deaths.html'}" in refused.output and "--force" in refused.output)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the incidents report as it was
    beside = forecast_cli(*common, "--target", "deaths", "--out", tmp_path / "2025-01-deaths.html")
    assert beside.exit_code == 0 and read_report_data(out)["target"] == "incidents"
    forced = forecast_cli(*common, "--target", "deaths", "--out", out, "--force")
    assert forced.exit_code == 0 and read_report_data(out)["target"] == "deaths"


@pytest.mark.parametrize(("units", "message"), [
    ("Anbar,Anbr", "--units: unknown governorate 'Anbr'"),
    (" , ", "names no unit"),
])
def test_focus_units_are_checked_before_any_work(demo_panel, tmp_path, units, message):
    done = forecast_cli("report", "--panel", demo_panel, "--units", units, "--backtest-months", 0,
                        "--out", tmp_path / "r.html")
    assert done.exit_code in (1, 2) and message in done.output and not list(tmp_path.iterdir())


def test_focus_units_take_any_spelling_the_gazetteer_knows(demo_panel, tmp_path):
    out = tmp_path / "2025-01.html"
    done = forecast_cli("report", "--panel", demo_panel, "--model", "moving_average", "--horizon", 2,
                        "--backtest-months", 0, "--units", "Nineveh,Anbar", "--out", out)
    assert done.exit_code == 0, done.output
    assert read_report_data(out)["focus"] == ["Ninewa", "Anbar"]


def test_the_refresh_takes_report_units_and_checks_them(tmp_path):
    def config(units: str) -> Path:
        path = tmp_path / "refresh.toml"
        path.write_text("\n".join([
            "[data]", f'events = "{DEMO_EVENTS}"', 'format = "ucdp"',
            "[model]", 'name = "job-incidents"',
            "[outputs]", 'dir = "out"', f"report_units = {units}",
        ]) + "\n", encoding="utf-8")
        return path

    assert load_config(config('["Nineveh", "Anbar"]')).outputs.report_units == ("Ninewa", "Anbar")
    with pytest.raises(ConfigError, match=r"\[outputs\] key 'report_units': unknown governorate 'Anbr'"):
        load_config(config('["Anbr"]'))


def test_a_scenario_with_a_model_that_does_not_respond_is_one_sentence_and_no_chart(demo_panel, tmp_path):
    scenarios = Path(__file__).resolve().parent.parent / "experiments" / "scenarios"
    out = tmp_path / "2025-01.html"
    done = forecast_cli("report", "--panel", demo_panel, "--model", "moving_average", "--horizon", 3,
                        "--backtest-months", 0, "--scenario", scenarios / "full_withdrawal.toml", "--out", out)
    assert done.exit_code == 0, done.output
    page = out.read_text(encoding="utf-8")
    part = page[page.index('<section id="scenarios"'):page.index("</section>", page.index('<section id="scenarios"'))]
    body = part[part.index("</h2>") + len("</h2>"):]
    assert body.strip().count("<p") == 1 and "<svg" not in part and "<table" not in part and "<figure" not in part
    assert "moving_average does not respond to covariates at the forecast months" in body
    assert "nb_glmx" in body  # it names the models that respond
