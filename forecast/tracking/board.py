"""The leaderboard: the backtest runs of one tracked experiment (or of all), best CRPS first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.tracking.store import KIND_BACKTEST, KIND_EXPERIMENT, TrackingError, connect, server_errors

__all__ = ["LEADERBOARD", "compare"]

LEADERBOARD = ("experiment", "run_name", "label", "model", "crps", "crps_skill", "mae", "coverage90", "status",
               "start_time", "run_id")


def compare(experiment_name: str | None, tracking_uri: str) -> pd.DataFrame:
    """Leaderboard of the model runs of one experiment (or of every tracked experiment).

    Reads only: a ``sqlite:///`` URI whose file does not exist is an error naming the URI
    (MLflow would create an empty store there).

    Returns
    -------
    pandas.DataFrame
        :data:`LEADERBOARD` columns, sorted by ``crps`` (runs without a score last).
    """
    client = connect(tracking_uri, existing=True)
    with server_errors(tracking_uri, "reading the leaderboard"):
        if experiment_name is not None:
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                known = [e.name for e in client.search_experiments()]
                raise TrackingError(f"no MLflow experiment {experiment_name!r} at {tracking_uri}; "
                                    f"it has {', '.join(sorted(known)) or 'none'}")
            experiments = [experiment]
        else:
            experiments = client.search_experiments(filter_string=f"tags.`forecast.kind` = '{KIND_EXPERIMENT}'")
        names = {e.experiment_id: e.name for e in experiments}
        rows: list[dict] = []
        token = None
        while names:
            page = client.search_runs(list(names), filter_string=f"tags.`forecast.kind` = '{KIND_BACKTEST}'",
                                      max_results=1000, page_token=token)
            for run in page:
                m, t = run.data.metrics, run.data.tags
                rows.append({
                    "experiment": names[run.info.experiment_id], "run_name": run.info.run_name,
                    "label": t.get("forecast.label"), "model": t.get("forecast.model"),
                    "crps": m.get("crps", np.nan), "crps_skill": m.get("crps_skill", np.nan),
                    "mae": m.get("mae", np.nan), "coverage90": m.get("coverage90", np.nan),
                    "status": run.info.status,
                    "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
                    "run_id": run.info.run_id,
                })
            token = page.token
            if not token:
                break
    out = pd.DataFrame(rows, columns=list(LEADERBOARD))
    return out.sort_values(["crps", "start_time"], na_position="last", kind="stable").reset_index(drop=True)
