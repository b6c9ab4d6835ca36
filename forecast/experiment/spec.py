"""Experiment files: the frozen dataclasses (every default lives here, once) and the reader
that validates a file in full before any data is read or model fitted."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.covariates import FILL_POLICIES
from features.gazetteer import load_gazetteer
from features.sources import FORMATS
from forecast.catalog import BENCHMARKS, MODELS, make_model
from forecast.config import Reader, explicit, field_names, kind, parse_coverage_end, read_toml
from forecast.evaluation.backtest import BacktestDesign
from forecast.evaluation.scores import METRICS
from forecast.models.base import ModelError
from forecast.schema import MAX_HORIZON, TARGETS
from forecast.errors import ConfigError

__all__ = ["BacktestConfig", "ConfigError", "DataConfig", "ExperimentConfig", "FeaturesConfig", "ModelSpec",
           "ScoresConfig", "TargetConfig", "load_experiment"]


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
    """One model to backtest: a registry name with fixed hyperparameters (one grid point).

    Built once, when the file is read (:func:`load_experiment` makes the model once to check
    it): ``params`` are the hyperparameters the file sets, ``full_params`` every
    hyperparameter the model then has, defaults included (what each run logs, once).
    :meth:`make` gives a fresh unfitted model of them for each fit.
    """

    label: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    full_params: dict[str, Any] = field(default_factory=dict)

    def make(self):
        return make_model(self.model, **self.params)

    def logged_params(self) -> dict[str, Any]:
        """What a model's run logs as its parameters: its registry name and every hyperparameter."""
        return {"model": self.model, **self.full_params}


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

    def run_params(self) -> dict[str, Any]:
        """The settings an experiment's parent run logs: those that apply (a panel file's run has
        no ``data.fill``: the panel says how it was filled) and the models' labels. Each model's
        hyperparameters are logged once, on its own run (:meth:`ModelSpec.logged_params`); the
        description is the run's and the experiment's description, not a parameter."""
        out = self.as_dict()
        del out["description"]
        if self.data.panel is not None:
            out["data"] = {k: v for k, v in out["data"].items() if k in ("panel", "gazetteer") and v is not None}
        out["models"] = ", ".join(self.labels)
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
    horizon = r.integer("horizon")
    if horizon is not None and horizon > MAX_HORIZON:
        r.fail("horizon", f"{horizon} months is more than the {MAX_HORIZON} the models forecast")
    return BacktestConfig(start=start, end=end, **explicit(
        step=r.integer("step"), horizon=horizon, refit_every=r.integer("refit_every"),
        jobs=r.integer("jobs"), backend=r.string("backend", ("joblib", "dask")), scheduler=r.string("scheduler")))


def _read_scores(path: Path, table: Any, models: tuple[ModelSpec, ...]) -> ScoresConfig:
    r = Reader(path, "[scores]", table, field_names(ScoresConfig))
    metrics = r.strings("metrics")
    for m in metrics or ():
        if m not in METRICS:
            close = difflib.get_close_matches(m, list(METRICS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            r.fail("metrics", f"unknown metric {m!r}; {hint}choose from {', '.join(METRICS)}")
    if metrics is not None and "crps" not in metrics:
        r.fail("metrics", "must include 'crps': the models are ranked, registered and promoted by it")
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
                made = make_model(name, **full)
            except ModelError as exc:
                r.fail(None, f"{point_label}: {exc}")
            except (TypeError, ValueError) as exc:  # a model that checks values in __init__
                r.fail("params", f"{point_label}: {exc}")
            specs.append(ModelSpec(label=point_label, model=name, params=full, full_params=made.get_params()))
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise ConfigError(f"{path}: [[models]]: two models are labelled {spec.label!r}; give one a label = \"...\"")
        seen.add(spec.label)
    return tuple(specs)
