"""The analyst's forecast report: one self-contained HTML file (and optionally a PDF and a CSV).

:func:`render_report` and :func:`write_report` render the forecasts, scores and panel facts
they are given (:class:`ReportInputs`); nothing here fits, loads or backtests a model. The job
that does that and then calls :func:`write_report` is :func:`forecast.jobs.report.make_report`
(``forecast report``); the scheduled refresh is the other caller.
"""

from forecast.report.maps import match_features
from forecast.report.inputs import (
    ReportInputs,
    ReportWarning,
    dataset_identity,
    find_previous_report,
    read_report_data,
)
from forecast.report.render import find_chromium, print_pdf, render_report, write_report
from forecast.report.tiers import DEFAULT_TIER_YEARS
from forecast.errors import ReportError

__all__ = ["DEFAULT_TIER_YEARS", "ReportError", "ReportInputs", "ReportWarning", "dataset_identity",
           "find_chromium", "find_previous_report", "match_features", "print_pdf", "read_report_data",
           "render_report", "write_report"]
