"""The rate limit of ``POST /train``: ``SEQLAB_TRAIN_RATE_LIMIT``, per
tenant (per client address without API keys), counted in Redis so that
every API process shares it.

The limit is written in Flask-Limiter's notation (``30/minute``,
``10/minute;200/day``), parsed and counted by ``limits``, the library under
Flask-Limiter. The check is called by the view itself, after the API key
guard (so unauthenticated requests count against no one) and on each app's
own Redis; a moving window, so no burst fits at a window's edge.
"""

from __future__ import annotations

import math
import time

from flask import Flask
from flask import current_app
from flask import request
from limits import RateLimitItem
from limits import parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from .. import auth


class TrainRateLimit:
    """The limits of one app, counted in the Redis at ``redis_url``.

    :raise ValueError: if ``spec`` is not a rate limit.
    """

    def __init__(self, spec: str, redis_url: str) -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(spec)
        except ValueError:
            raise ValueError(
                f"SEQLAB_TRAIN_RATE_LIMIT={spec!r} is not a rate limit such as '30/minute' "
                "or '10/minute;200/day'."
            ) from None
        # Redis errors reach the API's 503 handler as they are (a Redis outage
        # is a 503 on /train whatever met it first), with the store's timeouts.
        storage = RedisStorage(
            redis_url, key_prefix="seqlab:ratelimit", socket_timeout=10, socket_connect_timeout=3
        )
        self.limiter = MovingWindowRateLimiter(storage)

    def hit(self, who: str, kind: str, name: str) -> None:
        """Count a request of ``who`` (a ``kind`` of caller, ``name`` to a human).

        :raise 429: with ``Retry-After`` (seconds until the request would
            pass), if one of the limits is reached.
        """
        for item in self.items:
            if not self.limiter.hit(item, "train", who):
                stats = self.limiter.get_window_stats(item, "train", who)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyRequests(
                    f"POST /train is limited to {item} per {kind}, and {name} has reached "
                    f"that limit: try again in {wait} s.",
                    retry_after=wait,
                )


def init_app(app: Flask) -> None:
    """Set up the limit of ``TRAIN_RATE_LIMIT`` (off when empty).

    :raise ValueError: on a malformed limit, before serving anything.
    """
    spec = (app.config.get("TRAIN_RATE_LIMIT") or "").strip()
    limit = TrainRateLimit(spec, app.config["REDIS_URL"]) if spec else None
    app.extensions["train_rate_limit"] = limit


def check_train_rate() -> None:
    """Count this ``POST /train`` against its tenant's (or address's) limit.

    :raise 429: if the limit is reached.
    """
    limit: TrainRateLimit | None = current_app.extensions["train_rate_limit"]
    if limit is None:
        return
    tenant = auth.caller()
    if tenant is not None:
        limit.hit(f"tenant:{tenant}", "API key", repr(tenant))
    else:
        address = request.remote_addr or "unknown"
        limit.hit(f"address:{address}", "client address", address)
