"""Which queue a job goes to: by the engine's estimate of its worker memory,
and by the memory of the workers alive to take it.

Small jobs (at most ``SEQLAB_CPU_JOB_BYTES``) go to the CPU queue, large
ones to the GPU queue; ``SEQLAB_QUEUE`` pins one queue instead. Each worker
publishes its device's memory with its heartbeat (:mod:`jobs.presence`), so
a job goes to a queue that a live worker can run it on: a small one to the
GPU queue where no CPU worker is alive, a large one to the CPU queue where
only CPU workers are alive and one of them has the memory. A job too large
for every live worker is refused with the figures; with no worker alive, it
is queued by its size with a warning. Pure: no Redis, no Flask.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any


@dataclass(frozen=True)
class Route:
    """Where a job goes, and what its submitter should know about it."""

    queue: str
    warnings: list[str] = field(default_factory=list)


class TooLarge(Exception):
    """No live worker has the memory a job is estimated to need."""


@dataclass(frozen=True)
class Queues:
    """The routing settings: a pinned queue, or the two queues and the
    threshold between them (:mod:`jobs.settings`)."""

    pinned: str | None
    gpu: str
    cpu: str
    cpu_job_bytes: int

    def preferred(self, need: int) -> list[str]:
        """The queues a job of ``need`` bytes may go to, best first."""
        if self.pinned:
            return [self.pinned]
        return [self.cpu, self.gpu] if need <= self.cpu_job_bytes else [self.gpu, self.cpu]

    def names(self) -> list[str]:
        """Every queue that jobs are sent to."""
        return [self.pinned] if self.pinned else [self.gpu, self.cpu]


def fits(worker: Mapping[str, Any], need: int) -> bool:
    """Whether a live worker's device memory holds ``need`` bytes (a worker
    that does not publish it, from before routing, is taken to)."""
    memory = worker.get("memory_bytes")
    return memory is None or memory >= need


def choose_queue(need: int, live: Iterable[Mapping[str, Any]], queues: Queues) -> Route:
    """The queue of a job estimated to need ``need`` bytes of worker memory,
    given the heartbeat records of the live workers (:func:`jobs.presence.live_records`).

    :raise TooLarge: if workers serve the job's queues but none has the
        memory; its message gives the figures.
    """
    preferred = queues.preferred(need)
    serving = [w for w in live if set(w.get("queues", ())) & set(preferred)]
    if not serving:
        queue = preferred[0]
        return Route(
            queue,
            [
                f"No worker serves the queue {queue!r} now: the job waits until one starts. "
                f"It is estimated to need {need:,} bytes of worker memory."
            ],
        )
    for queue in preferred:
        if any(queue in w["queues"] and fits(w, need) for w in serving):
            return Route(queue)
    largest = max(serving, key=lambda w: w["memory_bytes"])
    names = " or ".join(repr(q) for q in preferred)
    raise TooLarge(
        f"Training it is estimated to take {need:,} bytes of worker memory, more than any "
        f"live worker of the queue {names} has: the largest, {largest['node']}, has "
        f"{largest['memory_bytes']:,} bytes ({len(serving)} live). A smaller fit.batch_size "
        "needs fewer activations; a worker with more memory can take it once it runs."
    )
