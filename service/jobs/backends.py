"""What the workers serving a job's queue can train: each worker publishes
its Keras backend with its heartbeat (jobs/presence.py), and a model that
one of them cannot train (seqlab/backends.py) is refused before it is
queued, rather than failing on the worker after its wait."""

from __future__ import annotations

from jobs import presence
from modelspec.errors import ApiValidationError
from seqlab import ModelReport
from seqlab.backends import BACKENDS
from seqlab.backends import NAMES
from seqlab.backends import backend_problems

from .routing import live_workers


def check_backends(report: ModelReport, queue: str) -> list[str]:
    """Refuse a model that a live worker of ``queue`` cannot train (it may be
    the one that takes the job); return warnings when no worker is alive to
    say which backend will run it.

    :raise ApiValidationError: 422 under ``model``, naming the backend and
        each layer it cannot train.
    """
    live = presence.backends_of(live_workers(), queue)
    if live is None:
        return [
            f"No worker serves the queue {queue!r} now, so its backend is unknown; "
            f"a {NAMES[backend]} worker would refuse the job. {problem}"
            for backend in BACKENDS
            for problem in backend_problems(report, backend)
        ]
    reasons = [
        f"The workers serving the queue {queue!r} run {NAMES[backend]}. {problem}"
        for backend in sorted(live)
        for problem in backend_problems(report, backend)
    ]
    if reasons:
        raise ApiValidationError(f"model: {reasons[0]}", {"model": reasons})
    return []
