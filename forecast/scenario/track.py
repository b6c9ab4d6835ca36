"""Scenario runs in MLflow: one parent run for the fitted model, one nested run per scenario."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from forecast.scenario.run import ScenarioResult, summary_text
from forecast.tracking import log_batch

__all__ = ["KIND_SCENARIO", "KIND_SCENARIO_MODEL", "TRACKING_EXPERIMENT", "track_scenarios"]


# ----------------------------------------------------------------------------------------
# Tracking

#: MLflow experiment the scenario runs go to.
TRACKING_EXPERIMENT = "scenarios"
KIND_SCENARIO_MODEL = "scenario-model"
KIND_SCENARIO = "scenario"


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Period columns as ``YYYY-MM`` strings, for CSV files."""
    out = frame.copy()
    for col in ("origin", "month"):
        if col in out:
            out[col] = out[col].astype(str)
    return out


def track_scenarios(result: ScenarioResult, tracker, *, params: dict | None = None, panel: pd.DataFrame | None = None,
                    panel_source: str | None = None, panel_metadata: dict | None = None) -> tuple[str, dict[str, str]]:
    """Log a scenario run to MLflow: the model's run, one nested run per scenario.

    The parent run (``forecast.kind`` = ``scenario-model``) holds the model, its parameters,
    the origin and horizon, the panel as a dataset input and every scenario's forecasts; each
    child run (``forecast.kind`` = ``scenario``) holds its scenario file, its forecasts, paths
    and differences, and metrics per horizon: ``national_mean_h<H>`` (the scenario's national
    forecast) and, for a responsive model, ``national_diff_h<H>``, ``national_diff_q05_h<H>``
    and ``national_diff_q95_h<H>``. Scenario runs never appear in ``forecast experiment
    compare`` (which lists ``backtest`` runs only).

    Parameters
    ----------
    result
        From :func:`run_scenarios`.
    tracker
        A :class:`forecast.tracking.ExperimentTracker`.
    params
        The model's hyperparameters as given.

    Returns
    -------
    (parent run id, {scenario name: child run id})
    """
    horizon = int(result.forecasts["horizon"].max())
    run_params = {"model": result.model, "params": dict(params or {}), "origin": str(result.origin),
                  "horizon": horizon, "target": result.target, "scenarios": [s.name for s in result.scenarios],
                  "baseline": result.baseline, "difference_method": result.method or "none (scenario-blind)"}
    tags = {"forecast.kind": KIND_SCENARIO_MODEL, "forecast.model": result.model,
            "forecast.responsive": str(result.responsive).lower(), "forecast.origin": str(result.origin)}
    children: dict[str, str] = {}
    with tracker.parent_run(f"{result.model} @ {result.origin}", params=run_params, tags=tags, panel=panel,
                            panel_source=panel_source, panel_metadata=panel_metadata) as parent_id:
        client = tracker.client
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _text_frame(result.forecasts).to_csv(tmp / "forecasts.csv", index=False)
            (tmp / "summary.txt").write_text(summary_text(result) + "\n", encoding="utf-8")
            client.log_artifact(parent_id, str(tmp / "forecasts.csv"), "scenarios")
            client.log_artifact(parent_id, str(tmp / "summary.txt"), "scenarios")
        for s in result.scenarios:
            with tracker.child_run(s.name, s.as_dict(), model=result.model) as child:
                metrics: dict[str, float] = {}
                fc = result.forecasts[result.forecasts["scenario"] == s.name]
                for h, total in fc.groupby("horizon")["mean"].sum().items():
                    metrics[f"national_mean_h{int(h)}"] = float(total)
                nat = result.national[result.national["scenario"] == s.name]
                for row in nat.itertuples(index=False):
                    metrics[f"national_diff_h{int(row.horizon)}"] = float(row.mean)
                    metrics[f"national_diff_q05_h{int(row.horizon)}"] = float(row.q05)
                    metrics[f"national_diff_q95_h{int(row.horizon)}"] = float(row.q95)
                child_tags = {"forecast.kind": KIND_SCENARIO, "forecast.scenario": s.name,
                              "forecast.baseline": str(s.name == result.baseline).lower(),
                              "forecast.responsive": str(result.responsive).lower()}
                log_batch(client, child.run_id, metrics=metrics, tags=child_tags)
                with tempfile.TemporaryDirectory() as tmp:
                    tmp = Path(tmp)
                    files = {
                        "forecasts.csv": fc,
                        "paths.csv": result.paths[result.paths["scenario"] == s.name],
                        "differences.csv": result.differences[result.differences["scenario"] == s.name],
                        "national.csv": nat,
                    }
                    for filename, frame in files.items():
                        _text_frame(frame).to_csv(tmp / filename, index=False)
                        client.log_artifact(child.run_id, str(tmp / filename), "scenario")
                if s.path is not None:
                    client.log_artifact(child.run_id, str(s.path), "config")
                children[s.name] = child.run_id
    return parent_id, children
