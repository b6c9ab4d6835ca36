"""The report on the real UCDP GED panel of Iraq (``../shared/data``), focused as the analyst's brief is:
Anbar, Ninewa, Kirkuk, Salah ad Din and Diyala. The first screen at 1400 px shows the five with
their change and P(increase), the page's next-month table equals the report's CSV, and no page of
the PDF ends with a heading. Skipped without the shared data."""

from __future__ import annotations

import pandas as pd
import pytest

from browser import ARTIFACTS, visit  # the browser fixture comes from conftest.py
from forecast.jobs.report import make_report
from test_report_first_screen import next_table, number
from test_report_layout import assert_nothing_orphaned

FOCUS = ("Anbar", "Ninewa", "Kirkuk", "Salah ad Din", "Diyala")


@pytest.fixture(scope="module")
def report(shared_data, tmp_path_factory, browser):
    from features.panel import EventFile, PanelSpec
    from forecast.jobs.data import make_panel

    folder = tmp_path_factory.mktemp("ucdp")
    panel = folder / "panel.parquet"
    make_panel(PanelSpec(events=(EventFile(shared_data / "ucdp_ged_iraq_hdx.csv"),),
                         covariates=shared_data / "iraq_covariates_month.csv", fill="ffill-zero"), panel)
    return make_report(panel, model="moving_average", backtest_months=6, units=list(FOCUS),
                       geojson=shared_data / "iraq_adm1.geojson", out=folder / "ucdp-reports" / "2017-01.html",
                       pdf=True, issued="2017-01-10")


def test_the_first_screen_at_1400_px_shows_the_five_with_their_change_and_p_increase(report, browser):
    seen = visit(browser, report["html"], width=1400, height=900)
    try:
        assert seen.problems == [] and seen.foreign_requests == []
        cells = seen.page.evaluate("""() => [...document.querySelectorAll('#next-table tbody tr')].map(tr => ({
            unit: tr.dataset.unit, bottom: tr.getBoundingClientRect().bottom,
            right: tr.cells[8].getBoundingClientRect().right,
            change: tr.cells[4].innerText, p: tr.cells[8].innerText}))""")
        shown = [c for c in cells if c["unit"] in FOCUS]
        assert sorted(c["unit"] for c in shown) == sorted(FOCUS)
        for c in shown:
            assert c["bottom"] <= 900 and c["right"] <= 1400, c  # on the first screen, no scrolling
            assert c["change"] and c["p"].endswith("%"), c
        ARTIFACTS.mkdir(exist_ok=True)
        seen.page.screenshot(path=str(ARTIFACTS / "report-realdata-1400.png"))
    finally:
        seen.page.close()


def test_the_csv_equals_the_numbers_of_the_page(report):
    rows = next_table(report["html"].read_text(encoding="utf-8"))
    numbers = pd.read_csv(report["csv"])
    first = numbers[numbers["horizon"] == 1]
    assert set(first.loc[first["scope"] == "unit", "unit"]) == set(FOCUS) == set(rows) - {"national"}
    for unit in FOCUS:
        want = first.set_index("unit").loc[unit]
        assert number(rows[unit][2]) == want["mean"] and number(rows[unit][3]) == want["recorded_last_month"]
        assert rows[unit][1].startswith(f"{want['q50']:,.0f} (")


def test_no_page_of_the_real_reports_pdf_ends_with_a_heading(report):
    assert_nothing_orphaned(report)
