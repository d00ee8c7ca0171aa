"""Settings shared by the worker and the API, from environment variables."""

from __future__ import annotations

import os

#: Seven days.
DEFAULT_JOB_TTL = 7 * 24 * 3600


def redis_url() -> str:
    """``REDIS_URL``: job records, events, datasets, Celery's results, and
    the broker unless ``SEQLAB_BROKER_URL`` names another."""
    return os.environ.get("REDIS_URL", "redis://localhost:6379/0")


def broker_url() -> str:
    """``SEQLAB_BROKER_URL``: where Celery's messages go (default
    ``REDIS_URL``); ``amqp://user:password@host:5672/vhost`` for RabbitMQ."""
    return os.environ.get("SEQLAB_BROKER_URL") or redis_url()


def is_amqp(url: str) -> bool:
    """Whether a broker URL is RabbitMQ's (AMQP) rather than Redis's."""
    return url.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}


def broker_options(url: str) -> dict[str, object]:
    """The Celery settings that depend on the broker, for the worker and the
    API's producer alike (a queue's arguments must match wherever it is
    declared, or RabbitMQ refuses the second declaration).

    On RabbitMQ: quorum queues (replicated, and they survive a broker
    restart), including those Celery creates on first use, and publisher
    confirms, so that a send returns only once the broker has the message.
    On Redis: the transport's visibility timeout, longer than any job.

    When a message is acknowledged is each broker's own choice, made with
    the leases in mind: a job whose worker dies or is cut off comes back
    through its lease (jobs/reaper.py), never through its message, and a
    message of a job that is not queued (running elsewhere, ended) is
    dropped by the claim. So a redelivery can never run a job twice, and
    acknowledging early or late only decides what a busy worker holds.

    * Redis, early (as the task starts): the transport's prefetch is off
      (``worker_disable_prefetch``), so a busy worker holds nothing more;
      late acknowledgement would only add redeliveries after
      ``visibility_timeout``.
    * RabbitMQ, late (as the task ends): with early acknowledgement a busy
      worker has room in its prefetch window and takes the next message
      while it trains, and RabbitMQ has no switch against that, so an idle
      host would wait behind a busy one (tests/test_hosts.py). Acknowledged
      late, the running job fills the window of one. What redeliveries this
      brings (a worker's connection lost for longer than two heartbeats, or
      held past RabbitMQ's ``consumer_timeout``, 30 minutes by default) find
      the job running and are dropped. A pool process that dies has its
      message acknowledged all the same (``task_reject_on_worker_lost``
      off): its lease brings the job back.
    """
    if is_amqp(url):
        return {
            "task_default_queue_type": "quorum",
            "task_create_missing_queue_type": "quorum",
            "broker_transport_options": {"confirm_publish": True},
            # A lost broker connection is found within two heartbeats.
            "broker_heartbeat": 10,
            "task_acks_late": True,
            "task_reject_on_worker_lost": False,
        }
    return {
        "broker_transport_options": {"visibility_timeout": visibility_timeout()},
        "task_acks_late": False,
    }


def pinned_queue() -> str | None:
    """``SEQLAB_QUEUE``: the one queue of every training job, set; unset,
    jobs are routed by size (:func:`gpu_queue`, :func:`cpu_queue`)."""
    return os.environ.get("SEQLAB_QUEUE") or None


def gpu_queue() -> str:
    """``SEQLAB_GPU_QUEUE``: the queue of jobs over ``SEQLAB_CPU_JOB_BYTES``
    (default ``gpu``)."""
    return os.environ.get("SEQLAB_GPU_QUEUE") or "gpu"


def cpu_queue() -> str:
    """``SEQLAB_CPU_QUEUE``: the queue of jobs estimated to need at most
    ``SEQLAB_CPU_JOB_BYTES`` of worker memory (default ``cpu``)."""
    return os.environ.get("SEQLAB_CPU_QUEUE") or "cpu"


#: 512 MiB.
DEFAULT_CPU_JOB_BYTES = 512 * 1024 * 1024


def cpu_job_bytes() -> int:
    """``SEQLAB_CPU_JOB_BYTES``: the largest training-memory estimate of a
    job routed to the CPU queue (default 512 MiB)."""
    return int(os.environ.get("SEQLAB_CPU_JOB_BYTES") or DEFAULT_CPU_JOB_BYTES)


def queue() -> str:
    """The default queue: ``SEQLAB_QUEUE`` where set, else the GPU queue."""
    return pinned_queue() or gpu_queue()


def worker_queues() -> list[str]:
    """The queues a worker started without ``-Q`` serves: the pinned one,
    else both the GPU and the CPU queue (a host that can run anything)."""
    pinned = pinned_queue()
    return [pinned] if pinned else [gpu_queue(), cpu_queue()]


def device_memory_bytes() -> int | None:
    """``SEQLAB_DEVICE_MEMORY_BYTES``: the memory a worker publishes as its
    device's (jobs are routed and refused by it); unset, the worker finds
    its GPU's memory, else the host's."""
    value = os.environ.get("SEQLAB_DEVICE_MEMORY_BYTES")
    return int(value) if value else None


def redis_timeout() -> float:
    """``SEQLAB_REDIS_TIMEOUT``: seconds a Redis command may take before the
    connection counts as lost (default 10): what an API request waits, at
    most, before its 503 when a partition cuts it off from Redis."""
    return float(os.environ.get("SEQLAB_REDIS_TIMEOUT", "10"))


def redis_connect_timeout() -> float:
    """Seconds to open a Redis connection: 3, or the command timeout if shorter."""
    return min(3.0, redis_timeout())


def job_ttl() -> int:
    """``SEQLAB_JOB_TTL``: seconds a job and its results are kept."""
    return int(os.environ.get("SEQLAB_JOB_TTL", str(DEFAULT_JOB_TTL)))


def final_write_seconds() -> float:
    """``SEQLAB_FINAL_WRITE_SECONDS``: how long a worker retries storing a
    job's outcome while Redis is unreachable (default 120)."""
    return float(os.environ.get("SEQLAB_FINAL_WRITE_SECONDS", "120"))


#: 64 MiB.
DEFAULT_MAX_PREDICTION_BYTES = 64 * 1024 * 1024


def max_prediction_bytes() -> int:
    """``SEQLAB_MAX_PREDICTION_BYTES``: the most bytes of predictions a job
    stores (its training inputs' outputs, as JSON) and ``POST
    /jobs/<id>/predict`` answers (default 64 MiB), bounded before they are
    computed (:func:`seqlab.cost.prediction_bytes_bound`). Keep it under
    Redis's ``proto-max-bulk-len`` (512 MB): the stored predictions are one
    value. Read by the worker and the API."""
    return int(os.environ.get("SEQLAB_MAX_PREDICTION_BYTES", str(DEFAULT_MAX_PREDICTION_BYTES)))


#: One hour.
DEFAULT_JOB_TIME_LIMIT = 3600
#: Seconds past a job's time limit at which Celery raises SoftTimeLimitExceeded
#: in the task (the training loop stops it first, within a second, unless one
#: step or the final predict and save outlast the limit), and at which it kills
#: the pool process outright.
SOFT_LIMIT_GRACE = 15
HARD_LIMIT_GRACE = 45


def job_time_limit() -> int:
    """``SEQLAB_JOB_TIME_LIMIT``: the most seconds a job may run (one hour);
    a request may ask for less (``fit.time_limit_seconds``)."""
    return int(os.environ.get("SEQLAB_JOB_TIME_LIMIT", str(DEFAULT_JOB_TIME_LIMIT)))


def job_retries() -> int:
    """``SEQLAB_JOB_RETRIES``: how many times a job whose worker was lost is
    queued again before it ends ``failed`` with ``WorkerLost`` (default 1)."""
    return int(os.environ.get("SEQLAB_JOB_RETRIES", "1"))


def lease_seconds() -> float:
    """``SEQLAB_LEASE_SECONDS``: the lifetime of a running job's lease, which
    its worker renews every third of it (default 30)."""
    return float(os.environ.get("SEQLAB_LEASE_SECONDS", "30"))


def reaper_interval() -> float:
    """``SEQLAB_REAPER_SECONDS``: how often each worker's main process looks
    for running jobs whose lease has expired (default 10)."""
    return float(os.environ.get("SEQLAB_REAPER_SECONDS", "10"))


def heartbeat_seconds() -> float:
    """``SEQLAB_HEARTBEAT_SECONDS``: how often a worker says it is alive
    (default 5); it counts as gone three times that long after its last word."""
    return float(os.environ.get("SEQLAB_HEARTBEAT_SECONDS", "5"))


def effective_time_limit(requested: int | None) -> int:
    """The time limit of a job: the request's, capped by the server's."""
    limit = job_time_limit()
    return limit if requested is None else min(int(requested), limit)


def celery_time_limits(requested: int | None) -> dict[str, int]:
    """Celery's ``soft_time_limit`` and ``time_limit`` for a job: backstops
    behind the training loop's own clean stop at the limit."""
    limit = effective_time_limit(requested)
    return {"soft_time_limit": limit + SOFT_LIMIT_GRACE, "time_limit": limit + HARD_LIMIT_GRACE}


def visibility_timeout() -> int:
    """The Redis transport's visibility timeout: longer than any job may run,
    so that Redis never hands a message that a worker holds to another."""
    return job_time_limit() + HARD_LIMIT_GRACE + 600
