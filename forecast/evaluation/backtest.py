"""Rolling-origin backtests (expanding window).

For each origin T from ``start`` to ``end`` every ``step`` months, every model is given the
panel cut at T (rows with month <= T, nothing later: the cut happens here, so no model has to
be trusted not to peek) and predicts T+1..T+H. A model is refitted every ``refit_every``
origins; in between it is only re-conditioned on the longer history with its fitted
parameters (:meth:`Forecaster.update`). Forecasts are joined with the actuals.

How the work is organised (none of it changes a number; ``tests/test_backends.py`` checks
that results are identical whatever the backend and the number of workers):

* A *block* is one model, one refit and the updates that follow it. Models whose fits are
  shared (an ensemble and the members that are also backtested on their own, with the same
  hyperparameters) form one *group*; a *task* is a group's blocks over a run of consecutive
  refits, run in time order in one process.
* Inside a task, fits are memoised (:class:`forecast.models.base.FitCache`): a fit repeated
  on identical data (the ensemble refitting its members; a tree model's calibration
  regressor, which is the final regressor of two refits earlier) is done once. Feature
  matrices are built once for the whole panel and sliced at each origin
  (:class:`features.transforms.PrefixFeatures`); features are prefix-invariant, so the slice
  equals a build on the history cut at the origin.
* Tasks run in parallel with joblib on one machine (``backend="joblib"``) or on a Dask
  cluster (``backend="dask"``); results are sorted afterwards. Models are seeded by their
  hyperparameters (and each unit's name), never by the worker that runs them.
* Fallbacks that models record (``fallbacks_``: a statsmodels fit that did not converge
  within its iteration cap, for instance) are collected per model and origin and attached to
  the result (:func:`fit_notes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.covariates import OBSERVED_KEY
from features.transforms import PrefixFeatures, active_prefix_features, use_prefix_features
from forecast.evaluation.parallel import run_tasks
from forecast.models.base import FitCache, Forecaster, ModelError, active_fit_cache, fit_cache, hold_last_value
from forecast.models.workers import per_unit_jobs
from forecast.schema import FORECAST_COLUMNS, TARGETS, validate_forecast

#: What the ``covariates`` column of a forecast says about covariates at target months.
COVARIATES_HELD = "held last value"
COVARIATES_SCENARIO = "scenario"
COVARIATES_NOT_USED = "not used"
#: Where :func:`run_backtest` runs its tasks.
BACKENDS = ("joblib", "dask")


@dataclass(frozen=True)
class BacktestDesign:
    """Origins ``start``..``end`` every ``step`` months; horizons 1..``horizon``.

    The defaults here are the only ones: experiment files and the CLI take theirs from this class.
    """

    start: pd.Period
    end: pd.Period
    step: int = 1
    horizon: int = 6
    refit_every: int = 12

    def __post_init__(self) -> None:
        for name in ("step", "horizon", "refit_every"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ModelError(f"backtest {name} must be a whole number >= 1, got {value!r}")
        if self.end < self.start:
            raise ModelError(f"backtest end {self.end} is before start {self.start}")

    def origins(self) -> list[pd.Period]:
        return list(pd.period_range(self.start, self.end, freq="M")[:: self.step])


def history_at(panel: pd.DataFrame, origin: pd.Period, target: str = "incidents",
               covariates: Sequence[str] | None = None) -> pd.DataFrame:
    """The panel as a model may see it at ``origin``: months <= origin, target renamed ``y``.

    ``covariates`` selects covariate columns (default: every non-count column).
    """
    if target not in panel:
        raise ModelError(f"target {target!r} is not a panel column; choose one of {', '.join(c for c in TARGETS if c in panel)}")
    covs = default_covariates(panel) if covariates is None else list(covariates)
    unknown = [c for c in covs if c not in panel]
    if unknown:
        raise ModelError(f"covariate(s) {', '.join(unknown)} not in the panel; it has {', '.join(default_covariates(panel)) or 'none'}")
    cut = panel.loc[panel["month"] <= origin, ["unit", "month", target, *covs]]
    if cut.empty:
        raise ModelError(f"no panel rows up to origin {origin}; the panel starts {panel['month'].min()}")
    return as_known_at(cut.rename(columns={target: "y"}).reset_index(drop=True), origin)


def as_known_at(history: pd.DataFrame, origin: pd.Period) -> pd.DataFrame:
    """``history`` with every covariate filled ``linear`` as it was known at ``origin``: after its last
    recorded month up to the origin, that value carried, not the line towards a later record."""
    observed = history.attrs.get(OBSERVED_KEY) or {}
    columns = [c for c in observed if c in history]
    if not columns:
        return history
    history = history.copy()
    for column in columns:
        recorded = [pd.Period(m, freq="M") for m in observed[column]]
        last = max((m for m in recorded if m <= origin), default=None)
        after = history["month"] > last if last is not None else pd.Series(True, index=history.index)
        history[column] = history[column].mask(after).groupby(history["unit"]).ffill()
    return history


def default_covariates(panel: pd.DataFrame) -> list[str]:
    counts = set(TARGETS)
    return [c for c in panel.columns if c not in ("unit", "month") and c not in counts
            and not c.startswith(("incidents_", "deaths_"))]


def forecast_at(model: Forecaster, history: pd.DataFrame, horizon: int, *, name: str | None = None,
                scenario: pd.DataFrame | None = None) -> pd.DataFrame:
    """Predict from a fitted model and label the rows as a forecast frame.

    Models that use covariates at target months get ``scenario`` when given, else the last
    known values held; the ``covariates`` column records which.
    """
    origin = history["month"].max()
    future = None
    used = COVARIATES_NOT_USED
    if model.uses_future_covariates and model.covariates_:
        if scenario is not None:
            future, used = scenario, COVARIATES_SCENARIO
        else:
            future, used = hold_last_value(history, horizon), COVARIATES_HELD
    pred = model.predict(horizon, future)
    pred.insert(1, "origin", origin)
    pred.insert(4, "model", name or model.name)
    pred["covariates"] = used
    return pred


def model_notes(model) -> dict[str, str]:
    """What a fitted model fell back to, by subject (unit, horizon or ``member: subject``)."""
    notes = {**(getattr(model, "history_notes_", None) or {}), **(getattr(model, "fallbacks_", None) or {})}
    for member, fitted in (getattr(model, "models_", None) or {}).items():
        for subject, note in {**(getattr(fitted, "history_notes_", None) or {}),
                              **(getattr(fitted, "fallbacks_", None) or {})}.items():
            notes[f"{member}: {subject}"] = note
    return notes


def _run_block(factory: Callable[[], Forecaster], name: str, panel: pd.DataFrame, origins: list,
               horizon: int, target: str, covariates, paths: pd.DataFrame | None,
               notes: list[tuple] | None = None) -> list[pd.DataFrame]:
    model = factory()
    out = []
    seen: dict[str, str] = {}
    for i, origin in enumerate(origins):
        history = history_at(panel, origin, target, covariates)
        model = model.fit(history) if i == 0 else model.update(history)
        if notes is not None:
            current = model_notes(model)
            for subject, note in current.items():
                if seen.get(subject) != note:
                    notes.append((name, str(origin), "fit" if i == 0 else "update", subject, note))
            seen = current
        scenario = None
        if paths is not None:
            window = paths["month"].between(origin + 1, origin + horizon)
            covs = [c for c in history.columns if c not in ("unit", "month", "y") and c in paths]
            scenario = paths.loc[window, ["unit", "month", *covs]]
        out.append(forecast_at(model, history, horizon, name=name, scenario=scenario))
    return out


@dataclass(frozen=True)
class _Task:
    """Blocks run in one process, in time order: ``models`` (labels) over ``blocks`` (indices)."""

    models: tuple[str, ...]
    blocks: tuple[int, ...]
    share_models: bool
    reuse: bool = True
    #: Processes of the models' per-unit fits (``ets``) in the task; None: their default
    #: (:mod:`forecast.models.workers`). 1 when tasks run in worker processes.
    unit_jobs: int | None = None


def _run_task(task: _Task, factories: dict[str, Callable[[], Forecaster]], panel: pd.DataFrame,
              blocks: list[list], horizon: int, target: str, covariates,
              paths: pd.DataFrame | None) -> tuple[list[pd.DataFrame], list[tuple]]:
    """Run one task; returns its forecast frames and fit notes.

    A task nested in another (an ensemble's own backtest) keeps the enclosing fit cache and
    feature store, so that its fits are shared with the outer backtest's.
    """
    frames: list[pd.DataFrame] = []
    notes: list[tuple] = []
    with contextlib.ExitStack() as stack:
        if active_fit_cache() is None:
            cache = FitCache(models=task.share_models) if task.reuse else FitCache(max_bytes=0)
            stack.enter_context(fit_cache(cache))
        if task.unit_jobs is not None:
            stack.enter_context(per_unit_jobs(task.unit_jobs))
        if active_prefix_features() is None:
            full = history_at(panel, panel["month"].max(), target, covariates) if task.reuse else None
            stack.enter_context(use_prefix_features(PrefixFeatures(full)))
        for b in task.blocks:
            for name in task.models:
                frames += _run_block(factories[name], name, panel, blocks[b], horizon, target, covariates, paths,
                                     notes)
    return frames, notes


def _plan(models: dict[str, Callable[[], Forecaster]], n_blocks: int, n_workers: int, reuse: bool = True) -> list[_Task]:
    """Group models that share fits, split groups into runs of refits, heaviest first."""
    instances = {name: factory() for name, factory in models.items()}
    signature = {name: (type(m).__qualname__, repr(sorted(m.get_params().items()))) for name, m in instances.items()}
    by_signature: dict[tuple, list[str]] = {}
    for name, sig in signature.items():
        by_signature.setdefault(sig, []).append(name)
    parent = {name: name for name in models}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name, model in instances.items():
        for shared in model.shared_fits():
            sig = (type(shared).__qualname__, repr(sorted(shared.get_params().items())))
            for other in by_signature.get(sig, []):
                parent[root(other)] = root(name)
        if len(by_signature[signature[name]]) > 1:  # the same model under two labels
            for other in by_signature[signature[name]]:
                parent[root(other)] = root(name)
    groups: dict[str, list[str]] = {}
    for name in models:  # keeps the caller's order inside a group
        groups.setdefault(root(name), []).append(name)
    # Ensembles last inside a group: their members' fits are then usually in the cache.
    ordered = [sorted(g, key=lambda n: len(instances[n].shared_fits())) for g in groups.values()]
    ordered.sort(key=lambda g: -sum(instances[n].cost for n in g))
    # A group is split into runs of refits when its share of the (roughly estimated) work
    # is more than a worker's: runs in parallel finish sooner, but a group whose models share
    # fits shares fewer of them when split, so it is split only past one and a half workers'
    # share. Groups are not split further to even out the workers' last tasks: two memory-heavy
    # halves of one model running side by side raised the peak memory of 3,500 units by
    # 1.5 GB for no gain in time, and with the longest tasks first the workers already finish
    # within a few seconds of each other.
    total = sum(sum(instances[n].cost for n in g) for g in ordered)
    tasks = []
    costs = []
    for group in ordered:
        share = len(group) > 1 or any(instances[n].shared_fits() for n in group)
        group_cost = sum(instances[n].cost for n in group)
        workers = group_cost * n_workers / total
        chunks = int(np.clip(np.round(workers) if share else np.ceil(workers), 1, n_blocks)) if n_workers > 1 else 1
        for part in np.array_split(np.arange(n_blocks), chunks):
            if len(part):
                tasks.append(_Task(tuple(group), tuple(int(b) for b in part), share, reuse))
                costs.append(group_cost * len(part) / n_blocks)
    # Workers take the next task when they finish one: longest first (a stable sort, so
    # equal costs keep the order above).
    order = sorted(range(len(tasks)), key=lambda i: -costs[i])
    return [tasks[i] for i in order]


def run_backtest(
    panel: pd.DataFrame,
    models: dict[str, Callable[[], Forecaster]],
    design: BacktestDesign,
    *,
    target: str = "incidents",
    covariates: Sequence[str] | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    covariate_paths: pd.DataFrame | None = None,
    backend: str = "joblib",
    scheduler: str | None = None,
    reuse: bool = True,
) -> pd.DataFrame:
    """Run every model over every origin; return forecasts joined with the actual ``y``.

    Parameters
    ----------
    panel
        A validated panel (``unit, month, incidents, deaths, <covariates>``).
    models
        Display name -> zero-argument factory returning a fresh, unfitted model.
    design
        Origins, horizon, refit frequency.
    target, covariates
        Panel column to forecast; covariate columns models may use (default: all).
    n_jobs
        Parallel workers: joblib processes, or the workers of the Dask ``LocalCluster``
        started when ``scheduler`` is None (with a scheduler address, the number of tasks the
        work is split for: give the cluster's worker count). The result does not depend on it.
    covariate_paths
        ``unit, month`` and covariate values at target months for models that use them
        (a scenario, or the realised values for covariates declared known ahead, such as
        announced troop levels). Default: each origin's last known values are held.
    backend
        ``"joblib"`` (processes on this machine) or ``"dask"`` (a Dask cluster, see
        :func:`forecast.evaluation.parallel.run_tasks`). The result does not depend on it.
    scheduler
        Dask scheduler address (``tcp://HOST:PORT``); None starts a local cluster. Only for
        ``backend="dask"``.
    reuse
        Memoise repeated fits and slice features from one build (the default). False does
        every fit and every feature build from scratch: the simple approach, slower and with
        the same results (for benchmarks and checks).

    Returns
    -------
    pandas.DataFrame
        :data:`FORECAST_COLUMNS` plus ``covariates`` and ``y`` (NaN where the target month
        is after the panel's last month), sorted by model, origin, unit, month. What models
        fell back to is in ``attrs["fit_notes"]`` (read it with :func:`fit_notes`).
    """
    origins = design.origins()
    first = panel["month"].min()
    if origins[0] <= first:
        raise ModelError(f"backtest start {origins[0]} leaves no history: the panel starts {first}")
    if origins[-1] > panel["month"].max():
        raise ModelError(f"backtest end {origins[-1]} is after the panel's last month {panel['month'].max()}")
    if backend not in BACKENDS:
        raise ModelError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ModelError(f"a scheduler address ({scheduler}) needs backend 'dask', not {backend!r}")
    blocks = [origins[i : i + design.refit_every] for i in range(0, len(origins), design.refit_every)]
    tasks = _plan(models, len(blocks), n_jobs, reuse)
    if backend == "dask" or (n_jobs > 1 and len(tasks) > 1):
        # Tasks run in worker processes, as many as the cores: per-unit fits stay in them.
        tasks = [dataclasses.replace(t, unit_jobs=1) for t in tasks]
    results: list[pd.DataFrame] = []
    notes: list[tuple] = []
    bar = tqdm(total=len(tasks), desc="backtest", unit="task", disable=not progress)
    args = (models, panel, blocks, design.horizon, target, covariates, covariate_paths)
    for frames, task_notes in run_tasks(_run_task, tasks, args, backend=backend, n_jobs=n_jobs, scheduler=scheduler):
        results.extend(frames)
        notes.extend(task_notes)
        bar.update(1)
    bar.close()
    # Each frame is one model at one origin with its rows sorted by unit and month (predict
    # guarantees it), so ordering the frames orders the rows: sorting millions of rows by
    # model, origin, unit and month instead grew faster than the number of units.
    results.sort(key=lambda frame: (str(frame["model"].iat[0]), frame["origin"].iat[0]))
    forecasts = pd.concat(results, ignore_index=True)
    actual = panel[["unit", "month", target]].rename(columns={target: "y"})
    out = forecasts.merge(actual, on=["unit", "month"], how="left")  # keeps the order of the left rows
    if not _sorted_rows(out):
        out = out.sort_values(["model", "origin", "unit", "month"])
    out = out.reset_index(drop=True)
    out = validate_forecast(out, source="backtest", columns=FORECAST_COLUMNS)
    # Tuples (not a frame) so that pandas can copy and compare attrs along with the result.
    out.attrs["fit_notes"] = tuple(sorted(notes))
    return out


def _sorted_rows(frame: pd.DataFrame) -> bool:
    """Rows in (model, origin, unit, month) order, checked without sorting."""
    keys = []
    for column in ("model", "origin", "unit", "month"):
        values = frame[column]
        keys.append(values.array.asi8 if isinstance(values.dtype, pd.PeriodDtype)
                    else pd.factorize(values, sort=True)[0])
    if len(frame) < 2:
        return True
    # Lexicographic comparison of consecutive rows: the first key that differs decides.
    decided = np.zeros(len(frame) - 1, dtype=bool)
    ascending = np.zeros(len(frame) - 1, dtype=bool)
    for key in keys:
        less, greater = key[:-1] < key[1:], key[:-1] > key[1:]
        ascending |= ~decided & less
        decided |= less | greater
    return bool(ascending.all())


def fit_notes(backtest: pd.DataFrame) -> pd.DataFrame:
    """What the models of a :func:`run_backtest` result fell back to, one row per change.

    Columns ``model, origin, when`` (``fit`` or ``update``), ``subject`` (a unit, a horizon,
    or ``member: subject`` for an ensemble) and ``note`` (what failed and what was used
    instead, e.g. a statsmodels fit that did not converge within its iteration cap). A note
    is listed at the first origin it applies to and again whenever it changes.
    """
    rows = backtest.attrs.get("fit_notes", ())
    return pd.DataFrame(list(rows), columns=["model", "origin", "when", "subject", "note"])


def actual_months_missing(backtest: pd.DataFrame) -> int:
    """Rows whose target month is after the panel's end (no actual to score against)."""
    return int(np.isnan(backtest["y"].to_numpy(dtype=float)).sum())
