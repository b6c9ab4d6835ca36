"""Events repeated across the files of one build are counted once (features/sources/dedup.py): UCDP
Candidate events that GED already holds, and a file given twice, with a note naming both files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from features.panel import assemble_panel
from features.sources import read_events
from features.sources.dedup import drop_duplicate_events
from forecast.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
GED = FIXTURES / "ucdp_ged_hdx.csv"
GENERIC = FIXTURES / "generic_events.csv"


def candidate_copy(tmp_path: Path, rows: slice) -> Path:
    """Some of GED's rows again as a UCDP Candidate release (same ids, code_status column)."""
    frame = pd.read_csv(GED, dtype=str, keep_default_na=False)
    part = pd.concat([frame.iloc[:1], frame.iloc[1:].iloc[rows]]).assign(code_status="Clear")
    path = tmp_path / "GEDEvent_v25_0_10.csv"
    part.to_csv(path, index=False)
    return path


def totals(results, gazetteer) -> dict:
    return assemble_panel(results, gazetteer, keep_incomplete=True).metadata["totals"]


def test_candidate_events_that_ged_holds_are_counted_once_and_ged_wins(tmp_path, gazetteer):
    ged = read_events(GED, gazetteer=gazetteer)
    candidate = read_events(candidate_copy(tmp_path, slice(0, 4)), gazetteer=gazetteer)
    assert candidate.dataset == "UCDP Candidate Events" and len(candidate.events) == 4
    alone = totals([ged], gazetteer)
    for order in ([ged, candidate], [candidate, ged]):
        kept, notes = drop_duplicate_events(order)
        assert [len(r.events) for r in kept] == ([len(ged.events), 0] if order[0] is ged else [0, len(ged.events)])
        assert notes == [f"{candidate.path}: dropped 4 event(s) whose id is already in {GED} (UCDP GED) (UCDP GED is "
                         "kept over Candidate Events): each event is counted once"]
        build = assemble_panel(order, gazetteer, keep_incomplete=True)
        assert build.metadata["totals"] == alone
        assert notes[0] in build.notes


def test_the_same_file_twice_is_counted_once(gazetteer):
    once = totals([read_events(GED, gazetteer=gazetteer)], gazetteer)
    twice = [read_events(GED, gazetteer=gazetteer), read_events(GED, gazetteer=gazetteer)]
    kept, notes = drop_duplicate_events(twice)
    assert len(kept[1].events) == 0 and "(the same file given twice)" in notes[0]
    assert totals(twice, gazetteer) == once
    # A file without ids of its own (row numbers) is compared as a whole file.
    generic = [read_events(GENERIC, gazetteer=gazetteer, format="generic") for _ in range(2)]
    assert totals(generic, gazetteer) == totals(generic[:1], gazetteer)


def test_different_files_without_ids_are_not_taken_for_duplicates(tmp_path, gazetteer):
    other = tmp_path / "other.csv"
    other.write_text(GENERIC.read_text(encoding="utf-8"), encoding="utf-8")
    results = [read_events(p, gazetteer=gazetteer, format="generic") for p in (GENERIC, other)]
    assert not any(r.ids_from_file for r in results)  # no event_id column: rows are numbered
    kept, notes = drop_duplicate_events(results)
    assert notes == [] and [len(r.events) for r in kept] == [len(r.events) for r in results]


def test_data_build_of_one_file_twice_prints_the_note(tmp_path):
    out = tmp_path / "panel.csv"
    result = CliRunner().invoke(main, ["data", "build", "--events", str(GED), "--events", str(GED), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "event(s) whose id is already in" in result.output and "(the same file given twice)" in result.output
    alone = CliRunner().invoke(main, ["data", "build", "--events", str(GED), "--out", str(tmp_path / "one.csv")])
    assert alone.output.split("\n")[2] == result.output.split("\n")[2]  # the totals line
