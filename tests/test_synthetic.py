"""Tests of the synthetic data generator (features/synthetic/) and the committed demo sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from features.gazetteer import load_gazetteer
from features.synthetic import (
    COVARIATE_COLUMNS,
    PANEL_COLUMNS,
    SAMPLE_FILES,
    TRUE_EFFECTS,
    UCDP_GED_COLUMNS,
    SyntheticConfig,
    national_components,
    simulate_events,
    simulate_panel,
    synthetic_gazetteer,
    write_sample,
)
from features.synthetic.events import allocate

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
REGENERATE = (
    'python -c "from features.synthetic import write_sample; write_sample(\'data/sample\')"'
)


@pytest.fixture(scope="module")
def gazetteer():
    return load_gazetteer()


@pytest.fixture(scope="module")
def panel():
    return simulate_panel()


@pytest.fixture(scope="module")
def events():
    return simulate_events()


@pytest.fixture(scope="module")
def regression_frame(panel):
    """Default panel joined with lagged covariates and the latent national components."""
    counts, covariates = panel
    config = SyntheticConfig()
    cov = covariates.assign(
        us_troops_per_10k_lag2=covariates["us_troops"].shift(2) / 10_000,
        ops_tempo_lag1=covariates["ops_tempo"].shift(1),
    )
    nat = national_components(config)
    frame = counts.merge(cov, on="month").merge(nat, on="month")
    borders = load_gazetteer().borders()
    syria_border = frame["unit"].map(lambda u: float("Syria" in borders[u]))
    frame["syria_lag1"] = frame.groupby("unit")["syria"].shift(1) * syria_border
    return frame.dropna().reset_index(drop=True)


def _poisson_fe(frame: pd.DataFrame, regressors: list[str], offset=None):
    units = pd.get_dummies(frame["unit"], dtype=float)
    design = pd.concat([units, frame[regressors]], axis=1)
    return sm.GLM(frame["incidents"], design, family=sm.families.Poisson(), offset=offset).fit()


# --------------------------------------------------------------------------- panel


def test_panel_has_every_unit_month_once_with_the_documented_columns(panel, gazetteer):
    counts, covariates = panel
    assert tuple(counts.columns) == PANEL_COLUMNS
    assert tuple(covariates.columns) == COVARIATE_COLUMNS
    months = pd.period_range("2004-01", "2024-12", freq="M").strftime("%Y-%m")
    assert list(covariates["month"]) == list(months)
    assert len(counts) == len(gazetteer.names) * len(months)
    assert not counts.duplicated(["unit", "month"]).any()
    assert set(counts["unit"]) == set(gazetteer.names)
    assert counts["incidents"].dtype == np.int64 and counts["deaths"].dtype == np.int64
    assert (counts["incidents"] >= 0).all() and (counts["deaths"] >= 0).all()
    assert (counts.loc[counts["incidents"] == 0, "deaths"] == 0).all()
    assert np.isfinite(counts["log_intensity"]).all()


def test_same_seed_gives_identical_frames(panel, events):
    again_counts, again_cov = simulate_panel()
    pd.testing.assert_frame_equal(again_counts, panel[0])
    pd.testing.assert_frame_equal(again_cov, panel[1])
    again_events, _ = simulate_events()
    pd.testing.assert_frame_equal(again_events, events[0])


def test_different_seeds_give_different_data(panel):
    other_counts, other_cov = simulate_panel(SyntheticConfig(seed=1))
    assert not other_counts["incidents"].equals(panel[0]["incidents"])
    assert not other_cov["us_troops"].equals(panel[1]["us_troops"])


def test_extending_end_leaves_earlier_months_unchanged(panel):
    short_counts, short_cov = simulate_panel(SyntheticConfig(end="2010-06"))
    long_counts = panel[0][panel[0]["month"] <= "2010-06"].reset_index(drop=True)
    pd.testing.assert_frame_equal(short_counts, long_counts)
    pd.testing.assert_frame_equal(short_cov, panel[1][panel[1]["month"] <= "2010-06"])


def test_national_regimes_are_visible_in_incidents(panel):
    counts, _ = panel
    national = counts.groupby("month")["incidents"].sum()
    year = national.index.str[:4].astype(int)

    def mean(first: int, last: int) -> float:
        return float(national[(year >= first) & (year <= last)].mean())

    surge, lull = mean(2006, 2007), mean(2010, 2012)
    islamic_state, late = mean(2014, 2016), mean(2019, 2024)
    assert surge > 1.5 * lull
    assert islamic_state > 1.5 * lull
    assert late < islamic_state / 3


def test_violent_governorates_dominate_and_kurdish_region_stays_quiet(panel):
    totals = panel[0].groupby("unit")["incidents"].sum()
    core = totals[["Baghdad", "Anbar", "Ninewa", "Diyala", "Salah ad Din"]].min()
    quiet = totals[["Duhok", "Erbil", "Sulaymaniyah", "Muthanna"]].max()
    assert core > 10 * quiet


def test_troop_series_follows_the_deployment_history(panel):
    cov = panel[1].set_index("month")
    assert cov.loc["2004-01":"2007-12", "us_troops"].between(110_000, 190_000).all()
    assert cov.loc["2007-06":"2007-12", "us_troops"].mean() > 155_000
    assert (cov.loc["2012-01":"2014-05", "us_troops"] == 0).all()
    assert cov.loc["2015-01":"2020-12", "us_troops"].between(1_000, 7_000).all()
    assert cov.loc["2022-01":, "us_troops"].between(1_500, 3_500).all()
    assert cov["ops_tempo"].between(0, 100).all()
    ops = cov["ops_tempo"]
    assert ops.loc["2006-01":"2007-12"].mean() > ops.loc["2011-01":"2012-12"].mean()


def test_poisson_glm_with_unit_effects_recovers_troop_sign_and_magnitude(regression_frame):
    # The plain specification the module docstring describes: unit fixed effects and the
    # lagged covariates, no knowledge of the latent national regime.
    fit = _poisson_fe(regression_frame, ["us_troops_per_10k_lag2", "ops_tempo_lag1"])
    troops = fit.params["us_troops_per_10k_lag2"]
    truth = TRUE_EFFECTS["us_troops_per_10k_lag2"]
    assert troops < 0
    assert truth / 3 >= troops >= truth * 3, f"troop effect {troops:.3f}, truth {truth}"
    assert fit.params["ops_tempo_lag1"] > 0


def test_poisson_glm_given_the_national_components_recovers_both_effects_closely(regression_frame):
    config = SyntheticConfig()
    f = regression_frame
    offset = f["regime"] + f["season"] + config.gamma_syria * f["syria_lag1"]
    fit = _poisson_fe(f, ["us_troops_per_10k_lag2", "ops_tempo_lag1"], offset=offset)
    troops, ops = fit.params["us_troops_per_10k_lag2"], fit.params["ops_tempo_lag1"]
    assert troops == pytest.approx(TRUE_EFFECTS["us_troops_per_10k_lag2"], rel=0.3)
    # ops_tempo reacts to last month's violence, so its estimate is biased upwards.
    assert TRUE_EFFECTS["ops_tempo_lag1"] / 2 < ops < TRUE_EFFECTS["ops_tempo_lag1"] * 2.5


def test_true_effects_name_their_regressor_scale_and_lag():
    assert TRUE_EFFECTS == {"us_troops_per_10k_lag2": -0.10, "ops_tempo_lag1": 0.010}
    custom = SyntheticConfig(troops_lag=3, beta_troops=-0.2, ops_lag=2)
    assert custom.true_effects() == {"us_troops_per_10k_lag3": -0.2, "ops_tempo_lag2": 0.010}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2004-1"}, r"start must be a month 'YYYY-MM', got '2004-1'"),
        ({"start": "2010-01", "end": "2009-12"}, r"end '2009-12' is before start '2010-01'"),
        ({"burn_in_months": 1}, r"burn_in_months is 1; it must be at least 2"),
        ({"ar_phi": 1.0}, r"ar_phi must lie in \(-1, 1\)"),
        ({"gamma_neighbours": 0.9}, r"gamma_neighbours \+ beta_ops \* ops_react is 1.05"),
        ({"violence_type_probs": (0.5, 0.5, 0.5)}, r"violence_type_probs must be 3"),
        ({"regime_knots": ((2010.0, 1.0), (2009.0, 0.0))}, r"regime_knots needs .* increasing"),
    ],
)
def test_config_rejects_invalid_parameters_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**kwargs)


# --------------------------------------------------------------------------- events


def test_events_use_the_ged_layout_sorted_by_date_then_id(events):
    ev, _ = events
    assert tuple(ev.columns) == UCDP_GED_COLUMNS
    assert ev["id"].is_unique and ev["id"].dtype == np.int64
    assert ev.sort_values(["date_start", "id"]).index.equals(ev.index)
    assert (ev["date_start"] == ev["date_end"]).all()
    assert ev["date_start"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    pd.to_datetime(ev["date_start"], format="%Y-%m-%d")  # every day exists
    assert (ev["year"] == ev["date_start"].str[:4].astype(int)).all()
    assert (ev["date_prec"] == 1).all()
    assert set(ev["country"]) == {"Iraq"} and set(ev["iso3"]) == {"IRQ"}
    assert set(ev["region"]) == {"Middle East"}


def test_event_deaths_are_consistent(events):
    ev, _ = events
    parts = ev[["deaths_a", "deaths_b", "deaths_civilians", "deaths_unknown"]]
    assert (parts >= 0).all().all()
    assert (parts.sum(axis=1) == ev["best"]).all()
    assert ((ev["low"] <= ev["best"]) & (ev["best"] <= ev["high"]) & (ev["low"] >= 0)).all()
    mean = ev["best"].mean()
    assert 2.0 < mean < 4.0


def test_events_conserve_incidents_and_deaths_of_every_unit_month(events, panel, gazetteer):
    ev, _ = events
    unit = ev["adm_1"].map(gazetteer.match)
    grouped = (
        ev.assign(unit=unit, month=ev["date_start"].str[:7])
        .groupby(["unit", "month"])
        .agg(incidents=("id", "size"), deaths=("best", "sum"))
    )
    counts = panel[0].set_index(["unit", "month"])[["incidents", "deaths"]]
    expected = counts[counts["incidents"] > 0]
    pd.testing.assert_frame_equal(grouped.sort_index(), expected.sort_index(), check_dtype=False)


def test_every_adm1_spelling_resolves_to_the_unit_of_the_event(events, gazetteer):
    ev, _ = events
    spellings = ev[["adm_1", "where_coordinates"]].drop_duplicates()
    capital_of = dict(zip(gazetteer.units["name"], gazetteer.units["capital"]))
    for adm_1, capital in spellings.itertuples(index=False):
        unit = gazetteer.match(adm_1)
        assert unit is not None, f"adm_1 {adm_1!r} does not resolve"
        assert capital_of[unit] == capital, f"{adm_1!r} resolved to {unit}, event at {capital}"
    # The mix exercises name normalisation: several spellings per governorate, UCDP's own
    # diacritics, Kirkuk's old name and the double space UCDP writes before "province".
    adm = set(ev["adm_1"])
    assert len(adm) > 3 * len(gazetteer.names)
    assert {"Al Anbār province", "Baghdad province"} <= adm
    assert any(a.startswith("At-Ta'mim") for a in adm)
    assert any("  province" in a for a in adm)


def test_actors_follow_the_periods_of_the_war(events):
    ev, _ = events
    assert ev["type_of_violence"].isin([1, 2, 3]).all()
    assert (ev["type_of_violence"] == 1).mean() > 0.7
    assert {2, 3} <= set(ev["type_of_violence"])
    state = ev[ev["type_of_violence"] == 1]
    assert (state["side_a"] == "Government of Iraq").all()
    assert set(state.loc[state["year"] >= 2015, "side_b"]) == {"IS"}
    early = ev[ev["year"] < 2013]
    assert "IS" not in set(early["side_a"]) | set(early["side_b"])
    early_rebels = set(state.loc[state["year"] < 2009, "side_b"])
    assert {"al-Qaida in Iraq", "Ansar al-Islam", "al-Mahdi Army"} <= early_rebels
    assert (ev.loc[ev["type_of_violence"] == 3, "side_b"] == "Civilians").all()


# --------------------------------------------------------------------------- committed sample


def test_committed_sample_equals_what_write_sample_produces(tmp_path):
    written = write_sample(tmp_path)
    assert set(written) == set(SAMPLE_FILES)
    for key, path in written.items():
        committed = SAMPLE_DIR / SAMPLE_FILES[key]
        assert committed.exists(), f"{committed} is missing; regenerate it with {REGENERATE}"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} differs from the generator's output; if the change to "
            f"features/synthetic/ is intended, regenerate it with {REGENERATE}"
        )


def test_committed_sample_is_small():
    size = sum((SAMPLE_DIR / SAMPLE_FILES[k]).stat().st_size for k in ("events", "covariates"))
    assert size < 2_000_000


def test_write_sample_leaves_no_temporary_files_and_replaces_old_ones(tmp_path):
    (tmp_path / SAMPLE_FILES["covariates"]).write_text("stale\n")
    config = SyntheticConfig(start="2014-01", end="2014-06")
    paths = write_sample(tmp_path / "out", config)
    paths_again = write_sample(tmp_path, config)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(SAMPLE_FILES.values())
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == sorted(SAMPLE_FILES.values())
    assert paths_again["covariates"].read_bytes() == paths["covariates"].read_bytes()
    covariates = pd.read_csv(paths["covariates"])
    assert list(covariates.columns) == list(COVARIATE_COLUMNS) and len(covariates) == 6
    assert "non-default configuration" in paths["readme"].read_text(encoding="utf-8")


# --------------------------------------------------------------------------- synthetic gazetteers


def test_synthetic_gazetteer_round_trips_through_load_gazetteer(tmp_path):
    frame = synthetic_gazetteer(50)
    path = tmp_path / "synthetic.csv"
    frame.to_csv(path, index=False)
    gaz = load_gazetteer(path)
    assert gaz.names == [f"Unit {k:04d}" for k in range(1, 51)]
    assert gaz.units["unit_id"].iloc[0] == "SYN-0001"
    assert gaz.countries == {"Synthetica"}
    neighbours = gaz.neighbours()
    for unit, others in neighbours.items():
        assert unit not in others
        for other in others:
            assert unit in neighbours[other], f"{unit} -> {other} is not symmetric"
    west = set(gaz.units.loc[gaz.units["tile_col"] == 0, "name"])
    assert {u for u, b in gaz.borders().items() if "Syria" in b} == west
    assert gaz.match("Unit 7 province") == "Unit 0007"
    assert gaz.match("UNIT-0042") == "Unit 0042"


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n_units=st.integers(1, 150), contiguity=st.sampled_from(["rook", "queen"]))
def test_synthetic_gazetteer_neighbours_are_symmetric_lattice_neighbours(n_units, contiguity):
    frame = synthetic_gazetteer(n_units, contiguity=contiguity)
    assert len(frame) == n_units and frame["unit_id"].is_unique
    assert not frame.duplicated(["tile_row", "tile_col"]).any()
    pos = {uid: (r, c) for uid, r, c in zip(frame["unit_id"], frame["tile_row"], frame["tile_col"])}
    # Each unit's neighbours read once (a frame look-up per pair made this test take a minute).
    neighbours = {uid: cell.split("|") for uid, cell in zip(frame["unit_id"], frame["neighbours"])}
    reach = 1 if contiguity == "rook" else 2
    for uid, cell in zip(frame["unit_id"], frame["neighbours"]):
        for other in filter(None, cell.split("|")):
            (r1, c1), (r2, c2) = pos[uid], pos[other]
            assert 0 < abs(r1 - r2) + abs(c1 - c2) <= reach and max(abs(r1 - r2), abs(c1 - c2)) == 1
            assert uid in neighbours[other]


def test_events_on_a_synthetic_gazetteer_conserve_counts_and_resolve(tmp_path):
    path = tmp_path / "grid.csv"
    synthetic_gazetteer(30, seed=3).to_csv(path, index=False)
    gaz = load_gazetteer(path)
    config = SyntheticConfig(start="2013-01", end="2015-12")
    counts, _ = simulate_panel(config, gaz)
    ev, _ = simulate_events(config, gaz)
    assert len(ev) == counts["incidents"].sum() > 0
    assert ev["best"].sum() == counts["deaths"].sum()
    assert ev["adm_1"].map(gaz.match).notna().all()
    state = ev[ev["type_of_violence"] == 1]
    assert (state["side_a"] == "Government of Synthetica").all()
    assert set(ev["country"]) == {"Synthetica"}


def test_simulate_panel_handles_thousands_of_units():
    # A smaller cousin of the 3,500-unit benchmark, to keep the test fast.
    config = SyntheticConfig(start="2014-01", end="2015-12")
    counts, _ = simulate_panel(config, synthetic_gazetteer(1_000))
    assert len(counts) == 1_000 * 24
    assert counts["incidents"].sum() > 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    totals=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    sizes=st.data(),
)
def test_allocation_of_deaths_to_events_conserves_every_total(totals, sizes):
    per_group = sizes.draw(st.lists(st.integers(1, 6), min_size=len(totals), max_size=len(totals)))
    group = np.repeat(np.arange(len(totals)), per_group)
    rng = np.random.default_rng(0)
    out = allocate(np.array(totals), group, rng.gamma(0.8, size=len(group)), rng)
    assert (out >= 0).all()
    assert np.bincount(group, weights=out, minlength=len(totals)).tolist() == totals


def test_simulate_events_names_units_without_coordinates():
    gaz = synthetic_gazetteer(4)
    gaz.loc[2, "capital_lat"] = np.nan
    with pytest.raises(ValueError, match=r"Unit 0003 has no capital_lat / capital_lon"):
        simulate_events(SyntheticConfig(start="2014-01", end="2014-03"), gaz)
