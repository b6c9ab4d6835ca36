"""The report's first screen: where it may get worse next month and how sure the forecast is.

The next-month table against the report's CSV (one set of numbers), the watch list against the
rule the page writes, one national sentence per horizon group, the focus on some units (the
national figures staying national), the summary drawn above a stated number of units, and the
table on a 390 px phone in a real headless Chromium.
"""

from __future__ import annotations

import dataclasses
import html as htmlmod
import re

import numpy as np
import pandas as pd
import pytest

from browser import ARTIFACTS, visit  # the browser fixture comes from conftest.py
from features.gazetteer import load_gazetteer
from features.panel_files import validate_panel
from features.synthetic import synthetic_gazetteer
from forecast.catalog import make_model
from forecast.evaluation.backtest import BacktestDesign, forecast_at, history_at, run_backtest
from forecast.report import ReportInputs, render_report, write_report
from forecast.report.content import WATCH_P, WATCH_RISE, outlook, watch_rule
from forecast.report.view import SUMMARY_ABOVE, SUMMARY_FANS, SUMMARY_ROWS
from forecast.schema import QUANTILE_COLUMNS

HORIZON = 6
FOCUS = ("Anbar", "Ninewa", "Kirkuk", "Salah ad Din", "Diyala")
META = {"vintage": "2016-12", "sources": [{"path": "/data/ucdp_ged_iraq.csv", "format": "ucdp", "rows": 10,
                                           "events": 10, "quarantined": 0}]}


def text_of(fragment: str) -> str:
    text = " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([:;,.)])", r"\1", text).replace("\u2060", "")


def number(text: str) -> float:
    """A number as the page writes it: thousands separators, a real minus sign, ±0."""
    text = text.replace(",", "").replace("−", "-").replace("±", "").replace("+", "").strip()
    return float(text)


def next_table(page: str) -> dict[str, list[str]]:
    """The next-month table's cells by row (``data-unit``), as a reader sees them."""
    table = re.search(r'<table id="next-table".*?</table>', page, re.S).group(0)
    rows = re.findall(r'<tr[^>]*data-unit="([^"]+)">(.*?)</tr>', table, re.S)
    return {htmlmod.unescape(unit): [text_of(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
            for unit, cells in rows}


@pytest.fixture(scope="module")
def inputs(synthetic_panel) -> ReportInputs:
    panel = synthetic_panel
    origin = panel["month"].max()
    models = {m: (lambda m=m: make_model(m)) for m in ("moving_average", "zero", "locf_negbin")}
    design = BacktestDesign(start=origin - 17, end=origin - HORIZON, step=3, horizon=HORIZON)
    backtest = run_backtest(panel, models, design, progress=False)
    history = history_at(panel, origin)
    forecast = forecast_at(make_model("moving_average").fit(history), history, HORIZON, name="moving_average")
    return ReportInputs(panel=panel, meta=META, forecast=forecast, model="moving_average", backtest=backtest,
                        issued="2017-01-05", model_covariates=())


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory):
    return write_report(inputs, tmp_path_factory.mktemp("first") / "2017-01.html")


def test_the_csv_holds_the_numbers_the_next_month_table_shows(written):
    page = written["html"].read_text(encoding="utf-8")
    assert f'<a href="{written["csv"].name}" id="csv-link">' in page
    numbers = pd.read_csv(written["csv"])
    first = numbers[numbers["horizon"] == 1].set_index("unit")
    rows = next_table(page)
    national = numbers[(numbers["scope"] == "national") & (numbers["horizon"] == 1)].iloc[0]
    assert set(rows) == set(first.index) - {national["unit"]} | {"national"}
    for unit, cells in rows.items():
        want = national if unit == "national" else first.loc[unit]
        median, lo, hi = re.fullmatch(r"(\S+) \((\S+)–(\S+)\)", cells[1]).groups()
        assert number(median) == want["q50"] and (number(lo), number(hi)) == (want["q05"], want["q95"]), unit
        assert number(cells[2]) == want["mean"], unit
        assert number(cells[3]) == want["recorded_last_month"] and number(cells[4]) == want["change_vs_last_month"]
        assert number(cells[5]) == want["recorded_year_earlier"] and number(cells[6]) == want["change_vs_year_earlier"]
        assert number(cells[7]) == want["recent_level"], unit
        shown = cells[8]
        p = want["p_increase_pct"]
        assert shown == ("<1%" if p < 1 else ">99%" if p > 99 else f"{p:.0f}%"), unit
        assert ("watch" in cells[9]) == bool(want["watch"]), unit
    # Counts are counts: quantiles whole, means one decimal, everywhere in the file.
    assert (numbers[list(QUANTILE_COLUMNS)] == numbers[list(QUANTILE_COLUMNS)].round()).all().all()
    assert (numbers["mean"] * 10 == (numbers["mean"] * 10).round()).all()


def test_the_watch_list_is_the_rule_written_on_the_page(inputs, written):
    page = written["html"].read_text(encoding="utf-8")
    out = outlook(inputs.forecast, inputs.panel, backtest=inputs.backtest, model=inputs.model)
    units = out.units.set_index("unit")
    by_rule = set(units.index[(units["p_increase"] >= WATCH_P) & (units["next_mean"] - units["recent"] >= WATCH_RISE)])
    marked = {u for u, cells in next_table(page).items() if "watch" in cells[-1]}
    assert marked == by_rule
    assert watch_rule("governorate") in text_of(page)
    headline = text_of(page[page.index('<section id="headline"'):page.index('<section id="map"')])
    if by_rule:
        assert f"{len(by_rule)} of 18 governorates" in headline
        for unit in by_rule:
            assert unit in headline
    # Each signal names what it is measured against.
    assert "against each governorate's recent level, its average over the last 3 months (October–December 2016)" \
        in headline
    assert "threat tiers against the months of every governorate from 2012-01 to 2016-12" in headline


def test_one_national_sentence_per_horizon_group_and_never_the_same_twice(inputs):
    growth = np.array([1.0, 1.3, 1.3, 1.7, 1.7, 1.7])
    rising = inputs.forecast.copy()
    factor = growth[rising["horizon"].to_numpy() - 1]
    for col in ("mean", *QUANTILE_COLUMNS):
        rising[col] = rising[col] * factor
    page = render_report(ReportInputs(panel=inputs.panel, meta=META, forecast=rising, model="moving_average",
                                      issued="2017-01-05"))
    sentences = [text_of(s) for s in re.findall(r'<p class="national-line">(.*?)</p>', page, re.S)]
    assert [s.split(":")[0] for s in sentences] == ["January 2017", "February–March 2017", "April–June 2017"]
    assert len(set(sentences)) == 3
    flat = render_report(ReportInputs(panel=inputs.panel, meta=META, forecast=inputs.forecast, model="moving_average",
                                      issued="2017-01-05"))
    joined = [text_of(s) for s in re.findall(r'<p class="national-line">(.*?)</p>', flat, re.S)]
    assert len(joined) == 1 and joined[0].startswith("January–June 2017:")


def test_focus_units_restrict_tables_charts_and_headline_and_the_national_figures_stay_national(inputs, tmp_path):
    everything = write_report(inputs, tmp_path / "all" / "2017-01.html")
    focused = write_report(dataclasses.replace(inputs, units=FOCUS), tmp_path / "focus" / "2017-01.html")
    page = focused["html"].read_text(encoding="utf-8")
    rows = next_table(page)
    assert set(rows) == set(FOCUS) | {"national"}
    ranked = re.search(r'<table id="ranked-table".*?</table>', page, re.S).group(0)
    assert set(re.findall(r'<span class="rank">\d+\.</span> <strong>([^<]+)</strong>', ranked)) == set(FOCUS)
    captions = re.findall(r'<figure class="fan[^"]*">\s*<figcaption>([^<]+?)\s*(?:<span|</figcaption>)', page)
    assert captions == ["National total (all 18)", *[u for u in captions[1:]]] and set(captions[1:]) == set(FOCUS)
    # The national figures are every unit's, the same as in the report of all units, and say so.
    assert rows["national"] == next_table(everything["html"].read_text(encoding="utf-8"))["national"]
    assert rows["national"][0] == "National (all 18)"
    assert "focuses on 5 of the 18 governorates" in text_of(page) and "national figures are for all 18" in text_of(page)
    numbers = pd.read_csv(focused["csv"])
    assert set(numbers.loc[numbers["scope"] == "unit", "unit"]) == set(FOCUS)
    # The map greys the units outside the focus.
    assert "not in focus" in page[page.index('<section id="map"'):page.index('<section id="ranking"')]


def many_units(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A gazetteer of ``n`` synthetic units and a seeded panel of theirs (2012-01..2016-12)."""
    frame = synthetic_gazetteer(n, seed=3)
    months = pd.period_range("2012-01", "2016-12", freq="M")
    rng = np.random.default_rng(11)
    rows = [{"unit": u, "month": m, "incidents": int(rng.poisson(1 + (k % 7))), "deaths": 0}
            for k, u in enumerate(frame["name"]) for m in months]
    return frame, pd.DataFrame(rows)


def test_above_the_stated_number_of_units_the_report_draws_summaries(tmp_path):
    n = SUMMARY_ABOVE + 10
    frame, rows = many_units(n)
    path = tmp_path / "gazetteer.csv"
    frame.to_csv(path, index=False)
    gaz = load_gazetteer(path)
    panel = validate_panel(rows, gazetteer=gaz)
    history = history_at(panel, panel["month"].max())
    forecast = forecast_at(make_model("moving_average").fit(history), history, 3, name="moving_average")
    paths = write_report(ReportInputs(panel=panel, meta={"vintage": "2016-12"}, forecast=forecast,
                                      model="moving_average", gazetteer=gaz), tmp_path / "2017-01.html")
    page = paths["html"].read_text(encoding="utf-8")
    assert 'id="summary-note"' in page and f"more than {SUMMARY_ABOVE}" in text_of(page)
    assert '<svg class="map"' not in page
    assert len(next_table(page)) == SUMMARY_ROWS + 1
    assert page.count('<figure class="fan') == 1 + SUMMARY_FANS
    numbers = pd.read_csv(paths["csv"])
    assert numbers.loc[numbers["scope"] == "unit", "unit"].nunique() == n
    # Below it, one chart per unit and a map.
    small = write_report(ReportInputs(panel=panel[panel["unit"].isin(gaz.names[:SUMMARY_ABOVE])],
                                      meta={"vintage": "2016-12"},
                                      forecast=forecast[forecast["unit"].isin(gaz.names[:SUMMARY_ABOVE])],
                                      model="moving_average", gazetteer=gaz), tmp_path / "small" / "2017-01.html")
    page = small["html"].read_text(encoding="utf-8")
    assert 'id="summary-note"' not in page and page.count('<figure class="fan') == 1 + SUMMARY_ABOVE


def test_on_a_phone_the_next_months_median_and_interval_sit_beside_the_units_name(browser, written):
    seen = visit(browser, written["html"], width=390, height=844)
    try:
        assert seen.problems == [] and seen.foreign_requests == []
        page = seen.page
        page.locator("#next-table").scroll_into_view_if_needed()
        boxes = page.evaluate("""() => [...document.querySelectorAll('#next-table tbody tr')].map(tr => {
            const name = tr.cells[0].getBoundingClientRect(), median = tr.cells[1].getBoundingClientRect();
            return {unit: tr.dataset.unit, name: [name.left, name.right, name.top],
                    median: [median.left, median.right, median.top, median.bottom]}; })""")
        assert len(boxes) == 19
        for box in boxes:
            left, right, top, bottom = box["median"]
            assert 0 <= left and right <= 390, box  # inside the viewport: no sideways scrolling to see it
            assert box["name"][1] <= left + 0.5 and abs(box["name"][2] - top) < 2, box  # beside the name
        assert page.evaluate("window.scrollX") == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-first-screen-390.png"))
    finally:
        seen.page.close()
