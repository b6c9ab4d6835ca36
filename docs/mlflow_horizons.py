"""Make ``docs/mlflow_horizons.png``: the MLflow UI's chart view of an experiment, where the
CRPS-by-horizon curves of its models are drawn over each other.

Runs ``experiments/benchmarks.toml`` into a fresh SQLite store in a temporary folder, starts a
real ``mlflow server`` on a free port of 127.0.0.1, opens the experiment's chart view in
headless Chromium (the system binary, as ``tests/browser.py`` uses it) and saves a screenshot::

    .venv/bin/python docs/mlflow_horizons.py [OUT.png]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import LAUNCH_ARGS, chromium_binary  # noqa: E402 - tests/ is not a package
from mlflow_server import free_port, start, stop, wait_healthy  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "benchmarks.toml"
CHART = "by_horizon/crps"


def run_experiment(store: Path) -> str:
    """The experiment id, after ``forecast experiment run`` into ``store``."""
    uri = f"sqlite:///{store}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "forecast", "experiment", "run", str(EXPERIMENT), "--tracking-uri", uri],
                   check=True, env=env, cwd=store.parent, stdout=subprocess.DEVNULL)
    from mlflow import MlflowClient

    return MlflowClient(uri).get_experiment_by_name(EXPERIMENT.stem).experiment_id


def serve(store: Path, port: int) -> subprocess.Popen:
    proc = start(f"sqlite:///{store}", port)
    if not wait_healthy(proc, port, poll=0.5):
        stop(proc)
        raise SystemExit("mlflow server did not start")
    return proc


def screenshot(url: str, out: Path) -> None:
    """Open the chart view, close the assistant panel, unfold the parent run so that its model
    runs are drawn, and save the page once the horizon charts are there."""
    from playwright.sync_api import sync_playwright

    binary = chromium_binary()
    if binary is None:
        raise SystemExit("no Chromium binary: install chromium or set FORECAST_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url, wait_until="load")
            parent = page.locator(".ag-row").filter(has_text=EXPERIMENT.stem).first
            parent.wait_for(timeout=60_000)
            close = page.get_by_role("button", name="Close")
            if close.count():
                close.first.click()
            # The expander of the parent row: the model runs are nested under it, folded.
            parent.locator("button[data-component-id*='runnamecellrenderer']").first.click()
            page.get_by_text(CHART, exact=True).first.wait_for(timeout=60_000)
            page.wait_for_timeout(3000)  # the charts draw after their data arrives
            page.screenshot(path=str(out))
        finally:
            browser.close()
    from PIL import Image

    with Image.open(out) as image:  # 256 colours keep the PNG small
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def main(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mlflow.db"
        experiment_id = run_experiment(store)
        port = free_port()
        proc = serve(store, port)
        try:
            screenshot(f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?compareRunsMode=CHART", out)
        finally:
            stop(proc)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "mlflow_horizons.png"))
