"""The report job: fit (or load) the model, backtest it against the benchmarks, write the report.

This is the one place in :mod:`forecast.report` that fits or loads models; the renderer only
shows what it is given.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.panel_files import file_sha256, panel_gazetteer, read_panel
from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, make_model
from forecast.evaluation.backtest import (
    BacktestDesign, default_covariates, forecast_at, history_at, run_backtest,
)
from forecast.tracking import load_registered
from forecast.report.charts import match_features
from forecast.report.inputs import ReportError, ReportInputs, dataset_identity, find_previous_report
from forecast.report.render import write_report
from forecast.scenario import load_scenario, run_scenarios_fitted
from forecast.tracking import resolve_tracking_uri

__all__ = ["backtest_design", "git_commit", "make_report", "model_members", "report_backtest"]

#: Months of history before the first backtest origin, so every model has something to fit.
MIN_BACKTEST_HISTORY = 24


def backtest_design(first: pd.Period, origin: pd.Period, horizon: int, months: int):
    """Origins for the report's backtest: the last ``months`` origins whose every horizon is known.

    The last origin is ``origin - horizon``, so horizons 1..H are all scored over the same
    origins and differ only by how far ahead they look. Each model is fitted once, at the
    first origin, and then updated month by month with the new data, keeping its fitted
    parameters (:meth:`Forecaster.update`): refits are what make a backtest slow (one refit
    of the ensemble costs more than all its monthly updates), and this is how a model is used
    between scheduled refits. Returns None when the panel is too short for even one origin
    after :data:`MIN_BACKTEST_HISTORY` months.
    """
    end = origin - horizon
    start = max(end - (months - 1), first + MIN_BACKTEST_HISTORY)
    if months < 1 or end < start:
        return None
    n_origins = len(pd.period_range(start, end, freq="M"))
    return BacktestDesign(start=start, end=end, horizon=horizon, refit_every=n_origins)


def report_backtest(panel: pd.DataFrame, model, name: str, origin: pd.Period, horizon: int, months: int, *,
                    target: str = "incidents", n_jobs: int | None = None, say: Callable[[str], None] | None = None
                    ) -> pd.DataFrame | None:
    """The report's backtest of a fitted ``model`` (a fresh copy of its specification) and the benchmarks.

    Origins from :func:`backtest_design`; None when ``months`` is 0 or the panel is too short.
    Used by the scheduled refresh, whose report then has an accuracy section too.
    """
    design = backtest_design(panel["month"].min(), origin, horizon, months) if months else None
    if design is None:
        return None
    spec = model.get_params()
    factories = {name: (lambda cls=type(model), spec=spec: cls(**spec)),
                 **{b: (lambda b=b: make_model(b)) for b in BENCHMARKS if b != name}}
    covariates = list(getattr(model, "covariates_", None) or default_covariates(panel))
    if say:
        say(f"report: backtesting {name} and {len(factories) - 1} benchmarks over {len(design.origins())} origins")
    jobs = n_jobs if n_jobs is not None else min(2, os.cpu_count() or 1)
    return run_backtest(panel, factories, design, target=target, covariates=covariates, n_jobs=jobs)


def _same_history(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    if not (a["unit"].astype(str).to_numpy() == b["unit"].astype(str).to_numpy()).all():
        return False
    if not (a["month"].astype(str).to_numpy() == b["month"].astype(str).to_numpy()).all():
        return False
    rest = [c for c in a.columns if c not in ("unit", "month")]
    return np.array_equal(a[rest].to_numpy(float), b[rest].to_numpy(float), equal_nan=True)


def git_commit(root: Path | None = None) -> str | None:
    """The commit of the checkout this code runs from, or None outside a git checkout."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or len(commit) != 40:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10, check=False)
    return commit + (" (with uncommitted changes)" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def model_members(fitted) -> dict[str, float] | None:
    """An ensemble's members and weights (``weights_``), or None for a single model."""
    weights = getattr(fitted, "weights_", None)
    if weights is None:
        return None
    items = weights.items() if hasattr(weights, "items") else []
    return {str(k): float(v) for k, v in items} or None


def _load_geojson(path: str | Path, gazetteer) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: GeoJSON file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable GeoJSON file ({exc})") from None
    try:
        match_features(data, gazetteer)  # fail before any model is fitted
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    return data


def make_report(
    panel_path: str | Path,
    *,
    model: str | None = None,
    registry_model: str | None = None,
    tracking_uri: str | None = None,
    horizon: int = 6,
    scenario_files: Sequence[str | Path] = (),
    out: str | Path | None = None,
    pdf: bool = False,
    geojson: str | Path | None = None,
    backtest_months: int = 24,
    gazetteer: str | Path | None = None,
    params: dict | None = None,
    target: str = "incidents",
    issued: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Forecast from a panel with one model, score it, and write the analyst's report.

    Parameters
    ----------
    panel_path
        Panel file (``forecast data build``).
    model, registry_model
        At most one: a model name (fitted here on the whole panel; default
        :data:`forecast.catalog.DEFAULT_MODEL`) or a registry reference ``NAME@alias`` /
        ``NAME/version`` loaded from ``tracking_uri``.
    horizon
        Months ahead.
    scenario_files
        Scenario files (:func:`forecast.scenario.load_scenario`): adds the scenario section.
    out
        Report path (``.html``); default ``reports/YYYY-MM.html`` for the first forecast month.
        Earlier reports in the same folder provide "change since the previous report".
    pdf
        Also print a PDF beside it with headless Chromium.
    geojson
        Admin-1 boundaries to draw instead of the tile grid.
    backtest_months
        Rolling origins of the backtest (0: none). The last origin is ``horizon`` months before
        the data vintage so every horizon has its actual.
    gazetteer, params, target
        Gazetteer CSV; hyperparameters of ``model``; panel column to forecast.
    issued
        Issue date shown (ISO); default today (UTC).
    n_jobs
        Backtest workers (default: 2 where two cores exist); results do not depend on it.
    echo
        Called with one line per step (the CLI passes ``click.echo``).

    Returns
    -------
    dict
        ``html`` (and ``pdf``) paths, and ``previous`` when an earlier report was compared.

    Raises
    ------
    features.errors.DataError, forecast.models.base.ModelError, forecast.tracking.TrackingError
        Bad panel, model, parameter, GeoJSON, scenario file or registry reference; raised
        before anything is written.
    """
    say = echo or (lambda _text: None)
    if model is not None and registry_model is not None:
        raise ReportError("give either a model name or a registry model, not both")
    if int(horizon) != horizon or horizon < 1:
        raise ReportError(f"horizon must be a whole number >= 1, got {horizon!r}")
    if backtest_months < 0:
        raise ReportError(f"backtest_months must be >= 0, got {backtest_months!r}")
    params = dict(params or {})
    if registry_model is not None and params:
        raise ReportError("hyperparameters apply to a model fitted here, not to a registry model")
    gaz = panel_gazetteer(panel_path, gazetteer)
    panel, meta = read_panel(panel_path, gaz)
    origin = pd.Period(meta.get("vintage") or panel["month"].max(), freq="M")
    if origin not in set(panel["month"]):
        origin = panel["month"].max()
    panel = panel.loc[panel["month"] <= origin].reset_index(drop=True)
    default_name = f"{origin + 1}.html" if target == "incidents" else f"{origin + 1}-{target}.html"
    out = Path(out) if out is not None else Path("reports") / default_name
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"{out}: a report is written as .html")
    geo = _load_geojson(geojson, gaz) if geojson is not None else None
    scenarios = []
    if scenario_files:
        scenarios = [load_scenario(path, gaz) for path in scenario_files]

    # The model: fitted here on the whole panel, or loaded from the registry and conditioned on it.
    version_label, run_id = None, None
    if registry_model is not None:
        say(f"report: loading {registry_model} from the model registry")
        registered = load_registered(registry_model, resolve_tracking_uri(tracking_uri))
        fitted = registered.forecaster
        name, version_label, run_id = fitted.name, registered.label, registered.run_id
        covariates = list(fitted.covariates_)
        history = history_at(panel, origin, target, covariates)
        prior = fitted.history_
        if not (set(prior.columns) == set(history.columns) and _same_history(history, prior[list(history.columns)])):
            # Longer (or revised) data than it was fitted on: condition a copy on it, keeping the
            # fitted parameters (as the registry's pyfunc wrapper does), never refit.
            fitted = copy.deepcopy(fitted).update(history)
        spec = fitted.get_params()
        factory = (lambda cls=type(fitted), spec=spec: cls(**spec))
    else:
        name = DEFAULT_MODEL if model in (None, "default") else model
        factory = (lambda: make_model(name, **params))
        fitted = factory()  # a bad name or parameter fails here, before any work
        covariates = default_covariates(panel)
        history = history_at(panel, origin, target, covariates)
    design = backtest_design(panel["month"].min(), origin, horizon, backtest_months) if backtest_months else None
    if backtest_months and design is None:
        say(f"report: the panel is too short for a backtest ({panel['month'].nunique()} months)")

    with ThreadPoolExecutor(max_workers=1) as pool:
        # The final fit runs in a thread while the backtest's worker processes run: the two are
        # independent, and the fit is as long as the model's whole backtest (ensemble: ~10 s).
        if registry_model is None:
            say(f"report: fitting {name} on {panel['month'].min()} .. {origin}")
            final = pool.submit(fitted.fit, history)
        backtest = None
        if design is not None:
            factories = {name: factory, **{b: (lambda b=b: make_model(b)) for b in BENCHMARKS if b != name}}
            say(f"report: backtesting {name} and {len(factories) - 1} benchmarks over {len(design.origins())} "
                f"origins ({design.start} .. {design.end}), horizons 1-{horizon}")
            jobs = n_jobs if n_jobs is not None else min(2, os.cpu_count() or 1)
            backtest = run_backtest(panel, factories, design, target=target, covariates=covariates, n_jobs=jobs,
                                    progress=progress)
        if registry_model is None:
            fitted = final.result()
    forecast = forecast_at(fitted, history, horizon, name=name)

    result = None
    if scenarios:
        say(f"report: projecting {len(scenarios)} scenario file(s)")
        result = run_scenarios_fitted(fitted, history, scenarios, horizon, seed=0, target=target, name=name,
                                      staleness=(meta.get("covariates") or {}).get("staleness"))

    previous = find_previous_report(out.parent, origin, target=target, exclude=out,
                                    dataset=dataset_identity(meta, panel["unit"].unique()))
    provenance = {"members": model_members(fitted), "git_commit": git_commit(), "panel_path": Path(panel_path).name,
                  "panel_sha256": file_sha256(panel_path), "mlflow_run": run_id, "registered": version_label}
    inputs = ReportInputs(
        panel=panel, meta=meta, forecast=forecast, model=name, model_version=version_label, backtest=backtest,
        previous=previous.forecast if previous else None, scenarios=result, gazetteer=gaz, geojson=geo,
        target=target, issued=issued, provenance=provenance,
    )
    paths = write_report(inputs, out, pdf=pdf)
    if previous is not None:
        paths["previous"] = previous.path
    return paths
