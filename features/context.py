"""Context series per unit and month, counted from events: operations tempo, airstrikes, types.

A panel's target counts every event of its sources; a *context series* counts a selection of
events (of the target files or of other files) into a column of its own, per unit and month:
the operations of state and coalition forces (``ops_tempo``), coalition airstrikes from another
source (``airstrikes``), the events of one type of violence (``incidents_state_based``), the
civilian deaths (``deaths_civilians``). Like the target, a series is **missing** (NaN), not
zero, outside the units and months its files cover (:mod:`features.coverage`); zero means a
covered month without such an event.

Columns named ``incidents_<kind>`` or ``deaths_<kind>`` are parts of a target (the type split:
the report allocates the forecast by them, and models that use the split read them as lagged
features); any other name is a covariate that every model using covariates may take.

Which events a series counts (the filter), per source format (``docs/data.md`` has the table):

* ``event_types`` / ``sub_event_types``: the source's own words (UCDP's type of violence
  ``state-based``, ``non-state``, ``one-sided`` or ``1``/``2``/``3``; ACLED's ``Battles`` and
  ``Air/drone strike``; geocausal's ``Airstrike``, ``SOF``, ``IED``, ``SAF``, ``other``);
* ``actor``: a whole word of either side (``IS``, ``coalition``);
* ``operations``: only actions by state or coalition forces (UCDP: side A is a government;
  ACLED: the first actor is state or external forces, or an air/drone strike; geocausal:
  airstrikes and shows of force). A source that does not say who acted (IBC, GTD's
  perpetrators are never states, the generic CSV) cannot give it: that is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError
from features.sources import FORMATS, ReadResult

__all__ = ["MEASURES", "ContextSeries", "context_counts", "type_split_series"]

#: What a series adds up per unit and month.
MEASURES = {"events": "count", "deaths": "deaths", "deaths_civilians": "deaths_civilians"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ContextSeries:
    """One context column of a panel: its name, its events and their filter.

    Parameters
    ----------
    name
        Column name (lower case, digits and ``_``), e.g. ``ops_tempo``.
    events
        Its event files (:class:`features.panel.EventFile` or paths); empty: the panel's own
        target files.
    event_types, sub_event_types, actor, operations
        The filter (see the module docstring); every part given must match.
    measure
        ``events`` (a count of events), ``deaths`` or ``deaths_civilians`` (their sum).
    """

    name: str
    events: tuple = ()
    event_types: tuple[str, ...] = ()
    sub_event_types: tuple[str, ...] = ()
    actor: str | None = None
    operations: bool = False
    measure: str = "events"
    #: Set for the series of a type split, which the build makes itself.
    split_of: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in ("unit", "month", "incidents", "deaths"):
            raise DataError(f"context series {self.name!r}: a name is lower-case letters, digits and '_', starting "
                            "with a letter, and not unit, month, incidents or deaths")
        if self.measure not in MEASURES:
            raise DataError(f"context series {self.name!r}: measure {self.measure!r} is not one of "
                            f"{', '.join(MEASURES)}")

    def describe(self) -> str:
        parts = []
        if self.event_types:
            parts.append("event type " + " or ".join(self.event_types))
        if self.sub_event_types:
            parts.append("sub-event type " + " or ".join(self.sub_event_types))
        if self.actor:
            parts.append(f"actor {self.actor!r}")
        if self.operations:
            parts.append("operations by state or coalition forces")
        what = {"events": "events", "deaths": "deaths", "deaths_civilians": "civilian deaths"}[self.measure]
        return f"{what}" + (f" ({'; '.join(parts)})" if parts else " (all)")

    def select(self, result: ReadResult) -> pd.DataFrame:
        """The events of one read file that this series counts."""
        events = result.events
        fmt = FORMATS.get(result.format)
        aliases = fmt.event_type_aliases if fmt is not None else {}
        keep = pd.Series(True, index=events.index)
        if self.event_types:
            wanted = {aliases.get(t.strip().lower(), t).strip().casefold() for t in self.event_types}
            keep &= events["event_type"].str.casefold().isin(wanted)
        if self.sub_event_types:
            keep &= events["sub_event_type"].str.casefold().isin({t.strip().casefold() for t in self.sub_event_types})
        if self.actor:
            pattern = r"(?<!\w)" + re.escape(self.actor.strip()) + r"(?!\w)"
            keep &= events["actors"].str.contains(pattern, case=False, regex=True)
        if self.operations:
            if events["operation"].isna().all() and len(events):
                raise DataError(f"context series {self.name!r}: {result.path} ({result.dataset or result.format}) does "
                                "not say who acted, so it cannot give operations by state or coalition forces")
            keep &= events["operation"].fillna(False).astype(bool)
        if self.measure == "deaths" and not result.has_deaths:
            raise DataError(f"context series {self.name!r}: {result.path} has no death counts")
        if self.measure == "deaths_civilians" and events["deaths_civilians"].isna().all() and len(events):
            raise DataError(f"context series {self.name!r}: {result.path} ({result.dataset or result.format}) does "
                            "not count civilian deaths")
        return events[keep]


def context_counts(series: ContextSeries, results: Sequence[ReadResult], units: Sequence[str],
                   months: pd.PeriodIndex, covered: np.ndarray) -> np.ndarray:
    """(n_units, n_months) float: the series per unit and month, NaN where ``covered`` is False."""
    chosen = pd.concat([series.select(r) for r in results], ignore_index=True)
    column = MEASURES[series.measure]
    month = chosen["date"].dt.to_period("M")
    sums = chosen.assign(month=month).groupby(["unit", "month"], observed=True)[column].sum(min_count=1)
    grid = pd.MultiIndex.from_product([list(units), months], names=["unit", "month"])
    values = sums.reindex(grid).to_numpy(dtype=float).reshape(len(units), len(months))
    values = np.where(np.isnan(values), 0.0, values)
    return np.where(covered, values, np.nan)


def type_split_series(results: Sequence[ReadResult], target: str = "incidents") -> list[ContextSeries]:
    """One series per event type of the files (``incidents_state_based``, ``incidents_battles``, ...)."""
    types = sorted({t for r in results for t in r.events["event_type"].unique() if str(t).strip()})
    out = []
    for event_type in types:
        slug = re.sub(r"[^a-z0-9]+", "_", str(event_type).casefold()).strip("_")
        if slug:
            out.append(ContextSeries(f"{target}_{slug}", event_types=(str(event_type),),
                                     measure="events" if target == "incidents" else "deaths", split_of=target))
    return out


def context_files(series: ContextSeries, default: Sequence) -> list[Path]:
    return [Path(getattr(e, "path", e)) for e in (series.events or default)]
