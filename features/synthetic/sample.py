"""The demo sample: :func:`write_sample` writes the event CSV, the covariates and their README.

The README quotes the docstring of :mod:`features.synthetic.config`, so the description of the
process in ``data/sample/README.md`` cannot disagree with the code.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pandas as pd

import features.synthetic.config as config_module
from features.atomic import write_bytes_atomically
from features.gazetteer import Gazetteer
from features.synthetic.config import SyntheticConfig
from features.synthetic.events import UCDP_GED_COLUMNS, simulate_events
from features.synthetic.process import COVARIATE_COLUMNS

SAMPLE_FILES = {
    "events": "ucdp_ged_demo.csv",
    "covariates": "covariates_demo.csv",
    "readme": "README.md",
}


# --------------------------------------------------------------------------- sample files


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_sample(
    out_dir: str | os.PathLike,
    config: SyntheticConfig = SyntheticConfig(),
    gazetteer: Gazetteer | pd.DataFrame | str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Write the demo event file, its covariates and a README describing them.

    Parameters
    ----------
    out_dir : path
        Directory to write to (created if missing).
    config : SyntheticConfig
    gazetteer : Gazetteer, DataFrame, path or None
        As for :func:`simulate_panel`.

    Returns
    -------
    dict
        ``{"events": out_dir/ucdp_ged_demo.csv, "covariates": out_dir/covariates_demo.csv,
        "readme": out_dir/README.md}``. Each file is written atomically (a temporary file in
        ``out_dir``, then ``os.replace``); CSVs are UTF-8 without an index.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events, covariates = simulate_events(config, gazetteer)
    blobs = {
        "events": _csv_bytes(events),
        "covariates": _csv_bytes(covariates[list(COVARIATE_COLUMNS)]),
    }
    blobs["readme"] = _render_readme(config, gazetteer, events, covariates, blobs).encode("utf-8")
    paths = {key: out / SAMPLE_FILES[key] for key in blobs}
    write_bytes_atomically({paths[key]: data for key, data in blobs.items()})
    return paths


def _docstring_as_markdown() -> str:
    """The docstring of :mod:`features.synthetic.config` from "Data-generating process" up to
    "Reproducibility", in Markdown.

    The README quotes the docstring instead of repeating it, so the two cannot disagree.
    """
    doc = config_module.__doc__ or ""
    text = doc[doc.index("Data-generating process") : doc.index("Reproducibility")]
    lines = text.rstrip().splitlines()
    out: list[str] = []
    for k, line in enumerate(lines):
        if set(line) == {"-"} and k > 0 and len(line) == len(lines[k - 1]):
            out[-1] = "## " + out[-1]  # an RST section underline
            out.append("")
            continue
        out.append(line)
    md = "\n".join(out) + "\n"
    md = re.sub(r":(?:func|data|meth|class|mod):`~?([^`]+)`", r"`\1`", md)
    return md.replace("::\n", ":\n")


def _render_readme(config: SyntheticConfig, gazetteer, events: pd.DataFrame,
                   covariates: pd.DataFrame, blobs: dict[str, bytes]) -> str:
    if gazetteer is None:
        units = "the bundled Iraq gazetteer (`data/reference/iraq_governorates.csv`)"
    elif isinstance(gazetteer, Gazetteer):
        units = f"the {len(gazetteer.units):,} units of the gazetteer `{Path(gazetteer.path).name}`"
    elif isinstance(gazetteer, pd.DataFrame):
        units = f"{len(gazetteer):,} units of a gazetteer frame (e.g. `synthetic_gazetteer`)"
    else:
        units = f"the units of the gazetteer `{Path(gazetteer).name}`"
    # The unit written in the most ways, to show what readers must normalise.
    spelled = events["adm_1"].str.replace(r"\s+", " ", regex=True)
    variety = spelled.groupby(events["where_coordinates"]).agg(lambda s: sorted(set(s)))
    shown = max(variety, key=len, default=[])[:5]
    examples = ", ".join(f"`{a}`" for a in shown) or "none"
    rows = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple) and value and isinstance(value[0], tuple):
            shown = "; ".join(f"{a}: {b:g}" for a, b in value)
        else:
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
        rows.append(f"| `{f.name}` | {shown} |")
    effects = "\n".join(f"| `{k}` | {v:+.3f} |" for k, v in config.true_effects().items())
    note = ""
    if config != SyntheticConfig():
        note = "\n**Generated with a non-default configuration.**\n"
    per_year = events.groupby("year").size()
    years = ", ".join(f"{y} {n:,}" for y, n in per_year.items())
    files = SAMPLE_FILES
    return f"""# Synthetic demo data (UCDP GED layout)

**Synthetic, not real.** Written by `features.synthetic.write_sample("data/sample")` from the
process described below; `tests/test_synthetic.py` regenerates these files and fails if they
differ by one byte, so change `features/synthetic/` and rerun the command instead of editing
them by hand.
{note}
| file | rows | bytes | content |
|---|---|---|---|
| `{files['events']}` | {len(events):,} | {len(blobs['events']):,} | one simulated incident per row, in the UCDP GED codebook columns `{', '.join(UCDP_GED_COLUMNS)}` |
| `{files['covariates']}` | {len(covariates):,} | {len(blobs['covariates']):,} | national monthly covariates `{', '.join(COVARIATE_COLUMNS)}` |

Units: {units}.
Months {config.start} to {config.end}, seed {config.seed}: {len(events):,} events and {int(events['best'].sum()):,} deaths (`best`).
Events per year: {years}.

Read the events like a GED download (`--format ucdp`). `adm_1` deliberately mixes spellings of
each unit, some with UCDP's two spaces before `province`, and every one resolves through the
gazetteer; for example
{examples}.
The panel the events were expanded from, with the latent log-intensity, is
`features.synthetic.simulate_panel()`; the latent national series are
`features.synthetic.national_components()`.

## True covariate effects

| regressor | coefficient on log E[incidents] |
|---|---|
{effects}

## Parameters (`SyntheticConfig`)

| parameter | value |
|---|---|
{chr(10).join(rows)}

{_docstring_as_markdown()}"""
