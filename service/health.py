"""Readiness (``GET /readyz``) and the answer to every request that finds
Redis away: a 503 problem with ``Retry-After``, never a 500.

``/healthz`` is liveness: it touches nothing. A
load balancer or an orchestrator takes traffic off an instance whose
``/readyz`` fails. Readiness needs Redis (and RabbitMQ, where it is the
broker): without workers, jobs can still be queued and read, and
``workers`` says that they will wait.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app

from jobs import presence
from jobs.settings import is_amqp
from jobs.store import RUNNING

from .jobs.routing import queues
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
    """Whether this instance can serve every route: Redis (and RabbitMQ,
    where it is the broker) answers within ``READINESS_TIMEOUT`` seconds.
    Says how many workers serve each training queue and how many jobs wait
    in it."""
    client: redis.Redis = current_app.extensions["readiness_redis"]
    names = queues().names()
    rabbitmq = is_amqp(broker_url())
    try:
        client.ping()
        live = presence.live_records(client)
        workers = [sum(name in w["queues"] for w in live) for name in names]
        running = int(client.zcard(RUNNING))
        # On RabbitMQ the broker counts its own messages (below).
        depths = None if rabbitmq else [presence.queue_depth(client, name) for name in names]
    except redis.BusyLoadingError:
        return unavailable("Redis is loading its data after a restart; try again shortly.")
    except redis.RedisError as error:
        current_app.logger.warning("not ready: Redis unavailable (%s)", error)
        return unavailable(f"Redis does not answer ({type(error).__name__}).")
    if depths is None:
        try:
            depths = [broker_depth(name) for name in names]
        except Exception as error:  # noqa: BLE001 (kombu's and amqp's errors alike)
            current_app.logger.warning("not ready: the broker is unavailable (%s)", error)
            return unavailable(f"The broker (RabbitMQ) does not answer ({type(error).__name__}).")
    listed = [
        {"name": name, "depth": depth, "workers": count}
        for name, depth, count in zip(names, depths, workers, strict=True)
    ]
    return {
        "status": "ready",
        "workers": sum(bool(set(w["queues"]) & set(names)) for w in live),
        "queue": {"name": listed[0]["name"], "depth": listed[0]["depth"]},
        "queues": listed,
        "broker": "rabbitmq" if rabbitmq else "redis",
        "running_jobs": running,
    }


def broker_url() -> str:
    """Where this app sends Celery's messages."""
    return current_app.config["BROKER_URL"] or current_app.config["REDIS_URL"]


def broker_depth(queue: str) -> int:
    """Messages waiting in ``queue`` on RabbitMQ: a passive declare, which
    answers with the count and creates nothing (0 for a queue never used)."""
    celery = current_app.extensions["celery"]
    timeout = float(current_app.config["READINESS_TIMEOUT"])
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except connection.channel_errors:  # 404: no such queue yet
            return 0
        finally:
            with contextlib.suppress(Exception):
                channel.close()


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
