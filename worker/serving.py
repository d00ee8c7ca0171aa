"""The worker's main process keeps one predictor (:mod:`worker.predictor`)
running beside its pool, so that predictions never wait behind training.

Started once the worker is ready (it then knows its queues), stopped with
it; a predictor that dies is started again after a back-off (1 s, doubling
to 30 s, back to 1 s after a minute of life). The predictor is a fresh
interpreter (``subprocess``, not ``fork``): this process never imports
Keras. It stays in the worker's process group. ``SEQLAB_PREDICTOR=0``
starts none: predictions then go through the ``seqlab.predict`` task, and
wait behind training.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import worker_ready
from celery.signals import worker_shutdown

logger = logging.getLogger(__name__)

#: The folder that holds the ``worker`` package: the predictor imports it.
ROOT = Path(__file__).resolve().parent.parent
#: Seconds of back-off before the first restart, and the most.
FIRST_DELAY, MAX_DELAY = 1.0, 30.0
#: A predictor that lived this long before dying is restarted at once.
HEALTHY_SECONDS = 60.0
#: Seconds a stopping predictor gets before it is killed.
STOP_TIMEOUT = 5.0

_state: dict[str, Any] = {}


def enabled() -> bool:
    """``SEQLAB_PREDICTOR`` (default ``1``): whether workers run a predictor."""
    return os.environ.get("SEQLAB_PREDICTOR", "1") != "0"


def predictor_argv(queues: list[str]) -> list[str]:
    return [sys.executable, "-m", "worker.predictor", *queues]


def predictor_env() -> dict[str, str]:
    """The worker's environment, with the project importable wherever the
    worker was started from."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), path]))}


class Supervisor:
    """Runs the predictor of ``queues`` from a thread, restarting it."""

    def __init__(self, queues: list[str]) -> None:
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        # Held while a predictor starts: stop() never misses one.
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="seqlab-predictor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the predictor (SIGTERM, then SIGKILL) and start no other."""
        with self._lock:
            self._stop.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=STOP_TIMEOUT)

    def _run(self) -> None:
        delay = FIRST_DELAY
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self.process = subprocess.Popen(
                    predictor_argv(self.queues), cwd=ROOT, env=predictor_env()
                )
            logger.info("predictor started (pid %d)", self.process.pid)
            code = self.process.wait()
            if self._stop.is_set():
                return
            if time.monotonic() - started >= HEALTHY_SECONDS:
                delay = FIRST_DELAY
            logger.warning("predictor exited (%s); starting another in %g s", code, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY)


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    """The worker is consuming: start the predictor of its queues."""
    if not enabled():
        return
    queues = sorted(queue.name for queue in sender.task_consumer.queues)
    supervisor = Supervisor(queues)
    _state["supervisor"] = supervisor
    supervisor.start()


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    supervisor = _state.pop("supervisor", None)
    if supervisor is not None:
        supervisor.stop()
