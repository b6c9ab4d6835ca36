"""Property-based tests: malformed files thrown at every reader.

Whatever the content, a reader either rejects the file as a whole with a DataError, or
accounts for every row: used, quarantined with a reason, or filtered out. It never raises
anything else and never lets an invalid value into the event table.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.sources import FORMATS, EventFilters, read_events

GAZ = load_gazetteer()
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

junk = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "NA", "-1", "-0.5", "1e309", "nan", "inf", "3.0", "2,5", "0", "\"", "'", "\u202e", "١٢", "99999999999999999999999"]),
    st.integers(-10**6, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
spellings = st.sampled_from(
    GAZ.names + ["Nīnawá province", "Al Başrah  province", "Thi-Qar", "Dihok", "البصرة", "Atlantis", "Ninawah"]
)
iso_dates = st.dates(min_value=pd.Timestamp("1989-01-01").date(), max_value=pd.Timestamp("2030-12-31").date()).map(
    lambda d: d.isoformat()
)
counts = st.integers(0, 500).map(str)

GOOD = {
    "ucdp": {
        "id": st.integers(1, 10**6).map(str),
        "date_start": iso_dates,
        "adm_1": spellings,
        "best": counts,
        "type_of_violence": st.sampled_from(["1", "2", "3"]),
        "country": st.sampled_from(["Iraq", "Syria"]),
        "side_a": st.sampled_from(["Government of Iraq", "IS"]),
        "side_b": st.sampled_from(["IS", "Civilians"]),
    },
    "acled": {
        "event_id_cnty": st.integers(1, 10**6).map(lambda i: f"IRQ{i}"),
        "event_date": st.one_of(iso_dates, iso_dates.map(lambda d: pd.Timestamp(d).strftime("%d %B %Y"))),
        "event_type": st.sampled_from(["Battles", "Explosions/Remote violence", "Protests"]),
        "country": st.just("Iraq"),
        "admin1": spellings,
        "fatalities": counts,
    },
    "gtd": {
        "eventid": st.integers(10**11, 10**12).map(str),
        "iyear": st.integers(1970, 2030).map(str),
        "imonth": st.integers(0, 13).map(str),
        "iday": st.integers(0, 32).map(str),
        "country_txt": st.just("Iraq"),
        "provstate": spellings,
        "nkill": st.one_of(counts, st.just("")),
        "gname": st.sampled_from(["Unknown", "Islamic State of Iraq and the Levant (ISIL)"]),
    },
    "ibc": {
        "IBC.code": st.integers(1, 10**5).map(lambda i: f"k{i}"),
        "Start.Date": iso_dates.map(lambda d: pd.Timestamp(d).strftime("%-d %b %Y")),
        "End.Date": iso_dates.map(lambda d: pd.Timestamp(d).strftime("%-d %b %Y")),
        "Reported.Minimum": counts,
        "Reported.Maximum": counts,
        "Province": spellings,
    },
    "generic": {
        "date": iso_dates,
        "admin1": spellings,
        "count": counts,
        "deaths": counts,
    },
    "acled-hdx": {
        "Admin1": spellings,
        "Month": st.sampled_from(["January", "February", "Mar", "December"]),
        "Year": st.integers(1997, 2030).map(str),
        "Events": counts,
        "Fatalities": counts,
    },
    "geocausal": {
        "event_id": st.integers(1, 10**6).map(lambda i: f"gc_{i:06d}"),
        "date": iso_dates,
        "category": st.sampled_from(["airstrike_or_sof", "insurgent_attack"]),
        "type": st.sampled_from(["Airstrike", "SOF", "IED", "SAF", "other"]),
        "governorate": spellings,
    },
}
# UCDP Candidate Events: GED's columns plus UCDP's review flag.
GOOD["ucdp-candidate"] = {**GOOD["ucdp"], "code_status": st.sampled_from(["Clear", "Check dyad", ""])}
assert set(GOOD) == set(FORMATS)


@st.composite
def tables(draw, fmt: str):
    columns = list(GOOD[fmt])
    n = draw(st.integers(0, 25))
    rows = []
    for _ in range(n):
        # Most cells valid, some junk: a realistic dirty export.
        rows.append([draw(st.one_of(GOOD[fmt][c], GOOD[fmt][c], GOOD[fmt][c], junk)) for c in columns])
    return columns, rows


def _write(columns, rows) -> Path:
    tmp = Path(tempfile.mkdtemp()) / "events.csv"
    with open(tmp, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return tmp


def _check_accounted(result, n_rows: int) -> None:
    assert len(result.events) + len(result.quarantine) + result.filtered_out == n_rows
    ev = result.events
    assert ev["unit"].isin(GAZ.names).all()
    assert ev["date"].notna().all()
    assert (ev["count"] >= 0).all() and (ev["deaths"] >= 0).all()
    assert ev["count"].dtype.kind == "i" and ev["deaths"].dtype.kind == "i"
    assert not ev["event_id"].duplicated().any()
    if len(result.quarantine):
        assert (result.quarantine["reason"].str.len() > 0).all()
        assert result.quarantine["row"].between(2, n_rows + 1).all()


def _read(path: Path, fmt: str | None, filters: EventFilters | None = None):
    try:
        return read_events(path, format=fmt, gazetteer=GAZ, filters=filters)
    except DataError:
        return None
    except UnicodeEncodeError:  # pragma: no cover - lone surrogates cannot be written at all
        return None


def _fuzz_format(fmt: str):
    @FUZZ
    @given(table=tables(fmt), forced=st.booleans())
    def test(table, forced):
        columns, rows = table
        try:
            path = _write(columns, rows)
        except UnicodeEncodeError:
            return
        result = _read(path, fmt if forced else None)
        if result is not None:
            _check_accounted(result, len(rows))

    test.__name__ = f"test_{fmt}_reader_accounts_for_every_row_of_a_dirty_file"
    return test


test_ucdp_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("ucdp")
test_acled_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("acled")
test_gtd_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("gtd")
test_ibc_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("ibc")
test_generic_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("generic")
test_acled_hdx_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("acled-hdx")
test_ucdp_candidate_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("ucdp-candidate")
test_geocausal_reader_accounts_for_every_row_of_a_dirty_file = _fuzz_format("geocausal")


@FUZZ
@given(data=st.binary(max_size=400), fmt=st.sampled_from([None, *FORMATS]))
def test_arbitrary_bytes_are_rejected_cleanly_or_read(data, fmt):
    path = Path(tempfile.mkdtemp()) / "events.csv"
    path.write_bytes(data)
    result = _read(path, fmt)
    if result is not None:
        assert len(result.events) + len(result.quarantine) + result.filtered_out == result.rows


FIXTURE_FILES = {
    "ucdp": "ucdp_ged_hdx.csv", "acled": "acled_export.csv", "gtd": "gtd_export.csv",
    "ibc": "ibc_incidents.csv", "generic": "generic_events.csv",
    "acled-hdx": "acled_hdx_admin1_monthly.csv", "ucdp-candidate": "ucdp_candidate/GEDEvent_v25_0_10.csv",
    "geocausal": "geocausal_events.csv",
}


@FUZZ
@given(
    fmt=st.sampled_from(sorted(FIXTURE_FILES)),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(max_size=3)), max_size=6),
)
def test_corrupted_real_layout_files_are_rejected_cleanly_or_accounted_for(fmt, edits):
    data = bytearray((Path(__file__).parent / "fixtures" / FIXTURE_FILES[fmt]).read_bytes())
    for where, cut, insert in edits:
        at = int(where * len(data))
        data[at : at + cut] = insert
    path = Path(tempfile.mkdtemp()) / "events.csv"
    path.write_bytes(bytes(data))
    result = _read(path, fmt)
    if result is not None:
        assert len(result.events) + len(result.quarantine) + result.filtered_out == result.rows
        assert result.events["unit"].isin(GAZ.names).all()
