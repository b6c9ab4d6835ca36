"""The analyst's forecast report: one self-contained HTML file (and optionally a PDF).

:func:`render_report` and :func:`write_report` render the forecasts they are given
(:class:`ReportInputs`) and never fit or load a model; :func:`make_report` is the job that
does (fit or load the model, backtest it against the benchmarks, find the previous report,
run scenarios) and then writes the report.
"""

from forecast.report.inputs import ReportError, ReportInputs, ReportWarning, find_previous_report, read_report_data
from forecast.report.make import git_commit, make_report, model_members, report_backtest
from forecast.report.render import find_chromium, print_pdf, render_report, write_report

__all__ = ["ReportError", "ReportInputs", "ReportWarning", "find_chromium", "find_previous_report", "git_commit",
           "make_report", "model_members", "print_pdf", "read_report_data", "render_report", "report_backtest",
           "write_report"]
