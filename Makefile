# seqlab developer commands. `make test` is what CI runs (see .ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint bench up compose-up compose-down clean

install: $(VENV)/.installed

# Reinstall whenever the dependency list or the pinned versions change. The
# pins (docker/constraints.txt, the images' versions) keep a fresh clone on
# the versions the tests pass with: a new release of a dependency (ml_dtypes
# 0.7 converts integers past int64 to bfloat16 where 0.6 raised) changes
# what Keras accepts, and so what the API must refuse.
$(VENV)/.installed: pyproject.toml docker/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint docker/constraints.txt -e ".[worker,test,cli]"
	touch $@

lint: install
	$(PY) -m ruff check --no-fix .
	$(PY) -m ruff format --check .

# The tests start a redis-server of their own on a free port (they never touch
# one on 6379), so they need the program; it is installed with apt-get when
# missing. SEQLAB_TEST_REDIS_URL=redis://host:port/db runs them on that
# database instead, which they flush.
#
# The broker tests (tests/test_hosts.py) also run on RabbitMQ, on a virtual
# host of their own on 127.0.0.1:5672 (guest): it is started here when it is
# installed and not running, and its tests skip without it (.ci/run installs
# it and makes them fail instead).
test: install lint
	@[ -n "$$SEQLAB_TEST_REDIS_URL" ] || command -v redis-server >/dev/null || \
		apt-get install -y -q redis-server >/dev/null || \
		{ echo "install redis-server (apt-get install redis-server) and rerun"; exit 1; }
	@$(PY) -m devtools.rabbitmq
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

# docker-compose.yml's stack, detached, with the API on API_PORT (default
# 8000): the registry's images where they can be had, else images built from
# Debian's packages and a wheelhouse; the CPU worker where Docker has no
# NVIDIA runtime. Starts a Docker engine of its own (as root) when none
# answers. `make compose-down VOLUMES=1` also drops the Redis volume (the job
# records). devtools/compose.py needs only the standard library (and pip for
# the wheelhouse): the project's environment where it exists, else python3.
COMPOSE_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))

compose-up:
	$(COMPOSE_PY) -m devtools.compose up

compose-down:
	$(COMPOSE_PY) -m devtools.compose down $(if $(VOLUMES),--volumes)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
