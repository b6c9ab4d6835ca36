"""The report's "previous report" is one of the same data set: a report of another data set
(other units, or other sources) written in the same folder is never taken as the previous one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from forecast.report import find_previous_report
from forecast.report.inputs import REPORT_DATA_ID, dataset_identity
from forecast.schema import QUANTILE_COLUMNS

UCDP = {"sources": [{"format": "ucdp", "filters": "none", "path": "ucdp_v24.csv"}]}
GTD = {"sources": [{"format": "gtd", "filters": "none", "path": "gtd.csv"}]}
UNITS = ["Anbar", "Baghdad"]


def write_report_data(path: Path, origin: str, units: list[str], dataset: dict | None) -> Path:
    o = pd.Period(origin, "M")
    forecast = [{"unit": u, "origin": origin, "month": str(o + 1), "horizon": 1, "model": "m", "mean": 1.0,
                 **{q: 1.0 for q in QUANTILE_COLUMNS}} for u in units]
    data = {"version": 1, "origin": origin, "target": "incidents", "forecast": forecast,
            "units": [{"unit": u} for u in units], **({"dataset": dataset} if dataset else {})}
    path.write_text(f'<html><script type="application/json" id="{REPORT_DATA_ID}">{json.dumps(data)}</script></html>',
                    encoding="utf-8")
    return path


def test_the_previous_report_must_be_of_the_same_data_set(tmp_path):
    ours = dataset_identity(UCDP, UNITS)
    # A newer vintage of the same source (another file name) is the same data set.
    assert ours == dataset_identity({"sources": [{"format": "ucdp", "filters": "none", "path": "ucdp_v25.csv"}]},
                                    reversed(UNITS))
    write_report_data(tmp_path / "ucdp-2020-01.html", "2020-01", UNITS, ours)
    write_report_data(tmp_path / "gtd-2020-03.html", "2020-03", UNITS, dataset_identity(GTD, UNITS))
    write_report_data(tmp_path / "syria-2020-04.html", "2020-04", ["Aleppo", "Idlib"], None)
    found = find_previous_report(tmp_path, pd.Period("2020-06", "M"), dataset=ours)
    assert found.path.name == "ucdp-2020-01.html"
    # Without an identity every report is a candidate (the latest origin wins), as before.
    assert find_previous_report(tmp_path, pd.Period("2020-06", "M")).path.name == "syria-2020-04.html"
    # A report written before the identity was embedded is compared by its units.
    write_report_data(tmp_path / "old-2020-02.html", "2020-02", UNITS, None)
    assert find_previous_report(tmp_path, pd.Period("2020-06", "M"), dataset=ours).path.name == "old-2020-02.html"
