"""Does a forecast respond to the other side of the border? One unit's recent counts raised, every model refitted.

Run from the repository root, with ``../shared/data`` beside it::

    .venv/bin/python benchmarks/border.py                                  # nb_glm and global_boost
    .venv/bin/python benchmarks/border.py --models hgb --factors 2,5

It builds the 32-unit Iraq and Syria panel of ``experiments/panels/iraq_syria.toml`` (or
``--spec``), takes the history up to ``--origin`` (default 2016-12, the last month of the Iraq
file), multiplies ``--raise`` (default Deir ez-Zor) counts of the last ``--months`` months by
each factor, refits each model on the raised history and prints the change of every watched
unit's forecast summed over the horizon (default 6 months) against the model refitted on the
history as recorded. ``docs/models.md`` ("Response across the border") quotes its figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.panel import build_panel  # noqa: E402
from forecast.catalog import make_model  # noqa: E402
from forecast.evaluation.backtest import history_at  # noqa: E402
from forecast.panelfile import read_panel_file  # noqa: E402

SPEC = ROOT / "experiments" / "panels" / "iraq_syria.toml"
SHARED = ROOT.parent / "shared" / "data"


def responses(history: pd.DataFrame, model: str, unit: str, months: int, factors: list[float],
              horizon: int) -> dict[float, pd.Series]:
    """Per factor, each unit's relative change of its forecast summed over ``horizon`` months."""
    origin = history["month"].max()

    def total(h: pd.DataFrame) -> pd.Series:
        return make_model(model).fit(h).predict(horizon).groupby("unit")["mean"].sum()

    base = total(history)
    out = {}
    for factor in factors:
        raised = history.copy()
        recent = (raised["unit"] == unit) & (raised["month"] > origin - months)
        raised.loc[recent, "y"] = raised.loc[recent, "y"] * factor
        out[factor] = total(raised) / base - 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC, help="panel file (TOML) to build")
    parser.add_argument("--models", default="nb_glm,global_boost")
    parser.add_argument("--origin", default="2016-12")
    parser.add_argument("--target", default="incidents")
    parser.add_argument("--raise", dest="unit", default="Deir ez-Zor", help="the unit whose counts are raised")
    parser.add_argument("--months", type=int, default=6, help="its last months that are raised")
    parser.add_argument("--factors", default="1.5,2,3")
    parser.add_argument("--horizon", type=int, default=6)
    parser.add_argument("--watch", default="Anbar,Ninewa,Homs,Basra", help="units whose change is printed")
    args = parser.parse_args(argv)
    if args.spec == SPEC and not SHARED.is_dir():
        print(f"border.py: {SHARED} is absent; it holds the event files of {SPEC.name}")
        return 2
    spec, _ = read_panel_file(args.spec)
    panel = build_panel(spec).panel
    history = history_at(panel[["unit", "month", "incidents", "deaths"]].copy(), pd.Period(args.origin, "M"),
                         args.target)
    factors = [float(f) for f in args.factors.split(",")]
    watch = [u.strip() for u in args.watch.split(",")]
    print(f"origin {args.origin}, {args.target}: {args.unit}'s last {args.months} months x factor; "
          f"change of the {args.horizon}-month forecast sum")
    print(f"| model | {args.unit} x | " + " | ".join(watch) + " |")
    print("|---|---:|" + "---:|" * len(watch))
    for model in [m.strip() for m in args.models.split(",")]:
        for factor, change in responses(history, model, args.unit, args.months, factors, args.horizon).items():
            print(f"| `{model}` | {factor:g} | " + " | ".join(f"{100 * change.get(u, float('nan')):+.1f}%" for u in watch)
                  + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
