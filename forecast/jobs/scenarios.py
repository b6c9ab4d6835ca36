"""Scenario job: forecasts under covariate scenario files from one fitted model (``scenario run``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.atomic import write_atomically
from features.panel_files import panel_gazetteer
from forecast.catalog import make_model
from forecast.jobs.common import Echo, JobError, load_panel, origin_in_panel, quiet
from forecast.schema import month_strings
from forecast.scenario import (
    TRACKING_EXPERIMENT,
    ScenarioResult,
    load_scenario,
    run_scenarios,
    summary_text,
    track_scenarios,
)
from forecast.tracking import ExperimentTracker, TrackingError, resolve_tracking_uri

__all__ = ["OUTPUT_FILES", "ScenarioRun", "run_scenario_files"]

#: The files a scenario run writes into its folder.
OUTPUT_FILES = ("forecasts.csv", "differences.csv", "national.csv", "paths.csv")


@dataclass(frozen=True)
class ScenarioRun:
    """What :func:`run_scenario_files` projected, wrote and tracked."""

    result: ScenarioResult
    out_dir: Path
    parent_run_id: str | None = None
    tracking_uri: str | None = None

    def summary(self) -> str:
        lines = [summary_text(self.result),
                 f"written: {', '.join(str(self.out_dir / name) for name in OUTPUT_FILES)}"]
        if self.parent_run_id is not None:
            lines.append(f"MLflow: run {self.parent_run_id} in experiment {TRACKING_EXPERIMENT!r} with one nested "
                         f"run per scenario, at {self.tracking_uri}")
        return "\n".join(lines)


def run_scenario_files(panel_path: str | Path, *, model: str, scenario_files: Sequence[str | Path], out_dir: str | Path,
                       horizon: int = 6, origin: pd.Period | str | None = None, target: str = "incidents",
                       params: Mapping[str, Any] | None = None, gazetteer: str | Path | None = None, seed: int = 0,
                       tracking_uri: str | None = None, track: bool = True, echo: Echo = quiet) -> ScenarioRun:
    """Fit ``model`` once and forecast under every scenario, with differences from the baseline.

    Everything the user can get wrong (scenario files, model, parameters, origin, tracking
    server) is checked before the model is fitted. The four CSV files are written before the
    runs are tracked; a tracking failure then is a :class:`JobError` that says so.
    """
    model_params = dict(params or {})
    gaz = panel_gazetteer(panel_path, gazetteer)
    scenarios = [load_scenario(f, gaz) for f in scenario_files]
    make_model(model, **model_params)
    panel, meta = load_panel(panel_path, gazetteer)
    origin_p = origin_in_panel(panel, meta, origin)
    tracker = ExperimentTracker(TRACKING_EXPERIMENT, resolve_tracking_uri(tracking_uri)) if track else None
    echo(f"scenario: fitting {model} on {panel['month'].min()} .. {origin_p}, "
         f"projecting {len(scenarios)} scenario file(s) {horizon} months ahead")
    result = run_scenarios(panel, model, scenarios, horizon, params=model_params, target=target,
                           origin=origin_p, seed=seed, staleness=(meta.get("covariates") or {}).get("staleness"))
    out_dir = Path(out_dir)
    frames = dict(zip(OUTPUT_FILES, (result.forecasts, result.differences, result.national, result.paths)))
    texts = {name: month_strings(frame) for name, frame in frames.items()}
    write_atomically({out_dir / name: (lambda tmp, t=text: t.to_csv(tmp, index=False)) for name, text in texts.items()})
    if tracker is None:
        return ScenarioRun(result, out_dir)
    panel_cut = panel.loc[panel["month"] <= origin_p].reset_index(drop=True)
    try:
        parent, _ = track_scenarios(result, tracker, params=model_params, panel=panel_cut,
                                    panel_source=str(panel_path), panel_metadata=meta)
    except TrackingError as exc:
        raise JobError(f"{exc} (the outputs in {out_dir} are written; the MLflow run is marked FAILED)") from None
    return ScenarioRun(result, out_dir, parent, tracker.tracking_uri)
