"""The refresh configuration file (see ``deploy/refresh.toml``): read and validated in full
before the job writes anything; every mistake is a :class:`forecast.config.ConfigError`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from features.covariates import FILL_POLICIES
from features.download import check_sha256, check_url
from features.gazetteer import load_gazetteer
from features.sources import FORMATS
from forecast.catalog import MODELS, make_model
from forecast.config import Reader, explicit, field_names, kind, parse_coverage_end, parse_month, read_toml
from forecast.models.base import ModelError
from forecast.schema import MAX_HORIZON, TARGETS
from forecast.tracking import resolve_tracking_uri
from features.errors import DownloadError
from forecast.errors import ConfigError

#: The lock file in the outputs folder (see :func:`forecast.refresh.guard.hold_lock`).
LOCK_NAME = "refresh.lock"

__all__ = ["LOCK_NAME", "DataSection", "ModelSection", "OutputsSection", "RefreshConfig", "Source", "TrackingSection", "load_config"]


@dataclass(frozen=True)
class Source:
    """One input file: a local ``path``, or a ``url`` downloaded to ``path`` and checked against ``sha256``."""

    path: Path
    url: str | None = None
    sha256: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class DataSection:
    events: tuple[Source, ...]
    format: str | None = None
    covariates: Source | None = None
    fill: str = "error"
    gazetteer: Path | None = None
    #: Last day the sources cover (``YYYY-MM`` = its last day); default their last event date.
    coverage_end: str | None = None
    #: Keep events from this month on (``YYYY-MM``).
    start: str | None = None
    #: Keep events up to this month and treat it as the sources' end (caps ``coverage_end``).
    end: str | None = None
    event_types: tuple[str, ...] = ()
    actor: str | None = None


@dataclass(frozen=True)
class ModelSection:
    #: Registered model name in the MLflow registry.
    name: str
    alias: str = "champion"
    #: Model (``forecast models``) fitted on the panel when the registry has no champion.
    fallback: str | None = None
    fallback_params: dict[str, Any] = field(default_factory=dict)
    horizon: int = 6
    target: str = "incidents"


@dataclass(frozen=True)
class OutputsSection:
    dir: Path
    #: SQLAlchemy URL or SQLite file path; default ``<dir>/ledger.sqlite``.
    ledger: str | None = None
    #: Also write the report as PDF.
    pdf: bool = False
    #: Backups of a SQLite ledger kept beside it; one is taken before each write (0: none).
    backups: int = 5
    #: Monthly origins of a backtest of the model against the benchmarks shown in the report (0: none).
    report_backtest_months: int = 0
    #: Units the report focuses on (as ``forecast report --units``); None: every unit.
    report_units: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrackingSection:
    #: Default: :func:`forecast.tracking.resolve_tracking_uri` ($MLFLOW_TRACKING_URI, else ./mlflow.db).
    uri: str | None = None
    experiment: str = "refresh"
    #: Further attempts after a transient tracking error.
    retries: int = 4
    #: Seconds before the first retry; doubled before each next one.
    retry_wait: float = 2.0
    #: Seconds the health check of an HTTP tracking server waits per attempt.
    timeout: float = 5.0


@dataclass(frozen=True)
class RefreshConfig:
    path: Path
    text: str
    data: DataSection
    model: ModelSection
    outputs: OutputsSection
    tracking: TrackingSection = TrackingSection()

    @property
    def out_dir(self) -> Path:
        return self.outputs.dir

    @property
    def ledger(self) -> str:
        return self.outputs.ledger or str(self.outputs.dir / "ledger.sqlite")

    @property
    def lock_path(self) -> Path:
        return self.outputs.dir / LOCK_NAME

    @property
    def panel_path(self) -> Path:
        return self.outputs.dir / "panel.parquet"

    def forecasts_path(self, origin) -> Path:
        return self.outputs.dir / "forecasts" / f"{origin}.csv"

    def report_path(self, origin) -> Path:
        return self.outputs.dir / "reports" / f"{origin}.html"

    def tracking_uri(self, override: str | None = None) -> str:
        return resolve_tracking_uri(override or self.tracking.uri)


_SECTIONS = {"data": DataSection, "model": ModelSection, "outputs": OutputsSection, "tracking": TrackingSection}


_SOURCE_KEYS = ("url", "sha256", "format", "file", "path")


def load_config(path: str | Path) -> RefreshConfig:
    """Read and validate a refresh configuration; relative paths are read from its folder.

    Raises
    ------
    ConfigError
        Naming the file, table and key: unknown keys (with the closest valid key), missing
        files, malformed months, URLs or checksums, unknown models or targets.
    """
    path = Path(path)
    raw, text = read_toml(path, "refresh configuration")
    base = path.resolve().parent
    top = Reader(path, "top level", raw, tuple(_SECTIONS))
    for name in ("data", "model", "outputs"):
        if name not in raw:
            top.fail(None, f"missing [{name}] table (see deploy/refresh.toml for a documented example)")
    outputs = _read_outputs(path, raw["outputs"], base)
    data = _read_data(path, raw["data"], base, outputs.dir)
    units = Reader(path, "[outputs]", raw["outputs"], field_names(OutputsSection)).units(
        "report_units", lambda: load_gazetteer(data.gazetteer), "leave it out for a report of every unit")
    outputs = replace(outputs, report_units=units)
    model = _read_model(path, raw["model"])
    tracking = _read_tracking(path, raw.get("tracking", {}))
    return RefreshConfig(path=path, text=text, data=data, model=model, outputs=outputs, tracking=tracking)


def _local(r: Reader, key: str, value: Any, base: Path, what: str, *, must_exist: bool = True) -> Path:
    if must_exist:
        return r.file(key, value, base, what)
    if not isinstance(value, str) or not value.strip():
        r.fail(key, f"must be a path (a string), got {value!r}")
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _read_source(r: Reader, key: str, value: Any, base: Path, downloads: Path, what: str) -> Source:
    """A path string, or a table ``{url, sha256[, format][, file]}`` for a download."""
    if isinstance(value, str):
        return Source(path=_local(r, key, value, base, what))
    if not isinstance(value, dict):
        r.fail(key, f"must be a path, or a table {{url = \"...\", sha256 = \"...\"}}; got {kind(value)}")
    unknown = [k for k in value if k not in _SOURCE_KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(_SOURCE_KEYS), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        r.fail(key, f"unknown key {unknown[0]!r} in a source; {hint}valid keys: {', '.join(_SOURCE_KEYS)}")
    fmt = value.get("format")
    if fmt is not None and fmt not in FORMATS:
        r.fail(key, f"format {fmt!r} is not known; choose one of {', '.join(FORMATS)}")
    if "path" in value:
        if "url" in value or "sha256" in value:
            r.fail(key, "give either path (a local file) or url + sha256 (a download), not both")
        return Source(path=_local(r, key, value["path"], base, what), format=fmt)
    if "url" not in value or "sha256" not in value:
        r.fail(key, "a download needs both url and sha256 (the file's SHA-256, from `sha256sum FILE`)")
    try:
        url = check_url(value["url"], f"{r.path}: {r.section} key {key!r}")
        digest = check_sha256(value["sha256"], f"{r.path}: {r.section} key {key!r}")
    except DownloadError as exc:
        raise ConfigError(str(exc)) from None
    name = value.get("file") or Path(url.split("?")[0].rstrip("/")).name
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        r.fail(key, f"file must be a plain file name for the download, got {value.get('file')!r}")
    return Source(path=downloads / name, url=url, sha256=digest, format=fmt)


def _read_data(path: Path, table: Any, base: Path, out_dir: Path) -> DataSection:
    r = Reader(path, "[data]", table, field_names(DataSection))
    downloads = out_dir / "downloads"
    if "events" not in table:
        r.fail("events", "is required: event file path(s), or {url = \"...\", sha256 = \"...\"} for a download")
    given = table["events"]
    given = [given] if isinstance(given, (str, dict)) else given
    if not isinstance(given, list) or not given:
        r.fail("events", f"must be a path, a download table, or a list of them; got {table['events']!r}")
    events = tuple(_read_source(r, "events", v, base, downloads, "event file") for v in given)
    names = [s.path for s in events]
    if len(set(names)) != len(names):
        r.fail("events", "two sources share one file name; give a download its own file = \"...\"")
    covariates = (_read_source(r, "covariates", table["covariates"], base, downloads, "covariate file")
                  if "covariates" in table else None)
    gazetteer = r.file("gazetteer", table["gazetteer"], base, "gazetteer") if "gazetteer" in table else None
    coverage_end = r.string("coverage_end")
    if coverage_end is not None and parse_coverage_end(coverage_end) is None:
        r.fail("coverage_end", f"{coverage_end!r} is not a date; expected \"YYYY-MM\" or \"YYYY-MM-DD\"")
    months = {}
    for key in ("start", "end"):
        value = r.string(key)
        if value is not None and parse_month(value) is None:
            r.fail(key, f"{value!r} is not a month; expected \"YYYY-MM\"")
        months[key] = value
    if months["start"] and months["end"] and parse_month(months["end"]) < parse_month(months["start"]):
        r.fail("end", f"{months['end']} is before start {months['start']}")
    return DataSection(events=events, format=r.string("format", list(FORMATS)), covariates=covariates,
                       fill=r.string("fill", list(FILL_POLICIES)) or "error", gazetteer=gazetteer,
                       coverage_end=coverage_end, start=months["start"], end=months["end"],
                       event_types=r.strings("event_types") or (), actor=r.string("actor"))


def _read_model(path: Path, table: Any) -> ModelSection:
    r = Reader(path, "[model]", table, field_names(ModelSection))
    name = r.string("name")
    if not name:
        r.fail("name", "is required: the registered model name, e.g. name = \"demo-incidents\"")
    if "@" in name or "/" in name:
        r.fail("name", f"{name!r}: give the registered name only; the alias goes in alias = \"champion\"")
    alias = r.string("alias") or "champion"
    fallback = r.string("fallback")
    params = table.get("fallback_params", {})
    if not isinstance(params, dict):
        r.fail("fallback_params", f"must be a table, e.g. fallback_params = {{window = 12}}; got {params!r}")
    if params and fallback is None:
        r.fail("fallback_params", "is set but fallback is not; name the fallback model")
    if fallback is not None:
        if fallback not in MODELS:
            close = difflib.get_close_matches(fallback, list(MODELS), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            r.fail("fallback", f"unknown model {fallback!r}; {hint}known models: {', '.join(sorted(MODELS))}")
        try:
            make_model(fallback, **params)
        except (ModelError, TypeError, ValueError) as exc:
            r.fail("fallback_params", str(exc))
    horizon = r.integer("horizon")
    if horizon is not None and horizon > MAX_HORIZON:
        r.fail("horizon", f"{horizon} months is more than the {MAX_HORIZON} the models forecast")
    return ModelSection(name=name, alias=alias, fallback=fallback, fallback_params=dict(params),
                        horizon=horizon or ModelSection.horizon, target=r.string("target", TARGETS) or "incidents")


def _read_outputs(path: Path, table: Any, base: Path) -> OutputsSection:
    r = Reader(path, "[outputs]", table, field_names(OutputsSection))
    if "dir" not in table:
        r.fail("dir", "is required: the folder for the panel, forecasts, reports, ledger and lock")
    out = _local(r, "dir", table["dir"], base, "folder", must_exist=False)
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        r.fail("dir", f"{out} cannot be a folder: {blocker} is a file; name a folder")
    ledger = table.get("ledger")
    if ledger is not None:
        if not isinstance(ledger, str) or not ledger.strip():
            r.fail("ledger", f"must be a SQLite file path or a database URL, got {ledger!r}")
        if "://" not in ledger:
            ledger = str(_local(r, "ledger", ledger, base, "ledger", must_exist=False))
    pdf = table.get("pdf", False)
    if not isinstance(pdf, bool):
        r.fail("pdf", f"must be true or false, got {pdf!r}")
    backups = r.integer("backups", minimum=0)
    months = r.integer("report_backtest_months", minimum=0)
    return OutputsSection(dir=out, ledger=ledger, pdf=pdf, **explicit(backups=backups, report_backtest_months=months))


def _read_tracking(path: Path, table: Any) -> TrackingSection:
    r = Reader(path, "[tracking]", table, field_names(TrackingSection))
    numbers = {}
    for key, minimum in (("retry_wait", 0.0), ("timeout", 0.1)):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum):
            r.fail(key, f"must be a number of seconds >= {minimum:g}, got {value!r}")
        numbers[key] = None if value is None else float(value)
    retries = r.integer("retries", minimum=0)
    out = TrackingSection(uri=r.string("uri"), experiment=r.string("experiment") or TrackingSection.experiment)
    return replace(out, **{k: v for k, v in {"retries": retries, **numbers}.items() if v is not None})
