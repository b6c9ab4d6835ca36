"""One refresh, from configuration to ledger commit (the steps of :mod:`forecast.refresh`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from features.atomic import write_atomically
from features.errors import DataError
from features.panel import build_panel
from features.panel_files import write_panel
from forecast.ledger import Issue, LedgerError
from forecast.refresh.config import RefreshConfig, load_config
from forecast.refresh.errors import log
from forecast.limits import mlflow_http_bounded
from forecast.refresh.guard import checkpoint, hold_lock, with_retries
from forecast.refresh.steps import (
    back_up_ledger,
    fetch_sources,
    forecast_with,
    load_model,
    open_ledger,
    panel_spec,
    past_scores,
    previous_issue,
    track_refresh,
    with_actuals,
)
from forecast.benchmarking import backtest_against_benchmarks, backtest_design, fresh_copy, provenance, used_covariates
from forecast.report import ReportInputs, write_report
from forecast.tracking import panel_digest
from forecast.errors import ConfigError, ExitCode, RefreshError


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


def run_refresh(config: RefreshConfig | str | Path, *, force: bool = False,
                tracking_uri: str | None = None, new_ledger: bool = False) -> RefreshResult:
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
    new_ledger
        Create the ledger when it is missing even though this outputs folder has issued
        forecasts before (without it, that is refused: the history would split).

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
    with hold_lock(config.lock_path), mlflow_http_bounded():
        log.info("lock: %s", config.lock_path)
        checkpoint("locked")
        return _refresh(config, force=force, uri=config.tracking_uri(tracking_uri), new_ledger=new_ledger)


def _refresh(config: RefreshConfig, *, force: bool, uri: str, new_ledger: bool) -> RefreshResult:
    target = config.model.target
    try:
        events, covariates = fetch_sources(config)
        build = build_panel(panel_spec(config, events, covariates))
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
    checkpoint("panel-built")

    ledger = open_ledger(config, new_ledger=new_ledger)
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

        forecaster, model_name, version, label, reg = load_model(config, uri, panel, origin)
        log.info("model: %s", label)
        checkpoint("model-loaded")
        frame = forecast_with(forecaster, reg, panel, origin, config)
        estimator = str(frame["model"].iloc[0])
        national = frame.groupby("month")["mean"].sum()
        log.info("forecast: origin %s, %d units x %d months; national mean %s", origin, frame["unit"].nunique(),
                 config.model.horizon, ", ".join(f"{m} {v:,.1f}" for m, v in national.items()))

        issued_before = ledger.forecasts(target=target)
        past = with_actuals(issued_before.loc[issued_before["origin"] < origin], panel, target)
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
        checkpoint("files-written")

        issued = pd.Timestamp.now(tz="UTC").date().isoformat()
        upto = panel.loc[panel["month"] <= origin]
        months = config.outputs.report_backtest_months
        design = backtest_design(upto["month"].min(), origin, config.model.horizon, months,
                                 units=upto["unit"].nunique()) if months else None
        backtest = backtest_against_benchmarks(
            upto, fresh_copy(forecaster), estimator, design, target=target,
            covariates=list(getattr(forecaster, "covariates_", None) or []) or None, say=log.info,
        ) if design is not None else None
        written = write_report(ReportInputs(
            panel=panel, meta=meta, forecast=frame, model=estimator, model_version=label, past_forecasts=past,
            previous=previous_issue(issued_before, origin, model_name), target=target, issued=issued,
            backtest=backtest, units=config.outputs.report_units, model_covariates=used_covariates(forecaster),
            provenance=provenance(forecaster, config.panel_path, run_id=getattr(reg, "run_id", None), registered=label),
        ), report_path, pdf=config.outputs.pdf)
        log.info("report: %s", ", ".join(str(p) for p in written.values() if p))
        checkpoint("report-written")

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
                "forecast.model_version": f"{model_name}/{version}", "forecast.panel_sha256": digest,
                "forecast.ledger": ledger.url}
        artifacts = {"forecasts": forecasts_path, "report": report_path}
        committed = set(ledger.issues()["mlflow_run_id"].dropna().astype(str))
        run_id = with_retries("logging the refresh run", lambda: track_refresh(
            config, uri, params=params, metrics=scores, tags=tags, artifacts=artifacts, committed=committed),
            config.tracking, uri)
        log.info("track: MLflow run %s in experiment %r at %s", run_id, config.tracking.experiment, uri)
        checkpoint("tracked")

        issue = Issue(vintage=vintage, model=model_name, model_version=version, target=target, model_label=label,
                      estimator=estimator, panel_sha256=digest, forecasts_path=str(forecasts_path),
                      report_path=str(report_path), mlflow_run_id=run_id, forced=force)
        backup = back_up_ledger(config)
        if backup is not None:
            log.info("ledger: backed up to %s (keeping the last %d)", backup, config.outputs.backups)
        try:
            recorded = ledger.record(issue, frame, panel, before_commit=lambda: checkpoint("ledger-transaction"))
        except LedgerError as exc:
            raise RefreshError(ExitCode.LEDGER, str(exc)) from None
        except Exception as exc:
            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise RefreshError(ExitCode.LEDGER, f"ledger {ledger.url}: the write failed and was rolled back, "
                                                    f"nothing was issued: {exc}") from None
            raise
        log.info("ledger: %d forecast(s) issued, %d actual(s) recorded with scores (%s)", recorded.forecasts,
                 recorded.outcomes, ledger.url)
        checkpoint("committed")
    finally:
        ledger.close()
    message = (f"refreshed: origin {origin} with {label}; {recorded.forecasts} forecast(s) issued, "
               f"{recorded.outcomes} earlier forecast(s) scored; report {report_path}")
    log.info("done: %s", message)
    return RefreshResult("refreshed", message, vintage=vintage, origin=str(origin), model_label=label,
                         forecasts_path=forecasts_path, report_path=report_path, run_id=run_id,
                         forecasts_issued=recorded.forecasts, outcomes_recorded=recorded.outcomes, ledger=ledger.url)
