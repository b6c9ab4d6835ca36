"""benchmarks/context.py: its variants change one context family each, and its paired ratio is
the variant's CRPS over the counts-only model's with an interval that holds it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from features.graph import UnitGraph, unit_graph, with_graph

ROOT = Path(__file__).resolve().parent.parent


def _context_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("context_benchmark", ROOT / "benchmarks" / "context.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _two_country_panel() -> pd.DataFrame:
    months = pd.period_range("2016-01", periods=4, freq="M")
    units = ["Anbar", "Basra", "Deir ez-Zor"]
    panel = pd.DataFrame([(u, m, 1.0, 2.0, 1.0, 0.0, 0.0, 1.0) for u in units for m in months],
                         columns=["unit", "month", "incidents", "deaths", "incidents_state_based",
                                  "incidents_non_state", "incidents_one_sided", "ops_tempo"])
    graph = UnitGraph({"Anbar": ("Basra", "Deir ez-Zor"), "Basra": ("Anbar",), "Deir ez-Zor": ("Anbar",)},
                      {"Anbar": "Iraq", "Basra": "Iraq", "Deir ez-Zor": "Syria"})
    return with_graph(panel, graph)


def test_each_variant_changes_one_family_and_leaves_the_panel_it_was_given_alone():
    context = _context_module()
    panel = _two_country_panel()
    runs = context.variants(panel, ("ops_tempo",))
    assert list(runs) == ["counts", "+type_split", "+ops_tempo", "-neighbours", "-cross_border"]
    assert runs["+type_split"][1] == context.TYPE_SPLIT and runs["+ops_tempo"][1] == ("ops_tempo",)
    assert all(runs[k][1] == () for k in ("counts", "-neighbours", "-cross_border"))
    assert dict(unit_graph(runs["-neighbours"][0]).neighbours) == {"Anbar": (), "Basra": (), "Deir ez-Zor": ()}
    assert dict(unit_graph(runs["-cross_border"][0]).neighbours) == {"Anbar": ("Basra",), "Basra": ("Anbar",),
                                                                      "Deir ez-Zor": ()}
    assert unit_graph(runs["-cross_border"][0]).country["Deir ez-Zor"] == "Syria"
    assert dict(unit_graph(panel).neighbours)["Anbar"] == ("Basra", "Deir ez-Zor")  # the input is untouched
    # A model without covariates is judged on the neighbour variants only; one country: no border variant.
    one = with_graph(panel[panel["unit"] != "Deir ez-Zor"].copy(), unit_graph(panel).restrict(["Anbar", "Basra"]))
    assert list(context.variants(one, ("ops_tempo",), covariates=False)) == ["counts", "-neighbours"]


def test_the_paired_ratio_is_the_ratio_of_sums_and_its_interval_holds_it():
    context = _context_module()
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 10.0, size=24)
    ratio, low, high = context.paired_interval(0.9 * base, base)
    assert np.isclose(ratio, 0.9) and np.isclose(low, 0.9) and np.isclose(high, 0.9)
    noisy = base * rng.uniform(0.7, 1.2, size=24)
    ratio, low, high = context.paired_interval(noisy, base)
    assert np.isclose(ratio, noisy.sum() / base.sum())
    assert low < ratio < high
