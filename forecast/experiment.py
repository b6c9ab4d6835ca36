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

import dataclasses
import difflib
import itertools
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.errors import DataError
from forecast.config import ConfigError, Reader, field_names, explicit, kind, parse_coverage_end, parse_month, read_toml
from forecast.evaluation.backtest import BacktestDesign
from forecast.schema import TARGETS

if TYPE_CHECKING:
    from features.gazetteer import Gazetteer

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



# ----------------------------------------------------------------------------------------
# The configuration


@dataclass(frozen=True)
class DataConfig:
    """Where the panel comes from: a panel file, or event files built into a panel in memory."""

    panel: Path | None = None
    events: tuple[Path, ...] = ()
    format: str | None = None
    covariates: Path | None = None
    fill: str = "error"
    gazetteer: Path | None = None
    #: ``YYYY-MM`` (the month's last day) or ``YYYY-MM-DD``: the last day the sources cover.
    coverage_end: str | None = None


@dataclass(frozen=True)
class TargetConfig:
    name: str = "incidents"
    #: Canonical unit names (resolved through the gazetteer); None = every unit of the panel.
    units: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FeaturesConfig:
    #: Covariate columns models may use; None = every covariate of the panel, () = none.
    covariates: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BacktestConfig:
    start: pd.Period
    end: pd.Period
    step: int = BacktestDesign.step
    horizon: int = BacktestDesign.horizon
    refit_every: int = BacktestDesign.refit_every
    jobs: int = 1
    #: Where the fits run: "joblib" (this machine) or "dask"; results do not depend on it.
    backend: str = "joblib"
    #: Dask scheduler address (tcp://HOST:PORT); None starts a local cluster of ``jobs`` workers.
    scheduler: str | None = None

    def design(self) -> BacktestDesign:
        return BacktestDesign(start=self.start, end=self.end, step=self.step, horizon=self.horizon,
                              refit_every=self.refit_every)


@dataclass(frozen=True)
class ScoresConfig:
    #: Metric names; None = every metric of :data:`forecast.evaluation.scores.METRICS`.
    metrics: tuple[str, ...] | None = None
    #: Model labels to measure skill against; None = the experiment's models that are in
    #: :data:`forecast.catalog.BENCHMARKS`.
    benchmarks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One model to backtest: a registry name with fixed hyperparameters (one grid point)."""

    label: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)

    def make(self):
        from forecast.catalog import make_model

        return make_model(self.model, **self.params)


@dataclass(frozen=True)
class ExperimentConfig:
    path: Path
    name: str
    #: The file as written, for logging beside the results.
    text: str
    backtest: BacktestConfig
    models: tuple[ModelSpec, ...]
    data: DataConfig = DataConfig()
    target: TargetConfig = TargetConfig()
    features: FeaturesConfig = FeaturesConfig()
    scores: ScoresConfig = ScoresConfig()
    description: str = ""

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.models]

    def spec(self, label: str) -> ModelSpec:
        for m in self.models:
            if m.label == label:
                return m
        close = difflib.get_close_matches(label, self.labels, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"{self.path}: no model labelled {label!r}; {hint}models: {', '.join(self.labels)}")

    @property
    def benchmarks(self) -> list[str]:
        """Labels skill is measured against (the configured ones, or the default benchmarks present)."""
        if self.scores.benchmarks is not None:
            return list(self.scores.benchmarks)
        from forecast.catalog import BENCHMARKS

        return [m.label for m in self.models if m.model in BENCHMARKS]

    def as_dict(self) -> dict[str, Any]:
        """Plain values (strings, numbers, lists) of every setting, e.g. to log as parameters."""

        def plain(value):
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, (Path, pd.Period)):
                return str(value)
            return value

        out = {"name": self.name, "path": str(self.path), "description": self.description}
        for section in ("data", "target", "features", "backtest", "scores"):
            out[section] = plain(dataclasses.asdict(getattr(self, section)))
        out["models"] = [plain(dataclasses.asdict(m)) for m in self.models]
        return out


# ----------------------------------------------------------------------------------------
# Reading and validating


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "target": TargetConfig,
    "features": FeaturesConfig,
    "backtest": BacktestConfig,
    "scores": ScoresConfig,
}
_TOP_KEYS = (*_SECTIONS, "models", "description")
_MODEL_KEYS = ("name", "label", "params", "grid")
_EVENTS_ONLY = ("format", "covariates", "fill", "coverage_end")




def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment file.

    Every model and grid point is instantiated once (without fitting) so a misspelt model or
    hyperparameter is reported now, not after an hour of backtesting.

    Raises
    ------
    ConfigError
        Naming the file, section and key: unknown keys (with the closest valid key), unknown
        models or hyperparameters, malformed months, missing files, contradictory settings.
    """
    path = Path(path)
    raw, text = read_toml(path, "experiment file")
    base = path.resolve().parent
    top = Reader(path, "top level", raw, _TOP_KEYS)

    data = _read_data(path, raw.get("data", {}), base)
    target = _read_target(path, raw.get("target", {}), data)
    features = _read_features(path, raw.get("features", {}))
    if "backtest" not in raw:
        top.fail(None, "missing [backtest] section: give at least start and end (\"YYYY-MM\")")
    backtest = _read_backtest(path, raw["backtest"])
    models = _read_models(path, raw.get("models"))
    scores = _read_scores(path, raw.get("scores", {}), models)
    description = top.string("description") or ""
    return ExperimentConfig(path=path, name=path.stem, text=text, data=data, target=target,
                            features=features, backtest=backtest, scores=scores, models=models,
                            description=description)


def _read_data(path: Path, table: Any, base: Path) -> DataConfig:
    from features.covariates import FILL_POLICIES
    from features.sources import FORMATS

    r = Reader(path, "[data]", table, field_names(DataConfig))
    has_panel, has_events = "panel" in table, "events" in table
    if has_panel and has_events:
        r.fail(None, "give either panel (a panel file) or events (raw event files), not both")
    if not has_panel and not has_events:
        r.fail(None, "give panel = \"PATH\" (a panel file) or events = \"PATH\" (raw event files)")
    if has_panel:
        stray = [k for k in _EVENTS_ONLY if k in table]
        if stray:
            r.fail(stray[0], "applies only when the panel is built from events; remove it or use events = ...")
        panel = r.file("panel", table["panel"], base, "panel file")
        events: tuple[Path, ...] = ()
    else:
        panel = None
        given = table["events"]
        given = [given] if isinstance(given, str) else given
        if not isinstance(given, list) or not given:
            r.fail("events", f"must be a path or a list of paths, got {table['events']!r}")
        events = tuple(r.file("events", e, base, "event file") for e in given)
    covariates = r.file("covariates", table["covariates"], base, "covariate file") if "covariates" in table else None
    gazetteer = r.file("gazetteer", table["gazetteer"], base, "gazetteer") if "gazetteer" in table else None
    coverage_end = r.string("coverage_end")
    if coverage_end is not None and parse_coverage_end(coverage_end) is None:
        r.fail("coverage_end", f"{coverage_end!r} is not a date; expected \"YYYY-MM\" or \"YYYY-MM-DD\"")
    return DataConfig(**explicit(panel=panel, events=events or None, format=r.string("format", list(FORMATS)),
                             covariates=covariates, fill=r.string("fill", list(FILL_POLICIES)),
                             gazetteer=gazetteer, coverage_end=coverage_end))


def _read_target(path: Path, table: Any, data: DataConfig) -> TargetConfig:
    from features.gazetteer import load_gazetteer

    r = Reader(path, "[target]", table, field_names(TargetConfig))
    name = r.string("name", TARGETS)
    units = r.units("units", lambda: load_gazetteer(data.gazetteer), "leave it out to use every unit")
    return TargetConfig(**explicit(name=name, units=units))


def _read_features(path: Path, table: Any) -> FeaturesConfig:
    r = Reader(path, "[features]", table, field_names(FeaturesConfig))
    return FeaturesConfig(**explicit(covariates=r.strings("covariates")))


def _read_backtest(path: Path, table: Any) -> BacktestConfig:
    r = Reader(path, "[backtest]", table, field_names(BacktestConfig))
    start = r.month("start", required=True)
    end = r.month("end", required=True)
    if end < start:
        r.fail("end", f"{end} is before start {start}; end is the last forecast origin")
    return BacktestConfig(start=start, end=end, **explicit(
        step=r.integer("step"), horizon=r.integer("horizon"), refit_every=r.integer("refit_every"),
        jobs=r.integer("jobs"), backend=r.string("backend", ("joblib", "dask")), scheduler=r.string("scheduler")))


def _read_scores(path: Path, table: Any, models: tuple[ModelSpec, ...]) -> ScoresConfig:
    from forecast.evaluation.scores import METRICS

    r = Reader(path, "[scores]", table, field_names(ScoresConfig))
    metrics = r.strings("metrics")
    for m in metrics or ():
        if m not in METRICS:
            close = difflib.get_close_matches(m, list(METRICS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            r.fail("metrics", f"unknown metric {m!r}; {hint}choose from {', '.join(METRICS)}")
    benchmarks = r.strings("benchmarks")
    labels = [m.label for m in models]
    for b in benchmarks or ():
        if b not in labels:
            close = difflib.get_close_matches(b, labels, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            r.fail("benchmarks", f"{b!r} is not a model label of this experiment; {hint}labels: {', '.join(labels)}")
    return ScoresConfig(**explicit(metrics=metrics, benchmarks=benchmarks))


def _tuples(value: Any) -> Any:
    """TOML arrays become tuples: models take sequence hyperparameters (lags, orders) as tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(_show(v) for v in value) + ")"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _read_models(path: Path, entries: Any) -> tuple[ModelSpec, ...]:
    from forecast.catalog import MODELS, make_model
    from forecast.models.base import ModelError

    if not entries:
        raise ConfigError(f"{path}: no models; add at least one [[models]] table with name = \"...\"")
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: models must be written as [[models]] tables, got {kind(entries)}")
    specs: list[ModelSpec] = []
    for i, entry in enumerate(entries, start=1):
        section = f"[[models]] #{i}" + (f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else "")
        r = Reader(path, section, entry, _MODEL_KEYS)
        name = r.string("name")
        if name is None:
            r.fail("name", f"is required: a registered model, one of {', '.join(sorted(MODELS))}")
        if name not in MODELS:
            close = difflib.get_close_matches(name, list(MODELS), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            r.fail("name", f"unknown model {name!r}; {hint}known models: {', '.join(sorted(MODELS))}")
        label = r.string("label") or name
        params = entry.get("params", {})
        grid = entry.get("grid", {})
        for key, value in (("params", params), ("grid", grid)):
            if not isinstance(value, dict):
                r.fail(key, f"must be a table, e.g. {key} = {{max_iter = 100}}; got {value!r}")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                r.fail("grid", f"{key} must be a non-empty list of values, e.g. {key} = [0.05, 0.1]; got {values!r}")
            if key in params:
                r.fail("grid", f"{key} is in both params and grid; keep it in one")
        params = _tuples(params)
        keys = list(grid)
        for point in itertools.product(*(_tuples(grid[k]) for k in keys)):
            values = dict(zip(keys, point))
            full = {**params, **values}
            point_label = label + ("[" + ",".join(f"{k}={_show(v)}" for k, v in values.items()) + "]" if keys else "")
            try:
                make_model(name, **full)
            except ModelError as exc:
                r.fail(None, f"{point_label}: {exc}")
            except (TypeError, ValueError) as exc:  # a model that checks values in __init__
                r.fail("params", f"{point_label}: {exc}")
            specs.append(ModelSpec(label=point_label, model=name, params=full))
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise ConfigError(f"{path}: [[models]]: two models are labelled {spec.label!r}; give one a label = \"...\"")
        seen.add(spec.label)
    return tuple(specs)


# ----------------------------------------------------------------------------------------
# Running


def load_data(config: ExperimentConfig) -> tuple[pd.DataFrame, dict, str]:
    """The panel the experiment runs on, its metadata and where it came from.

    Reads the panel file, or builds the panel from the event files in memory (nothing is
    written). Keeps only ``[target] units`` when given, and checks that the panel has the
    target, the ``[features]`` covariates and room for the backtest origins.

    Returns
    -------
    panel : pandas.DataFrame
    metadata : dict
        The panel metadata (vintage, sources with SHA-256, covariates, ...); for a build from
        events also ``notes`` (the build's notes, e.g. ignored covariate columns).
    source : str
        The panel file, or the event file(s) joined by ", ".
    """
    from features.covariates import read_covariates
    from features.gazetteer import load_gazetteer
    from features.panel import build_panel, read_panel

    d = config.data
    gaz = load_gazetteer(d.gazetteer)
    if d.panel is not None:
        panel, metadata = read_panel(d.panel, gaz)
        source = str(d.panel)
    else:
        from features.sources import read_events

        results = [read_events(p, format=d.format, gazetteer=gaz) for p in d.events]
        cov, notes = (None, [])
        if d.covariates is not None:
            cov, notes = read_covariates(d.covariates, gaz)
        build = build_panel(results, gaz, coverage_end=parse_coverage_end(d.coverage_end) if d.coverage_end else None,
                            covariates=cov, covariate_source=str(d.covariates) if d.covariates else None,
                            fill=d.fill)
        panel, metadata = build.panel, dict(build.metadata)
        metadata["notes"] = [*build.notes, *notes]
        source = ", ".join(str(p) for p in d.events)

    where = f"{config.path}: "
    if config.target.name not in panel:
        raise ConfigError(f"{where}[target] key 'name': the panel {source} has no column {config.target.name!r}")
    if config.target.units is not None:
        missing = [u for u in config.target.units if u not in set(panel["unit"])]
        if missing:
            raise ConfigError(f"{where}[target] key 'units': {', '.join(missing)} not in the panel {source}")
        panel = panel.loc[panel["unit"].isin(config.target.units)].reset_index(drop=True)
    covariates = _covariate_columns(panel)
    unknown = [c for c in config.features.covariates or () if c not in covariates]
    if unknown:
        close = difflib.get_close_matches(unknown[0], covariates, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{where}[features] key 'covariates': {unknown[0]!r} is not a covariate of the panel {source}; "
                          f"{hint}it has {', '.join(covariates) or 'none'}")
    b = config.backtest
    first, last = panel["month"].min(), panel["month"].max()
    if b.start <= first:
        raise ConfigError(f"{where}[backtest] key 'start': {b.start} leaves no history; the panel starts {first}, "
                          "so start must be later")
    if b.design().origins()[-1] > last:
        raise ConfigError(f"{where}[backtest] key 'end': {b.end} is after the panel's last month {last}")
    return panel, metadata, source


def _covariate_columns(panel: pd.DataFrame) -> list[str]:
    from forecast.evaluation.backtest import default_covariates

    return default_covariates(panel)


def model_factories(config: ExperimentConfig) -> dict[str, Callable[[], Any]]:
    """Label -> zero-argument factory of a fresh unfitted model, as :func:`run_backtest` takes them."""
    return {spec.label: spec.make for spec in config.models}


@dataclass(frozen=True)
class ModelOutcome:
    """The backtest of one model of an experiment."""

    label: str
    #: Registry name.
    model: str
    #: Every hyperparameter set in the file (params and the grid point).
    params: dict[str, Any]
    #: :func:`forecast.evaluation.backtest.run_backtest` output for this model (column ``model`` = label).
    forecasts: pd.DataFrame
    #: :func:`forecast.evaluation.scores.score_table` by model and horizon, with the pooled ``"all"`` row.
    scores: pd.DataFrame
    #: The same scores by model and unit (with an ``"all"`` row).
    scores_by_unit: pd.DataFrame
    #: Wall-clock seconds of the backtest and scoring.
    seconds: float


def run_model(config: ExperimentConfig, panel: pd.DataFrame, label: str, *, progress: bool = False) -> ModelOutcome:
    """Backtest one model of the experiment and score it.

    Parameters
    ----------
    config
        The experiment.
    panel
        From :func:`load_data`.
    label
        One of ``config.labels``.
    progress
        Show the backtest's progress bar.
    """
    from forecast.evaluation.backtest import run_backtest
    from forecast.evaluation.scores import score_table

    spec = config.spec(label)
    began = time.perf_counter()
    forecasts = run_backtest(panel, {spec.label: spec.make}, config.backtest.design(), target=config.target.name,
                             covariates=config.features.covariates, n_jobs=config.backtest.jobs, progress=progress,
                             backend=config.backtest.backend, scheduler=config.backtest.scheduler)
    metrics = list(config.scores.metrics) if config.scores.metrics is not None else None
    scores = score_table(forecasts, metrics=metrics, panel=panel, target=config.target.name)
    by_unit = score_table(forecasts, by=("model", "unit"), metrics=metrics, panel=panel, target=config.target.name)
    return ModelOutcome(label=spec.label, model=spec.model, params=dict(spec.params), forecasts=forecasts,
                        scores=scores, scores_by_unit=by_unit, seconds=time.perf_counter() - began)


def combined_scores(outcomes: Sequence[ModelOutcome], config: ExperimentConfig) -> pd.DataFrame:
    """Every model's scores in one table, with skill against the best benchmark present.

    Skill (``<metric>_skill``, ``<metric>_benchmark``) is added when at least one of the
    experiment's benchmarks is among ``outcomes``; otherwise the table has scores only.
    """
    if not outcomes:
        raise ConfigError(f"{config.path}: no model outcomes to combine")
    table = pd.concat([o.scores for o in outcomes], ignore_index=True)
    present = set(table["model"])
    benchmarks = [b for b in config.benchmarks if b in present]
    if benchmarks:
        from forecast.evaluation.scores import add_skill

        table = add_skill(table, benchmarks)
    return table


def fit_final(config: ExperimentConfig, panel: pd.DataFrame, label: str, *, origin: str | pd.Period | None = None):
    """Fit one model of the experiment on all data up to ``origin`` (default the panel's last month).

    The panel from :func:`load_data` ends at its data vintage (trailing partly covered
    months are left out when it is built), so the default is the vintage. Returns the fitted
    :class:`~forecast.models.base.Forecaster`; ``predict(horizon)`` forecasts the months after it.
    """
    from forecast.evaluation.backtest import history_at

    spec = config.spec(label)
    if origin is None:
        origin = panel["month"].max()
    else:
        parsed = parse_month(origin) if isinstance(origin, str) else pd.Period(origin, freq="M")
        if parsed is None:
            raise ConfigError(f"origin {origin!r} is not a month; expected \"YYYY-MM\"")
        origin = parsed
    history = history_at(panel, origin, config.target.name, config.features.covariates)
    return spec.make().fit(history)
