"""Sweeps: ``POST /sweeps`` (many variants of one train request), ``GET
/sweeps``, ``GET /sweeps/<id>``, cancel, delete, and one trial's model and
predictions.

Each trial is checked as ``POST /train`` checks a request (its 422 names the
trial, its values and the field), the sweep as a whole against the limits
and the cost model, all before anything is written. Each trial is then a job
of its own (``GET /jobs/<id>`` and all that follows one), not listed among
the tenant's jobs; trials of one structure are queued as one task that
trains them together (``seqlab.train_group``, worker/sweeping.py). Every
route that names a sweep loads it through :func:`get_sweep_or_404`, where
ownership is checked: another tenant's sweep is answered as a missing one.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
import redis
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import Conflict
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable

from jobs.reaper import send_group_task
from jobs.store import TERMINAL
from jobs.store import new_job_id
from jobs.store import now
from jobs.sweeps import SweepStore
from jobs.sweeps import is_sweep_id
from jobs.sweeps import new_sweep_id
from jobs.sweeps import shared_data
from modelspec.errors import ApiValidationError
from modelspec.errors import flatten_errors
from seqlab import render_summary
from seqlab.fit import history_names as fit_history_names
from seqlab.sweeps import SweepError
from seqlab.sweeps import Trial
from seqlab.sweeps import check_vary
from seqlab.sweeps import default_objective
from seqlab.sweeps import expand
from seqlab.sweeps import groups
from seqlab.sweeps import structure_key

from .. import auth
from ..datasets.graph_checks import history_names
from ..datasets.graph_checks import is_graph_report
from ..jobs import predict as job_predict
from ..jobs import views as job_views
from ..jobs.idempotency import HEADER as IDEMPOTENCY_KEY
from ..jobs.idempotency import IdempotentRequest
from ..jobs.ratelimit import check_train_rate
from ..jobs.schemas import train_request_schema
from ..jobs.submission import stored_data
from ..jobs.submission import stored_request
from ..requests import get_json_object
from .documents import TRIAL_FIELDS
from .documents import sweep_document
from .documents import sweep_fields_schema
from .documents import trial_request_schema

bp = Blueprint("sweeps", __name__)


def store() -> SweepStore:
    return current_app.extensions["sweeps"]  # type: ignore[no-any-return]


def no_such_sweep(sweep_id: str) -> NotFound:
    shown = sweep_id if len(sweep_id) <= 64 else f"{sweep_id[:64]}…"
    return NotFound(f"There is no sweep {shown!r} (sweeps are kept for a limited time).")


def get_sweep_or_404(sweep_id: str) -> dict[str, Any]:
    """The sweep's record, if the caller may see it: every route that names
    a sweep loads it here first.

    :raise 404: if there is no such sweep (never created, expired, deleted,
        an id of another form) or it is another tenant's: the same answer.
    """
    sweep = store().get(sweep_id) if is_sweep_id(sweep_id) else None
    if sweep is None or not auth.owned_by_caller(sweep.get("tenant")):
        raise no_such_sweep(sweep_id)
    return sweep


def visible_sweep(sweep_id: str) -> dict[str, Any] | None:
    """The sweep's document if the caller may see it (an idempotent
    request's earlier sweep), None otherwise."""
    sweep = store().get(sweep_id) if is_sweep_id(sweep_id) else None
    if sweep is None or not auth.owned_by_caller(sweep.get("tenant")):
        return None
    return sweep_document(sweep, trial_records(sweep, TRIAL_FIELDS))


def trial_records(sweep: Mapping[str, Any], fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Each trial's job record (``status`` and ``fields``), a running one
    whose worker was lost settled first, as ``GET /jobs/<id>`` settles it
    (queued again, its task published: a lone job now): a sweep never
    waits on a dead worker."""
    fields = fields if "id" in fields else ("id", *fields)
    records = store().trials(sweep, fields)
    return current_app.extensions["reaper"].settle_page(records, fields)  # type: ignore[no-any-return]


def trial_job_id(sweep_id: str, number: str) -> str:
    """The job of trial ``number`` of the caller's sweep.

    :raise 404: for an unknown sweep, or a number that names no trial.
    """
    sweep = get_sweep_or_404(sweep_id)
    if not number.isdigit() or int(number) >= len(sweep["trials"]):
        raise NotFound(
            f"Sweep {sweep_id} has {len(sweep['trials'])} trials, numbered from 0: "
            f"there is no trial {number[:20]!r}."
        )
    return sweep["trials"][int(number)]["job"]  # type: ignore[no-any-return]


def refused(field: str, message: str) -> ApiValidationError:
    """The 422 of one field of a sweep request."""
    return ApiValidationError(f"{field}: {message}", {field: [message]})


def _accepted(document: dict[str, Any], replayed: bool) -> tuple[dict[str, Any], int, dict]:
    headers = {"Location": f"/sweeps/{document['id']}", "Retry-After": "1"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return document, 202, headers


@bp.post("/sweeps")
def create_sweep() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue a sweep: a train request (or ``{"example": name}`` with
    overrides) and ``vary``, dotted paths into it each with a list of
    values; the trials are their cartesian product."""
    check_train_rate()
    raw = get_json_object()
    idempotent = IdempotentRequest.from_header(
        request.headers.get(IDEMPOTENCY_KEY),
        job_views.store().redis,
        auth.caller(),
        {"sweep": raw},
        float(current_app.config["IDEMPOTENCY_WAIT_SECONDS"]),
    )
    if idempotent is not None:
        earlier = idempotent.earlier_job(visible_sweep)
        if earlier is not None:
            return _accepted(earlier, replayed=True)
    own = sweep_fields_schema.load({k: raw[k] for k in ("vary", "objective") if k in raw})
    base = {k: v for k, v in raw.items() if k not in ("vary", "objective")}
    try:
        vary = check_vary(own["vary"], int(current_app.config["SEQLAB_MAX_TRIALS"]))
    except SweepError as error:
        raise refused(error.path, error.message) from None
    # The data is loaded (and checked) once: every trial shares it.
    loaded = train_request_schema.load(base)
    merged = train_request_schema.apply_example(base)
    template = {k: v for k, v in merged.items() if k not in ("data", "validation")}
    try:
        trials = expand(template, vary)
    except SweepError as error:
        raise refused(error.path, error.message) from None
    structures: set[str] = set()
    prepared = [prepare_trial(trial, loaded, structures) for trial in trials]
    objective = own.get("objective") or default_objective(logged_names(prepared[0]))
    check_objective(objective, prepared)
    check_sweep_cost(prepared, loaded)
    sweep_id = new_sweep_id()
    if idempotent is not None:
        earlier = idempotent.claim(sweep_id, visible_sweep)
        if earlier is not None:
            return _accepted(earlier, replayed=True)
    try:
        document = write_and_queue(sweep_id, trials, prepared, loaded, vary, objective)
    except BaseException:
        if idempotent is not None:
            with contextlib.suppress(redis.exceptions.RedisError):
                idempotent.release()
        raise
    if idempotent is not None:
        idempotent.confirm()
    return _accepted(document, replayed=False)


def prepare_trial(
    trial: Trial, loaded: Mapping[str, Any], structures: set[str]
) -> job_views.PreparedJob:
    """A trial's request checked as ``POST /train`` checks one; the data's
    values only for the first trial of its model structure (``structures``:
    those checked so far), as the others' checks would read the same values
    against the same model (256 trials on 1 MiB of data: 1.49 → 0.37 s).

    :raise ApiValidationError: 422 naming the trial, its values and the field.
    """
    raw = copy.copy(trial.request)
    raw["data"] = copy.copy(loaded["data"])
    if "validation" in loaded:
        raw["validation"] = copy.copy(loaded["validation"])
    try:
        body = trial_request_schema.load(raw)
        key = structure_key(body)
        prepared = job_views.prepare_train(body, check_values=key not in structures)
        structures.add(key)
        return prepared
    except ma.ValidationError as error:
        errors = flatten_errors(error.normalized_messages())
    except ApiValidationError as error:
        errors = error.errors
    values = ", ".join(f"{path} = {value!r}" for path, value in trial.values.items())
    named = {
        field: [f"trial {trial.number} ({values}): {m}" for m in ms] for field, ms in errors.items()
    }
    field, messages = next(iter(named.items()))
    raise ApiValidationError(f"{field}: {messages[0]}", named)


def logged_names(prepared: job_views.PreparedJob) -> list[str]:
    """The names a trial's fit logs each epoch, ``val_`` ones included."""
    body = prepared.body
    if is_graph_report(prepared.report):
        names = history_names(prepared.report, body["compile"])
    else:
        names = fit_history_names(["output"], body["compile"].get("metrics"))
    validated = bool(body["fit"].get("validation_split")) or "validation" in body
    return names + ([f"val_{n}" for n in names] if validated else [])


def check_objective(objective: Mapping[str, str], prepared: list[job_views.PreparedJob]) -> None:
    """The objective's metric is logged by every trial.

    :raise ApiValidationError: 422 on ``objective.metric``, naming what is logged.
    """
    for number, trial in enumerate(prepared):
        logged = logged_names(trial)
        if objective["metric"] not in logged:
            message = (
                f"Must be a value every trial logs; trial {number} logs "
                f"{', '.join(logged)}. Received: {objective['metric']!r}."
            )
            raise ApiValidationError(
                f"objective.metric: {message}", {"objective.metric": [message]}
            )


def check_sweep_cost(prepared: list[job_views.PreparedJob], loaded: Mapping[str, Any]) -> None:
    """The sweep as a whole against the limits, before anything is written.

    Trials of one structure train at once in one worker process: their
    worker memory adds up (the data held once) and is checked against
    ``SEQLAB_WORKER_MEMORY_BYTES``. What the sweep keeps in Redis (the
    shared data once, each trial's model file, predictions and history)
    is checked against ``SEQLAB_MAX_SWEEP_STORED_BYTES``.

    :raise ApiValidationError: 422 on ``vary``, naming the figures and the limit.
    """
    keys = [structure_key(p.body) for p in prepared]
    memory_limit = int(current_app.config["SEQLAB_WORKER_MEMORY_BYTES"])
    for members in groups(keys):
        costs = [prepared[n].cost for n in members]
        held = max(c.data for c in costs) + sum(c.worker_memory_known - c.data for c in costs)
        if held > memory_limit:
            message = (
                f"The {len(members)} trials of one model structure (trials {members[0]}…"
                f"{members[-1]}) train together in one worker process and need about "
                f"{held:,} bytes of worker memory together, over the limit of "
                f"{memory_limit:,} (SEQLAB_WORKER_MEMORY_BYTES): vary fewer values."
            )
            raise refused("vary", message)
    inline = prepared[0].dataset_refs is None or "dataset" not in prepared[0].dataset_refs
    data = len(json.dumps(stored_data(loaded))) if inline else 0
    stored = data + sum(p.cost.stored_bytes for p in prepared)
    stored_limit = int(current_app.config["SEQLAB_MAX_SWEEP_STORED_BYTES"])
    if stored > stored_limit:
        message = (
            f"The sweep's {len(prepared)} trials would keep about {stored:,} bytes in "
            f"Redis (model files, predictions and histories, and the data once), over the "
            f"limit of {stored_limit:,} (SEQLAB_MAX_SWEEP_STORED_BYTES): vary fewer values, "
            "or set fit.store_predictions to false."
        )
        raise refused("vary", message)


def write_and_queue(
    sweep_id: str,
    trials: list[Trial],
    prepared: list[job_views.PreparedJob],
    loaded: Mapping[str, Any],
    vary: Mapping[str, Any],
    objective: Mapping[str, str],
) -> dict[str, Any]:
    """Write the sweep, its shared data and its trials' jobs, then queue
    one task per structure; returns the sweep's document.

    :raise 503: if the queue is unreachable (and then nothing is left written).
    """
    tenant = auth.caller()
    first = prepared[0]
    inline = first.dataset_refs is None or "dataset" not in first.dataset_refs
    job_ids = [new_job_id() for _ in trials]
    keys = [structure_key(p.body) for p in prepared]
    members = groups(keys)
    models = []
    for members_of in members:
        report = prepared[members_of[0]].report
        models.append(
            {
                "trials": members_of,
                "name": report.name,
                "total_params": report.total_params,
                "params": {**report.counts(), "summary": render_summary(report)},
            }
        )
    document = {
        "id": sweep_id,
        "created_at": now(),
        "vary": dict(vary),
        "objective": dict(objective),
        "request": stored_request(loaded),
        "models": models,
        "trials": [
            {"values": t.values, "job": job_id, "total_params": p.report.total_params}
            for t, p, job_id in zip(trials, prepared, job_ids, strict=True)
        ],
        **({"example": loaded["example"]} if "example" in loaded else {}),
    }
    sweeps = store()
    jobs = job_views.store()
    written = False
    try:
        sweeps.create(document, stored_data(loaded) if inline else None, tenant)
        trial_jobs = []
        for trial, one, job_id in zip(trials, prepared, job_ids, strict=True):
            fields, data = job_views.job_fields(
                one,
                data=shared_data(sweep_id) if inline else None,
                extra={"sweep": {"id": sweep_id, "trial": trial.number}},
            )
            trial_jobs.append((job_id, fields, data))
        jobs.create_many(trial_jobs, tenant, listed=False)
        written = True
        celery = current_app.extensions["celery"]
        limit = first.body["fit"].get("time_limit_seconds")
        for members_of in members:
            # Trials of one structure need the same memory: one queue.
            queue = prepared[members_of[0]].queue
            send_group_task(celery, [job_ids[n] for n in members_of], queue, limit)
    except Exception as error:
        # Nothing half-written: a sweep that was never queued does not exist.
        with contextlib.suppress(redis.exceptions.RedisError):
            for job_id in job_ids if written else ():
                jobs.delete(job_id, tenant)
            sweeps.delete(sweep_id, tenant)
        current_app.logger.warning("could not queue sweep %s: %s", sweep_id, error)
        unavailable = ServiceUnavailable("The job queue is unreachable; try again shortly.")
        unavailable.retry_after = 5  # type: ignore[assignment]
        raise unavailable from error
    return sweep_document({**document, "tenant": tenant}, [{"status": "queued"}] * len(trials))


@bp.get("/sweeps")
def list_sweeps() -> dict[str, Any]:
    """The caller's sweeps, newest first (``page_size``, 1 to 100: how many)."""
    try:
        size = int(request.args.get("page_size", 20))
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        message = "Must be an integer from 1 to 100."
        raise ApiValidationError(f"page_size: {message}", {"page_size": [message]})
    sweeps = store()
    documents = []
    for sweep_id in sweeps.ids(auth.caller(), size):
        sweep = sweeps.get(sweep_id)
        if sweep is not None:
            documents.append(sweep_document(sweep, trial_records(sweep), full=False))
    return {"sweeps": documents}


@bp.get("/sweeps/<sweep_id>")
def get_sweep(sweep_id: str) -> dict[str, Any]:
    """A sweep: its status, its trials with their values and results, the best."""
    sweep = get_sweep_or_404(sweep_id)
    return sweep_document(sweep, trial_records(sweep, TRIAL_FIELDS))


@bp.post("/sweeps/<sweep_id>/cancel")
def cancel_sweep(sweep_id: str) -> tuple[dict[str, Any], int]:
    """Cancel every trial that has not ended: queued ones never start,
    running ones stop at their group's next check (within a second or so).

    200 once all have ended; 202 while running ones stop; 409 if every
    trial had already ended.
    """
    sweep = get_sweep_or_404(sweep_id)
    jobs = job_views.store()
    outcomes = [jobs.cancel(trial["job"]) for trial in sweep["trials"]]
    acted = [o[0] for o in outcomes if o is not None and o[0] != "ended"]
    if not acted:
        raise Conflict(f"Sweep {sweep_id} has already ended; nothing to cancel.")
    document = sweep_document(sweep, trial_records(sweep, TRIAL_FIELDS))
    return document, 200 if all(o == "cancelled" for o in acted) else 202


@bp.delete("/sweeps/<sweep_id>")
def delete_sweep(sweep_id: str) -> tuple[str, int]:
    """Delete an ended sweep: its record, its data and every trial's job.

    409 while any trial is queued or running (cancel the sweep first).
    """
    sweep = get_sweep_or_404(sweep_id)
    statuses = [job["status"] for job in trial_records(sweep)]
    live = [n for n, s in enumerate(statuses) if s not in (*TERMINAL, "expired")]
    if live:
        raise Conflict(
            f"Sweep {sweep_id} has {len(live)} trials queued or running; cancel it first "
            f"(POST /sweeps/{sweep_id}/cancel) and delete it once they have ended."
        )
    jobs, tenant = job_views.store(), sweep.get("tenant")
    for trial in sweep["trials"]:
        jobs.remove_finished(trial["job"], tenant)
    store().delete(sweep_id, tenant)
    return "", 204


@bp.get("/sweeps/<sweep_id>/trials/<trial>/model")
def trial_model(sweep_id: str, trial: str) -> Response:
    """One trial's trained model as a ``.keras`` file (its job's)."""
    return job_views.download_model(trial_job_id(sweep_id, trial))


@bp.post("/sweeps/<sweep_id>/trials/<trial>/predict")
def trial_predict(sweep_id: str, trial: str) -> Response:
    """The outputs of one trial's trained model (its job's predictions)."""
    return job_predict.predict(trial_job_id(sweep_id, trial))
