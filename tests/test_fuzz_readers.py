"""Property-based tests of the readers beyond the event files: the panel, the covariates, the
gazetteer, and the experiment, scenario and refresh TOML files. Whatever the content, a reader
returns a valid result or raises one of the project's user errors
(:data:`forecast.errors.USER_ERRORS`): never a traceback of another type. Deterministic
(``derandomize``) and short (100 examples each)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.covariates import COVARIATE_BOUND, read_covariates
from features.gazetteer import load_gazetteer
from features.panel_files import read_panel
from features.sources.base import MAX_COUNT
from forecast.errors import USER_ERRORS
from forecast.experiment import load_experiment
from forecast.refresh import load_config
from forecast.scenario.spec import load_scenario

ROOT = Path(__file__).resolve().parent.parent
GAZ = load_gazetteer()
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

junk = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", " ", "NA", "-1", "1.5", "1e308", "1e309", "-1e13", "nan", "inf", "-inf", "0x10", "1,000",
                     "2024-13", "2024-02-30", "0001-01", "9999-12", "\x00", "1\x002", "\ufeff", "\u202e", "١٢", "\"",
                     "Baghdad", "Ninewa", "Atlantis", "9" * 30]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


def write(data: bytes, suffix: str = ".csv") -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / f"file{suffix}"
    path.write_bytes(data)
    return path


def mutated_table(draw, header: list[str], rows: list[list[str]]) -> bytes:
    """The table with some cells, header names or whole lines replaced, then encoded in one of several ways."""
    header, rows = list(header), [list(r) for r in rows]
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(rows)))
        j = draw(st.integers(0, len(header) - 1))
        if i == len(rows):
            header[j] = draw(st.one_of(junk, st.sampled_from(header)))
        else:
            rows[i][j] = draw(junk)
    if draw(st.booleans()):
        rows = rows[: draw(st.integers(0, len(rows)))]
    text = "\n".join(",".join(f'"{c}"' if "," in c or '"' in c else c for c in r) for r in [header, *rows]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return data


PANEL_HEADER = ["unit", "month", "incidents", "deaths", "us_troops"]
PANEL_ROWS = [[u, m, "1", "0", "1000"] for u in GAZ.names for m in ("2020-01", "2020-02")]


@st.composite
def tables(draw, header: list[str], rows: list[list[str]]) -> bytes:
    return mutated_table(draw, header, rows)


@FUZZ
@given(tables(PANEL_HEADER, PANEL_ROWS))
def test_the_panel_reader_returns_a_valid_panel_or_a_user_error(data):
    path = write(data)
    try:
        panel, _ = read_panel(path, GAZ)
    except USER_ERRORS:
        return
    for col in ("incidents", "deaths"):
        assert panel[col].dtype == "int64" and (panel[col] >= 0).all() and (panel[col] <= MAX_COUNT).all()
    if "us_troops" in panel and pd.api.types.is_numeric_dtype(panel["us_troops"]):
        values = panel["us_troops"].dropna().to_numpy(dtype=float)
        assert np.isfinite(values).all() and (np.abs(values) <= COVARIATE_BOUND).all()
    assert not any(str(c).endswith(".1") for c in panel.columns)


COV_HEADER = ["month", "unit", "us_troops", "ops_tempo"]
COV_ROWS = [[m, u, "1000", "0.5"] for u in GAZ.names[:3] for m in ("2020-01", "2020-02", "2020-03")]


@FUZZ
@given(tables(COV_HEADER, COV_ROWS))
def test_the_covariates_reader_returns_finite_values_or_a_user_error(data):
    path = write(data)
    try:
        frame, _ = read_covariates(path, GAZ)
    except USER_ERRORS:
        return
    values = frame.drop(columns=[c for c in ("month", "unit") if c in frame]).to_numpy(dtype=float)
    assert np.isfinite(values[~np.isnan(values)]).all() and (np.abs(values[~np.isnan(values)]) <= COVARIATE_BOUND).all()


REFERENCE = (ROOT / "data" / "reference" / "iraq_governorates.csv").read_text(encoding="utf-8").splitlines()
GAZ_HEADER = REFERENCE[0].split(",")
GAZ_ROWS = pd.read_csv(ROOT / "data" / "reference" / "iraq_governorates.csv", dtype=str,
                       keep_default_na=False).to_numpy().tolist()


@FUZZ
@given(tables(GAZ_HEADER, GAZ_ROWS[:6]))
def test_the_gazetteer_reader_returns_units_or_a_user_error(data):
    path = write(data)
    try:
        gazetteer = load_gazetteer(path)
    except USER_ERRORS:
        return
    assert len(gazetteer.names) >= 1 and len(set(gazetteer.names)) == len(gazetteer.names)


toml_values = st.sampled_from([
    '"x"', '""', "-1", "0", "1", "3.5", "1e400", "inf", "nan", "-inf", "[]", "{}", '[1, "a"]', "true", "1979-05-27",
    '"2024-13"', '"2024-01"', '"+1"', '"zero"', '"ensemble"', "99999999999999999999", '"../no/such/file.csv"',
    '{ window = "x" }', '{ n_jobs = "x" }', '["zero", "nope"]', '"\\u0000"', "[[1]]", "'unterminated", "= =",
])


def mutated_toml(draw, text: str) -> str:
    """The file with some ``key = value`` lines given another value, removed, or joined by an unknown key."""
    lines = text.splitlines()
    assigned = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["value", "value", "drop", "unknown", "table"]))
        i = draw(st.sampled_from(assigned)) if assigned else 0
        if action == "value" and assigned:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {draw(toml_values)}"
        elif action == "drop" and assigned:
            lines[i] = ""
        elif action == "unknown":
            lines.insert(i, f"{draw(st.sampled_from(['horizonn', 'windw', 'x', 'models']))} = {draw(toml_values)}")
        else:
            lines.insert(i, draw(st.sampled_from(["[data]", "[[models]]", "[nosuch]", "[[change]]", "[model]"])))
    return "\n".join(lines) + "\n"


@st.composite
def toml_case(draw, text: str) -> str:
    return mutated_toml(draw, text)


EXPERIMENT = (ROOT / "experiments" / "benchmarks.toml").read_text(encoding="utf-8").replace(
    '"../data/', f'"{ROOT / "data"}/')
SCENARIO = (ROOT / "experiments" / "scenarios" / "full_withdrawal.toml").read_text(encoding="utf-8")
REFRESH = (f'[data]\nevents = "{ROOT / "data" / "sample" / "ucdp_ged_demo.csv"}"\nformat = "ucdp"\n'
           'coverage_end = "2024-12"\nend = "2024-10"\n[model]\nname = "m"\nhorizon = 6\nfallback = "zero"\n'
           '[outputs]\ndir = "out"\nbackups = 3\n[tracking]\nuri = "sqlite:///mlflow.db"\nretries = 2\n')


@FUZZ
@given(toml_case(EXPERIMENT))
def test_the_experiment_reader_returns_a_config_or_a_user_error(text):
    try:
        load_experiment(write(text.encode("utf-8"), ".toml"))
    except USER_ERRORS:
        pass


@FUZZ
@given(toml_case(SCENARIO))
def test_the_scenario_reader_returns_a_scenario_or_a_user_error(text):
    try:
        load_scenario(write(text.encode("utf-8"), ".toml"), GAZ)
    except USER_ERRORS:
        pass


@FUZZ
@given(toml_case(REFRESH))
def test_the_refresh_reader_returns_a_config_or_a_user_error(text):
    try:
        load_config(write(text.encode("utf-8"), ".toml"))
    except USER_ERRORS:
        pass


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["experiment", "scenario", "refresh"]))
def test_toml_readers_refuse_arbitrary_bytes_with_a_user_error(data, which):
    path = write(data, ".toml")
    try:
        {"experiment": load_experiment, "scenario": lambda p: load_scenario(p, GAZ), "refresh": load_config}[which](path)
    except USER_ERRORS:
        pass
