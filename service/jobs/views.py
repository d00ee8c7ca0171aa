"""Training jobs: ``POST /train``, ``GET /jobs``, ``GET /jobs/<id>``, cancel,
delete, the trained model, and the seed article's examples.

With API keys (service/auth.py) every route here but ``/examples`` needs
one, each job belongs to the tenant that created it, and every route that
names a job loads it through :func:`get_job_or_404`, where ownership is
checked: another tenant's job is answered exactly as a missing one.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import Conflict
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable

from jobs.reaper import send_train_task
from jobs.store import STATUSES
from jobs.store import TERMINAL
from jobs.store import JobStore
from jobs.store import ModelGone
from jobs.store import is_job_id
from jobs.store import new_job_id
from modelspec.errors import ApiValidationError
from seqlab import ModelReport
from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.cost import JobCost
from seqlab.examples import EXAMPLES

from .. import auth
from ..datasets.checks import check_data
from ..datasets.graph_checks import check_early_stopping_mode
from ..datasets.graph_checks import check_graph_request
from ..datasets.graph_checks import check_graph_validation
from ..datasets.graph_checks import data_shapes
from ..datasets.graph_checks import history_names
from ..datasets.graph_checks import is_graph_report
from ..datasets.graph_checks import refuse_graph_datasets
from ..datasets.graph_checks import refuse_graph_forms
from ..datasets.views import check_validation_data
from ..datasets.views import resolve_train_data
from ..limits import check_limits
from ..requests import get_json_object
from .backends import check_backends
from .idempotency import HEADER as IDEMPOTENCY_KEY
from .idempotency import IdempotentRequest
from .ratelimit import check_train_rate
from .routing import route
from .schemas import monitor_error
from .schemas import train_request_schema
from .submission import job_document
from .submission import job_model
from .submission import job_params
from .submission import stored_data
from .submission import stored_request

bp = Blueprint("jobs", __name__)
logger = logging.getLogger(__name__)


def store() -> JobStore:
    return current_app.extensions["jobs"]  # type: ignore[no-any-return]


def no_such_job(job_id: str) -> NotFound:
    """The 404 for an id that names no job, whatever the reason."""
    shown = job_id if len(job_id) <= 64 else f"{job_id[:64]}…"  # echo no megabytes
    return NotFound(f"There is no job {shown!r} (jobs are kept for a limited time).")


def checked_job_id(job_id: str) -> str:
    """The id of a job route, if it has the form of one.

    Every route with a job id passes it here first: an id of another form
    (``<id>:model``) would otherwise reach a Redis key of another type.

    :raise 404: as for an unknown id.
    """
    if not is_job_id(job_id):
        raise no_such_job(job_id)
    return job_id


def get_job_or_404(job_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The job record (or its ``status`` and ``fields``), if the caller may
    see it: every route that names a job loads it here first.

    :raise 404: if there is no such job (never created, expired, deleted,
        or an id of another form), or it is another tenant's: the very
        answer of an unknown id, so that ids reveal nothing.
    """
    if fields is not None:
        fields = (*fields, "tenant")
    job = store().get(checked_job_id(job_id), fields)
    if job is None:
        raise no_such_job(job_id)
    check_owner(job_id, job.get("tenant"))
    return job


def check_owner(job_id: str, tenant: str | None) -> None:
    """The one ownership check of a job: a job of ``tenant`` that the caller
    may not see is the 404 of an unknown id. :func:`get_job_or_404` runs it
    on every record it loads; a prediction runs it on the facts a process
    kept of a record (``service.jobs.predict``), whose tenant never changes.

    :raise 404: if the caller is not the job's tenant (with keys on).
    """
    if not auth.owned_by_caller(tenant):
        raise no_such_job(job_id)


def visible_job(job_id: str) -> dict[str, Any] | None:
    """The job record if the caller may see it, None otherwise."""
    job = store().get(job_id)
    return job if job is not None and auth.owned_by_caller(job.get("tenant")) else None


def _accepted(job: dict[str, Any], replayed: bool) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Location": f"/jobs/{job['id']}", "Retry-After": "1"}
    if replayed:  # the answer of an earlier request with the same Idempotency-Key
        headers["Idempotent-Replayed"] = "true"
    return job_document(job), 202, headers


@bp.post("/train")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue a training job; poll the returned Location for its progress.

    With an ``Idempotency-Key`` a repeated request gets the job of the
    first (202, ``Idempotent-Replayed: true``) instead of a second job.
    """
    check_train_rate()
    raw = get_json_object()
    idempotent = IdempotentRequest.from_header(
        request.headers.get(IDEMPOTENCY_KEY),
        store().redis,
        auth.caller(),
        raw,
        float(current_app.config["IDEMPOTENCY_WAIT_SECONDS"]),
    )
    if idempotent is not None:
        earlier = idempotent.earlier_job(visible_job)
        if earlier is not None:
            return _accepted(earlier, replayed=True)
    prepared = prepare_train(train_request_schema.load(raw))
    job_id = new_job_id()
    if idempotent is not None:
        # Claimed before anything is written: of concurrent requests with
        # one key, one creates the job and the others answer with it.
        earlier = idempotent.claim(job_id, visible_job)
        if earlier is not None:
            return _accepted(earlier, replayed=True)
    try:
        record = _create_and_queue(job_id, prepared)
    except BaseException:
        if idempotent is not None:
            # The key is free for the retry. Without Redis this fails too,
            # and the claim frees itself within CLAIM_SECONDS.
            with contextlib.suppress(redis.exceptions.RedisError):
                idempotent.release()
        raise
    if idempotent is not None:
        idempotent.confirm()
    return _accepted(record, replayed=False)


@dataclass
class PreparedJob:
    """A train request checked in full, with what writing its job needs."""

    body: dict[str, Any]
    report: ModelReport
    cost: JobCost
    #: What the worker needs to load the request's datasets (None: inline data).
    dataset_refs: dict[str, Any] | None
    warnings: list[str]
    #: The queue it goes to (service/jobs/routing.py).
    queue: str


def prepare_train(body: dict[str, Any], *, check_values: bool = True) -> PreparedJob:
    """Every check of a loaded train request beyond its schema: the model
    (the engine's analysis), the data against the model, the datasets it
    names, the limits and the cost model, the queue its size routes it to
    and the memory and backends of the live workers there.
    ``POST /train`` runs it once, ``POST /sweeps`` once per trial, with
    ``check_values`` (reading every value of the inline data against the
    model) only for the first trial of each model structure.

    :raise ApiValidationError: 422 naming the field and the reason.
    """
    try:
        report = analyze(body["model"])
    except SpecError as error:
        path = f"model.{error.path}" if error.path else "model"
        raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None
    graph = is_graph_report(report)
    if graph:
        refuse_graph_datasets(report, body)
    else:
        refuse_graph_forms(body)
    # A dataset's shapes stand in for its arrays from here on.
    dataset_refs = resolve_train_data(body)
    if graph:
        check_graph_request(report, body)
        check_graph_validation(report, body)
        check_early_stopping_monitor(body, history_names(report, body["compile"]))
        check_early_stopping_mode(report, body)
    elif dataset_refs:
        check_early_stopping_monitor(body)
    cost = check_limits(report, body)
    if not graph:
        check_data(report, body, values=check_values)
        check_validation_data(report, body, values=check_values)
    routed = route(cost.worker_memory_known)
    warnings = [*routed.warnings, *check_backends(report, routed.queue)]
    return PreparedJob(body, report, cost, dataset_refs, warnings, routed.queue)


def check_early_stopping_monitor(body: dict[str, Any], logged: list[str] | None = None) -> None:
    """``fit.early_stopping.monitor`` of a job on datasets, once it is known
    whether they bring validation arrays, or of a graph model, whose
    ``logged`` names depend on its outputs (the schema checks the others)."""
    options = body["fit"].get("early_stopping")
    error = monitor_error(options["monitor"], body, logged) if options else None
    if error:
        path = "fit.early_stopping.monitor"
        raise ApiValidationError(f"{path}: {error}", {path: [error]})


def stored_job_data(prepared: PreparedJob) -> dict[str, Any]:
    """The inline training data a job stores (none for data on a dataset)."""
    refs = prepared.dataset_refs
    return stored_data(prepared.body) if refs is None or "dataset" not in refs else {}


def job_fields(
    prepared: PreparedJob,
    *,
    data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields and the data of a queued job's record (``JobStore.create``).

    A job on datasets stores their ids, not their arrays: the worker reads
    them when it starts the job. ``data``: what to store instead of the
    request's data (a sweep's trials name the sweep's, stored once);
    ``extra``: more fields of the record.
    """
    body, report, cost = prepared.body, prepared.report, prepared.cost
    dataset_refs, warnings = prepared.dataset_refs, prepared.warnings
    shapes: dict[str, Any] = {key: data_shapes(body["data"][key]) for key in ("x", "y")}
    data = stored_job_data(prepared) if data is None else dict(data)
    if dataset_refs:
        data.update(dataset_refs)
        if "dataset" in dataset_refs:
            shapes["dataset"] = dataset_refs["dataset"]
        if "validation" in dataset_refs:
            shapes["validation"] = {
                "dataset": dataset_refs["validation"]["dataset"],
                "x": body["validation"]["x"]["shape"],
                "y": body["validation"]["y"]["shape"],
            }
    fields = {
        "request": stored_request(body),
        "model": job_model(report),
        "params": job_params(report, render_summary(report)),
        "data_shapes": shapes,
        "estimated_cost": cost.to_dict(),
        "queue": prepared.queue,
        **({"warnings": warnings} if warnings else {}),
        **(extra or {}),
    }
    return fields, data


def _create_and_queue(job_id: str, prepared: PreparedJob) -> dict[str, Any]:
    """Write the job, of the caller's tenant, and queue it; returns the record.

    :raise 503: if it cannot be queued (and then nothing is left written).
    """
    tenant = auth.caller()
    record = store().create(job_id, *job_fields(prepared), tenant=tenant)
    try:
        send_train_task(
            current_app.extensions["celery"],
            job_id,
            prepared.queue,
            prepared.body["fit"].get("time_limit_seconds"),
        )
    except Exception as error:
        # Nothing half-written: a job that was never queued does not exist.
        try:
            store().delete(job_id, tenant)
        finally:
            current_app.logger.warning("could not queue job %s: %s", job_id, error)
        unavailable = ServiceUnavailable("The job queue is unreachable; try again shortly.")
        unavailable.retry_after = 5  # type: ignore[assignment]
        raise unavailable from error
    return record


PAGE_SIZE_ERROR = "Must be an integer from 1 to 100."
STATUS_ERROR = f"Must be one of: {', '.join(STATUSES)}."
PAGE_TOKEN_ERROR = "Not a token of this API: give the next_page_token of the previous page."


def page_token(score: float, job_id: str) -> str:
    """The cursor after a job: its creation score and id (opaque to clients)."""
    return base64.urlsafe_b64encode(f"{score!r}:{job_id}".encode()).decode()


def read_page_token(token: str) -> tuple[float, str] | None:
    """The (score, id) cursor of a token, None for anything we did not write
    (so that nothing Redis would refuse reaches it)."""
    try:
        score, _, job_id = base64.urlsafe_b64decode(token).decode("ascii").partition(":")
        value = float(score)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (value, job_id) if math.isfinite(value) and is_job_id(job_id) else None


@bp.get("/jobs")
def list_jobs() -> dict[str, Any]:
    """List jobs, newest first, a page at a time (cursor paging)."""
    errors: dict[str, list[str]] = {}
    try:
        size = int(request.args.get("page_size", 20))
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        errors["page_size"] = [PAGE_SIZE_ERROR]
    after = None
    if "page_token" in request.args:
        after = read_page_token(request.args["page_token"])
        if after is None:
            errors["page_token"] = [PAGE_TOKEN_ERROR]
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        errors["status"] = [STATUS_ERROR]
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
    fields = ("id", "created_at", "started_at", "finished_at", "progress", "error",
              "cancel_requested", "attempt", "model")  # fmt: skip
    # With API keys, the caller's own index: paging and pruning per tenant.
    page, cursor = store().page(size, after, fields, tenant=auth.caller(), status=status)
    page = current_app.extensions["reaper"].settle_page(page, fields)
    if status is not None:
        # A running job whose worker was lost has just been settled: it no
        # longer belongs here (the page is short; the cursor stays right).
        page = [job for job in page if job["status"] == status]
    token = page_token(*cursor) if cursor else None
    return {"jobs": [job_document(job, full=False) for job in page], "next_page_token": token}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> dict[str, Any]:
    """A job: its status, progress, and when done its results."""
    return job_document(current_app.extensions["reaper"].settle(get_job_or_404(job_id)))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Cancel a job: a queued one never starts, a running one stops at its
    next epoch boundary and keeps its partial history.

    The status code and the document come from one atomic step, so a job
    that ends meanwhile is a 409 with its final status, never a 202.
    """
    get_job_or_404(job_id, fields=())  # the ownership check
    answer = store().cancel(job_id)
    if answer is None:
        raise no_such_job(job_id)
    outcome, job = answer
    if outcome == "ended":
        raise Conflict(f"Job {job_id} has already ended ({job['status']}); nothing to cancel.")
    # 200: cancelled now; 202: the running job will stop at its next epoch.
    return job_document(job), 200 if outcome == "cancelled" else 202


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    """Delete a finished job: its record, data, results and model.

    A queued or running job is a 409 (cancel it first: deleting it would
    hide a worker's work, not stop it); a job already deleted is a 404.
    """
    owner = get_job_or_404(job_id, fields=()).get("tenant")
    status = store().remove_finished(job_id, owner)
    if status is None:
        raise no_such_job(job_id)
    if status not in TERMINAL:
        raise Conflict(
            f"Job {job_id} is {status}; cancel it first (POST /jobs/{job_id}/cancel) "
            "and delete it once it has ended."
        )
    return "", 204


@bp.get("/jobs/<job_id>/model")
def download_model(job_id: str) -> Response:
    """The trained model as a ``.keras`` file (``keras.saving.load_model``),
    streamed a stored chunk at a time: the API holds one chunk (4 MiB) of
    it, never the whole file, and says its length up front."""
    job = get_job_or_404(job_id, fields=())
    jobs = store()
    info = jobs.model_file(job_id)
    if info is None or not jobs.model_file_complete(job_id, info):
        raise Conflict(
            f"Job {job_id} is {job['status']}; a model file exists once it has "
            "succeeded (or was cancelled after training started)."
        )
    return Response(
        model_stream(jobs, job_id, info),
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="seqlab-{job_id}.keras"',
            "Content-Length": str(info["bytes"]),
        },
    )


def model_stream(jobs: JobStore, job_id: str, info: dict[str, int]) -> Iterator[bytes]:
    """The chunks of a model file; one that expired or was deleted while
    the file was sent ends the body short of its Content-Length, which the
    client sees as a broken download (the status line is long gone)."""
    try:
        yield from jobs.iter_model(job_id, info)
    except ModelGone:
        # Outside the request's context by now: the module's logger.
        logger.warning("model file of job %s went away while sent", job_id)


@bp.get("/examples")
@auth.public
def list_examples() -> dict[str, Any]:
    """The seed article's three programs and the Functional presets, usable
    as ``{"example": name}``."""
    return {
        "examples": [
            {"name": name, **{k: v for k, v in preset.items()}} for name, preset in EXAMPLES.items()
        ]
    }
