"""The scheduled refresh: one command that brings the forecasts up to date, safe to run any time.

``forecast refresh --config refresh.toml`` (see ``deploy/refresh.toml``) runs these steps,
logging one timestamped line per step:

1. **config** – read and validate the configuration (nothing is written before it passes).
2. **lock** – take ``<outputs>/refresh.lock`` (:class:`filelock.FileLock`, an ``flock``
   held by the process: the kernel drops it when the process dies, even by SIGKILL, so a
   killed run never leaves a stale lock). A second run while one holds it exits with
   :attr:`ExitCode.LOCKED`.
3. **fetch** – local event/covariate files are used as they are; URL sources are downloaded
   into ``<outputs>/downloads`` and checked against their SHA-256 (:mod:`features.download`;
   an unchanged file is not downloaded again).
4. **build** – the panel, in memory, by the same code as ``forecast data build``.
5. **check** – a new complete month exists when the panel's vintage (its last complete
   month) is later than the latest origin in the ledger. If not, the job says so and exits 0
   having written nothing (``--force`` goes on; the ledger still takes nothing it holds).
6. **model** – ``models:/NAME@champion`` from the MLflow registry (or the configured
   fallback model, fitted on the panel, when there is no champion; else
   :attr:`ExitCode.NO_CHAMPION`). A champion fitted on data after the panel's last month is
   refitted with the same hyperparameters on the panel up to that month, so no forecast
   uses data after its origin.
7. **forecast** – months origin+1..origin+H for every unit.
8. **files** – the panel (``panel.parquet`` + metadata + quarantine) and
   ``forecasts/<origin>.csv``, written atomically together.
9. **report** – ``reports/<origin>.html`` (:func:`forecast.report.write_report`, atomic),
   with the ledger's earlier forecasts scored against the new actuals.
10. **track** – an MLflow run in the experiment ``refresh``: inputs, vintage, model
    version, output paths as parameters; scores of past forecasts as metrics; the forecast
    file and report as artifacts. Transient tracking errors are retried with back-off.
11. **ledger** – one transaction appends the new forecasts, the actuals and scores of
    earlier forecasts whose target month now has data, and the refresh row naming the
    MLflow run. This commit is the moment the refresh happens.

Why this order survives a kill at any point
-------------------------------------------
The ledger is the record of what was issued, and it is written last, in one transaction.
Until that commit the ledger is exactly as before (a kill inside the transaction is rolled
back by SQLite's journal or PostgreSQL), so the next run sees the month as new and does the
whole refresh again; files from the killed run are replaced atomically by the same names
(``forecasts/<origin>.csv``, ``reports/<origin>.html``), and the reports of earlier months
are never touched. After the commit nothing is left to do. Every file is written to a
temporary name and renamed into place, so no reader ever sees half a file. A run killed
during step 10 leaves its MLflow run marked RUNNING; the ledger names only the run of the
refresh that committed.

Testing hook
------------
``FORECAST_REFRESH_PAUSE_AT=<step>[,<step>...]`` makes the job log ``paused at <step>`` and
sleep (``FORECAST_REFRESH_PAUSE_SECONDS``, default 600) when it reaches that point, so a
test can kill it there: ``locked``, ``panel-built``, ``model-loaded``, ``files-written``,
``report-written``, ``tracked``, ``ledger-transaction`` (inside the open ledger transaction,
every row inserted, not committed) and ``committed``. Leave it unset in production.

Exit codes (:class:`ExitCode`): 0 refreshed or nothing new; 1 configuration mistake or
unexpected error; 2 bad command line; 3 bad input data (validation, download, checksum);
4 no champion and no fallback; 5 another refresh holds the lock; 6 MLflow tracking server
unreachable after the retries; 7 ledger unreachable or refusing the write.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import DataError
from forecast.config import ConfigError, Reader, field_names, kind, parse_coverage_end, parse_month, read_toml
from forecast.schema import FORECAST_COLUMNS, TARGETS

__all__ = ["ExitCode", "RefreshConfig", "RefreshError", "RefreshResult", "demo_refresh_cycle", "load_config",
           "run_refresh", "PAUSE_ENV"]

log = logging.getLogger("forecast.refresh")

PAUSE_ENV = "FORECAST_REFRESH_PAUSE_AT"
PAUSE_SECONDS_ENV = "FORECAST_REFRESH_PAUSE_SECONDS"
STEPS = ("locked", "panel-built", "model-loaded", "files-written", "report-written", "tracked",
         "ledger-transaction", "committed")
LOCK_NAME = "refresh.lock"
#: MLflow's own per-request HTTP retries (urllib3), bounded so that the job's retries (which
#: also cover the health check and whole steps) decide how long a failure takes. Only set
#: when the environment does not set them.
_MLFLOW_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                         "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


class ExitCode(IntEnum):
    """Exit status of ``forecast refresh`` (documented in the README)."""

    OK = 0              #: refreshed, or nothing new to do
    ERROR = 1           #: configuration mistake or unexpected error
    USAGE = 2           #: bad command line (click)
    BAD_DATA = 3        #: input data failed validation, download or checksum
    NO_CHAMPION = 4     #: no champion in the registry and no fallback model configured
    LOCKED = 5          #: another refresh is running (its lock is held)
    TRACKING = 6        #: MLflow tracking server unreachable after the retries
    LEDGER = 7          #: the ledger cannot be opened or written


class RefreshError(Exception):
    """A refresh that stopped; ``code`` is the exit code, the message says what to do."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------------------
# Configuration


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
        from forecast.tracking import resolve_tracking_uri

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
    from features.download import DownloadError, check_sha256, check_url
    from features.sources import FORMATS

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
    from features.covariates import FILL_POLICIES
    from features.sources import FORMATS

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
    from forecast.catalog import MODELS, make_model
    from forecast.models.base import ModelError

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
    if horizon is not None and horizon > 36:
        r.fail("horizon", f"{horizon} months is more than the 36 the models forecast")
    return ModelSection(name=name, alias=alias, fallback=fallback, fallback_params=dict(params),
                        horizon=horizon or ModelSection.horizon, target=r.string("target", TARGETS) or "incidents")


def _read_outputs(path: Path, table: Any, base: Path) -> OutputsSection:
    r = Reader(path, "[outputs]", table, field_names(OutputsSection))
    if "dir" not in table:
        r.fail("dir", "is required: the folder for the panel, forecasts, reports, ledger and lock")
    out = _local(r, "dir", table["dir"], base, "folder", must_exist=False)
    ledger = table.get("ledger")
    if ledger is not None:
        if not isinstance(ledger, str) or not ledger.strip():
            r.fail("ledger", f"must be a SQLite file path or a database URL, got {ledger!r}")
        if "://" not in ledger:
            ledger = str(_local(r, "ledger", ledger, base, "ledger", must_exist=False))
    pdf = table.get("pdf", False)
    if not isinstance(pdf, bool):
        r.fail("pdf", f"must be true or false, got {pdf!r}")
    return OutputsSection(dir=out, ledger=ledger, pdf=pdf)


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


# ----------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did."""

    #: ``refreshed`` or ``nothing-new``.
    status: str
    message: str
    vintage: str | None = None
    origin: str | None = None
    model_label: str | None = None
    forecasts_path: Path | None = None
    report_path: Path | None = None
    run_id: str | None = None
    forecasts_issued: int = 0
    outcomes_recorded: int = 0
    ledger: str | None = None


def _checkpoint(step: str) -> None:
    """The testing hook of the module docstring."""
    wanted = {s.strip() for s in os.environ.get(PAUSE_ENV, "").split(",") if s.strip()}
    if step in wanted:
        log.warning("paused at %s (%s is set: a testing hook)", step, PAUSE_ENV)
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "600")))


@contextlib.contextmanager
def _mlflow_http_bounded() -> Iterator[None]:
    added = {k: v for k, v in _MLFLOW_HTTP_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    # No soft-lock fallback: a lock file left by a killed process must never block the next run.
    lock = FileLock(str(path), timeout=0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise RefreshError(ExitCode.LOCKED, f"another refresh is running (lock {path} held); "
                                            f"this run did nothing") from None
    try:
        yield
    finally:
        lock.release()


def _transient(exc: BaseException) -> bool:
    """Errors worth retrying: an unreachable server or a server-side failure, not a missing model."""
    from mlflow.exceptions import MlflowException

    from forecast.tracking.registry import NoSuchModel
    from forecast.tracking import TrackingError

    if isinstance(exc, NoSuchModel):
        return False
    if isinstance(exc, TrackingError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, MlflowException):
        return exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                                      "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST", "INVALID_STATE",
                                      "FEATURE_DISABLED")
    try:
        import requests
    except ImportError:
        return False
    return isinstance(exc, requests.exceptions.RequestException)


def _with_retries(what: str, fn: Callable[[], Any], tracking: TrackingSection, uri: str) -> Any:
    """Call ``fn``; on a transient tracking error wait ``retry_wait`` (doubling) and try again.

    Back-off and stopping are tenacity's; what counts as transient is :func:`_transient`.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    from forecast.tracking import check_reachable

    attempts = tracking.retries + 1

    def call() -> Any:
        check_reachable(uri, timeout=tracking.timeout)
        return fn()

    def announce(state) -> None:
        exc = state.outcome.exception()
        log.warning("%s: tracking server error (%s); retry %d of %d in %.1f s", what,
                    str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                    state.attempt_number, attempts - 1, state.next_action.sleep)

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=tracking.retry_wait),
                        retry=retry_if_exception(_transient), before_sleep=announce, reraise=True)
    try:
        return retrying(call)
    except Exception as exc:  # noqa: BLE001 - classified right below
        if not _transient(exc):
            raise
        raise RefreshError(
            ExitCode.TRACKING,
            f"{what}: the MLflow tracking server {uri} failed {attempts} time(s) "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}); nothing was issued "
            f"(the ledger is unchanged). Check the server, or set [tracking] uri / MLFLOW_TRACKING_URI, "
            f"and run again") from None


def _fetch(config: RefreshConfig) -> tuple[list[Path], Path | None]:
    from features.download import fetch

    def get(source: Source) -> Path:
        if source.url is None:
            return source.path
        got = fetch(source.url, source.path, source.sha256)
        log.info("fetch: %s %s (%s bytes, sha256 %s...)", source.url,
                 "downloaded" if got.downloaded else "already here, checksum ok", f"{got.bytes:,}", got.sha256[:12])
        return got.path

    events = [get(s) for s in config.data.events]
    covariates = get(config.data.covariates) if config.data.covariates is not None else None
    return events, covariates


def _build(config: RefreshConfig, events: list[Path], covariates: Path | None):
    """The panel build of ``forecast data build``, in memory (see :func:`forecast.cli.run_data_build`)."""
    from features.covariates import read_covariates
    from features.gazetteer import load_gazetteer
    from features.panel import build_panel
    from features.sources import EventFilters, read_events

    d = config.data
    start = pd.Period(d.start, freq="M") if d.start else None
    end = pd.Period(d.end, freq="M") if d.end else None
    filters = EventFilters(start=start.start_time if start else None,
                           end=end.end_time.normalize() if end else None, event_types=d.event_types, actor=d.actor)
    coverage_end = parse_coverage_end(d.coverage_end) if d.coverage_end else None
    if end is not None:
        # Up to `end` the sources are taken as complete: the run sees the data as it stood then.
        cap = end.end_time.normalize()
        coverage_end = cap if coverage_end is None else min(coverage_end, cap)
    gaz = load_gazetteer(d.gazetteer)
    formats = {s.path: s.format for s in d.events}
    results = [read_events(p, format=formats.get(p) or d.format, gazetteer=gaz, filters=filters) for p in events]
    cov, notes = (None, [])
    if covariates is not None:
        cov, notes = read_covariates(covariates, gaz)
    build = build_panel(results, gaz, start=start, end=end, coverage_end=coverage_end, covariates=cov,
                        covariate_source=str(covariates) if covariates else None, fill=d.fill)
    build.notes.extend(notes)
    return build


def _load_model(config: RefreshConfig, uri: str, panel: pd.DataFrame, origin: pd.Period):
    """(forecaster, ledger model name, version, label, note); fallback when there is no champion."""
    from forecast.catalog import make_model
    from forecast.tracking.registry import NoSuchModel, load_registered

    ref = f"{config.model.name}@{config.model.alias}"
    try:
        reg = _with_retries(f"loading models:/{ref}", lambda: load_registered(ref, uri), config.tracking, uri)
    except NoSuchModel as exc:
        if config.model.fallback is None:
            raise RefreshError(
                ExitCode.NO_CHAMPION,
                f"no model to forecast with: {exc}. Register and promote one (forecast experiment run "
                f"FILE --register {config.model.name}; forecast registry promote {config.model.name} --version N), "
                f"or name a fallback model in [model] fallback = \"...\" of {config.path}") from None
        name = config.model.fallback
        log.warning("model: no models:/%s (%s); using the fallback model %s fitted on the panel", ref,
                    str(exc).split(":")[0], name)
        return make_model(name, **config.model.fallback_params), name, "fallback", \
            f"{name} (fallback: no {ref})", None
    forecaster = reg.forecaster
    note = None
    if origin < forecaster.origin_:
        # Conditioning on a shorter history cannot undo parameters estimated from later data.
        forecaster = make_model(forecaster.name, **forecaster.get_params())
        note = (f"{reg.label} was fitted on data up to {reg.forecaster.origin_}, after this panel's last "
                f"month {origin}: refitted with the same hyperparameters on data up to {origin}")
        log.warning("model: %s", note)
    label = reg.label + (f", refitted to {origin}" if note else "")
    return forecaster, reg.name, reg.version, label, reg


def _forecast(forecaster, reg, panel: pd.DataFrame, origin: pd.Period, config: RefreshConfig) -> pd.DataFrame:
    from forecast.evaluation.backtest import forecast_at, history_at
    from forecast.models.base import ModelError
    from forecast.tracking.registry import ForecasterModel, to_periods, to_strings
    from forecast.schema import validate_forecast

    horizon, target = config.model.horizon, config.model.target
    try:
        if hasattr(forecaster, "origin_"):
            # The registered, fitted model: served exactly as `models:/...` serves it (fitted
            # state kept; a longer history only conditions a copy with `update`).
            history = history_at(panel, origin, target, forecaster.covariates_)
            served = ForecasterModel(forecaster).predict(None, to_strings(history, ("month",)), {"horizon": horizon})
            frame = to_periods(served)
            frame["model"] = forecaster.name
        else:
            covariates = None if reg is None else reg.forecaster.covariates_
            history = history_at(panel, origin, target, covariates)
            frame = forecast_at(forecaster.fit(history), history, horizon, name=forecaster.name)
    except ModelError as exc:
        raise RefreshError(ExitCode.BAD_DATA, f"the model cannot forecast from this panel: {exc}") from None
    return validate_forecast(frame.reset_index(drop=True), source="refresh forecast", columns=FORECAST_COLUMNS)


def _with_actuals(past: pd.DataFrame, panel: pd.DataFrame, target: str) -> pd.DataFrame:
    """Ledger forecasts with ``y`` from this panel where it has the month (the freshest actual)."""
    if past.empty:
        return past
    actual = panel[["unit", "month", target]].rename(columns={target: "_y"})
    merged = past.merge(actual, on=["unit", "month"], how="left")
    merged["y"] = merged["_y"].astype(float).where(merged["_y"].notna(), merged["y"])
    return merged.drop(columns="_y")


def past_scores(past: pd.DataFrame) -> dict[str, float]:
    """Scores of the past forecasts that have an actual, pooled and per horizon (MLflow metric names)."""
    from forecast.ledger import score_rows

    scored = past.loc[past["y"].notna()] if len(past) else past
    out: dict[str, float] = {"past_scored": float(len(scored))}
    if scored.empty:
        return out
    rows = score_rows(scored).assign(horizon=scored["horizon"].to_numpy())
    names = {"crps": "crps", "abs_error": "mae", "in50": "coverage50", "in90": "coverage90"}
    for col, name in names.items():
        out[f"past_{name}"] = float(rows[col].mean())
    for h, group in rows.groupby("horizon"):
        for col, name in names.items():
            out[f"past_{name}_h{int(h)}"] = float(group[col].mean())
    return out


def _track(config: RefreshConfig, uri: str, *, params: dict, metrics: dict, tags: dict,
           artifacts: dict[str, Path]) -> str:
    """Log the refresh as one MLflow run; returns its id."""
    from forecast.tracking import log_batch, connect, default_artifact_location, flatten_params

    client = connect(uri)
    name = config.tracking.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name, artifact_location=default_artifact_location(uri, name),
                                                 tags={"forecast.kind": "refresh"})
    else:
        experiment_id = experiment.experiment_id
    run = client.create_run(experiment_id, run_name=f"refresh {tags.get('forecast.origin', '')}".strip(), tags=tags)
    run_id = run.info.run_id
    try:
        log_batch(client, run_id, params=flatten_params(params), metrics=metrics)
        for folder, path in artifacts.items():
            client.log_artifact(run_id, str(path), folder)
    except BaseException:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _previous(ledger_frame: pd.DataFrame, origin: pd.Period, model: str) -> pd.DataFrame | None:
    """The previous issue's forecasts (latest origin before this one; this model's when it has one)."""
    earlier = ledger_frame.loc[ledger_frame["origin"] < origin]
    if earlier.empty:
        return None
    mine = earlier.loc[earlier["model"] == model]
    pool = mine if not mine.empty else earlier
    last = pool.loc[pool["origin"] == pool["origin"].max()]
    last = last.loc[last["model_version"] == last["model_version"].iloc[-1]]
    return last[list(FORECAST_COLUMNS)].reset_index(drop=True)


def run_refresh(config: RefreshConfig | str | Path, *, force: bool = False,
                tracking_uri: str | None = None) -> RefreshResult:
    """Run one refresh (the module docstring's steps).

    Parameters
    ----------
    config
        A :class:`RefreshConfig` or the path of its TOML file.
    force
        Go on even when the data has no new complete month (the ledger still takes only
        forecasts it does not hold).
    tracking_uri
        Overrides ``[tracking] uri``.

    Raises
    ------
    RefreshError
        With the :class:`ExitCode` to exit with and a message saying what to do.
    """
    try:
        if not isinstance(config, RefreshConfig):
            config = load_config(config)
    except ConfigError as exc:
        raise RefreshError(ExitCode.ERROR, str(exc)) from None
    log.info("config: %s (model %s@%s, outputs %s)", config.path, config.model.name, config.model.alias,
             config.out_dir)
    with _lock(config.lock_path), _mlflow_http_bounded():
        log.info("lock: %s", config.lock_path)
        _checkpoint("locked")
        return _refresh(config, force=force, uri=config.tracking_uri(tracking_uri))


def _open_ledger(config: RefreshConfig):
    from forecast.ledger import Ledger, LedgerError

    try:
        return Ledger.open(config.ledger)
    except LedgerError as exc:
        raise RefreshError(ExitCode.LEDGER, str(exc)) from None


def _refresh(config: RefreshConfig, *, force: bool, uri: str) -> RefreshResult:
    from features.atomic import write_atomically
    from features.panel import write_panel
    from forecast.ledger import Issue, LedgerError
    from forecast.tracking import panel_digest

    target = config.model.target
    try:
        events, covariates = _fetch(config)
        build = _build(config, events, covariates)
    except DataError as exc:
        raise RefreshError(ExitCode.BAD_DATA, str(exc)) from None
    panel, meta = build.panel, build.metadata
    origin = panel["month"].max()
    vintage = str(meta["vintage"])
    log.info("build: panel %s units x %s months (%s .. %s), vintage %s, %s quarantined row(s)",
             panel["unit"].nunique(), panel["month"].nunique(), meta["first_month"], meta["last_month"], vintage,
             len(build.quarantine))
    for note in build.notes:
        log.info("build: note: %s", note)
    _checkpoint("panel-built")

    ledger = _open_ledger(config)
    try:
        latest = ledger.latest_origin(target=target)
        log.info("check: latest origin in the ledger %s: %s; panel's last complete month: %s", ledger.url,
                 latest or "none (empty ledger)", origin)
        if latest is not None and origin <= latest and not force:
            why = "no new complete month" if origin == latest else \
                f"the data ends at {origin}, before the last issued origin {latest} (revised or truncated sources?)"
            message = f"nothing new: {why} since the last refresh (origin {latest}); nothing written"
            log.info("check: %s", message)
            return RefreshResult("nothing-new", message, vintage=vintage, origin=str(latest), ledger=ledger.url)
        if latest is not None and origin <= latest:
            log.info("check: --force: refreshing origin %s again (the ledger takes only what it lacks)", origin)

        forecaster, model_name, version, label, reg = _load_model(config, uri, panel, origin)
        log.info("model: %s", label)
        _checkpoint("model-loaded")
        frame = _forecast(forecaster, reg, panel, origin, config)
        estimator = str(frame["model"].iloc[0])
        national = frame.groupby("month")["mean"].sum()
        log.info("forecast: origin %s, %d units x %d months; national mean %s", origin, frame["unit"].nunique(),
                 config.model.horizon, ", ".join(f"{m} {v:,.1f}" for m, v in national.items()))

        issued_before = ledger.forecasts(target=target)
        past = _with_actuals(issued_before.loc[issued_before["origin"] < origin], panel, target)
        scores = past_scores(past)
        log.info("score: %d earlier forecast(s) in the ledger, %d with actuals; CRPS %s", len(past),
                 int(scores["past_scored"]), f"{scores['past_crps']:.3f}" if "past_crps" in scores else "n/a")

        forecasts_path, report_path = config.forecasts_path(origin), config.report_path(origin)
        text = frame.assign(origin=frame["origin"].astype(str), month=frame["month"].astype(str),
                            model_version=version, vintage=vintage)
        # The panel's own writer is atomic over its three files (data, metadata, quarantine).
        panel_paths = write_panel(build, config.panel_path)
        write_atomically({forecasts_path: lambda tmp: text.to_csv(tmp, index=False)})
        log.info("files: %s; %s", ", ".join(str(p) for p in panel_paths.values()), forecasts_path)
        _checkpoint("files-written")

        from forecast.report import ReportInputs, write_report

        issued = pd.Timestamp.now(tz="UTC").date().isoformat()
        written = write_report(ReportInputs(
            panel=panel, meta=meta, forecast=frame, model=estimator, model_version=label, past_forecasts=past,
            previous=_previous(issued_before, origin, model_name), target=target, issued=issued,
        ), report_path, pdf=config.outputs.pdf)
        log.info("report: %s", ", ".join(str(p) for p in written.values() if p))
        _checkpoint("report-written")

        digest = panel_digest(panel)
        inputs = {f"event_{i}": s.url or str(s.path) for i, s in enumerate(config.data.events, start=1)}
        inputs.update({f"event_{i}_sha256": src["sha256"] for i, src in enumerate(meta["sources"], start=1)})
        if config.data.covariates is not None:
            inputs["covariates"] = config.data.covariates.url or str(config.data.covariates.path)
        params = {"config": str(config.path), "inputs": inputs, "vintage": vintage, "origin": str(origin),
                  "model": {"name": model_name, "version": version, "label": label, "estimator": estimator},
                  "horizon": config.model.horizon, "target": target, "forced": force,
                  "outputs": {"forecasts": str(forecasts_path), "report": str(report_path),
                              "panel": str(config.panel_path), "ledger": ledger.url}}
        tags = {"forecast.kind": "refresh", "forecast.origin": str(origin), "forecast.data_vintage": vintage,
                "forecast.model_version": f"{model_name}/{version}", "forecast.panel_sha256": digest}
        artifacts = {"forecasts": forecasts_path, "report": report_path}
        run_id = _with_retries("logging the refresh run", lambda: _track(
            config, uri, params=params, metrics=scores, tags=tags, artifacts=artifacts), config.tracking, uri)
        log.info("track: MLflow run %s in experiment %r at %s", run_id, config.tracking.experiment, uri)
        _checkpoint("tracked")

        issue = Issue(vintage=vintage, model=model_name, model_version=version, target=target, model_label=label,
                      estimator=estimator, panel_sha256=digest, forecasts_path=str(forecasts_path),
                      report_path=str(report_path), mlflow_run_id=run_id, forced=force)
        try:
            recorded = ledger.record(issue, frame, panel, before_commit=lambda: _checkpoint("ledger-transaction"))
        except LedgerError as exc:
            raise RefreshError(ExitCode.LEDGER, str(exc)) from None
        except Exception as exc:
            import sqlalchemy as sa

            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise RefreshError(ExitCode.LEDGER, f"ledger {ledger.url}: the write failed and was rolled back, "
                                                    f"nothing was issued: {exc}") from None
            raise
        log.info("ledger: %d forecast(s) issued, %d actual(s) recorded with scores (%s)", recorded.forecasts,
                 recorded.outcomes, ledger.url)
        _checkpoint("committed")
    finally:
        ledger.close()
    message = (f"refreshed: origin {origin} with {label}; {recorded.forecasts} forecast(s) issued, "
               f"{recorded.outcomes} earlier forecast(s) scored; report {report_path}")
    log.info("done: %s", message)
    return RefreshResult("refreshed", message, vintage=vintage, origin=str(origin), model_label=label,
                         forecasts_path=forecasts_path, report_path=report_path, run_id=run_id,
                         forecasts_issued=recorded.forecasts, outcomes_recorded=recorded.outcomes, ledger=ledger.url)


# ----------------------------------------------------------------------------------------
# Demo


DEMO_CONFIG = """\
# Written by the demo: a refresh of the bundled demo data (see deploy/refresh.toml).
[data]
events = {events}
format = "ucdp"
covariates = {covariates}
fill = "error"
coverage_end = {coverage_end}
end = {end}

[model]
name = {name}
horizon = 6

[outputs]
dir = "."

[tracking]
uri = {uri}
"""


def demo_refresh_cycle(out_dir: Path, tracking_uri: str, registered_name: str) -> str:
    """Show a refresh cycle on the demo data; return a printable summary.

    Writes ``out_dir/refresh.toml`` and runs: a first refresh with the data up to the
    second-to-last demo month, then the last month arriving (the ledger grows and the first
    forecasts get scored), then the same again (nothing new).
    """
    import json

    from features.synthetic import SyntheticConfig
    from forecast.cli import DEMO_COVARIATES, DEMO_EVENTS
    from forecast.ledger import Ledger
    from forecast.tracking import resolve_tracking_uri

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    last = pd.Period(SyntheticConfig().end, freq="M")
    path = out_dir / "refresh.toml"
    lines = []

    def cycle(end: pd.Period, title: str) -> RefreshResult:
        values = {"events": DEMO_EVENTS, "covariates": DEMO_COVARIATES, "coverage_end": last, "end": end,
                  "name": registered_name, "uri": resolve_tracking_uri(tracking_uri)}
        # JSON strings are valid TOML basic strings: paths with any characters stay quoted right.
        path.write_text(DEMO_CONFIG.format(**{k: json.dumps(str(v)) for k, v in values.items()}), encoding="utf-8")
        result = run_refresh(path)
        with Ledger.open(load_config(path).ledger, create=False) as ledger:
            counts = ledger.counts()
        lines.append(f"{title}: {result.message}")
        lines.append(f"  ledger: {counts['forecasts']} forecasts, {counts['outcomes']} scored actuals, "
                     f"{counts['refreshes']} refreshes")
        return result

    cycle(last - 1, f"refresh with data up to {last - 1}")
    cycle(last, f"refresh after {last} arrived")
    cycle(last, "refresh again on the same data")
    with Ledger.open(load_config(path).ledger, create=False) as ledger:
        table = ledger.scores(by=("model_version", "horizon"))
    scored = table.loc[table["scored"] > 0]
    if not scored.empty:
        lines.append("  how the first forecasts did (forecast ledger score):")
        lines.extend("    " + line for line in scored.to_string(
            index=False, float_format=lambda v: f"{v:.3f}").splitlines())
    lines.append(f"config: {path}; reports in {out_dir / 'reports'}")
    return "\n".join(lines)
