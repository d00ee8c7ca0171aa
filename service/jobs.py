"""Training jobs: ``POST /train``, ``GET /jobs``, ``GET /jobs/<id>``, cancel,
the trained model, and the seed article's examples."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import redis
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import Conflict
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable

from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.examples import EXAMPLES
from worker.store import JobStore
from worker.store import new_job_id

from .data_checks import check_data
from .problems import ApiValidationError
from .problems import problem
from .requests import get_json_object
from .submission import job_document
from .submission import job_params
from .submission import stored_request
from .train_schemas import train_request_schema

bp = Blueprint("jobs", __name__)


def store() -> JobStore:
    return current_app.extensions["jobs"]  # type: ignore[no-any-return]


def get_job_or_404(job_id: str) -> dict[str, Any]:
    """The job record.

    :raise 404: if there is no such job (never created, or expired).
    """
    job = store().get(job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id!r} (jobs are kept for a limited time).")
    return job


@bp.errorhandler(redis.exceptions.ConnectionError)
@bp.errorhandler(redis.exceptions.TimeoutError)
def redis_unavailable(error: Exception) -> Response:
    """Without Redis there are no jobs; say so rather than fail."""
    current_app.logger.warning("Redis unavailable: %s", error)
    response = problem(503, "The job store (Redis) is unreachable; try again shortly.")
    response.headers["Retry-After"] = "5"
    return response


@bp.post("/train")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue a training job; poll the returned Location for its progress."""
    body = train_request_schema.load(get_json_object())
    try:
        report = analyze(body["model"])
    except SpecError as error:
        path = f"model.{error.path}" if error.path else "model"
        raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None
    check_data(report, body)
    job_id = new_job_id()
    record = store().create(
        job_id,
        {
            "request": stored_request(body),
            "params": job_params(report, render_summary(report)),
            "data_shapes": {"x": body["data"]["x"]["shape"], "y": body["data"]["y"]["shape"]},
        },
    )
    try:
        current_app.extensions["celery"].send_task(
            "seqlab.train", args=[job_id], task_id=job_id, queue=current_app.config["SEQLAB_QUEUE"]
        )
    except Exception as error:
        # Nothing half-written: a job that was never queued does not exist.
        try:
            store().delete(job_id)
        finally:
            current_app.logger.warning("could not queue job %s: %s", job_id, error)
        unavailable = ServiceUnavailable("The job queue is unreachable; try again shortly.")
        unavailable.retry_after = 5  # type: ignore[assignment]
        raise unavailable from error
    headers = {"Location": f"/jobs/{job_id}", "Retry-After": "1"}
    return job_document(record), 202, headers


@bp.get("/jobs")
def list_jobs() -> dict[str, Any]:
    """List jobs, newest first, a page at a time."""
    try:
        size = int(request.args.get("page_size", 20))
        offset = int(base64.urlsafe_b64decode(request.args.get("page_token", "MA==")).decode())
        if not 1 <= size <= 100 or offset < 0:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiValidationError(
            "page_size must be 1-100 and page_token a token from a previous page.",
            {"query": ["Invalid page_size or page_token."]},
        ) from None
    jobs = store()
    ids = jobs.list_ids(offset, size + 1)
    page = []
    for job_id in ids[:size]:
        job = jobs.get(job_id, ("id", "created_at", "started_at", "finished_at", "progress",
                                "error", "cancel_requested"))  # fmt: skip
        if job is not None:
            page.append(job_document(job, full=False))
    token = None
    if len(ids) > size:
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
    return {"jobs": page, "next_page_token": token}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> dict[str, Any]:
    """A job: its status, progress, and when done its results."""
    return job_document(get_job_or_404(job_id))


@bp.post("/jobs/<job_id>/cancel")
@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Cancel a job: a queued one never starts, a running one stops at its
    next epoch boundary and keeps its partial history."""
    get_job_or_404(job_id)
    outcome = store().cancel(job_id)
    job = get_job_or_404(job_id)
    if outcome is None:
        raise Conflict(f"Job {job_id} has already ended ({job['status']}); nothing to cancel.")
    # 200: cancelled now; 202: the running job will stop at its next epoch.
    return job_document(job), 200 if outcome == "cancelled" else 202


@bp.get("/jobs/<job_id>/model")
def download_model(job_id: str) -> Response:
    """The trained model as a ``.keras`` file (``keras.saving.load_model``)."""
    job = get_job_or_404(job_id)
    data = store().get_model(job_id)
    if data is None:
        raise Conflict(
            f"Job {job_id} is {job['status']}; a model file exists once it has "
            "succeeded (or was cancelled after training started)."
        )
    return Response(
        data,
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="seqlab-{job_id}.keras"'},
    )


@bp.get("/examples")
def list_examples() -> dict[str, Any]:
    """The seed article's three programs, usable as ``{"example": name}``."""
    return {
        "examples": [
            {"name": name, **{k: v for k, v in preset.items()}} for name, preset in EXAMPLES.items()
        ]
    }
