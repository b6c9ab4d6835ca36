# Two set-up commands, on a fresh machine with Python >= 3.11 and make:
#   make demo   create .venv, install, run the main job on the bundled demo data
#   make test   create/install as needed, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/forecast demo

test: install
	$(PY) -m pytest

clean:
	rm -rf outputs .pytest_cache
