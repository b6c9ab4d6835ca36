"""The report's sources: licence and citation of each, the covariates, the quarantine, and the synthetic flag."""

from __future__ import annotations

from pathlib import Path

from features.atomic import file_sha256
from forecast.report.licences import LICENCES, SYNTHETIC

__all__ = ["is_synthetic", "source_notes"]

def _sample_digests() -> set[str]:
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    out = set()
    for path in sample.glob("*.csv") if sample.is_dir() else []:
        out.add(file_sha256(path))
    return out


def is_synthetic(source: dict) -> bool:
    """A source is the synthetic demo data when it is a bundled sample file or named like one."""
    name = Path(str(source.get("path", ""))).name.lower()
    if "synthetic" in name or name in ("ucdp_ged_demo.csv", "covariates_demo.csv"):
        return True
    return bool(source.get("sha256")) and source["sha256"] in _sample_digests()


def source_notes(meta: dict) -> dict:
    """Sources with their licence and citation, covariates and the quarantine count."""
    sources = []
    synthetic = False
    for src in meta.get("sources") or []:
        fake = is_synthetic(src)
        synthetic |= fake
        title, licence, cite = SYNTHETIC if fake else LICENCES.get(src.get("format"), LICENCES["generic"])
        sources.append({
            "file": Path(str(src.get("path", "?"))).name, "format": src.get("format", "?"),
            "title": title, "licence": licence, "citation": cite,
            "rows": src.get("rows"), "events": src.get("events"), "quarantined": src.get("quarantined", 0),
            "filtered_out": src.get("filtered_out", 0), "last_date": src.get("last_date"),
            "sha256": str(src.get("sha256") or "")[:12], "filters": src.get("filters"),
        })
    cov = meta.get("covariates") or None
    if cov:
        fake_cov = is_synthetic(cov)
        synthetic |= fake_cov
        cov = {"file": Path(str(cov.get("path", "?"))).name, "columns": cov.get("columns", []),
               "scope": cov.get("scope"), "fill": cov.get("fill"), "synthetic": fake_cov,
               "sha256": str(cov.get("sha256") or "")[:12]}
    quarantined = sum(int(s.get("quarantined") or 0) for s in meta.get("sources") or [])
    return {"sources": sources, "covariates": cov, "quarantined": quarantined, "synthetic": synthetic,
            "recorded": bool(meta.get("sources"))}
