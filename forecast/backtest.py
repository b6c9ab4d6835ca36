"""Rolling-origin backtests (expanding window).

For each origin T from ``start`` to ``end`` every ``step`` months, every model is given the
panel cut at T (rows with month <= T, nothing later: the cut happens here, so no model has to
be trusted not to peek) and predicts T+1..T+H. A model is refitted every ``refit_every``
origins; in between it is only re-conditioned on the longer history with its fitted
parameters (:meth:`Forecaster.update`). Forecasts are joined with the actuals.

Work is split into independent blocks (one model, one refit and the updates that follow it)
and run in parallel with joblib; results are sorted afterwards, so they do not depend on
the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from forecast.models.base import Forecaster, ModelError, hold_last_value
from forecast.schema import FORECAST_COLUMNS, TARGETS, validate_forecast

#: What the ``covariates`` column of a forecast says about covariates at target months.
COVARIATES_HELD = "held last value"
COVARIATES_SCENARIO = "scenario"
COVARIATES_NOT_USED = "not used"


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
    return cut.rename(columns={target: "y"}).reset_index(drop=True)


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


def _run_block(factory: Callable[[], Forecaster], name: str, panel: pd.DataFrame, origins: list,
               horizon: int, target: str, covariates, paths: pd.DataFrame | None) -> list[pd.DataFrame]:
    model = factory()
    out = []
    for i, origin in enumerate(origins):
        history = history_at(panel, origin, target, covariates)
        model = model.fit(history) if i == 0 else model.update(history)
        scenario = None
        if paths is not None:
            window = paths["month"].between(origin + 1, origin + horizon)
            covs = [c for c in history.columns if c not in ("unit", "month", "y") and c in paths]
            scenario = paths.loc[window, ["unit", "month", *covs]]
        out.append(forecast_at(model, history, horizon, name=name, scenario=scenario))
    return out


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
        joblib workers; the result does not depend on it.
    covariate_paths
        ``unit, month`` and covariate values at target months for models that use them
        (a scenario, or the realised values for covariates declared known ahead, such as
        announced troop levels). Default: each origin's last known values are held.

    Returns
    -------
    pandas.DataFrame
        :data:`FORECAST_COLUMNS` plus ``covariates`` and ``y`` (NaN where the target month
        is after the panel's last month), sorted by model, origin, unit, month.
    """
    origins = design.origins()
    first = panel["month"].min()
    if origins[0] <= first:
        raise ModelError(f"backtest start {origins[0]} leaves no history: the panel starts {first}")
    if origins[-1] > panel["month"].max():
        raise ModelError(f"backtest end {origins[-1]} is after the panel's last month {panel['month'].max()}")
    blocks = [origins[i : i + design.refit_every] for i in range(0, len(origins), design.refit_every)]
    tasks = [(name, block) for name in models for block in blocks]
    bar = tqdm(total=len(tasks) * 1, desc="backtest", unit="fit", disable=not progress)
    results: list[pd.DataFrame] = []
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    jobs = (delayed(_run_block)(models[name], name, panel, block, design.horizon, target, covariates,
                                covariate_paths)
            for name, block in tasks)
    for frames in parallel(jobs):
        results.extend(frames)
        bar.update(1)
    bar.close()
    forecasts = pd.concat(results, ignore_index=True)
    actual = panel[["unit", "month", target]].rename(columns={target: "y"})
    out = forecasts.merge(actual, on=["unit", "month"], how="left")
    out = out.sort_values(["model", "origin", "unit", "month"]).reset_index(drop=True)
    return validate_forecast(out, source="backtest", columns=FORECAST_COLUMNS)


def actual_months_missing(backtest: pd.DataFrame) -> int:
    """Rows whose target month is after the panel's end (no actual to score against)."""
    return int(np.isnan(backtest["y"].to_numpy(dtype=float)).sum())
