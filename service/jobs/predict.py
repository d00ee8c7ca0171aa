"""Predictions: ``POST /jobs/<id>/predict`` (new inputs, answered by a
worker from the job's trained model) and ``GET /jobs/<id>/predictions``
(the outputs on the training inputs, stored apart from the job record).

The API never loads the model: it checks the instances against the job's
model spec, hands them to a worker and waits for its answer
(``PREDICT_TIMEOUT`` seconds, then 504). Each worker runs a predictor, a
process beside its pool (:mod:`worker.predictor`), that takes requests from
its queue's list (``seqlab:predict:<queue>``,
:meth:`jobs.store.JobStore.push_predict`) whether or not the pool is
training: predictions never wait behind training. Where no predictor of the
queue is live (workers from before predictors), the API sends the task
``seqlab.predict`` to the job queue instead, as it used to: a worker busy
with a long job then answers only once that job ends.

Either way the answer comes back on a Redis list of this request's own
(``seqlab:reply:<id>``, :meth:`jobs.store.JobStore.wait_reply`, a blocking
pop), not as a Celery result: the task is sent with ``ignore_result``, so
Celery stores nothing for it (not even the ``REVOKED`` state of a task that
expired unrun), and the worker writes the answer only while the wait lasts
(``reply_by``), with a TTL of :data:`REPLY_TTL` seconds; a request still in
the list after its wait ended is dropped unanswered. Taking the answer
removes the list; an answer no one waits for any more is gone within a
minute of the wait's end. The wait holds one of the process's long-wait
threads (:mod:`service.jobs.threads`): none free is a 429.

A prediction is on the path of a client's every call, so it costs the API
one Redis round trip where it can (:meth:`jobs.store.JobStore.ask_predict`:
the push and the first second of the wait sent together). What it checks
instances against, a succeeded job's tenant, model spec, engine report and
model file, never changes while the record lives (every transition starts
from queued or running; ids are never reused), so each process keeps them
for the jobs it served last (:class:`ServedJobs`) and reads no record for
them again: the push itself checks, atomically, that the record still says
succeeded, and a job deleted or expired meanwhile is its 404 as before. Any
refusal made from kept facts (a 422, a 429) is checked against the record
first, so that a job gone meanwhile is a 404 whatever the body. The request
names the model file's digest, so that a predictor holding that model
answers without reading the record either.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple

import marshmallow as ma
import redis
from flask import Blueprint
from flask import Response
from flask import current_app
from werkzeug.exceptions import BadGateway
from werkzeug.exceptions import Conflict
from werkzeug.exceptions import GatewayTimeout
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable

from jobs import settings
from modelspec.errors import ApiValidationError
from seqlab import ModelReport
from seqlab import SpecError
from seqlab import analyze
from seqlab.cost import JSON_VALUE_BYTES
from seqlab.cost import prediction_bytes_bound
from seqlab.registry import format_shape

from ..datasets.checks import check_input_values
from ..datasets.checks import fits
from ..datasets.graph_checks import arrange
from ..datasets.graph_checks import input_names
from ..datasets.graph_checks import is_graph_report
from ..datasets.graph_checks import raise_errors
from ..datasets.graph_checks import tensor_error
from ..requests import get_json_object
from .routing import default_queue
from .schemas import Arrays
from .threads import give_back_thread
from .threads import take_thread
from .views import check_owner

# The same rules as a training request's data.x: its private helpers, as
# they take a tensor and a field path, not a whole request.
from .views import get_job_or_404
from .views import store

bp = Blueprint("predict", __name__)

Errors = dict[str, list[str]]

#: Seconds a worker's answer is kept for the request that waits on it.
REPLY_TTL = 60
#: Seconds of the wait sent with the push (:meth:`JobStore.ask_predict`);
#: a longer wait goes on in further reads. Also the longest a failed push
#: (Redis refusing the script) takes to become a 503.
FIRST_WAIT = 1.0
#: Succeeded jobs whose facts each API process keeps (:class:`ServedJobs`),
#: and the most characters of model spec (as JSON) they hold together; a
#: spec of more than a tenth of that is read each time.
SERVED_JOBS = 256
SERVED_SPEC_CHARS = 4 * 1024 * 1024


class Served(NamedTuple):
    """What a prediction of a succeeded job is checked against and asks
    for: facts a record keeps unchanged as long as it lives."""

    tenant: str | None
    spec: Mapping[str, Any]
    report: ModelReport
    #: The record's ``model_file`` (its ``sha256`` finds a predictor's loaded model).
    model_file: Mapping[str, Any] | None
    #: The spec's size as JSON, counted against :data:`SERVED_SPEC_CHARS`.
    chars: int
    #: The queue it trained on: its workers' predictors answer (None: the default).
    queue: str | None = None


class ServedJobs:
    """The :class:`Served` facts of the succeeded jobs this process
    predicted for last, by job id; thread safe."""

    def __init__(self, size: int = SERVED_JOBS, max_chars: int = SERVED_SPEC_CHARS) -> None:
        self.size = size
        self.max_chars = max_chars
        self._jobs: OrderedDict[str, Served] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Served | None:
        with self._lock:
            served = self._jobs.get(job_id)
            if served is not None:
                self._jobs.move_to_end(job_id)
            return served

    def put(self, job_id: str, served: Served) -> None:
        """Keep ``served``, dropping the least recently used beyond the
        bounds; a spec over a tenth of :attr:`max_chars` is not kept."""
        if served.chars > self.max_chars // 10:
            return
        with self._lock:
            old = self._jobs.pop(job_id, None)
            if old is not None:
                self._chars -= old.chars
            self._jobs[job_id] = served
            self._chars += served.chars
            while len(self._jobs) > self.size or self._chars > self.max_chars:
                _, dropped = self._jobs.popitem(last=False)
                self._chars -= dropped.chars

    def drop(self, job_id: str) -> None:
        with self._lock:
            old = self._jobs.pop(job_id, None)
            if old is not None:
                self._chars -= old.chars

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


class JobChanged(Exception):
    """The push found the record gone, or no longer succeeded."""


class PredictRequestSchema(ma.Schema):
    """``{"instances": [...]}`` (rows, TF Serving's format) or ``{"inputs":
    [...]}`` (columnar: for a model of one input, the very same list)."""

    instances = Arrays(
        metadata={
            "description": "One input per instance, samples first; for a Functional model "
            "with several inputs, a list of arrays in its inputs' order or an object by "
            "input name."
        }
    )
    inputs = Arrays(metadata={"description": "The same, in TF Serving's columnar name."})

    @ma.validates_schema
    def one_of(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if ("instances" in data) == ("inputs" in data):
            raise ma.ValidationError("Give either instances or inputs (one of them).")


predict_request_schema = PredictRequestSchema()


def check_instances(report: ModelReport, spec: Mapping[str, Any], path: str, x: Any) -> None:
    """Refuse instances the model cannot take, as ``POST /train`` refuses such
    a ``data.x``: the shape, the values its dtype and Embeddings take, and
    for a stateful model a number of them that is a multiple of its batch.

    Raises:
        ApiValidationError: 422, naming ``path``.
    """
    errors: Errors = {}
    if "by_name" in x or "by_position" in x:
        raise_errors({path: tensor_error(x)})
    model_in = report.input_shape[1:]
    dtype = spec.get("dtype") or "float32"
    if not fits(x["shape"][1:], model_in):
        errors[path] = [
            f"Shape {format_shape(tuple(x['shape']))} does not fit the model's input "
            f"{format_shape((None, *model_in))}: give a list of instances, each of shape "
            f"{format_shape(model_in)}."
        ]
    else:
        check_input_values(report, dtype, path, x, errors, training=False)
        batch = spec.get("batch_size")
        if batch and x["shape"][0] % batch:
            errors[path] = [
                f"The model has a fixed batch_size of {batch}: the number of instances "
                f"must be a multiple of it; {path} has {x['shape'][0]}."
            ]
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)


def check_graph_instances(report: ModelReport, path: str, x: Any) -> list[Any]:
    """A graph model's instances (one array, a list in its inputs' order or
    an object by input name) against each input, as ``POST /train`` checks
    ``data.x``; returns each input's values, in the model's order.

    Raises:
        ApiValidationError: 422, naming ``path`` (and the input).
    """
    errors: Errors = {}
    parts = arrange(x, path, input_names(report), "input", errors)
    raise_errors(errors)
    assert parts is not None
    dtypes = report.input_dtypes  # type: ignore[attr-defined]
    for (where, tensor), (name, shape), dtype in zip(
        parts,
        report.inputs,
        dtypes,
        strict=True,  # type: ignore[attr-defined]
    ):
        if not fits(tensor["shape"][1:], shape[1:]):
            errors[where] = [
                f"Shape {format_shape(tuple(tensor['shape']))} does not fit the model's input "
                f"{name!r} {format_shape(shape)}."
            ]
        else:
            check_input_values(report, dtype, where, tensor, errors, training=False)
    counts = {where: tensor["shape"][0] for where, tensor in parts}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{where} {count}" for where, count in counts.items())
        errors.setdefault(path, []).append(
            f"Every input needs the same number of instances; received {listed}."
        )
    raise_errors(errors)
    return [tensor for _, tensor in parts]


def output_values(report: ModelReport, spec: Mapping[str, Any], shapes: list[list[int]]) -> int:
    """Output values per instance, all outputs together, from the engine's
    output shapes; where a dimension depends on the input (timesteps of
    None), from the model analysed again on the instances' ``shapes``."""
    out = report.output_shape
    outputs = out if isinstance(out, list) else [out]
    if any(d is None for shape in outputs for d in shape[1:]):
        concrete = dict(spec)
        if "inputs" in spec:
            concrete["inputs"] = [
                {**entry, "shape": list(shape[1:])}
                for entry, shape in zip(spec["inputs"], shapes, strict=True)
            ]
        else:
            concrete["input_shape"] = list(shapes[0][1:])
        try:
            out = analyze(concrete).output_shape
            outputs = out if isinstance(out, list) else [out]
        except SpecError:
            pass  # then each unknown dimension counts as the longest given
    longest = max((d for shape in shapes for d in shape[1:]), default=1)
    return sum(math.prod(d if d is not None else longest for d in s[1:]) for s in outputs)


def check_output_size(
    report: ModelReport, spec: Mapping[str, Any], path: str, shapes: list[list[int]]
) -> None:
    """Refuse instances whose outputs could take more than
    ``SEQLAB_MAX_PREDICTION_BYTES`` as JSON (:func:`seqlab.cost.prediction_bytes_bound`),
    before anything is queued.

    Raises:
        ApiValidationError: 422, naming ``path``.
    """
    count = shapes[0][0]
    values = output_values(report, spec, shapes)
    bound = prediction_bytes_bound(count, values)
    limit = settings.max_prediction_bytes()
    if bound > limit:
        message = (
            f"The outputs of {count} instances could take {bound} bytes as JSON ({count} × "
            f"{values} output values × {JSON_VALUE_BYTES} bytes), over this server's limit of "
            f"{limit} bytes (SEQLAB_MAX_PREDICTION_BYTES): send at most "
            f"{max((limit - 2) // (values * JSON_VALUE_BYTES), 0)} instances at a time."
        )
        raise ApiValidationError(f"{path}: {message}", {path: [message]})


def served_jobs() -> ServedJobs:
    """This app's :class:`ServedJobs` (one per process)."""
    served = current_app.extensions.get("served_jobs")
    if served is None:
        served = current_app.extensions.setdefault("served_jobs", ServedJobs())
    return served  # type: ignore[no-any-return]


def read_served(job_id: str) -> Served:
    """The job's facts, read from its record (and kept for its next
    predictions).

    Raises:
        NotFound: 404 if there is no such job, or it is another tenant's.
        Conflict: 409 unless the job has succeeded.
    """
    job = get_job_or_404(job_id, fields=("request", "model_file", "queue"))
    if job["status"] != "succeeded":
        raise Conflict(
            f"Job {job_id} is {job['status']}; predictions come from the model of a job "
            "that has succeeded."
        )
    spec = job["request"]["model"]
    served = Served(
        job.get("tenant"),
        spec,
        analyze(spec),
        job.get("model_file"),
        len(json.dumps(spec, separators=(",", ":"))),
        job.get("queue"),
    )
    served_jobs().put(job_id, served)
    return served


@bp.post("/jobs/<job_id>/predict")
def predict(job_id: str) -> Response:
    """The outputs of the job's trained model for new instances.

    404 for no such job (or another tenant's); 409 unless the job has
    succeeded (a cancelled or timed-out job's partial model is for
    downloading, not serving); 422 for instances that do not fit its input;
    504 if no worker answers in time.
    """
    served = served_jobs().get(job_id)
    for attempt in (1, 2):
        kept = served is not None
        if served is None:
            served = read_served(job_id)
        else:
            # A tenant never changes: another tenant's job is this 404 first.
            check_owner(job_id, served.tenant)
        try:
            values = checked_values(served)
            timeout = float(current_app.config["PREDICT_TIMEOUT"])
            thread = take_thread("a prediction's wait", timeout)
        except Exception:
            if kept:  # a job gone meanwhile is its 404 (or 409), whatever the body
                served_jobs().drop(job_id)
                read_served(job_id)
            raise
        try:
            answer = ask_worker(job_id, served, values, timeout)
            break
        except JobChanged:
            # Gone or no longer succeeded: the record's own 404 or 409 (a
            # record that says succeeded again is asked once more).
            served_jobs().drop(job_id)
            served = None
            if attempt == 2:
                raise Conflict(f"Job {job_id} changed while its predictions were asked.") from None
        finally:
            give_back_thread(thread)
    if answer.startswith(b'{"error"'):
        error = json.loads(answer)["error"]
        if error["type"] == "NoModel":
            raise Conflict(f"Job {job_id} has no model file (anymore).")
        raise BadGateway(
            f"The worker could not compute the predictions: {error['type']}: {error['message']}"
        )
    # The worker's answer is this route's document ({"predictions",
    # "model_cached", "model_load_seconds", "predict_seconds"}): sent as it
    # came, never decoded (up to SEQLAB_MAX_PREDICTION_BYTES of it would
    # take some five times that as Python lists).
    return Response(answer, mimetype="application/json")


def checked_values(served: Served) -> Any:
    """The request body's instances, checked against the job's model as
    ``POST /train`` checks ``data.x``: one list, or one per input of a graph
    model, in its order.

    Raises:
        ApiValidationError: 422, naming the field.
    """
    body = predict_request_schema.load(get_json_object())
    path = "instances" if "instances" in body else "inputs"
    report, spec = served.report, served.spec
    if is_graph_report(report):
        tensors = check_graph_instances(report, path, body[path])
        values: Any = [tensor["value"] for tensor in tensors]
        shapes = [tensor["shape"] for tensor in tensors]
    else:
        check_instances(report, spec, path, body[path])
        values, shapes = body[path]["value"], [body[path]["shape"]]
    check_output_size(report, spec, path, shapes)
    return values


def ask_worker(job_id: str, served: Served, values: Any, timeout: float) -> bytes:
    """Hand the request to a predictor of the job's queue (else send the task
    ``seqlab.predict``) and wait up to ``timeout`` s for its answer (the
    JSON the worker put, undecoded).

    Raises:
        JobChanged: if the record no longer says succeeded (nothing was pushed).
        GatewayTimeout: 504 if no worker answered in time.
        ServiceUnavailable: 503 if the queue or Redis is unreachable.
    """
    jobs = store()
    queue = served.queue or default_queue()
    reply_key = jobs.reply_key(uuid.uuid4().hex)
    deadline = time.monotonic() + timeout
    reply = {"reply_key": reply_key, "reply_by": time.time() + timeout, "reply_ttl": REPLY_TTL}
    request = {"job_id": job_id, "instances": values, "model_file": served.model_file, **reply}
    try:
        pushed, answer = jobs.ask_predict(queue, job_id, request, timeout, min(timeout, FIRST_WAIT))
        if pushed < 0:
            raise JobChanged(job_id)
        if not pushed:
            # Expiring with the wait: a task no worker took in time is dropped,
            # not run later for nobody; ignore_result: Celery keeps nothing of it.
            current_app.extensions["celery"].send_task(
                "seqlab.predict", args=[job_id, values], kwargs=reply, queue=queue,
                expires=timeout, ignore_result=True,
            )  # fmt: skip
    except JobChanged:
        raise
    except Exception as error:
        current_app.logger.warning("could not queue predictions of %s: %s", job_id, error)
        unavailable = ServiceUnavailable("The job queue is unreachable; try again shortly.")
        unavailable.retry_after = 5  # type: ignore[assignment]
        raise unavailable from error
    try:
        if answer is None:
            answer = jobs.wait_reply_json(reply_key, deadline - time.monotonic())
    except (redis.exceptions.RedisError, OSError) as error:
        # Redis went away while we waited: the answer cannot be read.
        unavailable = ServiceUnavailable("The job store (Redis) is unreachable; try again shortly.")
        unavailable.retry_after = 5  # type: ignore[assignment]
        raise unavailable from error
    if answer is None:
        why = (
            "the worker's predictor is overloaded or was stopped"
            if pushed
            else "no worker of this queue runs a predictor, and its workers are busy "
            "training or not running"
        )
        raise GatewayTimeout(
            f"No worker answered within {timeout:g} s (SEQLAB_PREDICT_TIMEOUT): {why}; "
            "try again later."
        )
    return answer


@bp.get("/jobs/<job_id>/predictions")
def training_predictions(job_id: str) -> Response:
    """The model's outputs for every training input, stored apart from the
    job record so that polls stay light (``GET /jobs/<id>`` carries them
    only for a training set of at most 1,000 samples).

    The stored JSON is sent as it is, never decoded: up to
    ``SEQLAB_MAX_PREDICTION_BYTES`` (64 MiB) of it would take the API some
    five times that as Python lists and seconds of CPU to decode and
    encode again.

    404 with the reason where the job kept none (``fit.store_predictions``
    false, over ``SEQLAB_MAX_PREDICTION_BYTES``, refused by Redis: the
    result's ``predictions_not_stored``)."""
    job = get_job_or_404(job_id, fields=("result",))
    not_stored = (job.get("result") or {}).get("predictions_not_stored")
    if not_stored is not None:
        raise NotFound(f"Job {job_id} kept no predictions: {not_stored['message']}")
    stored = store().get_predictions_json(job_id)
    if stored is None:  # a job finished before they were stored apart
        predictions = job.get("result", {}).get("predictions")
        if predictions is None:
            raise Conflict(
                f"Job {job_id} is {job['status']}; predictions on the training inputs exist "
                "once it has succeeded (or was cancelled after training started)."
            )
        stored = json.dumps(predictions).encode()
    parts = (b'{"predictions": ', stored, b"}")
    return Response(
        parts,
        mimetype="application/json",
        headers={"Content-Length": str(sum(map(len, parts)))},
    )
