import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis
import yaml
from tenants import Tenants

from service import create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_flask_env(monkeypatch):
    # create_app() reads FLASK_* variables; a developer's own must not leak in.
    for key in list(os.environ):
        if key.startswith("FLASK_"):
            monkeypatch.delenv(key)


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tenants():
    """Fresh tenants of a test's own, alice and bob (tests/tenants.py)."""
    return Tenants()


@pytest.fixture(scope="session")
def spec():
    """The committed OpenAPI document, parsed; treat it as read-only."""
    return yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))


# --- real Redis and a real Celery worker, for everything about jobs ---------


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_ready(url, timeout=0.5):
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout).ping()
    except redis.exceptions.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """The URL of a Redis database that this test session may flush.

    ``$SEQLAB_TEST_REDIS_URL`` when set: the caller's explicit choice of a
    server and database (``redis://127.0.0.1:6379/12``), of which only that
    database is flushed. Otherwise a redis-server of the session's own on a
    free port, stopped at the end: the tests never flush a Redis that they
    neither started nor were given, such as a developer's on 6379.
    """
    url = os.environ.get("SEQLAB_TEST_REDIS_URL")
    if url:
        yield url
        return
    with start_redis(tmp_path_factory.mktemp("redis")) as started:
        yield f"{started}/0"


@contextlib.contextmanager
def start_redis(directory, port=None, *extra, bind="127.0.0.1", prefix=()):
    """Run a redis-server of our own; yields its URL without a database.
    ``bind``: its address (a test network's, devtools/netns.py); ``prefix``:
    the argv that runs it on a host of a test network."""
    port = port or free_port()
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    process = subprocess.Popen(
        [*prefix, server, "--port", str(port), "--bind", bind, "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--protected-mode", "no", *extra],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://{bind.split()[0]}:{port}"
    deadline = time.monotonic() + 10
    while not _redis_ready(f"{url}/0"):
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(redis_server):
    """A clean database for this test session (see ``redis_server``)."""
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(scope="session")
def rabbitmq():
    """The machine's RabbitMQ (127.0.0.1:5672, guest) with a virtual host of
    this session's own, removed at the end: ``amqp://`` URL of it. Skips
    where none answers, unless ``SEQLAB_REQUIRE_RABBITMQ`` is set (as
    ``.ci/run`` sets it, having started one)."""
    ctl = shutil.which("rabbitmqctl")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        ctl = None
    if ctl is None:
        reason = "no RabbitMQ answers on 127.0.0.1:5672 (Debian: apt-get install rabbitmq-server)"
        if os.environ.get("SEQLAB_REQUIRE_RABBITMQ"):
            pytest.fail(reason)
        pytest.skip(reason)
    vhost = f"seqlab-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], check=False, capture_output=True)


@pytest.fixture(scope="session")
def queue():
    """A queue of this session's own, so no other worker takes its jobs."""
    return f"test-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def run_worker(redis_url, queue, log, name=None, predictor=False, prefix=(), **env):
    """A real Celery worker process (prefork, one child) on ``queue``, in a
    process group of its own, named ``<name>@<host>`` (``name`` defaults to
    the queue's); yields the Popen once the worker is ready (and, with
    ``predictor``, its predictor: worker/predictor.py). Without, it runs
    none (``SEQLAB_PREDICTOR=0``: predictions take the training queue):
    a predictor loads Keras at the start, CPU the other tests need on a
    2-core machine. ``prefix``: the argv that runs it on a host of a test
    network (devtools/netns.py); ``SEQLAB_BROKER_URL`` in ``env``: RabbitMQ."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SEQLAB_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "SEQLAB_PREDICTOR": "1" if predictor else "0",
        **env,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--loglevel", "info", "--hostname", f"{name or queue}@%h", "--without-mingle",
             "--without-gossip"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        ready = [b" ready.", *([b"predictor: ready"] if predictor else [])]
        while not all(line in log.read_bytes() for line in ready):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def serve_api(log, processes=1, threads=8, host="127.0.0.1", prefix=(), **env):
    """The API under a real gunicorn, started as ``make up`` starts it
    (gthread workers), on a free port; yields its base URL once /healthz
    answers, and stops it (its whole process group) at the end. ``env``:
    variables of its environment (REDIS_URL, SEQLAB_QUEUE, ...); ``host``
    and ``prefix``: its address and the argv that runs it on a host of a
    test network (devtools/netns.py)."""
    from devtools.up import api_argv

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WEB_CONCURRENCY": str(processes), **env}
    argv = [*prefix, *api_argv(sys.executable, host, str(port), str(threads))]
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{base}/healthz"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def worker(redis_url, queue, tmp_path_factory):
    """A real Celery worker process (prefork, one child) on the test queue."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with run_worker(redis_url, queue, log, predictor=True) as process:
        process.log = log  # what it logged, for tests of the logs
        yield process


@pytest.fixture(scope="session")
def tf_queue():
    """The queue of the TensorFlow-backend worker."""
    return f"test-tf-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def tf_worker(redis_url, tf_queue, tmp_path_factory):
    """A worker on the TensorFlow backend: the compose GPU worker's path
    (``make up`` and the ``worker`` fixture run JAX)."""
    log = tmp_path_factory.mktemp("tf-worker") / "worker.log"
    with run_worker(
        redis_url, tf_queue, log, predictor=True, KERAS_BACKEND="tensorflow"
    ) as process:
        yield process


@pytest.fixture
def jobs_app(redis_url, queue):
    return create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})


@pytest.fixture
def jobs_client(jobs_app, worker):
    return jobs_app.test_client()


@pytest.fixture(params=["jax", "tensorflow"])
def backend_client(request, redis_url):
    """A client whose jobs train on one backend, then the other: the tests
    that take it run on both (a worker of each kind)."""
    if request.param == "jax":
        queue = request.getfixturevalue("queue")
        request.getfixturevalue("worker")
    else:
        queue = request.getfixturevalue("tf_queue")
        request.getfixturevalue("tf_worker")
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
    client = app.test_client()
    client.backend = request.param
    return client


@pytest.fixture
def idle_app(redis_url):
    """An app on the test Redis whose queue no worker serves: the jobs it
    queues stay as the test puts them (the test moves them with the store)."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    return create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
