"""Cost per training row of the pooled fits of case 2, at 350 and at 3,500 units.

Case 2 of ``run.py`` asks that a backtest's time grow no faster than the number of units.
This script separates the model fits from the backtest around them: it builds the horizon-1
training set of ``hgb`` and the design of ``nb_glm`` (``unit_effects=false``) at the first
origin of case 2 (2018-01), for the synthetic panel at each size, and times the library fits
alone (scikit-learn's ``HistGradientBoostingRegressor``, statsmodels' Poisson GLM and
negative binomial), each in this process with one thread, best of ``--repeat`` runs. A cost
per row that rises with the rows is growth the backtest cannot remove.

    .venv/bin/python benchmarks/rows.py            # 350 and 3,500 units, about a minute
    .venv/bin/python benchmarks/rows.py --units 350,1000,3500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _best(fit, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fit()
        best = min(best, time.perf_counter() - began)
    return best


def measure(n_units: int, repeat: int) -> list[tuple[str, int, float]]:
    import numpy as np
    import pandas as pd
    from statsmodels.discrete.discrete_model import NegativeBinomial
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from threadpoolctl import threadpool_limits

    from features.transforms import direct_targets
    from forecast.evaluation.backtest import history_at
    from run import synthetic_case

    with tempfile.TemporaryDirectory() as tmp:
        panel, models, _, covariates = synthetic_case(n_units, False, Path(tmp))
        history = history_at(panel, pd.Period("2018-01", freq="M"), "incidents", covariates)
        hgb = models["hgb"]()
        hgb.covariates_fitted_ = covariates
        features = hgb._features(history)
        names = [c for c in features.columns if c not in ("unit", "month")]
        target = direct_targets(history, 1).to_numpy()
        keep = ~np.isnan(target)
        X, y = features[names].to_numpy(dtype=float)[keep], target[keep]

        glm = models["nb_glm"]()
        glm.max_horizon = 1  # its horizon-1 fit builds the features; the design is rebuilt below
        glm.fit(history)
        counts_features, counts, months, units = glm._train_
        t = np.arange(glm.first_row, len(counts) - 1)
        design = glm._design(counts_features[t].reshape(len(t) * len(units), -1),
                             months[t + 1].repeat(len(units)), np.tile(np.arange(len(units)), len(t)),
                             len(units), False)
        response = counts[t + 1].reshape(-1)

    rows = []
    with threadpool_limits(1):
        seconds = _best(lambda: hgb._make_regressor().fit(X, y), repeat)
        rows.append(("hgb (HistGradientBoostingRegressor)", len(y), seconds))
        poisson = GLM(response, design, family=families.Poisson())
        seconds = _best(lambda: poisson.fit(maxiter=100), repeat)
        rows.append(("nb_glm: Poisson GLM (IRLS)", len(response), seconds))
        start = np.r_[poisson.fit(maxiter=100).params, 0.5]
        nb = NegativeBinomial(response, design, loglike_method="nb2")
        seconds = _best(lambda: nb.fit(start_params=start, method="newton", maxiter=100, disp=False), repeat)
        rows.append(("nb_glm: negative binomial (Newton)", len(response), seconds))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="350,3500", help="comma-separated unit counts (default 350,3500)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per fit; the best is kept (default 3)")
    args = parser.parse_args(argv)
    sizes = [int(u) for u in args.units.split(",")]
    results = {n: measure(n, args.repeat) for n in sizes}
    print(f"{'fit':40s} {'units':>6s} {'rows':>9s} {'seconds':>8s} {'us/row':>7s}  growth vs {sizes[0]} units")
    for i, (name, _, _) in enumerate(results[sizes[0]]):
        _, rows0, seconds0 = results[sizes[0]][i]
        for n in sizes:
            _, rows, seconds = results[n][i]
            growth = seconds / seconds0
            print(f"{name:40s} {n:6d} {rows:9d} {seconds:8.2f} {seconds / rows * 1e6:7.2f}  "
                  f"{growth:5.2f}x time for {rows / rows0:5.2f}x rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
