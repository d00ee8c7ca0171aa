"""The predictor: a process beside a worker's pool that answers ``POST
/jobs/<id>/predict`` while the pool trains.

Run as ``python -m worker.predictor <queue>...`` by the worker's main
process (:mod:`worker.serving`), which restarts it if it dies. It is a
fresh interpreter, not a fork: Keras is imported here and in the pool's
children only, never in the main process (TensorFlow and XLA are not fork
safe), and the backend is the pool's (:func:`~worker.backend.configure_backend`,
the same environment). It takes requests from its queues' lists
(:meth:`jobs.store.JobStore.take_predict`) one at a time and answers each on
the request's own reply list (:func:`worker.predicting.deliver`), with the
recently used models kept loaded (:class:`worker.predicting.ModelCache`).
Being a process of its own, it never waits for the training child's
``keras_lock``.

It announces itself (:meth:`~jobs.store.JobStore.announce_predictor`) once
Keras is loaded, every :data:`ANNOUNCE_SECONDS`; the API hands it requests
only then. It exits once its parent is gone (a worker killed with ``kill
-9`` leaves no predictor behind); it shares the worker's process group, so
a signal to the group reaches it too.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Any

import redis

from jobs import settings
from jobs.store import JobStore

from .backend import configure_backend

logger = logging.getLogger("seqlab.predictor")

#: Seconds between announcements; the longest a request waits in the list
#: before the loop looks at its parent again, too.
ANNOUNCE_SECONDS = 1.0
#: Seconds an announcement lasts: a predictor that stops announcing (killed,
#: stuck) stops getting requests this long after.
ANNOUNCE_TTL = 5.0
#: The line logged once the predictor takes requests.
READY = "predictor: ready"


def stale(request: dict[str, Any]) -> bool:
    """Whether the API already gave up on ``request`` (its ``reply_by``)."""
    reply_by = request.get("reply_by")
    return reply_by is not None and time.time() > reply_by


def serve(jobs: JobStore, queues: list[str], parent: int) -> None:
    """Answer requests until the parent process (the worker) is gone."""
    from . import predicting

    name = f"{socket.gethostname()}:{os.getpid()}"
    announced = 0.0
    while os.getppid() == parent:
        try:
            if time.monotonic() - announced >= ANNOUNCE_SECONDS:
                jobs.announce_predictor(queues, name, ANNOUNCE_TTL)
                if not announced:
                    logger.info("%s on %s (backend %s)", READY, ", ".join(queues),
                                os.environ["KERAS_BACKEND"])  # fmt: skip
                announced = time.monotonic()
            request = jobs.take_predict(queues, ANNOUNCE_SECONDS)
            if request is None:
                continue
            job_id = request["job_id"]
            if stale(request):  # the API answered 504 already
                logger.info("predictions of job %s asked too long ago; dropped", job_id)
                continue
            answer = predicting.answer(
                jobs, job_id, request["instances"], request.get("model_file")
            )
            predicting.deliver(
                jobs, job_id, answer, request["reply_key"], request.get("reply_by"),
                int(request.get("reply_ttl", 60)),
            )  # fmt: skip
        except (redis.RedisError, OSError) as error:
            logger.warning("Redis unreachable (%s); trying again in a second", error)
            time.sleep(1.0)
    logger.info("the worker is gone; the predictor stops")


def main(argv: list[str]) -> int:
    """``python -m worker.predictor <queue>...``."""
    # Like the worker's lines; INFO of our own only (JAX's probes of absent
    # devices are noise), never a prediction's values.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format="[%(asctime)s: %(levelname)s/predictor %(process)d] %(message)s",
    )  # fmt: skip
    for name in (logger.name, "worker"):
        logging.getLogger(name).setLevel(logging.INFO)
    if not argv:
        logger.error("usage: python -m worker.predictor <queue>...")
        return 2
    parent = os.getppid()
    configure_backend()
    import keras  # noqa: F401 (loaded before announcing: the first answer is not slow)

    jobs = JobStore.from_url(settings.redis_url(), settings.job_ttl())
    try:
        serve(jobs, argv, parent)
    except KeyboardInterrupt:  # Ctrl-C in `make up`'s terminal reaches the group
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
