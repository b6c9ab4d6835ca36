"""Every source's own admin-1 spellings resolve to the canonical Iraq governorate."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.gazetteer import load_gazetteer

SPELLINGS = Path(__file__).parent / "fixtures" / "gazetteer_spellings"
SOURCES = ("acled", "ucdp_ged", "gtd", "ibc", "ocha_cod_ab", "geoboundaries", "gadm")


def _spellings(source: str) -> list[tuple[str, str]]:
    pairs = []
    for line in (SPELLINGS / f"{source}.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spelling, canonical = (part.strip(" ") for part in line.rsplit("=", 1))
        pairs.append((spelling, canonical))
    return pairs


CASES = [(source, *pair) for source in SOURCES for pair in _spellings(source)]


@pytest.fixture(scope="module")
def iraq():
    return load_gazetteer()


@pytest.mark.parametrize(("source", "spelling", "canonical"), CASES)
def test_source_spelling_resolves_to_its_canonical_governorate(iraq, source, spelling, canonical):
    assert iraq.match(spelling) == canonical, f"{source}: {spelling!r}"


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_list_names_all_18_governorates(iraq, source):
    assert {canonical for _, canonical in _spellings(source)} == set(iraq.names)
