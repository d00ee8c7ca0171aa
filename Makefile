# seqlab developer commands. `make test` is what CI runs (see .ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint bench clean

install: $(VENV)/.installed

# Reinstall whenever the dependency list changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[worker,test]"
	touch $@

lint: install
	$(PY) -m ruff check --no-fix .
	$(PY) -m ruff format --check .

test: install lint
	$(PY) -m pytest

# wrk is the load generator of the HTTP benchmark (Debian package `wrk`).
bench: install
	@command -v wrk >/dev/null || apt-get install -y -q wrk || \
		{ echo "install wrk (apt-get install wrk) and rerun"; exit 1; }
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
