"""Celery tasks: thin wrappers that move a job through its states.

The work itself is in :mod:`worker.training`, imported inside the task so
that only the pool's child processes ever load Keras.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from functools import cache
from functools import partial
from typing import Any

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.exceptions import TimeLimitExceeded
from celery.exceptions import WorkerLostError
from celery.signals import task_failure
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from jobs import settings
from jobs.datasets import DatasetGone
from jobs.datasets import DatasetStore
from jobs.datasets import resolve
from jobs.presence import worker_name
from jobs.store import JobStore
from jobs.store import finite
from jobs.store import model_chunks
from jobs.store import permanent_error
from jobs.store import prediction_samples

from .failures import failure

logger = get_task_logger(__name__)

#: Training sets of up to this many samples keep their predictions in the
#: job record too (``result.predictions``, what a poll shows); all of them
#: are stored apart, for ``GET /jobs/<id>/predictions``.
INLINE_PREDICTIONS = 1000


@cache
def store() -> JobStore:
    """The job store of this process (one Redis connection pool)."""
    return JobStore.from_url(settings.redis_url(), settings.job_ttl())


def claim(
    task: Any, jobs: JobStore, job_id: str, worker: str, queue: str
) -> tuple[str, dict[str, Any]] | None:
    """:meth:`JobStore.claim`, riding out Redis blips (a slow or lossy link,
    a failover) for ``SEQLAB_FINAL_WRITE_SECONDS``: the task's message is
    already acknowledged, so a claim that gave up at the first timeout
    would leave the job queued with no message to run it.

    A claim whose reply was lost (Redis ran it; the answer timed out) reads
    as "not queued" on the retry: the job then holds a lease that nobody
    renews, and a reaper queues it again once the lease lapses. If Redis
    stays away past the deadline, the task is sent again (a broker apart
    from Redis may take it), else the job waits, queued, for a resubmit.
    """
    deadline = time.monotonic() + settings.final_write_seconds()
    delay = 0.1
    while True:
        try:
            return jobs.claim(job_id, worker, queue, settings.lease_seconds())
        except redis.RedisError as error:
            if time.monotonic() + delay > deadline:
                logger.error("job %s: not claimed (%s); sending its task again", job_id, error)
                hard, soft = task.request.timelimit or (None, None)
                task.app.send_task(
                    task.name, args=task.request.args, task_id=task.request.id, queue=queue,
                    time_limit=hard, soft_time_limit=soft,
                )  # fmt: skip
                return None
            logger.warning("job %s: claim failed (%s); retrying", job_id, error)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@shared_task(name="seqlab.train", bind=True, ignore_result=True)
def train_model(self: Any, job_id: str) -> None:
    """Train the job's model and store the outcome in its record.

    The job is claimed under a lease that a thread renews while it runs; a
    redelivered or re-published task of a job that is not queued (running
    elsewhere, ended, cancelled) does nothing.
    """
    jobs = store()
    queue = (self.request.delivery_info or {}).get("routing_key") or settings.queue()
    claimed = claim(self, jobs, job_id, worker_name(self.request.hostname), queue)
    if claimed is None:
        logger.info("job %s is not queued (cancelled, expired or taken); not starting it", job_id)
        return
    token, job = claimed
    limit = settings.effective_time_limit(job["request"]["fit"].get("time_limit_seconds"))
    # The clock starts with the job: waiting for Keras to load counts.
    deadline = time.monotonic() + limit
    # Renewed from now on: importing Keras may outlast a short lease.
    with LeaseKeeper(jobs, {job_id: token}, settings.lease_seconds()) as lease:
        from . import training  # Keras loads here, in the child process

        report = Reporter(jobs, job_id, token, lease.lost[job_id])
        try:
            # A job on a dataset reads its arrays now (it copied only the id).
            job["request"]["data"] = resolve(
                job["request"]["data"], DatasetStore(jobs.redis, settings.job_ttl())
            )
            result, model_file = training.train(
                job["request"],
                expected=job["params"],
                on_progress=report.progress,
                should_stop=report.should_stop,
                deadline=deadline,
                on_history=partial(report.history, attempt=job.get("attempt")),
            )
        except training.Cancelled as stop:
            result, model_file = stop.args
            report.final("cancelled", model_file, result=result)
        except training.TimeLimitReached as stop:
            result, model_file = stop.args
            epochs = job["request"]["fit"]["epochs"]
            message = (
                f"The job reached its time limit of {limit} s after "
                f"{result['epochs_completed']} of {epochs} epochs; its history and "
                "model so far are kept."
            )
            report.final(
                "failed", model_file, result=result, error=failure("TimeLimitExceeded", message)
            )
        except SoftTimeLimitExceeded:
            # One step, or predicting and saving, outlasted the limit: the
            # training loop could not stop it; Celery did.
            message = f"The job ran past its time limit of {limit} s and was interrupted."
            report.final("failed", error=failure("TimeLimitExceeded", message))
        except training.TrainingFailed as error:
            report.final("failed", error=failure("TrainingFailed", str(error)))
        except DatasetGone as gone:
            message = (
                f"The dataset {gone.args[0]} was deleted or expired before the job started; "
                "upload it again and submit a new job."
            )
            report.final("failed", error=failure("DatasetNotFound", message))
        except Exception as error:  # noqa: BLE001 (any failure must end the job)
            logger.exception("job %s failed", job_id)
            report.final(
                "failed",
                error=failure(type(error).__name__, str(error), traceback.format_exc(limit=-8)),
            )
        else:
            report.final("succeeded", model_file, result=result)


@shared_task(name="seqlab.train_group", bind=True, ignore_result=True)
def train_group(self: Any, job_ids: list[str]) -> None:
    """Train a sweep's trials that share one structure together
    (:mod:`worker.sweeping`), each a job of its own: claimed, leased and
    ended as :func:`train_model` ends a lone job.

    Trials that are no longer queued (cancelled, or claimed by a lone task
    that a reaper sent after a lost worker) are left out. The group runs
    under its trials' time limit (they share ``fit``): one group never holds
    the worker longer than one of its jobs may.
    """
    jobs = store()
    queue = (self.request.delivery_info or {}).get("routing_key") or settings.queue()
    worker = worker_name(self.request.hostname)
    claims: dict[str, tuple[str, dict[str, Any]]] = {}
    for job_id in job_ids:
        claimed = claim(self, jobs, job_id, worker, queue)
        if claimed is not None:
            claims[job_id] = claimed
    if not claims:
        logger.info("no trial of %s is queued; nothing to train", job_ids[0])
        return
    first = next(iter(claims.values()))[1]
    limit = settings.effective_time_limit(first["request"]["fit"].get("time_limit_seconds"))
    deadline = time.monotonic() + limit
    tokens = {job_id: token for job_id, (token, _) in claims.items()}
    with LeaseKeeper(jobs, tokens, settings.lease_seconds()) as leases:
        from . import sweeping  # Keras loads here, in the child process

        reporters = [
            Reporter(jobs, job_id, token, leases.lost[job_id])
            for job_id, (token, _) in claims.items()
        ]
        ended: set[int] = set()
        attempts = [job.get("attempt") for _, job in claims.values()]

        def on_trial(index: int, outcome: Any) -> None:
            report, result = reporters[index], outcome.result
            kept = {"result": result} if result is not None else {}
            if outcome.status == "cancelled" or (
                outcome.status == "succeeded" and report.should_stop()
            ):
                # A trial cancelled alone ends with its group, cancelled.
                report.final("cancelled", outcome.model_file, **kept)
            elif outcome.status == "time_limit":
                epochs = result["epochs_completed"] if result else 0
                message = (
                    f"The sweep's group reached its time limit of {limit} s after {epochs} "
                    "epochs; its history and model so far are kept."
                )
                report.final("failed", outcome.model_file, **kept,
                             error=failure("TimeLimitExceeded", message))  # fmt: skip
            elif outcome.status == "succeeded":
                report.final("succeeded", outcome.model_file, **kept)
            else:
                report.final("failed", error=failure("TrainingFailed", outcome.message or ""))
            ended.add(index)

        def should_stop() -> bool:
            return all(report.should_stop() for report in reporters)

        def on_progress(index: int, progress: dict[str, Any]) -> None:
            reporters[index].progress(progress)

        def on_history(index: int, snapshot: dict[str, Any]) -> None:
            reporters[index].history(snapshot, attempt=attempts[index])

        try:
            data = resolve(first["request"]["data"], DatasetStore(jobs.redis, settings.job_ttl()))
            requests = [{**job["request"], "data": data} for _, job in claims.values()]
            path = sweeping.train_group(
                requests,
                expected=first["params"],
                on_trial=on_trial,
                should_stop=should_stop,
                deadline=deadline,
                on_progress=on_progress,
                on_history=on_history,
            )
            logger.info("group of %d trials trained %s", len(requests), path)
            error = None
        except SoftTimeLimitExceeded:
            error = failure("TimeLimitExceeded", f"The group ran past its time limit of {limit} s.")
        except DatasetGone:
            error = failure("DatasetNotFound", "The sweep's data was deleted or expired.")
        except Exception as raised:  # noqa: BLE001 (any failure must end the trials)
            logger.exception("group of %s failed", job_ids[0])
            error = failure(type(raised).__name__, str(raised), traceback.format_exc(limit=-8))
        for index, report in enumerate(reporters):
            if index in ended:
                continue
            # Not reached: the group stopped first (a cancel), or failed.
            if error is None and report.should_stop():
                report.final("cancelled")
            else:
                report.final("failed", error=error or failure(
                    "TrainingFailed", "The group ended without training this trial."
                ))  # fmt: skip


@shared_task(name="seqlab.predict")
def predict(
    job_id: str,
    instances: list[Any],
    reply_key: str | None = None,
    reply_by: float | None = None,
    reply_ttl: int = 60,
) -> dict[str, Any]:
    """The outputs of a succeeded job's model for ``instances``, already
    checked against its input by the API (``POST /jobs/<id>/predict``).

    What an API sends when no predictor of the queue is live (a worker
    from before predictors, or one whose predictor is starting): a worker's
    predictor (:mod:`worker.predictor`) answers the same requests without
    waiting for the pool, which may be training.

    With ``reply_key`` (what the API sends, with ``ignore_result``), the
    answer is pushed onto that list for the API's wait, with a TTL of
    ``reply_ttl`` s, and only if the wait has not ended (``reply_by``, epoch
    seconds): an answer no one waits for is not written at all. Without it
    the answer is only the task's result, as before.
    """
    from . import predicting  # Keras loads here, in the child process

    answer = predicting.answer(store(), job_id, instances)
    if reply_key is not None:
        predicting.deliver(store(), job_id, answer, reply_key, reply_by, reply_ttl)
    return answer


class LeaseKeeper:
    """Renews running jobs' leases from a thread of its own, every third of
    their lifetime, whatever the training loop is doing (one long step, XLA
    compiling): one job's, or a sweep group's (``tokens``: each job's lease
    token). ``lost[job_id]`` is set once a job is no longer this worker's.

    A failed renewal (Redis away) is retried at the next turn: a lease
    lapses only if Redis stays away for its whole lifetime, and is taken up
    again if no reaper came meanwhile.
    """

    def __init__(self, jobs: JobStore, tokens: dict[str, str], seconds: float) -> None:
        self.jobs, self.tokens, self.seconds = jobs, tokens, seconds
        self.lost = {job_id: threading.Event() for job_id in tokens}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seqlab-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._done.wait(self.seconds / 3):
            for job_id, token in self.tokens.items():
                if self.lost[job_id].is_set():
                    continue
                try:
                    held = self.jobs.renew(job_id, token, self.seconds)
                except redis.RedisError as error:
                    logger.warning("job %s: lease not renewed (%s)", job_id, error)
                    continue
                if not held:
                    logger.warning("job %s is no longer this worker's; stopping it", job_id)
                    self.lost[job_id].set()


class Reporter:
    """Writes a running job's progress and outcome, riding out Redis blips.

    Every write names the job's lease token, so it is a no-op once the job
    is no longer this worker's (given back after the lease lapsed, and maybe
    running elsewhere). Progress and cancel checks are best effort: a failed
    write is retried once and then dropped (the next one comes within a
    second), a failed cancel check reads as "not cancelled". The final write
    is retried with backoff for ``SEQLAB_FINAL_WRITE_SECONDS``; if Redis
    stays away past that, the lease lapses and a reaper settles the job.
    """

    def __init__(self, jobs: JobStore, job_id: str, token: str, lost: threading.Event) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.token = token
        #: Set once the job's lease is lost (:class:`LeaseKeeper`).
        self.lost = lost

    def progress(self, progress: dict[str, Any]) -> None:
        for attempt in range(2):
            try:
                self.jobs.update_leased(self.job_id, self.token, progress=progress)
                return
            except redis.RedisError as error:
                if attempt:
                    logger.warning("job %s: progress dropped (%s)", self.job_id, error)
                else:
                    time.sleep(0.05)

    def history(self, snapshot: dict[str, Any], attempt: int | None) -> None:
        """Store the history so far (``history_so_far``: what the API plots
        while the job runs); best effort, as the next comes in seconds.

        It names the run's ``attempt``, so that the plot of a job run again
        never shows the curve of the run before.
        """
        try:
            self.jobs.update_leased(
                self.job_id, self.token, history_so_far={**snapshot, "attempt": attempt}
            )
        except redis.RedisError as error:
            logger.warning("job %s: history so far dropped (%s)", self.job_id, error)

    def should_stop(self) -> bool:
        """Whether a cancel was asked for, or the job is no longer ours."""
        if self.lost.is_set():
            return True
        try:
            return self.jobs.cancel_requested(self.job_id)
        except redis.RedisError as error:
            logger.warning("job %s: cancel check skipped (%s)", self.job_id, error)
            return False

    def final(self, status: str, model_file: bytes | None = None, **fields: Any) -> None:
        """Store the final status with the model (if any), retrying.

        The result's predictions are stored apart first, and left in the
        record only for a small training set (:data:`INLINE_PREDICTIONS`).
        A write that Redis refuses for good (out of memory, a value over its
        limit: :func:`~jobs.store.permanent_error`) is not retried: the job
        ends ``failed`` at once (:meth:`refused`), never trained again.
        """
        deadline = time.monotonic() + settings.final_write_seconds()
        predictions = None
        if "result" in fields and "predictions" in fields["result"]:
            result = dict(fields["result"])
            predictions = result["predictions"]
            if prediction_samples(predictions) > INLINE_PREDICTIONS:
                del result["predictions"]
                fields = {**fields, "result": result}

        def store_outcome() -> bool:
            if predictions is not None:
                self.jobs.put_predictions_leased(self.job_id, self.token, predictions)
            return self.jobs.finish_leased(self.job_id, self.token, status, model_file, **fields)

        try:
            held = self.retrying(store_outcome, deadline, status)
        except redis.RedisError as error:
            kind = permanent_error(error)
            if kind is None:
                raise
            held = self.refused(kind, error, model_file, predictions, fields, deadline)
        if not held:
            logger.warning(
                "job %s is no longer this worker's; its outcome (%s) is dropped",
                self.job_id, status,
            )  # fmt: skip

    def retrying(self, write: Callable[[], bool], deadline: float, status: str) -> bool:
        """``write()``, retried with backoff until ``deadline`` while Redis
        is unreachable; a refusal that retrying cannot help is raised at once."""
        delay = 0.1
        while True:
            try:
                return write()
            except redis.RedisError as error:
                if permanent_error(error) is not None:
                    raise
                if time.monotonic() + delay > deadline:
                    logger.error(
                        "job %s: could not store its outcome (%s) for %ss; giving up",
                        self.job_id, status, settings.final_write_seconds(),
                    )  # fmt: skip
                    raise
                logger.warning("job %s: storing outcome failed (%s); retrying", self.job_id, error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def refused(
        self,
        kind: str,
        error: redis.RedisError,
        model_file: bytes | None,
        predictions: Any,
        fields: dict[str, Any],
        deadline: float,
    ) -> bool:
        """End the job ``failed`` with ``kind`` (``StorageFull`` or
        ``ResultTooLarge``), naming the sizes and Redis's limit, after Redis
        refused its results for good: what was written of them is deleted
        (freeing the memory), the history is kept where Redis takes it."""
        logger.error("job %s: Redis refused its results for good (%s)", self.job_id, error)
        chunks = len(model_chunks(model_file)) if model_file is not None else 0
        with contextlib.suppress(redis.RedisError):
            self.jobs.drop_results(self.job_id, chunks)
        message = refused_message(self.jobs.redis, kind, error, model_file, predictions)
        error_doc = failure(kind, message)
        tries: list[dict[str, Any]] = [{"error": error_doc}]
        if fields.get("result"):
            light = {k: v for k, v in fields["result"].items() if k != "predictions"}
            light["predictions_not_stored"] = {"reason": "storage_refused", "message": message}
            tries.insert(0, {"result": light, "error": error_doc})
        for extra in tries:
            try:
                return self.retrying(
                    lambda extra=extra: self.jobs.finish_leased(
                        self.job_id, self.token, "failed", **extra
                    ),
                    deadline,
                    "failed",
                )
            except redis.RedisError as again:
                if permanent_error(again) is None:
                    raise
                logger.error("job %s: its failure was refused too (%s)", self.job_id, again)
        return True


def refused_message(
    client: redis.Redis, kind: str, error: redis.RedisError, model_file: bytes | None,
    predictions: Any,
) -> str:  # fmt: skip
    """The error message of a job whose results Redis refused: what it
    stored (the model file's and predictions' sizes) and Redis's limit."""
    sizes = []
    if model_file is not None:
        sizes.append(f"a model file of {len(model_file)} bytes")
    if predictions is not None:
        size = len(json.dumps(finite(predictions), allow_nan=False))
        sizes.append(f"predictions of {size} bytes")
    what = " and ".join(sizes) or "its outcome"
    reply = str(error).split(" script:")[0]
    if kind == "StorageFull":
        limit = redis_setting(client, "maxmemory")
        return (
            f"Redis refused to store the job's results ({what}) for lack of memory: its "
            f"maxmemory is {limit} bytes (Redis said: {reply}). Nothing of them was kept; "
            "free memory in Redis or raise its maxmemory, and train again."
        )
    limit = redis_setting(client, "proto-max-bulk-len")
    return (
        f"Redis refused a value of the job's results ({what}) as too large: its limit on "
        f"one value (proto-max-bulk-len) is {limit} bytes (Redis said: {reply}). Nothing "
        "of them was kept; lower SEQLAB_MAX_PREDICTION_BYTES or set "
        "fit.store_predictions to false, and train again."
    )


def redis_setting(client: redis.Redis, name: str) -> str:
    """A Redis configuration value, or ``"unknown"`` where it cannot be read
    (CONFIG renamed away)."""
    try:
        values = client.config_get(name)
    except redis.RedisError:
        return "unknown"
    value = values.get(name, values.get(name.encode()))
    if isinstance(value, bytes):
        return value.decode()
    return "unknown" if value is None else str(value)


@task_failure.connect
def _settle_killed(sender: Any = None, task_id: str | None = None, exception: Any = None,
                   **_: Any) -> None:  # fmt: skip
    """A pool process that died mid-task (killed, out of memory, or past the
    hard time limit) never reached the handlers above; the worker's main
    process hears of it here and settles the job at once, if this worker
    still holds it: a time limit fails it, a death gives it back (or fails
    it with WorkerLost past its retries). Other failures were the task's own."""
    if getattr(sender, "name", None) != "seqlab.train" or task_id is None:
        return
    from .maintenance import node_reaper

    found = node_reaper()
    if found is None:  # not in a worker's main process
        return
    reaper, node = found
    if isinstance(exception, TimeLimitExceeded):
        message = f"The job ran past its time limit and was killed ({exception})."
        reaper.reap(
            task_id, worker=node, reason="time limit", error=failure("TimeLimitExceeded", message)
        )
    elif isinstance(exception, WorkerLostError):
        reaper.reap(task_id, worker=node, reason=f"its process died ({exception})")


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each pool process loads Keras in the background as soon as it starts
    (the handler itself must return within seconds), so jobs find it warm."""
    if os.environ.get("SEQLAB_WARM_UP", "1") == "0":
        return

    def run() -> None:
        started = time.monotonic()
        from . import training

        try:
            training.warm_up()
        except Exception:  # noqa: BLE001 (a failed warm-up only costs time)
            logger.exception("warm-up failed")
        else:
            logger.info("warm-up: done in %.1f s", time.monotonic() - started)

    threading.Thread(target=run, name="seqlab-warm-up", daemon=True).start()
