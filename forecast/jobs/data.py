"""Data jobs: event files to a panel file (``forecast data build``), and synthetic data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from features.atomic import refuse_overwriting_inputs, write_atomically, write_bytes_atomically
from features.errors import DataError
from features.gazetteer import load_gazetteer
from features.panel import NoUsableEvents, PanelSpec, build_panel, quarantine_digest
from features.panel_files import PanelBuild, metadata_path, quarantine_path, write_panel
from features.synthetic import (
    SyntheticConfig,
    geojson_bytes,
    lattice_boundaries,
    simulate_events,
    synthetic_gazetteer,
    to_acled_export,
    write_sample,
)

__all__ = ["BuiltPanel", "SyntheticFiles", "format_summary", "make_panel", "make_synthetic"]


@dataclass(frozen=True)
class BuiltPanel:
    """A panel built and written: the build (panel, metadata, quarantine, notes) and its files."""

    build: PanelBuild
    paths: dict[str, Path]

    def summary(self) -> str:
        return format_summary(self.build, self.paths)


def make_panel(spec: PanelSpec, out: str | Path) -> BuiltPanel:
    """Build the panel of ``spec`` (:func:`features.panel.build_panel`) and write it with its metadata
    and quarantine (``forecast data build``).

    Raises
    ------
    features.errors.DataError
        Naming the file, row and column of bad input; nothing is written then, except the
        quarantine file when no event is usable (the message names it and its reasons).
    """
    if Path(out).suffix.lower() not in (".parquet", ".csv"):
        raise DataError(f"{out}: the panel must be written as .parquet or .csv")
    refuse_overwriting_inputs(
        {Path(out): "the panel", quarantine_path(out): "the quarantine", metadata_path(out): "the panel's metadata"},
        {"--events": [f.path for f in spec.event_files()], "--covariates": spec.covariates,
         "--gazetteer": spec.gazetteer})
    try:
        build = build_panel(spec, progress=True)
    except NoUsableEvents as exc:
        if exc.quarantine.empty:
            raise
        # The quarantine is what the user needs to fix the file: write it even with no panel.
        qpath, quarantine = quarantine_path(out), exc.quarantine
        write_atomically({qpath: lambda tmp: quarantine.to_csv(tmp, index=False)})
        raise DataError(
            f"{exc}. Reasons: {quarantine_digest(exc.quarantine)}. The quarantined rows are in {qpath}"
        ) from None
    paths = write_panel(build, out)
    return BuiltPanel(build, paths)


def format_summary(build: PanelBuild, paths: dict[str, Path]) -> str:
    """The printed summary of a build: units, months, totals, sources, quarantine, notes."""
    meta, panel = build.metadata, build.panel
    lines = [
        f"panel: {paths['panel']}",
        f"  units: {panel['unit'].nunique()}  months: {panel['month'].nunique()} "
        f"({meta['first_month']} .. {meta['last_month']})  data vintage: {meta['vintage']}",
        f"  totals: incidents {meta['totals']['incidents']:,}  deaths {meta['totals']['deaths']:,}",
    ]
    coverage = meta.get("coverage") or {}
    if len(coverage) > 1 or any(c["gaps"] for c in coverage.values()):
        lines.append("  coverage: " + "; ".join(
            f"{country} {c['first_month']} .. {c['last_month']}"
            + (f" without {', '.join(a if a == b else f'{a}..{b}' for a, b in c['gaps'])}" if c["gaps"] else "")
            for country, c in coverage.items()) + " (other unit-months are missing, not zero)")
    for name, c in (meta.get("context") or {}).items():
        spans = "; ".join((f"{country} " if len(c["coverage"]) > 1 else "") + f"{cov['first_month']} .. {cov['last_month']}"
                          + (f" without {', '.join(a if a == b else f'{a}..{b}' for a, b in cov['gaps'])}"
                             if cov["gaps"] else "") for country, cov in c["coverage"].items())
        lines.append(f"  context: {name} = {c['counts']}, {spans}")
    if meta["covariates"]:
        lines.append(
            f"  covariates: {', '.join(meta['covariates']['columns'])} "
            f"({meta['covariates']['scope']}, fill: {meta['covariates']['fill']})"
        )
    for src in meta["sources"]:
        lines.append(
            f"source: {src['path']} ({src.get('dataset') or src['format']}): {src['rows']:,} rows, {src['events']:,} events "
            f"used, {src['quarantined']:,} quarantined, {src['filtered_out']:,} filtered out "
            f"(filters: {src['filters']}; dates read as {src['date_form']})"
        )
    n_q = len(build.quarantine)
    if n_q:
        lines.append(f"quarantined: {n_q:,} row(s) -> {paths['quarantine']} ({quarantine_digest(build.quarantine)})")
        rows = sum(src["rows"] for src in meta["sources"])
        if n_q > rows / 2:
            lines.append(f"warning: more than half of the {rows:,} rows were quarantined; see {paths['quarantine']}")
    else:
        lines.append("quarantined: 0 rows")
    if meta["events_outside_panel"]:
        lines.append(f"events outside the panel months: {meta['events_outside_panel']:,}")
    lines.extend(n if n.startswith("warning:") else f"note: {n}" for n in build.notes)
    lines.append(f"metadata: {paths['metadata']}")
    return "\n".join(lines)


@dataclass(frozen=True)
class SyntheticFiles:
    """What :func:`make_synthetic` wrote: file label -> path (the gazetteer first when made)."""

    paths: dict[str, Path]
    units: int | None = None

    def summary(self) -> str:
        lines = []
        for name, path in self.paths.items():
            if name == "gazetteer":
                lines.append(f"gazetteer: {path} ({self.units} units)")
            else:
                lines.append(f"{name}: {path}")
        return "\n".join(lines)


#: Event layouts :func:`make_synthetic` writes besides GED's.
SYNTHETIC_LAYOUTS = ("ucdp", "acled")


def make_synthetic(out_dir: str | Path, *, seed: int | None = None, units: int | None = None,
                   start: str | None = None, end: str | None = None, layout: str = "ucdp") -> SyntheticFiles:
    """Synthetic raw events (UCDP GED layout) and covariates from the known process.

    ``units`` (default Iraq's 18 governorates) lays that many synthetic units on a lattice
    and writes their gazetteer, and their square boundaries as ``boundaries.geojson``
    (geoBoundaries properties), beside the events. ``layout="acled"`` also writes the same
    events as an ACLED export (``acled_export_demo.csv``: the pre-2023 export-tool columns,
    ``31-Dec-20`` dates, ACLED's governorate spellings).
    """
    if layout not in SYNTHETIC_LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(SYNTHETIC_LAYOUTS)}")
    out_dir = Path(out_dir)
    changes = {k: v for k, v in {"seed": seed, "start": start, "end": end}.items() if v is not None}
    try:
        # The generator's own checks (a month that is not one, no units) are the user's mistakes
        # here: said before anything is written.
        config = replace(SyntheticConfig(), **changes)
        frame = synthetic_gazetteer(units, seed=config.seed) if units is not None else None
    except DataError:
        raise
    except (ValueError, TypeError) as exc:
        raise DataError(f"data synthetic: {exc}") from None
    gaz = None
    paths: dict[str, Path] = {}
    if frame is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        gaz_path = out_dir / "gazetteer.csv"
        frame.to_csv(gaz_path, index=False)
        gaz = load_gazetteer(gaz_path)
        paths["gazetteer"] = gaz_path
        paths["boundaries"] = out_dir / "boundaries.geojson"
        write_bytes_atomically({paths["boundaries"]: geojson_bytes(lattice_boundaries(frame))})
    paths.update(write_sample(out_dir, config=config, gazetteer=gaz))
    if layout == "acled":
        events, _ = simulate_events(config, gaz)
        acled = to_acled_export(events, gaz or load_gazetteer())
        paths["events (ACLED layout)"] = out_dir / "acled_export_demo.csv"
        write_bytes_atomically({paths["events (ACLED layout)"]: acled.to_csv(index=False, lineterminator="\n").encode("utf-8")})
    return SyntheticFiles(paths, units)
