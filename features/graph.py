"""The unit graph: which units neighbour which, carried by the panel as data.

A model that uses neighbours (spillover: the neighbours' lagged activity) reads them from the
history it is given, never from a file: the panel frame carries its :class:`UnitGraph` in
``frame.attrs["unit_graph"]`` (pandas keeps ``attrs`` through the selections, renames and
sorts that cut a history from a panel), and :func:`unit_graph` reads it back. The graph comes
from the gazetteer the panel was built with and is written into the panel's metadata, so a
panel file keeps its neighbours wherever it is read, and every path (predict, backtest,
experiment, scenario, refresh, report) gives a model the same ones.

A two-country gazetteer (Iraq and Syria) lists neighbours across the border; those are the
``cross_border`` neighbours, the route by which fighters and violence cross.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from types import MappingProxyType

import pandas as pd

from features.errors import DataError

__all__ = ["GRAPH_KEY", "UnitGraph", "graph_from_metadata", "unit_graph", "with_graph"]

#: The key of the graph in a frame's ``attrs``.
GRAPH_KEY = "unit_graph"


class UnitGraph(dict):
    """Neighbours of each unit, and the country of each unit (``""`` when not known).

    A ``dict`` of plain JSON (``{"neighbours": {unit: [...]}, "country": {unit: ...}}``), so
    that pandas can write a frame that carries it (``to_parquet`` stores ``attrs`` as JSON);
    read it through the properties. Never changed after it is made: pandas copies a frame's
    ``attrs`` at nearly every operation, so the graph returns itself from ``copy.deepcopy``.
    """

    def __init__(self, neighbours: Mapping[str, Iterable[str]], country: Mapping[str, str] | None = None) -> None:
        units = [str(u) for u in neighbours]
        known = set(units)
        cleaned: dict[str, list[str]] = {}
        for unit, found in neighbours.items():
            # Only units of the graph, never a unit as its own neighbour, each once, in order.
            unit = str(unit)
            cleaned[unit] = list(dict.fromkeys(str(n) for n in found if str(n) in known and str(n) != unit))
        for unit, found in cleaned.items():
            lonely = [n for n in found if unit not in cleaned[n]]
            if lonely:
                raise DataError(f"unit graph: {unit!r} lists {lonely[0]!r} as a neighbour but not the other way "
                                "round; neighbours share a border, so each must list the other")
        country = country or {}
        super().__init__(neighbours=cleaned, country={u: str(country.get(u, "") or "") for u in cleaned})

    @classmethod
    def from_gazetteer(cls, gazetteer) -> "UnitGraph":
        """The graph of a :class:`features.gazetteer.Gazetteer` (its ``neighbours`` and ``country`` columns)."""
        return cls(gazetteer.neighbours(), dict(zip(gazetteer.units["name"], gazetteer.units["country"])))

    @cached_property
    def neighbours(self) -> Mapping[str, tuple[str, ...]]:
        """Unit -> its neighbouring units (across national borders too)."""
        return MappingProxyType({u: tuple(ns) for u, ns in self["neighbours"].items()})

    @property
    def country(self) -> Mapping[str, str]:
        return self["country"]

    @property
    def units(self) -> list[str]:
        return list(self["neighbours"])

    @cached_property
    def cross_border(self) -> Mapping[str, tuple[str, ...]]:
        """Each unit's neighbours in another country (empty where countries are not known)."""
        c = self.country
        return MappingProxyType({u: tuple(n for n in ns if c[u] and c[n] and c[n] != c[u])
                                 for u, ns in self.neighbours.items()})

    def restrict(self, units: Iterable[str]) -> "UnitGraph":
        """The graph on ``units`` only (a panel of some of the gazetteer's units)."""
        keep = [u for u in dict.fromkeys(str(u) for u in units) if u in self["neighbours"]]
        if len(keep) == len(self["neighbours"]):
            return self
        keep_set = set(keep)
        return UnitGraph({u: [n for n in self["neighbours"][u] if n in keep_set] for u in keep},
                         {u: self.country[u] for u in keep})

    def to_json(self) -> dict:
        """The graph as panel metadata: ``{"neighbours": {unit: [...]}, "country": {unit: ...}}``."""
        return {"neighbours": {u: list(ns) for u, ns in self["neighbours"].items()}, "country": dict(self.country)}

    @cached_property
    def _digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def digest(self) -> str:
        """A digest of the graph, for fingerprints of fits that depend on it."""
        return self._digest

    def describe(self) -> str:
        edges = sum(len(ns) for ns in self.neighbours.values()) // 2
        cross = sum(len(ns) for ns in self.cross_border.values()) // 2
        isolated = sum(1 for ns in self.neighbours.values() if not ns)
        text = f"{len(self.neighbours)} units, {edges} borders ({cross} across a national border)"
        return text + (f", {isolated} unit(s) with no neighbour" if isolated else "")

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, dict) and self.to_json() == UnitGraph._plain(other))

    __hash__ = None  # a dict

    @staticmethod
    def _plain(other: dict) -> dict:
        return {"neighbours": {u: list(ns) for u, ns in (other.get("neighbours") or {}).items()},
                "country": dict(other.get("country") or {})}

    def __deepcopy__(self, memo) -> "UnitGraph":
        return self

    def __copy__(self) -> "UnitGraph":
        return self

    def __reduce__(self):
        return (_from_json, (self.to_json(),))

    def _refuse(self, *args, **kwargs):
        raise TypeError("a UnitGraph is not changed after it is made; build a new one")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse


def _from_json(data: dict) -> UnitGraph:
    return UnitGraph({u: tuple(ns) for u, ns in data["neighbours"].items()}, data.get("country") or {})


def graph_from_metadata(metadata: dict, source: str = "panel metadata") -> UnitGraph | None:
    """The graph a panel's metadata records (``unit_graph``), or None when it records none."""
    data = metadata.get(GRAPH_KEY) if isinstance(metadata, dict) else None
    if data is None:
        return None
    neighbours = data.get("neighbours") if isinstance(data, dict) else None
    if not isinstance(neighbours, dict) or not all(isinstance(v, list) for v in neighbours.values()):
        raise DataError(f"{source}: 'unit_graph' is not a table of unit -> list of neighbours; rebuild the panel "
                        "with `forecast data build`")
    country = data.get("country") if isinstance(data.get("country"), dict) else {}
    return UnitGraph({str(u): tuple(map(str, ns)) for u, ns in neighbours.items()}, country)


def unit_graph(frame: pd.DataFrame) -> UnitGraph | None:
    """The unit graph a panel or history carries, or None.

    A frame read back by pandas itself (``pd.read_parquet`` of a frame that carried a graph)
    holds the plain JSON: it is turned into a graph, once.
    """
    graph = frame.attrs.get(GRAPH_KEY)
    if isinstance(graph, UnitGraph) or graph is None:
        return graph
    if isinstance(graph, dict) and isinstance(graph.get("neighbours"), dict):
        frame.attrs[GRAPH_KEY] = graph = _from_json(graph)
        return graph
    return None


def with_graph(frame: pd.DataFrame, graph: UnitGraph | None) -> pd.DataFrame:
    """``frame`` carrying ``graph`` (restricted to the frame's units); the frame itself, changed in place."""
    if graph is None:
        frame.attrs.pop(GRAPH_KEY, None)
    else:
        units = pd.unique(frame["unit"]) if "unit" in frame else graph.units
        frame.attrs[GRAPH_KEY] = graph.restrict(units)
    return frame
