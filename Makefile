# Two set-up commands, on a fresh machine with Python >= 3.11 and make:
#   make demo   create .venv, install the locked versions, run the main job on the bundled demo data
#   make test   create/install as needed, run the whole test suite
# Both install exactly the versions in requirements-lock.txt (with their hashes), then this
# project without its dependencies; the install fails when what is installed differs from
# the lock. `make lock` refreshes the lock (see docs/reliability.md, "A locked install").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements-lock.txt

.PHONY: demo test install lock check-lock clean

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(MAKE) --no-print-directory check-lock
	touch $@

install: $(VENV)/.installed

# pip freeze (less pip, setuptools, wheel and this project) must list exactly the lock's pins.
check-lock:
	@$(PY) -m pip freeze --all --exclude-editable | grep -viE '^(pip|setuptools|wheel)==' \
		| tr 'A-Z_.' 'a-z--' | sort > $(VENV)/freeze.txt
	@grep -E '^[A-Za-z0-9]' $(LOCK) | sed 's/[ ;].*//' | tr 'A-Z_.' 'a-z--' | sort > $(VENV)/lock.txt
	@diff -u $(VENV)/lock.txt $(VENV)/freeze.txt \
		|| (echo "the installed packages differ from $(LOCK) (above: - locked, + installed)"; exit 1)
	@echo "installed: exactly the $$(wc -l < $(VENV)/lock.txt) packages of $(LOCK)"

# Refresh the lock: the newest versions pyproject.toml allows, with hashes (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 --upgrade -o $(LOCK)

demo: install
	$(VENV)/bin/forecast demo

# In parallel over the machine's cores (pytest-xdist); tests that share a server or a file carry
# an xdist_group mark and run on one worker. The 25 slowest tests are listed at the end.
test: install
	$(PY) -m pytest -n auto --dist loadgroup --durations=25

clean:
	rm -rf outputs .pytest_cache
