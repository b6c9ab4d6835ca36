"""The report on a phone, a desktop and paper, in a real headless Chromium: no sideways scrolling of
the page at 390 px or 1400 px (only wide tables scroll, inside their own box), every governorate
present, the headline's national figures those of the aggregated distribution, and every PDF page
with a running header and footer (title, vintage, page X of Y, the synthetic flag)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from browser import ARTIFACTS, visit  # the browser fixture comes from conftest.py
from forecast.catalog import make_model
from forecast.evaluation.backtest import BacktestDesign, forecast_at, history_at, run_backtest
from forecast.report import ReportInputs, write_report
from forecast.report.aggregate import national_total
from forecast.report.fmt import fmt_count, fmt_interval, fmt_mean

HORIZON = 6
META = {"vintage": "2016-12", "sources": [{"path": "/data/ucdp_ged_iraq.csv", "format": "ucdp", "rows": 10,
                                           "events": 10, "quarantined": 0}]}


@pytest.fixture(scope="module")
def inputs(synthetic_panel) -> ReportInputs:
    panel = synthetic_panel
    origin = panel["month"].max()
    models = {m: (lambda m=m: make_model(m)) for m in ("moving_average", "zero")}
    design = BacktestDesign(start=origin - 17, end=origin - HORIZON, step=3, horizon=HORIZON)
    backtest = run_backtest(panel, models, design, progress=False)
    history = history_at(panel, origin)
    forecast = forecast_at(make_model("moving_average").fit(history), history, HORIZON, name="moving_average")
    return ReportInputs(panel=panel, meta=META, forecast=forecast, model="moving_average", backtest=backtest,
                        issued="2017-01-05")


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory):
    return write_report(inputs, tmp_path_factory.mktemp("layout") / "2017-01.html", pdf=True)


@pytest.mark.parametrize("width", [1400, 390])
def test_page_never_scrolls_sideways_and_shows_every_governorate(browser, written, inputs, width):
    seen = visit(browser, written["html"], width=width, height=900)
    try:
        assert seen.problems == [] and seen.foreign_requests == []
        page = seen.page
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # Nothing outside a table box reaches past the right edge of the viewport.
        outside = page.evaluate("""(w) => [...document.querySelectorAll('body *')]
            .filter(el => !el.closest('.table-box') && el.getBoundingClientRect().right > w + 0.5)
            .map(el => el.tagName + (el.id ? '#' + el.id : ''))""", width)
        assert outside == []
        # Wide tables scroll inside their box, never the page.
        box = page.locator("#ranked-table").locator("xpath=..")
        assert "table-box" in box.get_attribute("class")
        for unit in inputs.panel["unit"].unique():
            assert page.locator("#ranked-table strong", has_text=unit).count() == 1
            assert page.locator("#fan-charts figcaption", has_text=unit).count() == 1
        # No number or interval broken across lines in the ranked table.
        wrapped = page.evaluate("""() => [...document.querySelectorAll('#ranked-table td:not(.text)')]
            .filter(td => { const r = document.createRange(); r.selectNodeContents(td);
                            const tops = new Set([...r.getClientRects()].map(x => Math.round(x.bottom)));
                            return tops.size > 1; })
            .map(td => td.innerText)""")
        assert wrapped == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{width}.png"), full_page=False)
    finally:
        seen.page.close()


def test_headline_total_is_the_aggregated_distribution(browser, written, inputs):
    nat = national_total(inputs.forecast, backtest=inputs.backtest, model=inputs.model).table
    seen = visit(browser, written["html"], width=1400)
    try:
        headline = " ".join(seen.page.locator("#headline").inner_text().replace("\u2060", "").split())
        r = nat.iloc[-1]
        assert (f"about {fmt_mean(nat['mean'].mean())} incidents a month are expected nationally; by June 2017 a "
                f"median of {fmt_count(r['q50'])} (90% interval {fmt_interval(r['q05'], r['q95'])})").replace(
            "\u2060", "") in headline
        total = seen.page.locator("#next-table tr.total").inner_text().replace("\u2060", "")
        assert f"{fmt_count(nat['q50'].iloc[0])} ({fmt_count(nat['q05'].iloc[0])}–{fmt_count(nat['q95'].iloc[0])})" \
            in total
        # The median of the total is not the sum of the medians (the old, biased figure).
        summed = inputs.forecast[inputs.forecast["horizon"] == 1]["q50"].sum()
        assert nat["q50"].iloc[0] != pytest.approx(summed, abs=0.5)
    finally:
        seen.page.close()


def test_every_pdf_page_has_the_running_header_and_footer(written):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(written["pdf"]))
    try:
        n = len(pdf)
        assert n >= 3
        for i in range(n):
            text = pdf[i].get_textpage().get_text_range()
            assert "Incidents forecast by governorate: Iraq, January–June 2017" in text, f"page {i + 1}"
            assert "Data vintage 2016-12" in text and f"Page {i + 1} of {n}" in text, f"page {i + 1}"
            assert "SYNTHETIC" not in text  # not demo data: no synthetic flag
            if i < n - 1:  # no half-blank page: the body's ink reaches past 60% of every page but the last
                image = np.asarray(pdf[i].render(scale=0.5).to_pil().convert("L"))
                body = image[int(0.06 * len(image)):int(0.94 * len(image))]
                inked = np.flatnonzero((body < 200).any(axis=1))
                assert inked.max() / len(body) > 0.6, f"page {i + 1} is half blank"
    finally:
        pdf.close()


def test_the_synthetic_flag_is_on_every_pdf_page(inputs, tmp_path):
    import pypdfium2 as pdfium

    demo = ReportInputs(panel=inputs.panel, meta={**META, "sources": [{**META["sources"][0],
                                                                         "path": "/x/synthetic_events.csv"}]},
                        forecast=inputs.forecast, model=inputs.model, issued="2017-01-05")
    paths = write_report(demo, tmp_path / "2017-01.html", pdf=True)
    pdf = pdfium.PdfDocument(str(paths["pdf"]))
    try:
        texts = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
        assert all("SYNTHETIC DEMO DATA: not real events" in t for t in texts)
        assert re.search(r"Page 1 of \d+", texts[0])
    finally:
        pdf.close()


def test_a_stale_vintage_is_flagged_at_the_top(inputs, tmp_path):
    from forecast.report import render_report

    old = render_report(ReportInputs(panel=inputs.panel, meta=META, forecast=inputs.forecast, model=inputs.model,
                                     issued="2026-12-01"))
    top = old[:old.index("<main>")]
    assert 'id="vintage-warning"' in top and "120 months before this report was issued (2026-12-01)" in top
    fresh = render_report(ReportInputs(panel=inputs.panel, meta=META, forecast=inputs.forecast, model=inputs.model,
                                       issued="2017-03-20"))
    assert 'id="vintage-warning"' not in fresh  # three months old is not flagged


def body_lines(pdf_path) -> list[list[str]]:
    """Each PDF page's text lines without the running header and footer."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        pages = []
        for i in range(len(pdf)):
            lines = [" ".join(line.split()) for line in pdf[i].get_textpage().get_text_range().splitlines()]
            pages.append([line for line in lines if line and not re.search(r"Page \d+ of \d+", line)
                          and not line.startswith(("Data vintage", "Incidents forecast by governorate: Iraq,"))])
        return pages
    finally:
        pdf.close()


def kept_with_next(page_html: str) -> tuple[list[str], list[str]]:
    """Texts of the headings (h1-h3, definition terms) and of the table captions of a report."""
    def texts(pattern: str) -> list[str]:
        return [" ".join(re.sub(r"<[^>]+>", " ", t).replace("&#34;", '"').replace("&#39;", "'").replace(
            "&amp;", "&").split()) for t in re.findall(pattern, page_html, re.S)]
    return texts(r"<h[123][^>]*>(.*?)</h[123]>") + texts(r"<dt>(.*?)</dt>"), texts(r'<p class="caption"[^>]*>(.*?)</p>')


def assert_nothing_orphaned(paths) -> None:
    headings, captions = kept_with_next(paths["html"].read_text(encoding="utf-8"))
    pages = body_lines(paths["pdf"])
    assert len(pages) >= 3
    for number, lines in enumerate(pages[:-1], start=1):
        last = lines[-1]
        assert not any(last == h or (len(last) >= 12 and last in h) for h in headings), \
            f"page {number} ends with a heading: {last!r}"
        assert not any(len(last) >= 12 and last in c.replace("\u2060", "") for c in captions), \
            f"page {number} ends with a table caption: {last!r}"


def test_no_heading_or_table_caption_is_the_last_line_of_a_pdf_page(written):
    assert_nothing_orphaned(written)


def test_the_orphan_check_itself_catches_a_heading_at_the_foot_of_a_page(inputs, tmp_path):
    """The check above can fail: a heading pushed to the foot of page 1 is caught."""
    import forecast.report.render as render

    page = render.render_report(inputs)
    # Fill page 1 to just above its foot, then a heading that the CSS may not keep with anything.
    filler = "<div style='height: 215mm'></div><h3 style='break-after: auto'>An orphaned heading here</h3>"
    page = page.replace("<main>", "<main>" + filler + "<style>h3 { break-after: auto !important; }</style>", 1)
    html = tmp_path / "orphan.html"
    html.write_text(page, encoding="utf-8")
    pdf = tmp_path / "orphan.pdf"
    render.print_pdf(html, pdf)
    with pytest.raises(AssertionError, match="ends with a heading: 'An orphaned heading here'"):
        assert_nothing_orphaned({"html": html, "pdf": pdf})
