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
	$(PY) -m pip install --quiet -e ".[worker,test,cli]"
	touch $@

lint: install
	$(PY) -m ruff check --no-fix .
	$(PY) -m ruff format --check .

# The tests start a redis-server of their own on a free port (they never touch
# one on 6379), so they need the program; it is installed with apt-get when
# missing. SEQLAB_TEST_REDIS_URL=redis://host:port/db runs them on that
# database instead, which they flush.
test: install lint
	@[ -n "$$SEQLAB_TEST_REDIS_URL" ] || command -v redis-server >/dev/null || \
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
