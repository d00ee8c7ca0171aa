"""Readiness (``GET /readyz``) and the answer to every request that finds
Redis away: a 503 problem with ``Retry-After``, never a 500.

``/healthz`` is liveness: it touches nothing. A
load balancer or an orchestrator takes traffic off an instance whose
``/readyz`` fails. Readiness needs Redis only: without workers, jobs can
still be queued and read, and ``workers`` says that they will wait.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app

from jobs import presence
from jobs.store import RUNNING

from .problems import problem

bp = Blueprint("health", __name__)

#: Seconds a client should wait before trying again while Redis is away.
RETRY_AFTER = 5


def unavailable(detail: str) -> Response:
    """A 503 problem with ``Retry-After``."""
    response = problem(503, detail)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


@bp.get("/healthz")
def get_health() -> dict[str, str]:
    """Report that the process is up."""
    # The baseline of the throughput benchmark: touch nothing else.
    return {"status": "ok"}


@bp.get("/readyz")
def get_readiness() -> Response | dict[str, Any]:
    """Whether this instance can serve every route: Redis answers within
    ``READINESS_TIMEOUT`` seconds. Says how many workers serve the training
    queue and how many jobs wait in it."""
    client: redis.Redis = current_app.extensions["readiness_redis"]
    queue = current_app.config["SEQLAB_QUEUE"]
    try:
        client.ping()
        workers = presence.live_workers(client, queue)
        depth = presence.queue_depth(client, queue)
        running = int(client.zcard(RUNNING))
    except redis.BusyLoadingError:
        return unavailable("Redis is loading its data after a restart; try again shortly.")
    except redis.RedisError as error:
        current_app.logger.warning("not ready: Redis unavailable (%s)", error)
        return unavailable(f"Redis does not answer ({type(error).__name__}).")
    return {
        "status": "ready",
        "workers": workers,
        "queue": {"name": queue, "depth": depth},
        "running_jobs": running,
    }


def redis_unavailable(error: Exception) -> Response:
    """Any route that needs Redis, while Redis is away or cannot write."""
    current_app.logger.warning("Redis unavailable: %s", error)
    if isinstance(error, redis.exceptions.BusyLoadingError):
        detail = "The job store (Redis) is loading its data after a restart; try again shortly."
    elif isinstance(error, redis.exceptions.OutOfMemoryError | redis.exceptions.ReadOnlyError):
        detail = "The job store (Redis) refuses writes now (full or read-only); try again later."
    else:
        detail = "The job store (Redis) is unreachable; try again shortly."
    return unavailable(detail)


def init_app(app: Flask) -> None:
    """Register ``/readyz``, its Redis client, and the app-wide 503 handler."""
    timeout = float(app.config["READINESS_TIMEOUT"])
    # A client of its own with short timeouts: a readiness probe must answer
    # quickly, and the job store's client waits up to 10 s.
    app.extensions["readiness_redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
    )
    for error in (
        redis.exceptions.ConnectionError,  # BusyLoadingError included
        redis.exceptions.TimeoutError,
        redis.exceptions.OutOfMemoryError,
        redis.exceptions.ReadOnlyError,
    ):
        app.register_error_handler(error, redis_unavailable)
    app.register_blueprint(bp)
