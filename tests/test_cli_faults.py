"""Predictable faults reach the user as one clear line and an exit code, never as a traceback."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import forecast.jobs.data
from forecast.cli import main
from forecast.experiment import ConfigError, load_experiment
from forecast.tracking import TrackingError, check_reachable

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "data" / "sample" / "ucdp_ged_demo.csv"


@pytest.fixture
def html_server():
    """A web server on 127.0.0.1 that is not MLflow: every GET gets an HTML page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = b"<html><body>It works!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_web_server_that_is_not_mlflow_is_named_as_such(html_server):
    with pytest.raises(TrackingError, match="answers HTTP but is not an MLflow tracking server"):
        check_reachable(html_server, timeout=2)
    result = CliRunner().invoke(main, ["experiment", "compare", "--tracking-uri", html_server])
    assert result.exit_code == 1, result.output
    assert "is not an MLflow tracking server" in result.output and "Traceback" not in result.output


def test_an_output_path_under_a_file_is_a_message_naming_the_path(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    out = blocker / "panel.parquet"
    result = CliRunner().invoke(main, ["data", "build", "--events", str(EVENTS), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert str(blocker) in result.output and "Traceback" not in result.output
    assert blocker.read_text() == "a file where a folder should be"


def test_an_unexpected_error_prints_one_line_and_logs_the_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the build")

    monkeypatch.setattr("forecast.cli.data.make_panel", broken)
    assert forecast.jobs.data.make_panel is not broken
    result = CliRunner().invoke(main, ["data", "build", "--events", str(EVENTS), "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert "unexpected error (RuntimeError: a bug in the build)" in line and "Traceback" not in result.output
    log = Path(line.split("The details are in ")[1].split(":")[0])
    assert "RuntimeError: a bug in the build" in log.read_text() and "Traceback" in log.read_text()
    log.unlink()


def test_an_experiment_horizon_beyond_what_models_forecast_is_refused(tmp_path):
    text = (ROOT / "experiments" / "benchmarks.toml").read_text(encoding="utf-8")
    assert "horizon = 6" in text
    path = tmp_path / "long.toml"
    path.write_text(text.replace("horizon = 6", "horizon = 1000").replace(
        '"../data/', f'"{ROOT / "data"}/'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[backtest\] key 'horizon': 1000 months is more than the 36"):
        load_experiment(path)


@pytest.mark.parametrize("cell", ["inf", "1e308", "-inf"])
def test_a_covariate_that_is_not_a_finite_plausible_number_is_refused(tmp_path, cell):
    from features.covariates import read_covariates
    from features.errors import DataError
    from features.gazetteer import load_gazetteer

    path = tmp_path / "covariates.csv"
    path.write_text(f"month,us_troops\n2020-01,1000\n2020-02,{cell}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"covariates.csv, row 3, column 'us_troops': '{cell}' is not a finite number"):
        read_covariates(path, load_gazetteer())


def test_backtest_names_no_model_is_a_clear_error_and_default_means_the_default_model(tmp_path):
    from forecast.catalog import make_model

    result = CliRunner().invoke(main, ["backtest", "--panel", str(tmp_path / "p.parquet"), "--models", ",",
                                       "--start", "2015-01", "--end", "2015-03", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "names no model" in result.output and "Traceback" not in result.output
    assert make_model("ensemble", members="zero, moving_average").member_names() == ("zero", "moving_average")
    assert make_model("ensemble", members="zero").member_names() == ("zero",)
