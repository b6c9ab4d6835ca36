"""Make the MLflow screenshots of ``docs/experiments.md``: which model wins, at which horizon.

Runs an experiment file (default ``experiments/full.toml``) into a fresh SQLite store in a
temporary folder, starts a real ``mlflow server`` on a free port of 127.0.0.1, and saves from
headless Chromium (the system binary, as ``tests/browser.py`` uses it):

``docs/mlflow_runs.png``
    the experiment's runs table as ``forecast experiment run`` links it: the saved leaderboard
    view, every model's run sorted by ``crps_h1`` with the columns ``crps_h1``.. ``crps_h6``, so
    the winner at each horizon is the lowest number of its column;
``docs/mlflow_horizons.png``
    the parent run's page: its description (the winner overall and at each horizon) and the
    artifact ``crps_coverage_by_horizon.png`` (every model's CRPS and coverage against the
    horizon, "horizon (months ahead)" on the x-axis).

::

    .venv/bin/python docs/mlflow_horizons.py [EXPERIMENT.toml] [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import LAUNCH_ARGS, chromium_binary  # noqa: E402 - tests/ is not a package
from mlflow_server import free_port, start, stop, wait_healthy  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "full.toml"
RUNS, HORIZONS = "mlflow_runs.png", "mlflow_horizons.png"


def run_experiment(path: Path, store: Path) -> tuple[str, str]:
    """The experiment id and the parent run id, after running ``path`` into ``store`` in process."""
    from forecast.jobs.experiments import run_experiment as run

    result = run(path, tracking_uri=f"sqlite:///{store}")
    return result.experiment_id, result.parent_run_id


def serve(store: Path, port: int):
    proc = start(f"sqlite:///{store}", port)
    if not wait_healthy(proc, port, poll=0.5):
        stop(proc)
        raise SystemExit("mlflow server did not start")
    return proc


def _shrink(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:  # 256 colours keep the PNG small
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _close_assistant(page) -> None:
    close = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
    if close.count():
        close.first.click()


def screenshots(base: str, experiment_id: str, parent_id: str, out: Path) -> list[Path]:
    """The runs table in the leaderboard view, then the parent run's overview and its plot."""
    from playwright.sync_api import sync_playwright

    from forecast.jobs.experiments import runs_page
    from forecast.tracking.winners import PLOT

    binary = chromium_binary()
    if binary is None:
        raise SystemExit("no Chromium binary: install chromium or set FORECAST_CHROMIUM")
    shots = [out / RUNS, out / HORIZONS]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{base}/{runs_page(experiment_id)}", wait_until="load")
            page.get_by_text("crps_h1", exact=True).first.wait_for(timeout=90_000)
            _close_assistant(page)
            # MLflow's notice that this is a shared view; hiding it leaves the view as it is.
            banner = page.get_by_role("button", name="Hide banner")
            if banner.count():
                banner.first.click()
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots[0]))

            page.set_viewport_size({"width": 1500, "height": 640})
            page.goto(f"{base}/#/experiments/{experiment_id}/runs/{parent_id}/artifacts/{PLOT}", wait_until="load")
            page.locator(f"img[src*='{PLOT}'], img[alt*='{PLOT}']").first.wait_for(timeout=90_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots[1]))
        finally:
            browser.close()
    for shot in shots:
        _shrink(shot)
    return shots


def main(experiment: Path, out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mlflow.db"
        experiment_id, parent_id = run_experiment(experiment, store)
        port = free_port()
        proc = serve(store, port)
        try:
            return screenshots(f"http://127.0.0.1:{port}", experiment_id, parent_id, out)
        finally:
            stop(proc)


if __name__ == "__main__":
    args = sys.argv[1:]
    for shot in main(Path(args[0]) if args else EXPERIMENT, Path(args[1]) if len(args) > 1 else ROOT / "docs"):
        print(shot)
