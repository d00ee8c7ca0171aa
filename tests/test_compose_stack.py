"""docker-compose.yml's stack, built and run for real by ``make compose-up``.

The images are the registry's where they can be pulled, else built from
Debian's packages and a wheelhouse (devtools/compose.py); the worker is the
CPU one (``SEQLAB_WORKER=cpu``: the GPU one needs TensorFlow's image and an
NVIDIA runtime, and is checked by tests/test_compose.py only). Skipped, with
the reason, where no Docker engine can be had (not root, no apt-get, ...).

The stack runs under a compose project and an API port of its own, never
touches the machine's Redis, and is brought down (volumes included) even when
a test fails. An engine the test had to start is stopped at the end; its
data stay in ``SEQLAB_DOCKER_ROOT`` (``.ci/run`` keeps them in
``~/.cache/seqlab/docker``, so that builds reuse their layers).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

from devtools import compose
from seqlab.examples import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
#: Cold, the images take several minutes to build; warm, seconds.
UP_TIMEOUT = 1800
JOB_TIMEOUT = 300

pytestmark = pytest.mark.slow


def request(url, body=None, timeout=10):
    """(status, JSON body) of a GET, or of a POST of ``body``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def make(target, env, timeout, *args):
    """``make TARGET`` as an operator runs it, with this Python for devtools."""
    return subprocess.run(
        ["make", "--no-print-directory", target, f"PYTHON={sys.executable}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


class Stack:
    """The running stack: its settings, and docker and compose commands on it."""

    def __init__(self, settings):
        self.settings = settings
        self.env = {**os.environ, **settings}
        self.project = settings["COMPOSE_PROJECT_NAME"]
        self.api = f"http://127.0.0.1:{settings['API_PORT']}"

    def docker_env(self):
        return {**compose.docker_env(compose.find_engine()), **self.settings}

    def compose(self, *args):
        return compose.compose(
            self.docker_env(), *args, check=False, capture_output=True, text=True
        )

    def states(self):
        ids = self.compose("ps", "-q").stdout.split()
        return compose.container_states(self.docker_env(), ids) if ids else {}

    def left(self, kind):
        """The project's containers, networks or volumes that exist: by compose's
        label, or by the name compose gives them."""
        found = set()
        for where in (f"label=com.docker.compose.project={self.project}", f"name={self.project}_"):
            rv = subprocess.run(
                ["docker", kind, "ls", "--quiet", *(["--all"] if kind == "container" else []),
                 "--filter", where],
                env=self.docker_env(), capture_output=True, text=True, check=True,
            )  # fmt: skip
            found.update(rv.stdout.split())
        return sorted(found)


@pytest.fixture(scope="module")
def stack():
    reason = compose.why_no_engine()
    if reason:
        pytest.skip(f"no Docker engine can be had here: {reason}")
    engine_was_running = compose.find_engine() is not None
    port = free_port()
    stack = Stack(
        {"COMPOSE_PROJECT_NAME": f"seqlabtest{port}", "API_PORT": str(port), "SEQLAB_WORKER": "cpu"}
    )
    started = time.monotonic()
    try:
        rv = make("compose-up", stack.env, UP_TIMEOUT)
        assert rv.returncode == 0, rv.stdout[-3000:] + rv.stderr[-5000:]
        print(f"make compose-up: {time.monotonic() - started:.0f} s", file=sys.stderr)
        yield stack
    finally:
        # Whatever the tests left: down is idempotent.
        if compose.find_engine() is not None:
            stack.compose("--profile", "cpu", "down", "--volumes", "--remove-orphans")
        if not engine_was_running:
            compose.stop_engine()


@pytest.fixture(scope="module")
def seed_job(stack):
    """The seed's many-to-one example, trained through the containerised worker."""
    status, job = request(f"{stack.api}/train", {"example": "many_to_one"})
    assert status == 202, job
    deadline = time.monotonic() + JOB_TIMEOUT
    while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(1)
        job = request(f"{stack.api}/jobs/{job['id']}")[1]
    return job


def test_every_service_is_healthy(stack):
    states = stack.states()
    # Compose names containers <project>_<service>_1 (v1) or <project>-<service>-1 (v2).
    services = sorted(name[len(stack.project) + 1 : -2] for name in states)
    assert services == ["api", "redis", "worker-cpu"], states
    assert set(states.values()) == {"healthy"}, states


def test_healthz(stack):
    status, body = request(f"{stack.api}/healthz")
    assert status == 200, body


def test_params_of_the_seed_many_to_one_model(stack):
    status, body = request(f"{stack.api}/params", EXAMPLES["many_to_one"]["model"])
    assert status == 200, body
    assert body["total_params"] == 170


def test_train_runs_in_the_worker_container(stack, seed_job):
    assert seed_job["status"] == "succeeded", seed_job
    assert seed_job["result"]["keras_params"] == 170


def test_redis_restart_keeps_the_job_record(stack, seed_job):
    rv = stack.compose("restart", "redis")
    assert rv.returncode == 0, rv.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(s == "healthy" for s in stack.states().values()):
            break
        time.sleep(1)
    status, job = request(f"{stack.api}/jobs/{seed_job['id']}")
    assert status == 200, job
    assert job["status"] == "succeeded" and job["result"] == seed_job["result"]


def test_compose_down_leaves_nothing_behind(stack):
    # Last: the stack is gone afterwards.
    rv = make("compose-down", stack.env, 300, "VOLUMES=1")
    assert rv.returncode == 0, rv.stdout + rv.stderr
    for kind in ("container", "network", "volume"):
        assert stack.left(kind) == [], kind
