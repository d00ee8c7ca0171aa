"""Settings shared by the worker and the API, from environment variables."""

from __future__ import annotations

import os

#: Seven days.
DEFAULT_JOB_TTL = 7 * 24 * 3600


def redis_url() -> str:
    """``REDIS_URL``: broker, result store and job records."""
    return os.environ.get("REDIS_URL", "redis://localhost:6379/0")


def queue() -> str:
    """``SEQLAB_QUEUE``: the Celery queue of training jobs."""
    return os.environ.get("SEQLAB_QUEUE", "gpu")


def job_ttl() -> int:
    """``SEQLAB_JOB_TTL``: seconds a job and its results are kept."""
    return int(os.environ.get("SEQLAB_JOB_TTL", str(DEFAULT_JOB_TTL)))


def final_write_seconds() -> float:
    """``SEQLAB_FINAL_WRITE_SECONDS``: how long a worker retries storing a
    job's outcome while Redis is unreachable (default 120)."""
    return float(os.environ.get("SEQLAB_FINAL_WRITE_SECONDS", "120"))
