"""Seeded synthetic conflict data: a known data-generating process, raw UCDP GED-style events.

Real event data cannot tell whether a model recovers an effect, because nobody knows the true
effect. This package simulates monthly incident counts per admin-1 unit from a documented
process with known parameters, then expands them into one row per incident in the UCDP GED
CSV layout, so the whole pipeline (reader, name matching, panel, features, models, scenarios)
can be run end to end on data whose truth is known. The demo files in ``data/sample/`` are
written by :func:`write_sample` with the default :class:`SyntheticConfig`; a test regenerates
them and compares bytes, so they cannot drift from this code.

Public functions
----------------
* :func:`simulate_panel` -> ``(counts, covariates)``: the unit x month panel with the latent
  log-intensity, and the national covariates.
* :func:`simulate_events` -> ``(events, covariates)``: the same panel expanded into events
  (columns :data:`UCDP_GED_COLUMNS`).
* :func:`national_components` -> the latent national series (regime, season, Syria).
* :func:`synthetic_gazetteer` -> a lattice gazetteer of any size, for scale benchmarks.
* :func:`write_sample` -> writes the demo CSVs and their README.

Modules (each imports only the ones above it)
---------------------------------------------
* :mod:`~features.synthetic.config`: :class:`SyntheticConfig`, its default knots and unit
  effects, :data:`TRUE_EFFECTS`; its docstring documents the process, the true effects, the
  event expansion and reproducibility.
* :mod:`~features.synthetic.gazetteer`: :func:`synthetic_gazetteer` and the unit helpers.
* :mod:`~features.synthetic.process`: calendar series, national components, the simulation,
  :func:`simulate_panel`.
* :mod:`~features.synthetic.events`: dyads, ``adm_1`` spellings, the split of deaths among
  events, :func:`simulate_events`.
* :mod:`~features.synthetic.sample`: :func:`write_sample` and the README it renders.
* :mod:`~features.synthetic.layouts`: the events in ACLED's export layout
  (:func:`to_acled_export`) and square boundaries for lattice units (:func:`lattice_boundaries`).
"""

from features.synthetic.config import TRUE_EFFECTS, SyntheticConfig
from features.synthetic.events import UCDP_GED_COLUMNS, simulate_events
from features.synthetic.gazetteer import synthetic_gazetteer
from features.synthetic.layouts import ACLED_EXPORT_COLUMNS, geojson_bytes, lattice_boundaries, to_acled_export
from features.synthetic.process import (
    COVARIATE_COLUMNS,
    PANEL_COLUMNS,
    national_components,
    simulate_panel,
)
from features.synthetic.sample import SAMPLE_FILES, write_sample

__all__ = [
    "ACLED_EXPORT_COLUMNS",
    "COVARIATE_COLUMNS",
    "PANEL_COLUMNS",
    "SAMPLE_FILES",
    "TRUE_EFFECTS",
    "UCDP_GED_COLUMNS",
    "SyntheticConfig",
    "national_components",
    "simulate_events",
    "simulate_panel",
    "geojson_bytes",
    "lattice_boundaries",
    "synthetic_gazetteer",
    "to_acled_export",
    "write_sample",
]
