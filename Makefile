# seqlab developer commands. `make test` is what CI runs (see .ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint bench up clean

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

# The tests start their own Redis server when none answers on 127.0.0.1:6379;
# they need the redis-server program for that.
test: install lint
	@command -v redis-server >/dev/null || redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || \
		apt-get install -y -q redis-server >/dev/null || \
		{ echo "install redis-server (apt-get install redis-server) and rerun"; exit 1; }
	$(PY) -m pytest

# wrk is the load generator of the HTTP benchmark (Debian package `wrk`).
bench: install
	@command -v wrk >/dev/null || apt-get install -y -q wrk || \
		{ echo "install wrk (apt-get install wrk) and rerun"; exit 1; }
	$(PY) -m bench

# The API (port 8000), a worker and, if none answers at REDIS_URL, a Redis
# server, in the foreground until Ctrl-C (devtools/up.py).
up: install
	$(PY) -m devtools.up

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
