"""The locked install: requirements-lock.txt pins, with hashes, every package the app and its test
extras need; the pins satisfy pyproject's compatible ranges; make installs from it and checks the
result; and this environment holds exactly the locked versions."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"


def locked() -> dict[str, tuple[str, list[str]]]:
    """Name -> (version, hashes) of every pin in the lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if pin:
            name = canonicalize_name(pin.group(1))
            pins[name] = (pin.group(2), [])
        elif name and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[name][1].append(digest.group(1))
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_pin_has_hashes_and_the_lock_covers_the_app_and_its_test_extras():
    pins = locked()
    assert len(pins) > 100
    assert all(hashes for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}"
        assert requirement.specifier.contains(pins[name][0]), f"{LOCK.name} pins {name} {pins[name][0]}: {requirement}"
    assert "pytest-xdist" in pins


def test_pyproject_keeps_compatible_ranges_not_pins():
    for requirement in declared():
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">=", "<"}, f"{requirement}: a lower bound and an upper bound for library users"


def test_make_installs_from_the_lock_with_hashes_and_checks_what_it_installed():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r $(LOCK)" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert "check-lock" in makefile.split("$(VENV)/.installed:")[1].split("install:")[0]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_this_environment_holds_exactly_the_locked_versions():
    pins = locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {n: (v, installed.get(n)) for n, (v, _) in pins.items() if installed.get(n) != v}
    assert not differ, f"locked vs installed (run `make install`): {differ}"
