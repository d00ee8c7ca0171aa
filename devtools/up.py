"""``make up``: the API, a training worker and Redis on this machine, without Docker.

Run as ``python -m devtools.up`` from the repository root (``make up`` installs
the project first). It uses the Redis at ``REDIS_URL`` when one answers, or
else starts a ``redis-server`` of its own there, whose append-only file lives
in ``.seqlab/redis/<port>/`` of the checkout (ignored by git;
``SEQLAB_REDIS_DIR`` names another directory), so that jobs outlive a
restart of ``make up``; then runs
the API under gunicorn on ``API_HOST``:``API_PORT`` (or ``PORT``; default
127.0.0.1:8000; ``gthread`` workers: ``WEB_CONCURRENCY`` processes of
``WEB_THREADS`` threads) and one Celery worker, each in its own process group, in
the foreground: their output is interleaved, each line prefixed with its
program's name.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything: the API and the worker
first (the worker with a warm shutdown that lets a running job end), killed
after ``STOP_TIMEOUT`` seconds or at a second Ctrl-C, then Redis.

Each part is ready once it answers: Redis a PING, the API ``GET /healthz``,
the worker with its first heartbeat (:mod:`jobs.presence`: the record of
its node names its pid). A part that has been ready and dies is started
again, the rest left running (a ``kill -9`` of the worker once took the API
down with it): after ``RESTART_FIRST`` seconds, doubling at each death up to
``RESTART_MAX`` while it keeps dying, back to the first once it has run
``RESTART_STABLE`` seconds. A part that dies before it was ever ready, or is
not ready ``READY_TIMEOUT`` seconds after its first start, could not start
(a port taken, a bad setting): then the others are stopped and the exit
status is 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import redis

from jobs import presence
from jobs import settings

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the API and the worker get to stop before they are killed.
STOP_TIMEOUT = 30.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
#: Seconds a part gets to be ready after its first start; one that dies
#: before it is ever ready, or is not ready by then, could not start: stop.
READY_TIMEOUT = 120.0
#: Seconds before a part that died is started again, doubling while it
#: keeps dying, up to RESTART_MAX; back to the first once it has run
#: RESTART_STABLE seconds.
RESTART_FIRST = 1.0
RESTART_MAX = 30.0
RESTART_STABLE = 60.0

_print_lock = threading.Lock()
#: Set by the first stop signal; ``_hurry`` by the second.
_stop = threading.Event()
_hurry = threading.Event()


def say(name: str, line: str) -> None:
    """Print one line of output, prefixed with the name of whoever wrote it."""
    with _print_lock:
        sys.stdout.write(f"{name:<6} | {line}\n")
        sys.stdout.flush()


class Child:
    """A program started in a process group of its own, its output copied to
    ours; ``probe(child)`` says whether the program as started now is ready."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], probe: Callable[[Child], bool]
    ) -> None:
        self.name, self.argv, self.env, self.probe = name, argv, env, probe
        #: Whether it has been ready since it was last started; ever.
        self.ready = self.was_ready = False
        #: Deaths since it last ran RESTART_STABLE seconds.
        self.deaths = 0
        #: When it is due to start again, once it has died; else None.
        self.restart_at: float | None = None
        self.start()
        self.first_started = self.started

    def start(self) -> None:
        """Start the program (again), its output copied to ours."""
        self.started = time.monotonic()
        self.restart_at = None
        self.ready = False
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # A new session: the terminal's Ctrl-C reaches only us, and we
            # decide how each program stops.
            start_new_session=True,
        )
        self.output = threading.Thread(target=self._copy_output, args=(self.process,), daemon=True)
        self.output.start()

    def _copy_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with process.stdout:  # closed at the end: a restart opens a new pipe
            for raw in process.stdout:
                say(self.name, raw.decode(errors="replace").rstrip())

    def became_ready(self) -> bool:
        """Whether the program has just answered its probe: True once per
        start (a ready program is not probed again)."""
        if self.ready or not self.probe(self):
            return False
        self.ready = self.was_ready = True
        return True

    def running(self) -> bool:
        """Whether the program itself has not exited yet."""
        return self.process.poll() is None

    def terminate(self) -> None:
        """Ask the program to stop: SIGTERM to it alone, not to its group, so
        that Celery's pool children are stopped by Celery (a warm shutdown)."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the program's process group."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # nothing left in the group
        self.process.wait()


def supervise(child: Child, now: float) -> bool:
    """Note when ``child`` becomes ready, and restart it if it died, after
    its back-off (saying so); False if it cannot start: it died before it
    was ever ready, or is not ready READY_TIMEOUT seconds after its start."""
    if child.running():
        if child.became_ready():
            say("up", f"{child.name} is ready (pid {child.process.pid})")
        elif not child.was_ready and now - child.first_started > READY_TIMEOUT:
            say("up", f"{child.name} is not ready {READY_TIMEOUT:g} s after its start: "
                      "it cannot start; stopping the rest")  # fmt: skip
            return False
        if child.deaths and now - child.started >= RESTART_STABLE:
            child.deaths = 0
        return True
    if child.restart_at is None:
        code = child.process.returncode
        if not child.was_ready:
            say("up", f"{child.name} exited with status {code} before it was ever ready: "
                      "it cannot start; stopping the rest")  # fmt: skip
            return False
        delay = min(RESTART_MAX, RESTART_FIRST * 2**child.deaths)
        child.deaths += 1
        child.restart_at = now + delay
        say("up", f"{child.name} exited with status {code}; starting it again in {delay:g} s")
        # Whatever it left in its group (a killed Celery's pool children)
        # goes too: a job of theirs is given back when its lease lapses.
        child.kill_group()
        child.output.join(timeout=2)
    elif now >= child.restart_at:
        child.start()
        say("up", f"{child.name} started again (pid {child.process.pid})")
    return True


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def api_answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` with a success."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except OSError:  # refused, timed out, or an HTTP error status
        return False
    return True


def worker_beats(url: str, pid: int) -> bool:
    """Whether the Celery worker whose main process is ``pid`` on this host
    has published its heartbeat in the Redis at ``url`` (it does once it
    consumes: worker/maintenance.py)."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        nodes = [node.decode() for node in client.smembers(presence.WORKERS)]
        values = client.mget([presence.worker_key(node) for node in nodes]) if nodes else []
    except redis.RedisError:
        return False
    finally:
        client.close()
    records = [json.loads(value) for value in values if value is not None]
    host = socket.gethostname()
    return any(r.get("pid") == pid and r.get("host") == host for r in records)


def redis_server_program(url: str) -> str:
    """The path of ``redis-server``, installed with apt-get if we can (root
    with apt); otherwise exit saying what to install."""
    program = shutil.which("redis-server")
    if program is None and os.geteuid() == 0 and shutil.which("apt-get"):
        say("up", "redis-server is missing: apt-get install -y redis-server")
        install = ["apt-get", "install", "-y", "-q", "redis-server"]
        if subprocess.call(install) != 0:
            # A machine that never ran apt-get update has no package lists.
            subprocess.call(["apt-get", "update", "-q"])
            subprocess.call(install)
        program = shutil.which("redis-server")
    if program is None:
        sys.exit(
            f"No Redis answers at {url} and redis-server is not installed.\n"
            "Install it (Debian, Ubuntu: sudo apt-get install redis-server; macOS: "
            "brew install redis), or set REDIS_URL to a running Redis, and run make up again."
        )
    return program


def redis_directory(url: str) -> Path:
    """Where the Redis that ``make up`` starts for ``url`` keeps its data:
    ``SEQLAB_REDIS_DIR``, else ``.seqlab/redis/<port>`` in the checkout."""
    chosen = os.environ.get("SEQLAB_REDIS_DIR")
    if chosen:
        return Path(chosen)
    return ROOT / ".seqlab" / "redis" / str(urlsplit(url).port or 6379)


def ensure_redis(url: str) -> Child | None:
    """Use the Redis at ``url`` if it answers, else start a redis-server
    there (a local host only) and wait until it answers. It writes an
    append-only file (fsync every second, as in docker-compose.yml) in
    :func:`redis_directory`, and loads it when started again. Returns the
    server started, if any."""
    if redis_answers(url):
        say("up", f"using the Redis at {url}")
        return None
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.hostname not in LOCAL_HOSTS:
        sys.exit(f"No Redis answers at {url}; start it, or point REDIS_URL at one that runs.")
    program = redis_server_program(url)
    if redis_answers(url):  # the Debian package starts its own on 6379
        return None
    port = str(parts.port or 6379)
    directory = redis_directory(url)
    directory.mkdir(parents=True, exist_ok=True)
    say("up", f"no Redis answers at {url}: starting redis-server on port {port}")
    say("up", f"its data (append-only file) lives in {directory}")
    server = Child(
        "redis",
        [program, "--port", port, "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
         "--maxmemory-policy", "noeviction"],
        dict(os.environ),
        lambda _: redis_answers(url),
    )  # fmt: skip
    # Loading a large append-only file takes a while; until then PING fails.
    deadline = time.monotonic() + 60
    while not server.became_ready():
        if not server.running() or time.monotonic() > deadline or _stop.is_set():
            server.terminate()
            server.kill_group()
            sys.exit(0 if _stop.is_set() else f"redis-server did not start on port {port}")
        time.sleep(0.1)
    return server


def api_argv(python: str, host: str, port: str, threads: str) -> list[str]:
    """The command that serves the API: gunicorn with ``gthread`` workers, so
    that an open event stream (``GET /jobs/<id>/events``) holds a thread, not
    a process; ``WEB_CONCURRENCY`` in the environment sets the processes.

    A stream of a live job never ends by itself: on a stop, gunicorn waits
    10 s for the open requests (not its default 30), then closes them, and
    the clients reconnect with ``Last-Event-ID`` to the next server.
    """
    return [python, "-m", "gunicorn", "--bind", f"{host}:{port}",
            "--worker-class", "gthread", "--threads", threads, "--graceful-timeout", "10",
            "--access-logfile", "-", "service:create_app()"]  # fmt: skip


def stop(children: list[Child]) -> None:
    """Stop the API and the worker (warm), killing them after STOP_TIMEOUT
    seconds or at a second Ctrl-C, then Redis; leave no process behind."""
    programs = [child for child in children if child.name != "redis"]
    for group in (programs, [child for child in children if child.name == "redis"]):
        for child in group:
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(child.running() for child in group):
            if _hurry.is_set() or time.monotonic() > deadline:
                say("up", "killing " + ", ".join(c.name for c in group if c.running()))
                break
            time.sleep(0.1)
        for child in group:
            child.kill_group()
            child.output.join(timeout=2)


def main() -> int:
    """Start Redis (if needed), the API and the worker; supervise them."""

    def on_signal(signum: int, _frame: object) -> None:
        # Only flags: the main thread may be inside say(), holding its lock.
        (_hurry if _stop.is_set() else _stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    url = settings.redis_url()
    host = os.environ.get("API_HOST", "127.0.0.1")
    port = os.environ.get("API_PORT") or os.environ.get("PORT") or "8000"
    children: list[Child] = []
    try:
        server = ensure_redis(url)
        if server is not None:
            children.append(server)
        # WEB_CONCURRENCY: gunicorn's processes, 2 as in docker-compose.yml.
        env = {"WEB_CONCURRENCY": "2", **os.environ, "REDIS_URL": url, "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        threads = os.environ.get("WEB_THREADS") or "16"
        local = "127.0.0.1" if host in ("0.0.0.0", "") else host
        api = f"http://{local}:{port}"
        server_api = Child("api", api_argv(python, host, port, threads), env,
                           lambda _: api_answers(f"{api}/healthz"))  # fmt: skip
        children.append(server_api)
        children.append(Child(
            "worker",
            [python, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--hostname", "up@%h", "--loglevel", "info"],
            env,
            lambda worker: worker_beats(url, worker.process.pid),
        ))  # fmt: skip
        announced = False
        while not _stop.wait(0.2):
            now = time.monotonic()
            if not all([supervise(child, now) for child in children]):
                return 1
            if not announced and server_api.was_ready:
                announced = True
                say("up", f"the API answers at {api}; Ctrl-C stops everything")
        say("up", "stopping (a second Ctrl-C kills at once)")
        return 0
    finally:
        stop(children)


if __name__ == "__main__":
    sys.exit(main())
