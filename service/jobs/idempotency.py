"""Idempotent submits: ``POST /train`` with an ``Idempotency-Key`` header.

The first request with a key claims it in Redis (``SET NX``) before it
creates its job, so of two concurrent requests with one key exactly one
creates a job. The claim is ``pending`` (for :data:`CLAIM_SECONDS`, so a
request that dies mid-way frees its key) until the job is queued, then
``done`` for :data:`REPLAY_SECONDS`; a failure to queue releases it.

A later request with the key and the same body (compared by the SHA-256 of
its canonical JSON) is answered with that job, whatever its state; with
another body it is a 422. A request that finds the key pending waits up to
``IDEMPOTENCY_WAIT_SECONDS`` for the job, then answers 409. Keys are scoped
per tenant: the Redis key is a digest of the tenant and the key.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import redis
from werkzeug.exceptions import Conflict

from jobs import scripts
from modelspec.errors import ApiValidationError

#: The request header, as in draft-ietf-httpapi-idempotency-key-header.
HEADER = "Idempotency-Key"
#: Printable ASCII, 1 to 255 characters (Stripe's bound); a UUID fits.
KEY_FORM = re.compile(r"[\x20-\x7e]{1,255}")
#: How long a key answers with its job.
REPLAY_SECONDS = 24 * 3600
#: How long a claim lasts while its request creates and queues the job.
CLAIM_SECONDS = 60
#: How often a request that finds a pending claim looks again.
POLL_SECONDS = 0.05

#: Finds a job by id; None if it is gone or not the caller's.
FindJob = Callable[[str], "dict[str, Any] | None"]


class InProgress(Conflict):
    """409: the key's first request has not queued its job yet."""

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("Retry-After", "1")]


def _invalid(reason: str) -> ApiValidationError:
    return ApiValidationError(f"{HEADER}: {reason}", {HEADER: [reason]})


def body_digest(body: object) -> str:
    """The SHA-256 of a JSON body in canonical form (sorted keys, no
    spaces), so that formatting and member order do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class IdempotentRequest:
    """One request's claim on its ``Idempotency-Key``.

    Args:
        client: the Redis of the job store.
        tenant: the caller's tenant (None without API keys).
        key: the header's value, already checked.
        body: the parsed JSON body.
        wait: seconds to wait for a pending claim before answering 409.
    """

    def __init__(
        self, client: redis.Redis, tenant: str | None, key: str, body: object, wait: float
    ) -> None:
        self.redis = client
        scope = json.dumps([tenant, key])  # unambiguous, whatever the key holds
        self.redis_key = f"seqlab:idempotency:{hashlib.sha256(scope.encode()).hexdigest()}"
        self.digest = body_digest(body)
        self.wait = wait
        self._pending: str | None = None  # the value of our claim, while pending
        self._job_id = ""
        #: jobs/lua/idempotency_claim.lua and idempotency_swap.lua.
        self.scripts = scripts.register(client, names=("idempotency_claim", "idempotency_swap"))

    @classmethod
    def from_header(
        cls, value: str | None, client: redis.Redis, tenant: str | None, body: object, wait: float
    ) -> IdempotentRequest | None:
        """The request's claim, None without the header.

        :raise 422: naming the header, if its value is not 1 to 255
            printable ASCII characters.
        """
        if value is None:
            return None
        if not KEY_FORM.fullmatch(value):
            raise _invalid("Must be 1 to 255 printable ASCII characters (a UUID, say).")
        return cls(client, tenant, value, body, wait)

    def _value(self, job_id: str, state: str) -> str:
        return json.dumps({"body": self.digest, "job": job_id, "state": state})

    def earlier_job(self, find: FindJob) -> dict[str, Any] | None:
        """The job that an earlier request with this key created, None if
        the key is free.

        A claim whose job is gone (deleted, expired) is dropped: the key is
        free again.

        :raise 422: if the earlier request had another body.
        :raise 409: if the earlier request is still creating its job after
            waiting ``wait`` seconds.
        """
        deadline = time.monotonic() + self.wait
        while True:
            raw = self.redis.get(self.redis_key)
            if raw is None:
                return None
            held = json.loads(raw)
            if held["body"] != self.digest:
                raise _invalid(
                    "This key was used in the last 24 hours with another request body; "
                    "send a new key for a new request."
                )
            if held["state"] == "done":
                job = find(held["job"])
                if job is not None:
                    return job
                self.scripts.idempotency_swap(keys=[self.redis_key], args=[raw, "", 0])
                return None
            if time.monotonic() >= deadline:
                raise InProgress(
                    "A request with this Idempotency-Key is still creating its job; "
                    "retry shortly to get it."
                )
            time.sleep(POLL_SECONDS)

    def claim(self, job_id: str, find: FindJob) -> dict[str, Any] | None:
        """Claim the key for ``job_id`` before creating it: None if claimed,
        else the job that a concurrent request with the key created (as
        :meth:`earlier_job`, which may raise 409 or 422)."""
        pending = self._value(job_id, "pending")
        while True:
            held = self.scripts.idempotency_claim(
                keys=[self.redis_key], args=[pending, CLAIM_SECONDS]
            )
            if held is None:
                self._pending, self._job_id = pending, job_id
                return None
            job = self.earlier_job(find)
            if job is not None:
                return job
            # The other request gave up (its queueing failed): try again.

    def confirm(self) -> None:
        """The job is queued: the key answers with it for 24 hours."""
        if self._pending is not None:
            done = self._value(self._job_id, "done")
            self.scripts.idempotency_swap(
                keys=[self.redis_key], args=[self._pending, done, REPLAY_SECONDS]
            )
            self._pending = None

    def release(self) -> None:
        """The job was not created: free the key for the next request."""
        if self._pending is not None:
            self.scripts.idempotency_swap(keys=[self.redis_key], args=[self._pending, "", 0])
            self._pending = None
