"""The steps of a refresh, one function each; :mod:`forecast.refresh.job` runs them in order."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from features.download import fetch
from features.panel import EventFile, PanelSpec
from features.sources import EventFilters
from forecast.catalog import make_model
from forecast.config import parse_coverage_end
from forecast.evaluation.backtest import forecast_at, history_at
from forecast.ledger import Ledger, LedgerError, score_rows, sqlite_path
from forecast.ledger.integrity import backup_sqlite, rotate_backups
from forecast.models.base import ModelError
from forecast.refresh.config import RefreshConfig, Source
from forecast.refresh.errors import ExitCode, RefreshError, log
from forecast.refresh.guard import with_retries
from forecast.schema import FORECAST_COLUMNS, validate_forecast
from forecast.tracking import (
    ForecasterModel,
    NoSuchModel,
    connect,
    default_artifact_location,
    flatten_params,
    load_registered,
    log_batch,
    to_periods,
    to_strings,
)


def fetch_sources(config: RefreshConfig) -> tuple[list[Path], Path | None]:
    """Local paths of the event and covariate sources, downloading (and checking) URL sources."""
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


def panel_spec(config: RefreshConfig, events: list[Path], covariates: Path | None) -> PanelSpec:
    """The panel the refresh builds, as ``forecast data build`` would from the same files and options."""
    d = config.data
    start = pd.Period(d.start, freq="M") if d.start else None
    end = pd.Period(d.end, freq="M") if d.end else None
    filters = EventFilters(start=start.start_time if start else None,
                           end=end.end_time.normalize() if end else None, event_types=d.event_types, actor=d.actor)
    formats = {s.path: s.format for s in d.events}
    coverage_end = parse_coverage_end(d.coverage_end) if d.coverage_end else None
    if end is not None:
        # Up to `end` the sources are taken as complete: the run sees the data as it stood then.
        cap = end.end_time.normalize()
        coverage_end = cap if coverage_end is None else min(coverage_end, cap)
    return PanelSpec(events=tuple(EventFile(p, formats.get(p) or d.format) for p in events), gazetteer=d.gazetteer,
                     covariates=covariates, fill=d.fill, filters=filters, coverage_end=coverage_end)


def load_model(config: RefreshConfig, uri: str, panel: pd.DataFrame, origin: pd.Period):
    """(forecaster, ledger model name, version, label, note); fallback when there is no champion."""
    ref = f"{config.model.name}@{config.model.alias}"
    try:
        reg = with_retries(f"loading models:/{ref}", lambda: load_registered(ref, uri), config.tracking, uri)
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


def forecast_with(forecaster, reg, panel: pd.DataFrame, origin: pd.Period, config: RefreshConfig) -> pd.DataFrame:
    """The validated forecast frame of ``forecaster`` from ``origin`` (served as the registry serves it)."""
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


def with_actuals(past: pd.DataFrame, panel: pd.DataFrame, target: str) -> pd.DataFrame:
    """Ledger forecasts with ``y`` from this panel where it has the month (the freshest actual)."""
    if past.empty:
        return past
    actual = panel[["unit", "month", target]].rename(columns={target: "_y"})
    merged = past.merge(actual, on=["unit", "month"], how="left")
    merged["y"] = merged["_y"].astype(float).where(merged["_y"].notna(), merged["y"])
    return merged.drop(columns="_y")


def past_scores(past: pd.DataFrame) -> dict[str, float]:
    """Scores of the past forecasts that have an actual, pooled and per horizon (MLflow metric names)."""
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


def track_refresh(config: RefreshConfig, uri: str, *, params: dict, metrics: dict, tags: dict,
           artifacts: dict[str, Path]) -> str:
    """Log the refresh as one MLflow run; returns its id."""
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


def previous_issue(ledger_frame: pd.DataFrame, origin: pd.Period, model: str) -> pd.DataFrame | None:
    """The previous issue's forecasts (latest origin before this one; this model's when it has one)."""
    earlier = ledger_frame.loc[ledger_frame["origin"] < origin]
    if earlier.empty:
        return None
    mine = earlier.loc[earlier["model"] == model]
    pool = mine if not mine.empty else earlier
    last = pool.loc[pool["origin"] == pool["origin"].max()]
    last = last.loc[last["model_version"] == last["model_version"].iloc[-1]]
    return last[list(FORECAST_COLUMNS)].reset_index(drop=True)


def new_ledger_refusal(config: RefreshConfig) -> str | None:
    """Why a missing SQLite ledger must not be created now, or None on an outputs folder's first refresh.

    A new, empty ledger beside an outputs folder that has issued forecasts before would split
    the history silently (a moved or deleted ledger, a typo in ``[outputs] ledger``).
    """
    path = sqlite_path(config.ledger)
    if path is None or path.exists():
        return None
    if not path.parent.exists() and path.parent.resolve() != config.out_dir.resolve():
        return (f"no ledger at {path}, and its folder {path.parent} does not exist: check [outputs] ledger in "
                f"{config.path} (a typo would start a second, empty history), or pass --new-ledger to start a "
                "new ledger there")
    issued = sorted((config.outputs.dir / "forecasts").glob("*.csv"))
    if issued:
        return (f"no ledger at {path}, but {issued[0].parent} holds {len(issued)} forecast file(s) issued "
                "before: the ledger that recorded them is missing (moved, deleted, or [outputs] ledger changed). "
                f"Restore it (backups: {path.name}.*.backup beside it), fix [outputs] ledger in {config.path}, "
                "or pass --new-ledger to start a new history")
    return None


def open_ledger(config: RefreshConfig, *, new_ledger: bool = False) -> Ledger:
    """The configured ledger, verified; or :attr:`ExitCode.LEDGER` naming why it cannot be used.

    A missing SQLite ledger is created only on the first refresh of an outputs folder, or with
    ``new_ledger``; an empty, damaged or foreign file is refused and left as it is.
    """
    refusal = None if new_ledger else new_ledger_refusal(config)
    if refusal is not None:
        raise RefreshError(ExitCode.LEDGER, refusal)
    try:
        return Ledger.open(config.ledger)
    except LedgerError as exc:
        raise RefreshError(ExitCode.LEDGER, str(exc)) from None


def back_up_ledger(config: RefreshConfig) -> Path | None:
    """A backup of a SQLite ledger before the refresh writes to it, keeping ``[outputs] backups`` of them."""
    path = sqlite_path(config.ledger)
    if path is None or config.outputs.backups == 0 or not path.exists():
        return None
    try:
        backup = backup_sqlite(path)
        rotate_backups(path, config.outputs.backups)
    except LedgerError as exc:
        raise RefreshError(ExitCode.LEDGER, str(exc)) from None
    return backup
