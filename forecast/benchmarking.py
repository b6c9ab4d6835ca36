"""A model against the field's benchmarks over the last N origins, and where its numbers come from.

The report job (:mod:`forecast.jobs.report`) and the scheduled refresh (:mod:`forecast.refresh`)
both show a forecast's track record: a rolling-origin backtest of the model that made it against
the benchmarks of :data:`forecast.catalog.BENCHMARKS`, over the months just before the data
vintage. Both also print the same provenance (an ensemble's weights, the git commit, the panel's
SHA-256, the MLflow run). That shared work lives here, on a floor both can import; the report
itself (:mod:`forecast.report`) only renders what it is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.atomic import file_sha256
from forecast.catalog import BENCHMARKS, make_model
from forecast.evaluation.backtest import BacktestDesign, default_covariates, run_backtest
from forecast.tracking.store import git, git_commit

__all__ = ["MAX_UNIT_ORIGINS", "MIN_BACKTEST_HISTORY", "MIN_ORIGINS", "PARALLEL_UNITS", "backtest_against_benchmarks",
           "backtest_design", "code_commit", "fresh_copy", "model_members", "provenance", "used_covariates"]

#: Months of history before the first backtest origin, so every model has something to fit.
MIN_BACKTEST_HISTORY = 24
#: The most unit-origins a track-record backtest forecasts (24 monthly origins up to 1,000 units):
#: on larger panels it runs over fewer origins, so its time and memory stay linear in the units ...
MAX_UNIT_ORIGINS = 24_000
#: ... but over at least this many.
MIN_ORIGINS = 3
#: Up to this many units the backtest runs on two worker processes; above, in the caller's own
#: process: each worker holds its own copy of the panel and of the libraries (~300 MB), which at
#: 10,000 units took the report to 2.4 x the memory of ``forecast predict`` (1.2 x in one process)
#: and at 1,000 units to 4 x.
PARALLEL_UNITS = 500


def backtest_design(first: pd.Period, origin: pd.Period, horizon: int, months: int, *,
                    units: int = 1) -> BacktestDesign | None:
    """Origins of the track-record backtest: the last ``months`` origins whose every horizon is known.

    The last origin is ``origin - horizon``, so horizons 1..H are all scored over the same
    origins and differ only by how far ahead they look. Each model is fitted once, at the
    first origin, and then updated month by month with the new data, keeping its fitted
    parameters (:meth:`Forecaster.update`): refits are what make a backtest slow (one refit
    of the ensemble costs more than all its monthly updates), and this is how a model is used
    between scheduled refits. A panel of many ``units`` gets fewer origins: at most
    :data:`MAX_UNIT_ORIGINS` unit-origins, and at least :data:`MIN_ORIGINS` origins. Returns None
    when ``months`` is 0 or the panel is too short for even one origin after
    :data:`MIN_BACKTEST_HISTORY` months.
    """
    if months >= 1:
        months = min(months, max(MIN_ORIGINS, MAX_UNIT_ORIGINS // max(int(units), 1)))
    end = origin - horizon
    start = max(end - (months - 1), first + MIN_BACKTEST_HISTORY)
    if months < 1 or end < start:
        return None
    n_origins = len(pd.period_range(start, end, freq="M"))
    return BacktestDesign(start=start, end=end, horizon=horizon, refit_every=n_origins)


def backtest_against_benchmarks(panel: pd.DataFrame, factory: Callable[[], object], name: str,
                                design: BacktestDesign, *, target: str = "incidents",
                                covariates: list[str] | None = None, n_jobs: int | None = None,
                                progress: bool = False, say: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Backtest ``factory``'s model (rows labelled ``name``) and every benchmark over ``design``.

    ``factory`` makes a fresh, unfitted copy of the model (for a fitted or registered model:
    its class with its parameters). ``covariates`` default to every covariate of the panel.
    ``n_jobs`` defaults to 2 where two cores exist and the panel has at most
    :data:`PARALLEL_UNITS` units, else 1; results do not depend on it.
    """
    factories = {name: factory, **{b: (lambda b=b: make_model(b)) for b in BENCHMARKS if b != name}}
    if say:
        say(f"report: backtesting {name} and {len(factories) - 1} benchmarks over {len(design.origins())} origins "
            f"({design.start} .. {design.end}), horizons 1-{design.horizon}")
    if n_jobs is None:
        n_jobs = min(2, os.cpu_count() or 1) if panel["unit"].nunique() <= PARALLEL_UNITS else 1
    covariates = list(covariates) if covariates is not None else default_covariates(panel)
    return run_backtest(panel, factories, design, target=target, covariates=covariates, n_jobs=n_jobs,
                        progress=progress)


def fresh_copy(fitted) -> Callable[[], object]:
    """A factory of unfitted copies of a fitted (or registered) model: its class with its parameters."""
    spec = fitted.get_params()
    return lambda cls=type(fitted), spec=spec: cls(**spec)


def used_covariates(fitted) -> tuple[str, ...]:
    """The covariates a fitted model's forecasts can depend on (none for a model that ignores them;
    an ensemble uses them when one of its members does)."""
    members = getattr(fitted, "models_", None)
    if isinstance(members, dict) and members:
        uses = any(getattr(m, "uses_covariates", False) for m in members.values())
    else:
        uses = bool(getattr(fitted, "uses_covariates", False))
    return tuple(getattr(fitted, "covariates_", None) or ()) if uses else ()


def model_members(fitted) -> dict[str, float] | None:
    """An ensemble's members and weights (``weights_``), or None for a single model."""
    weights = getattr(fitted, "weights_", None)
    if weights is None:
        return None
    items = weights.items() if hasattr(weights, "items") else []
    return {str(k): float(v) for k, v in items} or None


def code_commit() -> str | None:
    """The git commit this code runs from, marked when the checkout has uncommitted changes;
    None outside a git checkout."""
    commit = git_commit()
    if commit == "unknown":
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def provenance(fitted, panel_path: str | Path, *, run_id: str | None = None, registered: str | None = None) -> dict:
    """What the report's provenance list shows (:attr:`forecast.report.ReportInputs.provenance`)."""
    return {"members": model_members(fitted), "git_commit": code_commit(), "panel_path": Path(panel_path).name,
            "panel_sha256": file_sha256(panel_path), "mlflow_run": run_id, "registered": registered}
