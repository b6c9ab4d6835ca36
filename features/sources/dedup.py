"""One event, counted once: events repeated across the files of one build are dropped.

UCDP's Candidate Events overlap GED by design (Candidate covers the months GED has not
released yet, and keeps UCDP's event ids when those events enter GED), and a file passed
twice to ``--events`` repeats every event. Both would count each shared event twice. An
event is the same when two files of one dataset family give it the same id (GED and
Candidate are one family: UCDP's ids). Which copy is kept: a GED file's over a Candidate
file's (GED is the revised release), else the one of the file given first. Each file's
dropped events are counted in a note naming the file that kept them.

Files without ids of their own (a generic CSV without ``event_id``, numbered by row) are
only compared as whole files: the same file twice is dropped whole.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import pandas as pd

from features.sources.base import ReadResult

__all__ = ["drop_duplicate_events"]

#: Formats whose event ids are one id space (UCDP GED and Candidate share UCDP's ids).
_FAMILY = {"ucdp-candidate": "ucdp"}
#: Formats read first, so that their copy of a shared event is the one kept.
_PRIORITY = {"ucdp": 0, "ucdp-candidate": 1}


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def drop_duplicate_events(results: Sequence[ReadResult]) -> tuple[list[ReadResult], list[str]]:
    """Drop events that an earlier-ranked file of the same family already holds.

    Parameters
    ----------
    results
        One :class:`ReadResult` per event file, in the order the user gave them.

    Returns
    -------
    list of ReadResult, list of str
        The results in the same order, each with the events it keeps, and one note per
        file that lost events: how many, and to which file.
    """
    order = sorted(range(len(results)), key=lambda i: (_PRIORITY.get(results[i].format, 2), i))
    #: (family, event id) -> index of the file that holds it
    owner: dict[tuple[str, str], int] = {}
    kept: dict[int, ReadResult] = {}
    notes: list[str] = []
    for i in order:
        result = results[i]
        family = _FAMILY.get(result.format, result.format)
        twin = next((j for j in kept if _same_file(results[j].path, result.path)), None)
        if twin is not None:
            drop = pd.Series(True, index=result.events.index)
            by = pd.Series(twin, index=result.events.index)
        elif result.ids_from_file:
            ids = result.events["event_id"].astype(str)
            by = ids.map(lambda e: owner.get((family, e), -1))
            drop = by >= 0
            owner.update({(family, e): i for e in ids[~drop]})
        else:
            drop = pd.Series(False, index=result.events.index)
            by = pd.Series(-1, index=result.events.index)
        kept[i] = dataclasses.replace(result, events=result.events[~drop].reset_index(drop=True)) if drop.any() else result
        for j, n in by[drop].value_counts(sort=False).sort_index().items():
            other = results[int(j)]
            why = (" (the same file given twice)" if twin is not None else
                   " (UCDP GED is kept over Candidate Events)" if other.format == "ucdp" and result.format == "ucdp-candidate"
                   else "")
            notes.append(f"{result.path}: dropped {int(n):,} event(s) whose id is already in {other.path} "
                         f"({other.dataset or other.format}){why}: each event is counted once")
    return [kept[i] for i in range(len(results))], notes
