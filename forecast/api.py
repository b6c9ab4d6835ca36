"""The Python API: every job the command line runs, as a function.

The CLI (:mod:`forecast.cli`), the demo, the scheduled refresh and the tests call these; a
researcher can too::

    from forecast import api

    built = api.build_panel(events=["ged.csv"], covariates="covariates.csv", out="panel.parquet")
    print(built.summary())
    run = api.run_experiment("experiments/full.toml", register_as="iraq-incidents")
    api.promote("iraq-incidents", run.ref.version, api.resolve_tracking_uri())
    api.make_report("panel.parquet", registry_model="iraq-incidents@champion")

Errors a user can get wrong or put right are the types in :data:`USER_ERRORS` (plus
:class:`RefreshError`, which carries the refresh job's exit code); nothing here prints.
"""

from __future__ import annotations

from forecast.catalog import BENCHMARKS, DEFAULT_MODEL, MODELS, make_model
from forecast.evaluation.backtest import BACKENDS, BacktestDesign
from forecast.jobs.common import USER_ERRORS, JobError, load_panel
from forecast.jobs.data import BuiltPanel, SyntheticFiles, build_panel, make_synthetic
from forecast.jobs.demo import run_demo
from forecast.jobs.experiments import ExperimentResult, leaderboard_runs, run_experiment
from forecast.jobs.forecasting import BacktestRun, Prediction, backtest, leaderboard, model_names, predict
from forecast.jobs.gazetteer import GazetteerInit, init_gazetteer
from forecast.jobs.ledger import SCORE_KEYS, issue_rows, issues_table, open_ledger
from forecast.jobs.report import make_report
from forecast.jobs.scenarios import ScenarioRun, run_scenario_files
from forecast.refresh import ExitCode, RefreshError, RefreshResult, configure_logging, run_refresh
from forecast.report import ReportWarning
from forecast.tracking import list_versions, promote, resolve_tracking_uri

__all__ = [
    "BACKENDS", "BENCHMARKS", "DEFAULT_MODEL", "MODELS", "SCORE_KEYS", "USER_ERRORS",
    "BacktestDesign", "BacktestRun", "BuiltPanel", "ExitCode", "ExperimentResult", "GazetteerInit", "JobError",
    "Prediction",
    "RefreshError", "RefreshResult", "ReportWarning", "ScenarioRun", "SyntheticFiles",
    "backtest", "build_panel", "configure_logging", "init_gazetteer", "issue_rows", "issues_table",
    "leaderboard",
    "leaderboard_runs", "list_versions", "load_panel", "make_model", "make_report", "make_synthetic",
    "model_names", "open_ledger", "predict", "promote", "resolve_tracking_uri", "run_demo", "run_experiment",
    "run_refresh", "run_scenario_files",
]
