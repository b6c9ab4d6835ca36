"""Gazetteer job: draft a gazetteer for review (``forecast gazetteer init``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.atomic import refuse_overwriting_inputs
from features.gazetteer_init import GazetteerDraft, draft_gazetteer, write_draft

__all__ = ["GazetteerInit", "init_gazetteer"]


@dataclass(frozen=True)
class GazetteerInit:
    """A drafted gazetteer written to disk, with what was found and what to check."""

    draft: GazetteerDraft
    paths: list[Path]
    notes: tuple[str, ...]

    def summary(self) -> str:
        lines = [f"wrote {p}" for p in self.paths]
        lines += [f"found: {line}" for line in self.draft.found]
        lines += [f"note: {line}" for line in self.notes]
        lines += [f"check: {line}" for line in self.draft.to_check]
        return "\n".join(lines)


def init_gazetteer(*, events: str | Path, out: str | Path, fmt: str | None = None,
                   geojson: str | Path | None = None, sheet: str | None = None) -> GazetteerInit:
    """Draft a gazetteer from the admin-1 names of ``events`` (and ``geojson`` boundaries).

    The written CSV is read back with :func:`~features.gazetteer.load_gazetteer`, so the
    draft is known to load; its notes say which optional columns it leaves out.

    Raises
    ------
    features.errors.DataError
        Naming the file, row or feature and the column or property of bad input; nothing is
        written then, and no input is ever written over.
    """
    if Path(out).suffix.lower() != ".csv":
        raise DataError(f"{out}: the gazetteer must be written as .csv")
    outputs = {Path(out): "the gazetteer"}
    if geojson is not None:
        outputs[Path(out).with_suffix(".geojson")] = "the outline (written beside --out as .geojson)"
    refuse_overwriting_inputs(outputs, {"--events": events, "--geojson": geojson})
    draft = draft_gazetteer(events, format=fmt, boundaries=geojson, sheet=sheet)
    paths = write_draft(draft, out)
    return GazetteerInit(draft=draft, paths=paths, notes=load_gazetteer(paths[0]).notes)
