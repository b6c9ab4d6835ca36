"""Which units and months a set of event files covers: the rest of a panel is missing, not zero.

A month with no event in a covered unit is a zero; a month or unit that no file covers is
*missing*. The two differ for every panel that mixes sources: a two-country panel (Iraq from
one file, Syria from another, over different years), a context series whose source was
collected in two periods (the geocausal airstrikes: 2006, then 2007-08), a source without
death tolls.

The rule, per country (the gazetteer's ``country`` of the units a file's events fall in; one
group when the gazetteer names no countries):

* the files covering a country are those with at least one event in it;
* its months run from the earliest of their first months (the month of the first event, or
  ``start``) to the last month *every* one of them covers completely (the earliest of their
  last event dates, or ``coverage_end`` when the provider states it; a trailing month covered
  only partly is left out unless ``keep_incomplete``), as a month's counts would otherwise mix
  a full source with a half one;
* a file gathered in separate collections (``ReadResult.parts``) covers only the months that
  one of its collections covers completely, so the gap between them is missing;
* a country no file has an event in is missing entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import DataError
from features.gazetteer import Gazetteer
from features.sources import ReadResult

__all__ = ["CountryCoverage", "country_coverage", "covered_mask", "last_complete_month", "unit_countries"]


def last_complete_month(coverage_end: pd.Timestamp) -> pd.Period:
    """The last month whose final day is on or before ``coverage_end``."""
    month = coverage_end.to_period("M")
    if coverage_end.normalize() < month.end_time.normalize():
        month -= 1
    return month


@dataclass(frozen=True)
class CountryCoverage:
    """The months the files cover for the units of one country."""

    country: str
    first: pd.Period
    last: pd.Period
    #: The last month every file covers completely (the data vintage of the country's units).
    vintage: pd.Period
    coverage_end: pd.Timestamp
    #: Months between ``first`` and ``last`` that no collection covers (missing).
    gaps: tuple[pd.Period, ...]
    #: Trailing months the files cover only partly, and the month of the last event.
    incomplete: tuple[str, ...]
    last_event_month: pd.Period
    sources: tuple[str, ...]

    def months(self) -> pd.PeriodIndex:
        every = pd.period_range(self.first, self.last, freq="M")
        return every[~every.isin(list(self.gaps))] if self.gaps else every

    def to_json(self) -> dict:
        return {"first_month": str(self.first), "last_month": str(self.last), "vintage": str(self.vintage),
                "coverage_end": str(self.coverage_end.date()), "gaps": _runs(self.gaps),
                "sources": list(self.sources)}


def unit_countries(gazetteer: Gazetteer) -> dict[str, str]:
    """Unit name -> its country (``""`` for every unit of a gazetteer that names none)."""
    if not gazetteer.countries:
        return {name: "" for name in gazetteer.names}
    return dict(zip(gazetteer.units["name"], gazetteer.units["country"].str.strip()))


def country_coverage(results: Sequence[ReadResult], gazetteer: Gazetteer, *, start: pd.Period | None = None,
                     end: pd.Period | None = None, coverage_end: pd.Timestamp | None = None,
                     keep_incomplete: bool = False) -> dict[str, CountryCoverage]:
    """The coverage of each country that some file has an event in (see the module docstring)."""
    country_of = unit_countries(gazetteer)
    by_country: dict[str, list[ReadResult]] = {}
    for r in results:
        for country in sorted({country_of.get(u, "") for u in r.events["unit"].unique()}):
            by_country.setdefault(country, []).append(r)
    out = {}
    for country, files in by_country.items():
        units = {u for u, c in country_of.items() if c == country}
        events = [r.events.loc[r.events["unit"].isin(units), "date"] for r in files]
        dates = pd.concat(events)
        # A file of collections covers up to its last collection's end; others up to their last event.
        ends = [max(b for _, b in r.spans) if r.parts and r.spans else r.last_date for r in files]
        ends = [e for e in ends if e is not None]
        stated = pd.Timestamp(coverage_end) if coverage_end is not None else min(ends)
        vintage = last_complete_month(stated)
        last_event_month = dates.max().to_period("M")
        first = start or dates.min().to_period("M")
        last = end or (last_event_month if keep_incomplete else vintage)
        if not keep_incomplete and last > vintage:
            last = vintage
        if last < first:
            raise DataError(f"no complete month{_of(country, by_country)}: events start {first} but the sources only "
                            f"cover up to {stated.date()}")
        incomplete = tuple(str(m) for m in pd.period_range(vintage + 1, last_event_month, freq="M"))
        every = pd.period_range(first, last, freq="M")
        gaps = set()
        for r in files:
            if r.parts:
                gaps |= set(every[~_complete_months(r.spans, every)])
        if len(gaps) == len(every):
            raise DataError(f"no month{_of(country, by_country)} is covered completely by the collections of "
                            f"{', '.join(r.path for r in files if r.parts)} (they run "
                            + "; ".join(f"{a.date()} .. {b.date()}" for r in files for a, b in r.spans) + ")")
        out[country] = CountryCoverage(country, first, last, vintage, stated, tuple(sorted(gaps)), incomplete,
                                       last_event_month, tuple(r.path for r in files))
    return out


def covered_mask(coverage: dict[str, CountryCoverage], units: Sequence[str], months: pd.PeriodIndex,
                 country_of: dict[str, str]) -> np.ndarray:
    """(n_units, n_months) bool: the unit-months some file covers."""
    mask = np.zeros((len(units), len(months)), dtype=bool)
    columns = {country: months.isin(c.months()) for country, c in coverage.items()}
    for i, unit in enumerate(units):
        found = columns.get(country_of.get(unit, ""))
        if found is not None:
            mask[i] = found
    return mask


def _complete_months(spans, months: pd.PeriodIndex) -> np.ndarray:
    """Months that lie wholly inside one of the collections' ``(first, last)`` dates."""
    starts = months.start_time.normalize()
    ends = months.end_time.normalize()
    inside = np.zeros(len(months), dtype=bool)
    for first, last in spans:
        inside |= (starts >= first.normalize()) & (ends <= last.normalize())
    return inside


def _runs(months: Sequence[pd.Period]) -> list[list[str]]:
    """Consecutive months as ``[first, last]`` pairs."""
    runs: list[list[pd.Period]] = []
    for m in sorted(months):
        if runs and m == runs[-1][1] + 1:
            runs[-1][1] = m
        else:
            runs.append([m, m])
    return [[str(a), str(b)] for a, b in runs]


def _of(country: str, by_country: dict) -> str:
    return f" for {country}" if country and len(by_country) > 1 else ""
