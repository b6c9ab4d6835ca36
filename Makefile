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

# In parallel over the machine's cores (pytest-xdist); tests that share a server or a file carry
# an xdist_group mark and run on one worker. The 25 slowest tests are listed at the end.
test: install
	$(PY) -m pytest -n auto --dist loadgroup --durations=25

clean:
	rm -rf outputs .pytest_cache
