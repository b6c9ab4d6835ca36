"""The analyst's report: content and escaping of the HTML, the previous-report comparison, the
CLI (with a real MLflow SQLite registry), and the page in a real headless Chromium (no console
errors, no requests to anything but the file, every governorate visible, PDF pages not blank)."""

from __future__ import annotations

import html as htmlmod
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from browser import ARTIFACTS, visit  # the browser fixture comes from conftest.py
from features.gazetteer import load_gazetteer
from features.panel_files import validate_panel
from features.synthetic import synthetic_gazetteer
from forecast.evaluation import escalation
from forecast.evaluation.scores import score_table
from forecast.evaluation.backtest import BacktestDesign, forecast_at, history_at, run_backtest
from forecast.catalog import make_model
from forecast.report import (
    ReportInputs,
    ReportWarning,
    find_previous_report,
    read_report_data,
    render_report,
    write_report,
)
from forecast.report.aggregate import national_total
from forecast.report.content import watch_rule
from forecast.report.fmt import fmt_count, fmt_interval, fmt_mean, fmt_signed, round_count
from forecast.report.tiers import tier_scale, trend, trend_definition
from forecast.schema import FORECAST_COLUMNS, QUANTILE_COLUMNS
from forecast.errors import ReportError

SECTIONS = ("headline", "map", "ranking", "fan-charts", "skill", "method")
HORIZON = 6
EVIL = "<script>alert(1)</script>"
META = {
    "vintage": "2016-12", "first_month": "2008-01", "last_month": "2016-12", "coverage_end": "2016-12-31",
    "sources": [{"path": "/data/ucdp_ged_iraq.csv", "format": "ucdp", "sha256": "ab" * 32, "rows": 6619,
                 "events": 6274, "quarantined": 345, "filtered_out": 0, "last_date": "2016-12-30",
                 "filters": "none"}],
    "covariates": {"path": "/data/covariates.csv", "sha256": "cd" * 32, "columns": ["us_troops", "ops_tempo"],
                   "scope": "national", "fill": "error"},
}

ROOT = Path(__file__).resolve().parent.parent


def fit_forecast(panel: pd.DataFrame, origin: pd.Period, model: str = "moving_average", horizon: int = HORIZON):
    history = history_at(panel, origin)
    return forecast_at(make_model(model).fit(history), history, horizon, name=model)


def section(page: str, name: str) -> str:
    """The HTML of one ``<section id=name>``."""
    start = page.index(f'<section id="{name}"')
    return page[start:page.index("</section>", start)]


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, entities decoded, white space collapsed (what a reader sees)."""
    text = " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([:;,.)])", r"\1", text)


@pytest.fixture(scope="module")
def panel(synthetic_panel):
    return synthetic_panel


@pytest.fixture(scope="module")
def inputs(panel) -> ReportInputs:
    origin = panel["month"].max()
    models = {m: (lambda m=m: make_model(m)) for m in ("moving_average", "locf_negbin", "zero")}
    design = BacktestDesign(start=origin - 17, end=origin - HORIZON, step=3, horizon=HORIZON)
    backtest = run_backtest(panel, models, design, progress=False)
    return ReportInputs(panel=panel, meta=META, forecast=fit_forecast(panel, origin), model="moving_average",
                        backtest=backtest, issued="2017-01-05")


@pytest.fixture(scope="module")
def page(inputs) -> str:
    return render_report(inputs)


# ----------------------------------------------------------------------------------------
# Definitions (forecast.evaluation.escalation)


def test_trend_needs_an_absolute_and_a_relative_change():
    recent = [0, 0, 10, 10, 10, 2]
    projected = [0.9, 1.0, 12.4, 12.5, 7.5, 1.0]
    assert trend(recent, projected).tolist() == ["stable", "rising", "stable", "rising", "falling", "falling"]


# ----------------------------------------------------------------------------------------
# Content of the HTML


def test_sections_come_in_the_order_of_the_brief(page):
    positions = [page.index(f'<section id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions)
    assert '<h2 id="h-headline">1. January 2017: where it may get worse</h2>' in section(page, "headline")


def test_every_governorate_appears_in_map_table_and_fan_charts(page, panel):
    table, charts, figure_map = section(page, "ranking"), section(page, "fan-charts"), section(page, "map")
    for unit in panel["unit"].unique():
        assert f"<strong>{unit}</strong>" in table
        assert f"<figcaption>{unit} " in charts
        assert f">{unit}</text>" in figure_map
    rows = re.findall(r'<span class="rank">(\d+)\.</span>', table)
    assert rows == [str(i) for i in range(1, panel["unit"].nunique() + 1)]


def test_tier_escalation_and_trend_definitions_are_shown_in_words(page, panel):
    method = text_of(section(page, "method"))
    scale = tier_scale(panel, panel["month"].max())
    assert scale.definition("governorate") in method
    assert escalation.escalation_definition("incidents", "governorate") in method
    assert trend_definition("incidents") in method
    assert watch_rule("governorate") in method
    legend = text_of(section(page, "map"))
    for name, words in scale.ranges():
        assert f"{name}: {words}" in legend


def test_headline_numbers_are_those_of_the_aggregated_distribution_and_never_say_will(page, inputs, panel):
    fc = inputs.forecast
    # The national figures, computed here independently of the page: the expected total is the sum of
    # the means; median and interval come from the joint draws with the backtest's dependence.
    nat = national_total(fc, backtest=inputs.backtest, model=inputs.model).table
    assert nat["mean"].iloc[0] == pytest.approx(fc[fc["horizon"] == 1]["mean"].sum())
    headline = text_of(section(page, "headline"))
    first = nat.iloc[0]
    # One sentence per horizon group (moving_average is flat, so its groups read alike and are joined).
    assert (f"January–June 2017: about {fmt_mean(nat['mean'].mean())} incidents a month are expected nationally; "
            f"by June 2017 a median of {fmt_count(nat['q50'].iloc[-1])} "
            f"(90% interval {fmt_interval(nat['q05'].iloc[-1], nat['q95'].iloc[-1])})") in headline
    sentences = re.findall(r'<p class="national-line">(.*?)</p>', section(page, "headline"))
    assert len(sentences) == len(set(sentences)) >= 1
    # The next-month table's national row shows the same figures.
    total = text_of(re.search(r'<tr class="total" data-unit="national">.*?</tr>', page, re.S).group(0))
    assert f"{fmt_count(first['q50'])} ({fmt_interval(first['q05'], first['q95'])}) {fmt_mean(first['mean'])}" in total
    # The watch list is the rows the table marks, and the headline names them.
    table = section(page, "headline")
    marked = re.findall(r'<tr class="watch" data-unit="([^"]+)">', table)
    assert set(marked) == set(re.findall(r'<tr class="watch">\s*<td class="text"><span class="rank">\d+\.</span> '
                                         r'<strong>([^<]+)</strong>', section(page, "ranking")))
    listed = re.findall(r"<li>.*?<strong>([^<]+)</strong>", table.split('<ul class="focus">')[1]) if marked else []
    assert listed == marked[:len(listed)]
    assert not re.search(r"\bwill\b", headline, re.IGNORECASE)
    assert "2016-12" in headline and "December 2016" in headline


def test_skill_section_scores_the_model_against_the_benchmarks(page, inputs):
    skill = section(page, "skill")
    scores = score_table(inputs.backtest, metrics=["crps", "coverage90"])
    mine = scores[(scores["model"] == "moving_average") & (scores["horizon"].astype(str) == "all")].iloc[0]
    assert f"{mine['crps']:.3f}" in skill
    assert f"{mine['coverage90']:.0%}" in skill
    for model in ("locf_negbin", "zero"):
        assert f'<td class="text">{model}</td>' in skill
    assert "No forecasts have been issued yet" in skill


def test_sources_licence_quarantine_and_model_are_in_data_and_method(page):
    method = text_of(section(page, "method"))
    assert "CC BY 4.0" in method and "Sundberg" in method and "Davies" in method
    assert "345 source row(s) could not be used" in method
    assert "moving_average, fitted for this report" in method
    assert "Demo report on synthetic data" not in page


def test_page_references_nothing_outside_itself(page):
    assert "http:" not in page and "https:" not in page and "//" not in re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    assert "<link" not in page and "<img" not in page and "@import" not in page and "url(" not in page
    assert page.count("<script") == 1  # the JSON data block only: no code


def test_every_figure_has_alt_text(page):
    svgs = re.findall(r"<svg[^>]*>", page)
    assert len(svgs) >= 1 + 18 + 1  # map, fan charts, score chart (+ covariates)
    for tag in svgs:
        assert 'role="img"' in tag and "aria-labelledby" in tag
    for fig_id in re.findall(r'aria-labelledby="(fig\d+)-t', page):
        assert re.search(rf'<desc id="{fig_id}-d">[^<]{{20,}}</desc>', page)


def test_report_data_round_trips_the_forecast(tmp_path, inputs):
    out = write_report(inputs, tmp_path / "2017-01.html")["html"]
    data = read_report_data(out)
    assert data["origin"] == "2016-12" and data["model"] == "moving_average" and data["issued"] == "2017-01-05"
    back = pd.DataFrame(data["forecast"])[list(FORECAST_COLUMNS)]
    want = inputs.forecast[list(FORECAST_COLUMNS)].astype({"origin": str, "month": str})
    pd.testing.assert_frame_equal(back.sort_values(["unit", "horizon"]).reset_index(drop=True),
                                  want.sort_values(["unit", "horizon"]).reset_index(drop=True), check_dtype=False)


# ----------------------------------------------------------------------------------------
# Escaping


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """Four units on a lattice, the first named like a script tag, with a seeded panel and forecast."""
    frame = synthetic_gazetteer(4, seed=1)
    frame.loc[0, "name"] = EVIL
    frame.loc[0, "aliases"] = ""
    path = tmp_path_factory.mktemp("evil") / "gazetteer.csv"
    frame.to_csv(path, index=False)
    gaz = load_gazetteer(path)
    months = pd.period_range("2012-01", "2016-12", freq="M")
    rng = np.random.default_rng(7)
    # The script-named unit is the busiest, so it is on the watch list too.
    rows = [{"unit": u, "month": m, "incidents": int(rng.poisson(9 - 2 * k)), "deaths": 0,
             "us_troops": 1000.0 + i} for k, u in enumerate(gaz.names) for i, m in enumerate(months)]
    panel = validate_panel(pd.DataFrame(rows), gazetteer=gaz)
    forecast = fit_forecast(panel, months[-1], horizon=3)
    inputs = ReportInputs(panel=panel, meta={"vintage": "2016-12"}, forecast=forecast,
                          model="moving_average</script><script>alert(2)</script>", gazetteer=gaz)
    return inputs, render_report(inputs)


def test_a_unit_named_script_is_escaped_everywhere(evil):
    inputs, page = evil
    assert EVIL not in page and "<script>alert" not in page
    assert htmlmod.escape(EVIL, quote=False) in page
    assert page.count("<script") == 1 and page.count("</script>") == 1
    for name in ("ranking", "map", "fan-charts", "headline"):
        assert EVIL in text_of(section(page, name))


def test_embedded_data_cannot_close_its_script_element(evil, tmp_path):
    inputs, page = evil
    block = page[page.index('id="report-data">'):]
    assert block.index("</script>") > block.index("}")  # the first </script> is the element's own end
    path = tmp_path / "evil.html"
    path.write_text(page, encoding="utf-8")
    data = read_report_data(path)
    assert data["model"] == inputs.model
    assert EVIL in {row["unit"] for row in data["forecast"]}


# ----------------------------------------------------------------------------------------
# Bad inputs


def test_a_forecast_missing_a_unit_is_refused_naming_it(inputs):
    short = inputs.forecast[inputs.forecast["unit"] != "Anbar"]
    with pytest.raises(ReportError, match="missing: Anbar"):
        render_report(ReportInputs(panel=inputs.panel, meta={}, forecast=short, model="m"))


def test_a_backtest_without_the_report_model_is_refused(inputs):
    with pytest.raises(ReportError, match="no rows for the report's model 'ensemble'"):
        render_report(ReportInputs(panel=inputs.panel, meta={}, forecast=inputs.forecast, model="ensemble",
                                   backtest=inputs.backtest))


def test_failed_pdf_leaves_the_earlier_report_untouched(inputs, tmp_path, monkeypatch):
    out = tmp_path / "2017-01.html"
    out.write_text("earlier report", encoding="utf-8")
    monkeypatch.setenv("FORECAST_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ReportError, match="FORECAST_CHROMIUM"):
        write_report(inputs, out, pdf=True)
    assert out.read_text(encoding="utf-8") == "earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2017-01.html"]


# ----------------------------------------------------------------------------------------
# Change since the previous report, the ledger, scenarios, real boundaries


def test_change_since_previous_report_compares_the_same_target_month(inputs, panel, tmp_path):
    earlier = ReportInputs(panel=panel, meta=META, forecast=fit_forecast(panel, pd.Period("2016-11", "M")),
                           model="moving_average", issued="2016-12-05")
    write_report(earlier, tmp_path / "2016-12.html")
    (tmp_path / "notes.html").write_text("<html><body>not a report</body></html>", encoding="utf-8")
    (tmp_path / "broken.html").write_text('<script type="application/json" id="report-data">{oops</script>',
                                          encoding="utf-8")
    with pytest.warns(ReportWarning, match="broken.html"):
        previous = find_previous_report(tmp_path, pd.Period("2016-12", "M"), exclude=tmp_path / "2017-01.html")
    assert previous.origin == pd.Period("2016-11", "M") and previous.path.name == "2016-12.html"
    page = render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="moving_average",
                                      previous=previous.forecast))
    table = section(page, "ranking")
    assert "Change since previous report" in table
    now = inputs.forecast[inputs.forecast["horizon"] == 1].set_index("unit")["q50"]
    was = previous.forecast[previous.forecast["month"] == pd.Period("2017-01", "M")].set_index("unit")["q50"]
    for unit in ("Baghdad", "Duhok"):
        change = fmt_signed(round_count(now[unit]) - round_count(was[unit]))
        assert htmlmod.escape(f"{change} (was {fmt_count(was[unit])})") in table
    assert "Change since previous report" not in section(render_report(inputs), "ranking")


def test_ledger_section_scores_issued_forecasts_by_model_version(inputs):
    past = inputs.backtest[inputs.backtest["model"] == "moving_average"].copy()
    past = past.assign(issued=past["origin"].astype(str) + "-05", vintage=past["origin"].astype(str),
                       model_version="demo-incidents version 2 (champion)")
    past.loc[past["origin"] == past["origin"].max(), "y"] = np.nan  # not yet known
    page = render_report(ReportInputs(panel=inputs.panel, meta=META, forecast=inputs.forecast,
                                      model="moving_average", past_forecasts=past))
    skill = section(page, "skill")
    assert "demo-incidents version 2 (champion)" in skill and 'id="ledger-national"' in skill
    scored = past[past["y"].notna()]
    assert f"{len(scored):,} of their {len(past):,} forecasts have a recorded outcome" in text_of(skill)


def scenario_result(inputs, panel, *, responsive: bool):
    """A ScenarioResult-like value: a baseline and a troop surge (projections 20% lower), troops as the path."""
    base = inputs.forecast.assign(scenario="baseline")
    surge = base.copy()
    surge[["mean", *QUANTILE_COLUMNS]] = surge[["mean", *QUANTILE_COLUMNS]] * 0.8
    surge["scenario"] = "troop surge"
    diff = surge[["unit", "origin", "month", "horizon"]].assign(
        scenario="troop surge", mean=surge["mean"] - base["mean"], q05=-1.5, q50=surge["q50"] - base["q50"], q95=0.25)
    months = pd.period_range(inputs.forecast["month"].min(), periods=HORIZON, freq="M")
    paths = pd.DataFrame([{"scenario": s, "unit": u, "month": m, "covariate": "us_troops", "value": v}
                          for s, v in (("baseline", 4000.0), ("troop surge", 20000.0))
                          for u in panel["unit"].unique() for m in months])
    recent = panel[panel["month"] > panel["month"].max() - 24]
    history = recent.melt(id_vars=["unit", "month"], value_vars=["us_troops"], var_name="covariate")
    return SimpleNamespace(
        model="moving_average", baseline="baseline",
        scenarios=(SimpleNamespace(name="baseline", description="troops held at the last value", rationale="",
                                   path=None),
                   SimpleNamespace(name="troop surge", description="20,000 US troops from next month",
                                   rationale="a <b>bold</b> plan", path=Path("scenarios/surge.toml"))),
        forecasts=pd.concat([base, surge], ignore_index=True), differences=diff if responsive else diff.iloc[:0],
        paths=paths, history=history, blind_models=("moving_average", "zero"), responsive=responsive,
        responders=("nb_glmx", "sarimax"))


def test_a_scenario_blind_model_gets_one_sentence_and_no_chart(inputs, panel):
    page = render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="moving_average",
                                      scenarios=scenario_result(inputs, panel, responsive=False)))
    part = section(page, "scenarios")
    body = part[part.index("</h2>") + 5:]
    assert body.count("<p") == 1 and "<svg" not in part and "<table" not in part
    words = text_of(body)
    assert words == ("moving_average does not respond to covariates at the forecast months, so every scenario's "
                     "projection equals its forecast above and no scenario is drawn; models that respond: "
                     "nb_glmx, sarimax.")


def test_scenario_section_renders_paths_differences_the_causal_caveat_and_the_models_record(inputs, panel):
    result = scenario_result(inputs, panel, responsive=True)
    page = render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="moving_average",
                                      backtest=inputs.backtest, scenarios=result))
    part = section(page, "scenarios")
    words = text_of(part)
    assert "conditional projections, not causal estimates" in words
    assert "a <b>bold</b> plan" in words and "<b>bold" not in part
    for unit in panel["unit"].unique():
        assert f"<td class=\"text\">{unit}</td>" in part
    b = result.differences[(result.differences["unit"] == "Baghdad")
                           & (result.differences["horizon"] == HORIZON)].iloc[0]
    assert htmlmod.escape(f"{fmt_signed(b['q50'], 1)} ({fmt_signed(b['q05'], 1)} to {fmt_signed(b['q95'], 1)})") in part
    assert part.count('role="img"') == panel["unit"].nunique() + 1  # one per unit, one troop path chart
    # The model's backtest record against the best benchmark comes first, before the projections.
    scores = score_table(inputs.backtest, metrics=["crps"])
    overall = scores[scores["horizon"].astype(str) == "all"].set_index("model")["crps"]
    best = overall.drop("moving_average").idxmin()
    ratio = overall["moving_average"] / overall[best]
    first = text_of(part[part.index("</h2>"):part.index("</p>")])
    assert f"{best} (CRPS ratio {ratio:.2f})" in first
    assert ("Read with care" in first) == (ratio > 1)
    positions = [page.index(f'<section id="{s}"') for s in ("fan-charts", "scenarios", "skill", "method")]
    assert positions == sorted(positions)


def test_a_model_worse_than_the_best_benchmark_is_said_first(inputs, panel):
    from forecast.report.scenario_view import skill_sentence

    text, worse = skill_sentence("nb_glmx", {"best_benchmark": "moving_average", "ratio": 1.54})
    assert worse and text.startswith("Read with care: in the backtest, nb_glmx's forecasts were 54% worse than "
                                     "those of the best benchmark, moving_average (CRPS ratio 1.54)")
    text, worse = skill_sentence("nb_glmx", {"best_benchmark": "moving_average", "ratio": 0.9})
    assert not worse and "10% better" in text
    assert "No backtest was run" in skill_sentence("nb_glmx", None)[0]


def test_real_boundaries_from_the_ocha_geojson(shared_data, inputs, panel):
    geojson = json.loads((shared_data / "iraq_adm1.geojson").read_text(encoding="utf-8"))
    page = render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="moving_average",
                                      geojson=geojson))
    figure = section(page, "map")
    assert figure.count("<path") == 18 and "Boundaries from the GeoJSON" in figure
    for unit in panel["unit"].unique():
        assert f">{unit}</text>" in figure
    geojson["features"][3]["properties"] = {"ADM1_EN": "Atlantis"}
    with pytest.raises(ReportError, match="geojson feature 3: no property names a known governorate"):
        render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="m", geojson=geojson))


# ----------------------------------------------------------------------------------------
# The command line (demo panel; a registered model in a real MLflow SQLite store)


@pytest.fixture(scope="module")
def demo_panel(tmp_path_factory) -> Path:
    from features.panel import EventFile, PanelSpec
    from forecast.jobs.data import make_panel
    from forecast.jobs.demo import DEMO_COVARIATES, DEMO_EVENTS

    out = tmp_path_factory.mktemp("demo") / "panel.parquet"
    make_panel(PanelSpec(events=(EventFile(DEMO_EVENTS, "ucdp"),), covariates=DEMO_COVARIATES,
                         coverage_end=pd.Timestamp("2024-12-31")), out)
    return out


def run_cli(*args: str):
    from forecast.cli import main

    return CliRunner().invoke(main, ["report", *map(str, args)], catch_exceptions=False)


def test_cli_writes_the_report_for_the_demo_panel(demo_panel, tmp_path):
    out = tmp_path / "reports" / "2025-01.html"
    result = run_cli("--panel", demo_panel, "--model", "moving_average", "--horizon", 3, "--backtest-months", 6,
                     "--out", out)
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    page = out.read_text(encoding="utf-8")
    assert "Demo report on synthetic data" in page and "January–March 2025" in page
    assert "6 forecast origins from Apr 2024 to Sep 2024" in text_of(section(page, "skill"))
    for unit in load_gazetteer().names:
        assert f"<strong>{unit}</strong>" in section(page, "ranking")


def test_cli_reports_deaths_with_their_own_tiers_and_file_name(demo_panel, tmp_path, monkeypatch):
    from features.panel_files import read_panel

    monkeypatch.chdir(tmp_path)
    result = run_cli("--panel", demo_panel, "--model", "moving_average", "--horizon", 3, "--backtest-months", 0,
                     "--target", "deaths")
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / "2025-01-deaths.html"  # beside, not over, the incidents report
    page = out.read_text(encoding="utf-8")
    assert "<h1>Deaths forecast by governorate: Iraq</h1>" in page
    data = read_report_data(out)
    panel, _ = read_panel(demo_panel)
    assert data["target"] == "deaths"
    assert data["tier_bounds"] == pytest.approx(list(tier_scale(panel, panel["month"].max(), "deaths").bounds))
    assert "deaths a month expected" in text_of(section(page, "map"))
    bad = run_cli("--panel", demo_panel, "--target", "fatalities")
    assert bad.exit_code == 2 and "'fatalities' is not one of 'incidents', 'deaths'" in bad.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--model", "zero", "--registry-model", "x@champion"), 2, "not both"),
    (("--model", "movng_average"), 1, "did you mean moving_average"),
    (("--model", "moving_average", "--param", "windw=3"), 1, "no parameter 'windw'"),
    (("--out", "report.txt"), 1, "written as .html"),
    (("--geojson", "missing.geojson"), 1, "GeoJSON file not found"),
])
def test_cli_reports_user_mistakes_without_a_traceback(demo_panel, tmp_path, args, code, message):
    args = [a if not a.endswith((".txt", ".geojson")) else str(tmp_path / a) for a in args]
    result = run_cli("--panel", demo_panel, "--backtest-months", 0, *args)
    assert result.exit_code == code and message in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("*.html"))


def test_cli_reports_with_the_registry_champion(demo_panel, tmp_path):
    from features.panel_files import read_panel
    from forecast.tracking.registry import promote
    from forecast.tracking import ExperimentTracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    panel, _ = read_panel(demo_panel)
    history = history_at(panel, panel["month"].max())
    model = make_model("moving_average", window=12).fit(history)
    tracker = ExperimentTracker("report-test", uri, artifact_location=(tmp_path / "artifacts").as_uri())
    with tracker.parent_run("report-test", {"model": "moving_average"}):
        with tracker.child_run("final: moving_average", {"window": 12}, model="moving_average") as child:
            child.crps_, child.eval_window_ = 0.5, "2024-01..2024-06 h1-6"
            ref = child.log_model(model, history, 3, "demo-report")
    assert promote("demo-report", ref.version, uri).promoted
    out = tmp_path / "2025-01.html"
    result = run_cli("--panel", demo_panel, "--registry-model", "demo-report@champion", "--tracking-uri", uri,
                     "--horizon", 3, "--backtest-months", 3, "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "demo-report version 1 (champion)" in page
    data = read_report_data(out)
    expected = forecast_at(model, history, 3)
    got = pd.DataFrame(data["forecast"]).sort_values(["unit", "horizon"])["q50"].to_numpy()
    np.testing.assert_allclose(got, expected.sort_values(["unit", "horizon"])["q50"].to_numpy())
    assert "moving_average (this report)" in section(page, "skill")
    missing = run_cli("--panel", demo_panel, "--registry-model", "demo-report@gold", "--tracking-uri", uri,
                      "--out", tmp_path / "x.html")
    assert missing.exit_code == 1 and "no alias @gold" in missing.output


# ----------------------------------------------------------------------------------------
# A real headless Chromium


def test_report_in_chromium_loads_cleanly_shows_every_governorate_and_is_screenshotted(browser, inputs, tmp_path):
    out = write_report(inputs, tmp_path / "2017-01.html")["html"]
    seen = visit(browser, out)
    try:
        assert seen.problems == []
        assert seen.foreign_requests == []
        assert seen.requests[:1] == [out.resolve().as_uri()]
        table = seen.page.locator("#ranked-table")
        for unit in inputs.panel["unit"].unique():
            assert seen.page.locator("#ranked-table strong", has_text=unit).first.is_visible()
            assert seen.page.locator("#fan-charts figcaption", has_text=unit).first.is_visible()
        assert table.locator("tbody tr:not(.total)").count() == inputs.panel["unit"].nunique()
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        seen.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
    finally:
        seen.page.close()


def test_script_named_unit_is_inert_text_in_chromium(browser, evil, tmp_path):
    inputs, page = evil
    path = tmp_path / "evil.html"
    path.write_text(page, encoding="utf-8")
    seen = visit(browser, path)
    try:
        assert seen.dialogs == [] and seen.problems == [] and seen.foreign_requests == []
        assert seen.page.locator("#ranked-table strong", has_text=EVIL).first.is_visible()
        assert seen.page.evaluate("document.scripts.length") == 1
    finally:
        seen.page.close()


def test_pdf_is_a4_and_no_page_is_blank(browser, inputs, tmp_path):
    import pypdfium2 as pdfium

    paths = write_report(inputs, tmp_path / "2017-01.html", pdf=True)
    pdf = pdfium.PdfDocument(str(paths["pdf"]))
    try:
        assert len(pdf) >= 3
        ARTIFACTS.mkdir(exist_ok=True)
        for i in range(len(pdf)):
            page = pdf[i]
            width, height = page.get_size()
            assert abs(width / 72 * 25.4 - 210) < 1.5 and abs(height / 72 * 25.4 - 297) < 1.5
            image = page.render(scale=1).to_pil().convert("L")
            ink = (np.asarray(image) < 200).mean()
            assert ink > 0.005, f"page {i + 1} is (nearly) blank: {ink:.2%} dark pixels"
            if i < 2:
                image.save(ARTIFACTS / f"report-pdf-page{i + 1}.png")
    finally:
        pdf.close()


def test_the_browser_check_itself_catches_errors_and_outside_requests(browser, tmp_path):
    """The checks above can fail: a page with a console error and an outside image is caught."""
    path = tmp_path / "bad.html"
    path.write_text('<html><body><img src="http://127.0.0.1:9/x.png" alt="x">'
                    '<script>console.error("broken")</script></body></html>', encoding="utf-8")
    seen = visit(browser, path)
    try:
        assert any("broken" in p for p in seen.problems)
        assert seen.foreign_requests == ["http://127.0.0.1:9/x.png"]
    finally:
        seen.page.close()


def test_scenario_section_from_real_scenario_files_in_chromium(browser, demo_panel, tmp_path):
    scenarios = ROOT / "experiments" / "scenarios"
    out = tmp_path / "reports" / "2025-01.html"
    result = run_cli("--panel", demo_panel, "--model", "nb_glmx", "--horizon", 3, "--backtest-months", 0,
                     "--scenario", f"{scenarios / 'baseline.toml'},{scenarios / 'full_withdrawal.toml'}",
                     "--out", out)
    assert result.exit_code == 0, result.output
    seen = visit(browser, out)
    try:
        assert seen.problems == [] and seen.foreign_requests == []
        part = seen.page.locator("#scenarios")
        assert part.is_visible()
        assert "not causal estimates" in part.inner_text()
        # The troop effect in the generator is negative, so withdrawing troops projects more violence.
        table = seen.page.locator("#scenario-table")
        assert table.locator("tbody tr").count() == 18
        for unit in load_gazetteer().names:
            assert table.locator("tbody tr", has_text=unit).first.is_visible()
        # Troops act two months later, so the national difference shows at horizon 3, positive.
        national = seen.page.locator("#scenario-national tbody tr").last.inner_text()
        assert national.startswith("Mar 2025") and re.search(r"\s\+\d+\.\d", national), national
        assert "full withdrawal" in part.inner_text()
        assert part.locator("figure svg").count() >= 18
        ARTIFACTS.mkdir(exist_ok=True)
        part.screenshot(path=str(ARTIFACTS / "report-scenarios.png"))
    finally:
        seen.page.close()


def test_a_panel_with_counts_by_type_gets_the_split_table(inputs):
    panel = inputs.panel.assign(incidents_state_based=inputs.panel["incidents"] // 2,
                                incidents_one_sided=inputs.panel["incidents"] - inputs.panel["incidents"] // 2)
    page = render_report(ReportInputs(panel=panel, meta=META, forecast=inputs.forecast, model="moving_average"))
    part = section(page, "ranking")
    assert 'id="type-split"' in part and "an allocation, not a forecast of each type" in text_of(part)
    assert '<td class="text">state based</td>' in part and '<td class="text">one sided</td>' in part
    assert "no type recorded" not in part  # the two types cover every incident
    assert 'id="type-split"' not in render_report(inputs)


def test_a_context_series_is_labelled_by_what_it_counts_not_as_the_demo_index():
    from forecast.report.content import covariate_label

    meta = {"context": {"ops_tempo": {"counts": "events (operations by state or coalition forces)"}}}
    assert covariate_label("ops_tempo", meta) == ("Ops tempo: events (operations by state or coalition forces)",
                                                  "events per month")
    assert covariate_label("ops_tempo") == ("Operations tempo (coalition and government operations)", "index, 0-100")
