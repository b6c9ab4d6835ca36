"""FORECAST_JOBS is refused with a message wherever a model is made, not only by ets on 200+ units."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from features.panel import PanelSpec
from forecast.catalog import make_model
from forecast.cli import main
from forecast.jobs.data import make_panel
from forecast.models.base import ModelError
from forecast.models.workers import check_jobs_env, unit_jobs

DEMO = Path(__file__).resolve().parent.parent / "data" / "sample" / "ucdp_ged_demo.csv"


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_forecast_jobs_is_refused_by_every_model(monkeypatch, value):
    monkeypatch.setenv("FORECAST_JOBS", value)
    for name in ("zero", "moving_average", "ses_negbin", "ets"):
        with pytest.raises(ModelError, match=rf"FORECAST_JOBS='{value}' must be a whole number >= 1"):
            make_model(name)
    with pytest.raises(ModelError, match="FORECAST_JOBS"):
        unit_jobs()


def test_a_good_or_unset_forecast_jobs_is_taken(monkeypatch):
    monkeypatch.setenv("FORECAST_JOBS", " 3 ")
    assert check_jobs_env() == 3 and unit_jobs() == 3
    monkeypatch.delenv("FORECAST_JOBS")
    assert check_jobs_env() is None and unit_jobs() >= 1


def test_predict_with_a_bad_forecast_jobs_is_a_message_not_a_silent_default(tmp_path, monkeypatch):
    panel = tmp_path / "panel.parquet"
    make_panel(PanelSpec(events=(DEMO,)), panel)
    monkeypatch.setenv("FORECAST_JOBS", "abc")
    result = CliRunner().invoke(main, ["predict", "--panel", str(panel), "--model", "moving_average",
                                       "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "FORECAST_JOBS='abc' must be a whole number >= 1" in result.output
    assert not (tmp_path / "f.csv").exists()
