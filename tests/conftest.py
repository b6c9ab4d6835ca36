"""Shared fixtures: the bundled gazetteer, test fixtures in the real export layouts, and the
real public data in ../shared/data (tests that need it skip with a reason when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser import browser  # noqa: F401  (one session-wide Chromium for every test module that needs it)
from features.gazetteer import load_gazetteer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


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
def synthetic_panel():
    """A seeded synthetic panel (18 governorates, 2008-01..2016-12) with national covariates."""
    from features.synthetic import SyntheticConfig
    from synthetic_data import synthetic_panel as build

    return build(SyntheticConfig(start="2008-01", end="2016-12"))
