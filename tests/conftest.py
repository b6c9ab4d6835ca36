"""Shared fixtures: the bundled gazetteer, test fixtures in the real export layouts, the real
public data in ../shared/data (tests that need it skip with a reason when it is absent), seeded
synthetic panels, and the servers the tests start for real, once per session (per xdist worker):
an MLflow server, PostgreSQL (tests/pg.py) and Chromium (tests/browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mlflow_server as server
from browser import browser  # noqa: F401  (one session-wide Chromium for every test module that needs it)
from pg import postgres  # noqa: F401  (one session-wide PostgreSQL server for the ledger and refresh tests)
from features.gazetteer import load_gazetteer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"

#: Test modules whose tests run together on one worker when the suite runs in parallel
#: (``make test``: pytest-xdist with ``--dist loadgroup``), by group: modules that share a server
#: started once per worker, and modules whose module-scoped fixtures cost seconds to minutes to
#: build (on two workers they would be built twice). Every other test goes wherever a worker is free.
XDIST_GROUPS = {
    "test_tracking.py": "tracking",  # every model backtested and fitted once; the MLflow server
    "test_refresh.py": "refresh",  # the registered champion and the refresh cycle, built once
    "test_report.py": "report",  # the report's backtests; Chromium
    "test_report_layout.py": "report",
    "test_ledger.py": "postgres",  # one PostgreSQL server
    "test_ledger_seal.py": "postgres",
    "test_backends.py": "backends",  # the reference backtest and a Dask LocalCluster
    "test_ml.py": "ml",  # the tree models fitted once
    "test_scenario.py": "scenario",
    "test_experiment.py": "experiment",
    "test_synthetic.py": "synthetic",  # the simulated events
    "test_unwritable.py": "unwritable",
}


def pytest_itemcollected(item):
    group = XDIST_GROUPS.get(item.path.name)
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def ledger_key(tmp_path_factory) -> Path:
    """The key that signs ledger anchors (and the anchors of server ledgers) in a folder of the test session,
    not the user's ~/.config; subprocesses inherit it."""
    path = tmp_path_factory.mktemp("ledger-key") / "ledger.key"
    os.environ["FORECAST_LEDGER_KEY_FILE"] = str(path)
    return path


@pytest.fixture(scope="session")
def gazetteer():
    return load_gazetteer()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real public data not available: {SHARED_DATA} is absent (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on a free port for the test session (one per xdist worker), its URI;
    stopped (its process group) afterwards. Tests that kill or restart a server start their own."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = server.free_port()
    proc = server.start(f"sqlite:///{root / 'mlflow.db'}", port, log=root / "server.log", artifacts=root / "artifacts")
    try:
        if not server.wait_healthy(proc, port, poll=0.5):
            tail = (root / "server.log").read_text(errors="replace")[-2000:]
            pytest.skip(f"mlflow server did not start within 60 s on port {port}:\n{tail}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(proc)


@pytest.fixture(scope="session")
def synthetic_panel():
    """A seeded synthetic panel (18 governorates, 2008-01..2016-12) with national covariates."""
    from features.synthetic import SyntheticConfig
    from synthetic_data import synthetic_panel as build

    return build(SyntheticConfig(start="2008-01", end="2016-12"))


@pytest.fixture(scope="session")
def history():
    """The seeded synthetic panel as a model history (unit, month, y, covariates), 2010-01..2016-12.

    For the tests of the statistical models; test files that define their own ``history`` use theirs.
    """
    from synthetic_data import synthetic_history

    return synthetic_history()


@pytest.fixture(scope="session")
def small(history):
    """``history`` of the six governorates of ``synthetic_data.SMALL_UNITS``."""
    from synthetic_data import SMALL_UNITS

    return history[history["unit"].isin(SMALL_UNITS)].reset_index(drop=True)
