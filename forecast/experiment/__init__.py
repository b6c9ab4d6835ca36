"""Declarative experiments: a TOML file says which data, models and backtest to run.

An experiment file (see ``experiments/*.toml``) has these sections; every default lives in
the dataclasses below and nowhere else:

``[data]``
    Exactly one of ``panel`` (a panel file, ``.parquet`` or ``.csv``) or ``events`` (raw event
    file(s); then ``format``, ``covariates``, ``fill`` and ``coverage_end`` are allowed and the
    panel is built in memory). ``gazetteer`` applies to both. Paths are relative to the
    experiment file's folder.
``[target]``
    ``name`` (``incidents`` or ``deaths``) and optionally ``units``, a subset of units (any
    spelling the gazetteer knows).
``[features]``
    ``covariates``: covariate columns models may use (default every covariate of the panel;
    ``[]`` for none).
``[backtest]``
    ``start``, ``end`` (first and last origin, ``YYYY-MM``), ``step``, ``horizon``,
    ``refit_every``, ``jobs`` (see :class:`forecast.evaluation.backtest.BacktestDesign`), ``backend``
    (``joblib`` or ``dask``) and ``scheduler`` (a Dask scheduler address; default a local
    cluster of ``jobs`` workers).
``[scores]``
    ``metrics`` (names from :data:`forecast.evaluation.scores.METRICS`, default all) and ``benchmarks``
    (model labels to measure skill against; default the models of
    :data:`forecast.catalog.BENCHMARKS` in the experiment).
``[[models]]``
    One table per model: ``name`` (registry name), optional ``label``, ``params`` (fixed
    hyperparameters) and ``grid`` (hyperparameter -> list of values; one model per grid point,
    labelled like ``hgb[learning_rate=0.1]``).

Every mistake is a :class:`ConfigError` naming the file, section and key, raised by
:func:`load_experiment` before any data is read or model fitted (or, for what needs the data,
such as covariate names, by :func:`load_data` before any model is fitted).

The functions are the steps of a run, so a tracker can wrap each model in its own run::

    config = load_experiment("experiments/benchmarks.toml")
    panel, metadata, source = load_data(config)
    outcomes = [run_model(config, panel, label) for label in config.labels]
    table = combined_scores(outcomes, config)
    model = fit_final(config, panel, config.labels[0])
"""

from __future__ import annotations

from forecast.experiment.run import ModelOutcome, combined_scores, fit_final, load_data, model_factories, run_model
from forecast.experiment.spec import (
    BacktestConfig,
    DataConfig,
    ExperimentConfig,
    FeaturesConfig,
    ModelSpec,
    ScoresConfig,
    TargetConfig,
    load_experiment,
)
from forecast.errors import ConfigError

__all__ = [
    "BacktestConfig",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "FeaturesConfig",
    "ModelOutcome",
    "ModelSpec",
    "ScoresConfig",
    "TargetConfig",
    "combined_scores",
    "fit_final",
    "load_data",
    "load_experiment",
    "model_factories",
    "run_model",
]
