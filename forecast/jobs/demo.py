"""The demo: the main job on the bundled synthetic data with the embedded defaults (``make demo``).

Six steps, each a job of :mod:`forecast.jobs` with its printed summary: build the panel, run
``experiments/full.toml`` in MLflow and promote its registered model, forecast with the default
model, project the shipped scenarios, write the analyst's report from the champion, and run a
scheduled-refresh cycle with its forecast ledger.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.panel import EventFile, PanelSpec
from features.synthetic import SyntheticConfig
from forecast.catalog import DEFAULT_MODEL
from forecast.jobs.common import Echo
from forecast.jobs.data import make_panel
from forecast.jobs.experiments import run_experiment
from forecast.jobs.forecasting import predict
from forecast.jobs.scenarios import run_scenario_files
from forecast.ledger import Ledger
from forecast.refresh import RefreshResult, configure_logging, load_config, run_refresh
from forecast.jobs.report import make_report
from forecast.tracking import promote, resolve_tracking_uri

__all__ = ["DEMO_COVARIATES", "DEMO_EVENTS", "DEMO_EXPERIMENT", "DEMO_REGISTERED_MODEL", "DEMO_SCENARIOS",
           "demo_refresh_cycle", "run_demo"]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_EVENTS = REPO_ROOT / "data" / "sample" / "ucdp_ged_demo.csv"
DEMO_COVARIATES = REPO_ROOT / "data" / "sample" / "covariates_demo.csv"
DEMO_EXPERIMENT = REPO_ROOT / "experiments" / "full.toml"
DEMO_REGISTERED_MODEL = "demo-incidents"
#: A model that responds to scenarios (covariates at target months), and the shipped scenarios.
DEMO_SCENARIO_MODEL = "nb_glmx"
DEMO_SCENARIOS = tuple(REPO_ROOT / "experiments" / "scenarios" / f"{name}.toml"
                       for name in ("baseline", "partial_withdrawal", "full_withdrawal", "ops_surge"))


def run_demo(out_dir: str | Path = Path("outputs/demo"), *, tracking_uri: str | None = None,
             echo: Echo = print) -> Path:
    """Run the six demo steps into ``out_dir``, printing each step's summary; return the report's path."""
    out_dir = Path(out_dir)
    echo(f"demo: 1/6 building the panel from {DEMO_EVENTS.relative_to(REPO_ROOT)}")
    # The generator covers every day of its last month, however few events fall in it.
    coverage_end = pd.Period(SyntheticConfig().end, freq="M").end_time.normalize()
    panel = out_dir / "panel.parquet"
    built = make_panel(PanelSpec(events=(EventFile(DEMO_EVENTS, "ucdp"),), covariates=DEMO_COVARIATES,
                                 coverage_end=coverage_end), panel)
    echo(built.summary())

    echo("\ndemo: 2/6 running experiments/full.toml (every model, tracked in MLflow)")
    result = run_experiment(DEMO_EXPERIMENT, tracking_uri=tracking_uri, register_as=DEMO_REGISTERED_MODEL,
                            out_dir=out_dir / "experiment", echo=echo)
    echo(result.summary())
    uri = resolve_tracking_uri(tracking_uri)
    decision = promote(DEMO_REGISTERED_MODEL, result.ref.version, uri)
    echo(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)

    echo(f"\ndemo: 3/6 forecasting the next 6 months with the default model ({DEFAULT_MODEL})")
    echo(predict(panel, model="default", horizon=6, target="incidents", out=out_dir / "forecast.csv").summary())

    echo(f"\ndemo: 4/6 scenario projections with {DEMO_SCENARIO_MODEL} (covariates at target months)")
    echo(run_scenario_files(panel, model=DEMO_SCENARIO_MODEL, scenario_files=DEMO_SCENARIOS, horizon=6,
                            out_dir=out_dir / "scenarios", seed=0, tracking_uri=tracking_uri, echo=echo).summary())

    echo(f"\ndemo: 5/6 the analyst's report from models:/{DEMO_REGISTERED_MODEL}@champion")
    paths = make_report(panel, registry_model=f"{DEMO_REGISTERED_MODEL}@champion", tracking_uri=uri,
                        out=out_dir / "reports" / f"{pd.Period(SyntheticConfig().end, 'M') + 1}.html", echo=echo)
    report_path = paths["html"]

    echo("\ndemo: 6/6 a scheduled-refresh cycle (forecast refresh) with its forecast ledger")
    configure_logging()
    echo(demo_refresh_cycle(out_dir / "refresh", uri, DEMO_REGISTERED_MODEL))
    echo(f"\ndemo: done. The analyst's report: {report_path.resolve()}")
    echo(f"Open it in a browser (it is one self-contained file). The experiment runs: "
         f"mlflow ui --backend-store-uri {uri}")
    return report_path


DEMO_CONFIG = """\
# Written by the demo: a refresh of the bundled demo data (see deploy/refresh.toml).
[data]
events = {events}
format = "ucdp"
covariates = {covariates}
fill = "error"
coverage_end = {coverage_end}
end = {end}

[model]
name = {name}
horizon = 6

[outputs]
dir = "."

[tracking]
uri = {uri}
"""


def demo_refresh_cycle(out_dir: Path, tracking_uri: str, registered_name: str) -> str:
    """Show a refresh cycle on the demo data; return a printable summary.

    Writes ``out_dir/refresh.toml`` and runs: a first refresh with the data up to the
    second-to-last demo month, then the last month arriving (the ledger grows and the first
    forecasts get scored), then the same again (nothing new).
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    last = pd.Period(SyntheticConfig().end, freq="M")
    path = out_dir / "refresh.toml"
    lines = []

    def cycle(end: pd.Period, title: str) -> RefreshResult:
        values = {"events": DEMO_EVENTS, "covariates": DEMO_COVARIATES, "coverage_end": last, "end": end,
                  "name": registered_name, "uri": resolve_tracking_uri(tracking_uri)}
        # JSON strings are valid TOML basic strings: paths with any characters stay quoted right.
        path.write_text(DEMO_CONFIG.format(**{k: json.dumps(str(v)) for k, v in values.items()}), encoding="utf-8")
        result = run_refresh(path)
        with Ledger.open(load_config(path).ledger, create=False, read_only=True) as ledger:
            counts = ledger.counts()
        lines.append(f"{title}: {result.message}")
        lines.append(f"  ledger: {counts['forecasts']} forecasts, {counts['outcomes']} scored actuals, "
                     f"{counts['refreshes']} refreshes")
        return result

    cycle(last - 1, f"refresh with data up to {last - 1}")
    cycle(last, f"refresh after {last} arrived")
    cycle(last, "refresh again on the same data")
    with Ledger.open(load_config(path).ledger, create=False, read_only=True) as ledger:
        table = ledger.scores(by=("model_version", "horizon"))
    scored = table.loc[table["scored"] > 0]
    if not scored.empty:
        lines.append("  how the first forecasts did (forecast ledger score):")
        lines.extend("    " + line for line in scored.to_string(
            index=False, float_format=lambda v: f"{v:.3f}").splitlines())
    lines.append(f"config: {path}; reports in {out_dir / 'reports'}")
    return "\n".join(lines)
