"""Render a report to one self-contained HTML file, and print it to PDF with headless Chromium.

The HTML holds everything inline (CSS, SVG figures, the report's own data as JSON) and
references nothing outside itself, so opening it makes no request to any host. Templates are
Jinja2 with autoescaping on for every value: unit names, file names and model labels are
data and are always escaped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jinja2
from markupsafe import Markup
import numpy as np

from features.atomic import write_bytes_atomically
from forecast.report.fmt import fmt_count, fmt_interval, fmt_mean, fmt_month, fmt_prob, fmt_signed
from forecast.report.inputs import ReportInputs
from forecast.report.view import report_context
from forecast.errors import ReportError

__all__ = ["CHROMIUM_ENV", "find_chromium", "print_pdf", "render_report", "write_report"]

#: Environment variable naming the Chromium (or Chrome) binary used to print PDFs.
CHROMIUM_ENV = "FORECAST_CHROMIUM"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,  # every template, whatever its name: all values are escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(count=fmt_count, mean=fmt_mean, prob=fmt_prob, interval=fmt_interval, month=fmt_month,
                       signed=fmt_signed, pct=_pct, css_string=css_string, percent=_percent,
                       month_long=lambda m: fmt_month(m, long=True),
                       score=lambda v: "–" if v is None or not np.isfinite(v) else f"{v:.3f}")
    return env


def css_string(value) -> Markup:
    """A CSS string literal of any text: every character but letters, digits and a few safe marks is a
    CSS hex escape, so no value can end the string or the ``<style>`` element."""
    safe = set(" ,.:-()/·")
    body = "".join(c if c.isalnum() and c.isascii() or c in safe else f"\\{ord(c):x} " for c in str(value))
    return Markup(f'"{body}"')


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.0%}".replace("-", "−")


def _percent(value) -> str:
    """A whole percent of the report's numbers (``p_*_pct``), never 0% or 100% (see :func:`fmt_prob`)."""
    if value is None or not np.isfinite(value):
        return "–"
    return "<1%" if value < 1 else ">99%" if value > 99 else f"{value:.0f}%"


def _package_version() -> str:
    try:
        return version("insurgency-forecast")
    except PackageNotFoundError:
        return "unknown"


def _render(inputs: ReportInputs, csv_name: str | None) -> tuple[str, str]:
    context = report_context(inputs, version=_package_version(), csv_name=csv_name)
    html = _environment().get_template("report.html.j2").render(**context)
    return html, context["numbers"].to_csv(index=False)


def render_report(inputs: ReportInputs, *, csv_name: str | None = None) -> str:
    """The report as one self-contained HTML document (linking to ``csv_name``, its numbers, when given).

    Raises
    ------
    ReportError
        When the inputs do not fit together (forecast units or origin not in the panel, a
        backtest without the report's model, a GeoJSON naming unknown units, ...).
    """
    return _render(inputs, csv_name)[0]


# --- PDF ---------------------------------------------------------------------------------------

def find_chromium() -> str:
    """The Chromium binary: ``$FORECAST_CHROMIUM``, else chromium / chromium-browser / google-chrome on PATH.

    Raises
    ------
    ReportError
        When none is found (the message names the environment variable to set).
    """
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        path = shutil.which(named) or (named if Path(named).is_file() else None)
        if not path:
            raise ReportError(f"${CHROMIUM_ENV} is {named!r}, which is not an executable file")
        return path
    for name in _CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ReportError(f"--pdf needs Chromium or Chrome to print the report: none of {', '.join(_CHROMIUM_NAMES)} "
                      f"is on PATH; install one (Debian: apt-get install chromium) or set ${CHROMIUM_ENV} to its path")


def print_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 120.0) -> None:
    """Print an HTML file to PDF with headless Chromium (page size from the report's A4 print CSS)."""
    binary = find_chromium()
    with tempfile.TemporaryDirectory(prefix="forecast-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--metrics-recording-only", "--no-pdf-header-footer", f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}", Path(html_path).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"{binary} did not finish printing {html_path} within {timeout:.0f} s") from None
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise ReportError(f"{binary} failed to print {html_path} to PDF (exit {done.returncode}): {' | '.join(tail)}")
    if not pdf_path.read_bytes()[:5] == b"%PDF-":
        raise ReportError(f"{binary} wrote {pdf_path}, but it is not a PDF")


def write_report(inputs: ReportInputs, out: Path, *, pdf: bool = False) -> dict[str, Path]:
    """Render the report to ``out``, its numbers to ``out.with_suffix('.csv')`` (linked from the page) and,
    with ``pdf``, print it to ``out.with_suffix('.pdf')``.

    The files are written atomically together: a failure (for instance while printing)
    leaves any earlier report at these paths as it was.

    Returns
    -------
    dict
        ``{"html": out, "csv": ...}`` and, with ``pdf``, ``"pdf"``.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"{out}: a report is written as .html")
    csv_path = out.with_suffix(".csv")
    text, numbers = _render(inputs, csv_path.name)
    html = text.encode("utf-8")
    files = {out: html, csv_path: numbers.encode("utf-8")}
    paths = {"html": out, "csv": csv_path}
    if pdf:
        pdf_path = out.with_suffix(".pdf")
        with tempfile.TemporaryDirectory(prefix="forecast-report-") as tmp:
            page = Path(tmp) / out.name
            page.write_bytes(html)
            printed = Path(tmp) / "report.pdf"
            print_pdf(page, printed)
            files[pdf_path] = printed.read_bytes()
        paths["pdf"] = pdf_path
    write_bytes_atomically(files)
    return paths
