"""The data layer on the real public files in ../shared/data (read there, never copied).

Skipped with a reason when the folder is absent.
"""

from __future__ import annotations

import pandas as pd

from features.covariates import read_covariates
from features.panel import assemble_panel
from features.sources import read_events


def _compare(ours: pd.DataFrame, ref: pd.DataFrame, cols: dict[str, str]) -> pd.DataFrame:
    ref = ref.rename(columns={"governorate": "unit"}).assign(month=lambda d: pd.PeriodIndex(d["month"], freq="M"))
    return ours.merge(ref, on=["unit", "month"], how="outer", suffixes=("", "_ref"), indicator=True)


def test_ucdp_ged_builds_with_no_unmatched_names_and_conserves_totals(shared_data, gazetteer):
    path = shared_data / "ucdp_ged_iraq_hdx.csv"
    result = read_events(path, gazetteer=gazetteer)
    assert result.format == "ucdp"
    assert not result.quarantine["reason"].str.startswith("unknown governorate").any()
    # The only unusable rows are the events UCDP itself places in no governorate.
    assert (result.quarantine["column"] == "adm_1").all()
    assert result.rows == 6619
    build = assemble_panel([result], gazetteer)
    meta = build.metadata
    assert meta["vintage"] == "2016-12"
    assert build.panel["incidents"].sum() == result.rows - len(result.quarantine) - meta["events_outside_panel"]
    assert build.panel["deaths"].sum() == result.events["deaths"].sum()


def test_ucdp_panel_equals_the_reference_panel_month_by_month(shared_data, gazetteer):
    build = assemble_panel([read_events(shared_data / "ucdp_ged_iraq_hdx.csv", gazetteer=gazetteer)], gazetteer)
    ref = pd.read_csv(shared_data / "iraq_ucdp_governorate_month.csv")
    both = _compare(build.panel, ref, {})
    matched = both[both["_merge"] == "both"]
    assert (matched["incidents"] == matched["incidents_ref"]).all()
    assert (matched["deaths"] == matched["deaths_best"]).all()
    # The reference grid starts in 1989-01, before the first event with a governorate.
    only_ref = both[both["_merge"] == "right_only"]
    assert (only_ref["incidents_ref"] == 0).all()
    assert (both["_merge"] != "left_only").all()


def test_ibc_builds_with_no_unmatched_names_and_matches_the_reference_panel(shared_data, gazetteer):
    result = read_events(shared_data / "ibc_iraq_events.csv", gazetteer=gazetteer)
    assert result.format == "ibc"
    q = result.quarantine
    assert not q["reason"].str.startswith("unknown governorate").any()
    assert set(q["column"]) == {"Province", "Start.Date", "IBC.code"}
    assert q.loc[q["column"] == "Start.Date", "Start.Date"].tolist() == ["upto"]
    # IBC compiled the file on 2012-03-06; the last record here is 2010-01-30 because the
    # later months are withheld, so January 2010 is complete: say so explicitly.
    build = assemble_panel([result], gazetteer, coverage_end=pd.Timestamp("2010-01-31"))
    assert build.metadata["vintage"] == "2010-01"
    assert build.panel["incidents"].sum() == result.rows - len(q)

    # Against the reference panel, the differences are exactly the rows we quarantine and it
    # kept: repeated IBC codes, and the record whose start date is "upto" (placed there by
    # its end date).
    dups = q[q["column"].isin(["IBC.code", "Start.Date"])].copy()
    dups["unit"] = dups["Province"].map(gazetteer.match)
    date = dups["Start.Date"].where(dups["Start.Date"] != "upto", dups["End.Date"])
    dups["month"] = pd.to_datetime(date, format="%d %b %Y").dt.to_period("M")
    extra = dups.groupby(["unit", "month"]).agg(n=("row", "size"), d=("Reported.Minimum", lambda s: s.astype(int).sum()))
    ref = pd.read_csv(shared_data / "iraq_ibc_governorate_month.csv")
    both = _compare(build.panel, ref, {}).set_index(["unit", "month"])
    both = both[both["_merge"] == "both"].join(extra).fillna({"n": 0, "d": 0})
    assert (both["incidents"] + both["n"] == both["incidents_ref"]).all()
    assert (both["deaths"] + both["d"] == both["deaths_min"]).all()


def test_real_covariates_read_with_the_text_column_set_aside(shared_data, gazetteer):
    cov, notes = read_covariates(shared_data / "iraq_covariates_month.csv", gazetteer)
    assert notes == ["covariate file column 'us_troops_source' is text, not numbers: not used"]
    assert "us_troops" in cov and cov["month"].is_unique
    build = assemble_panel(
        [read_events(shared_data / "ucdp_ged_iraq_hdx.csv", gazetteer=gazetteer)], gazetteer,
        covariates=cov[["month", "us_troops", "sigacts_total"]], fill="ffill-zero",
    )
    panel = build.panel.set_index(["unit", "month"])
    assert panel["us_troops"].notna().all()
    assert panel.loc[("Anbar", pd.Period("2007-12")), "us_troops"] > 100_000
