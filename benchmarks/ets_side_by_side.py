"""ETS per unit: statsmodels (what ``ets`` uses) against statsforecast, on the same series.

Run from the repository root (statsforecast is not a dependency: ``pip install statsforecast``)::

    .venv/bin/python benchmarks/ets_side_by_side.py PANEL.parquet [--gazetteer G.csv] [--units 100]

Both fit additive-error, damped additive-trend, non-seasonal ETS to ``log1p`` of each unit's
monthly counts (units with at least one event), by maximum likelihood, and forecast 6 months.
Prints the fit time per unit of each (after one warm-up fit, which for statsforecast includes
numba's compilation) and how far apart the point forecasts are, on the log scale and in counts.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from features.gazetteer import load_gazetteer
from features.panel_files import read_panel
from forecast.models.baselines import count_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("panel")
    parser.add_argument("--gazetteer", default=None)
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args()
    from statsforecast.models import AutoETS
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    panel = read_panel(args.panel, load_gazetteer(args.gazetteer) if args.gazetteer else None)[0]
    history = panel[["unit", "month", "incidents"]].rename(columns={"incidents": "y"})
    counts, units, _ = count_matrix(history)
    z = np.log1p(counts[:, counts.any(axis=0)][:, : args.units])
    AutoETS(season_length=1, model="AAN", damped=True).fit(z[:, 0])  # warm-up: numba compiles
    sm, sf, t_sm, t_sf = [], [], 0.0, 0.0
    for j in range(z.shape[1]):
        began = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ETSModel(z[:, j], error="add", trend="add", damped_trend=True, seasonal=None).fit(disp=False,
                                                                                                 maxiter=200)
        sm.append(res.forecast(6))
        t_sm += time.process_time() - began
        began = time.process_time()
        sf.append(AutoETS(season_length=1, model="AAN", damped=True).fit(z[:, j]).predict(6)["mean"])
        t_sf += time.process_time() - began
    sm, sf = np.asarray(sm), np.asarray(sf)
    log_diff = np.abs(sm - sf)
    count_diff = np.abs(np.expm1(sm) - np.expm1(sf))
    rel = count_diff / np.maximum(np.expm1(sm), 1.0)
    n = z.shape[1]
    print(f"{n} series x {z.shape[0]} months")
    print(f"fit + forecast CPU per unit: statsmodels {1000 * t_sm / n:.1f} ms, statsforecast {1000 * t_sf / n:.1f} ms "
          f"({t_sm / max(t_sf, 1e-9):.1f}x)")
    print(f"point forecast, log1p scale: median |diff| {np.median(log_diff):.3f}, max {log_diff.max():.3f}")
    print(f"point forecast, counts: median relative diff {np.median(rel):.1%}, 90th percentile "
          f"{np.quantile(rel, 0.9):.1%}, max {rel.max():.1%}")


if __name__ == "__main__":
    main()
