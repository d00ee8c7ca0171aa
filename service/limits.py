"""What one training job may ask of a shared host, checked before anything
is written or queued.

Each limit is an environment variable of the same name (also a Flask
config key, for tests), with a default sized for one GPU host. A refusal
is a 422 naming the field, the limit, its value and the request's value;
a ``POST /train`` body over its own limit is a 413 naming the limit.
"""

from __future__ import annotations

import gc
import math
import os
import threading
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import ServiceUnavailable

from jobs import settings
from modelspec.errors import ApiValidationError
from seqlab import ModelReport
from seqlab import SpecError
from seqlab import analyze
from seqlab.cost import HeldArray
from seqlab.cost import JobCost
from seqlab.cost import job_cost
from seqlab.fit import history_names
from seqlab.fit import split_samples
from seqlab.memory import INPUT_DTYPE_BYTES
from seqlab.memory import TrainMemory
from seqlab.memory import train_memory

from .problems import problem

GiB = 1024**3
MiB = 1024**2

#: Each limit's default. The body limit lets through a few hundred thousand
#: numbers as JSON writes them (16 MiB holds 800,000 of ``0.123456789,``).
DEFAULTS = {
    # Parameters of a model to train: 1.6 GB of weights, gradients and Adam
    # state in float32.
    "SEQLAB_MAX_TRAIN_PARAMS": 100_000_000,
    # The training memory estimate (seqlab.memory) one job may need.
    "SEQLAB_WORKER_MEMORY_BYTES": 8 * GiB,
    # Samples in data.x (and data.y).
    "SEQLAB_MAX_SAMPLES": 100_000,
    # Values per sample of data.x: timesteps × features.
    "SEQLAB_MAX_SAMPLE_VALUES": 100_000,
    # fit.epochs × samples: the samples a job passes through its model.
    "SEQLAB_MAX_EPOCH_SAMPLES": 100_000_000,
    # The request body of POST /train (POST /params keeps MAX_CONTENT_LENGTH).
    "SEQLAB_MAX_TRAIN_BODY_BYTES": 16 * MiB,
    # An uploaded dataset (POST /datasets): the file, and its arrays once
    # decompressed; Redis holds them whole.
    "SEQLAB_MAX_DATASET_BYTES": 64 * MiB,
    # Datasets one tenant (or the open API) keeps at a time.
    "SEQLAB_MAX_DATASETS": 20,
    # Trials of one sweep (POST /sweeps): the combinations of its vary.
    "SEQLAB_MAX_TRIALS": 256,
    # What one sweep keeps in Redis: its data once, and each trial's model
    # file, predictions and history.
    "SEQLAB_MAX_SWEEP_STORED_BYTES": 1 * GiB,
    # Large bodies (over LARGE_BODY_BYTES: a train request's data, an
    # upload) each API process reads and decodes at once (BodySlots).
    "SEQLAB_LARGE_BODIES": 2,
}

#: The endpoint whose body limit is SEQLAB_MAX_TRAIN_BODY_BYTES.
TRAIN_ENDPOINT = "jobs.create_job"
#: The endpoint whose body limit is SEQLAB_MAX_DATASET_BYTES (a multipart
#: body may carry that much file and a little framing).
UPLOAD_ENDPOINT = "datasets.upload_dataset"
MULTIPART_SLACK = 64 * 1024
#: A body over this is large: only ``POST /train`` and ``POST /datasets``
#: take one (every other route's limit is ``MAX_CONTENT_LENGTH``, 1 MiB).
LARGE_BODY_BYTES = 1024 * 1024
#: Bytes read at a time from a body that is refused unparsed.
DRAIN_CHUNK = 64 * 1024
#: Seconds a client is told to wait when every large-body slot is taken.
LARGE_BODY_RETRY_SECONDS = 2


def from_environ(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Each limit from the environment, else its default.

    Raises:
        ValueError: for a value that is not a positive integer, naming it,
            so that the API does not start with a limit it misread.
    """
    limits = {}
    for name, default in DEFAULTS.items():
        raw = environ.get(name, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{name} must be a positive integer; it is {raw!r}.")
        limits[name] = value
    return limits


def _limit(name: str) -> int:
    return int(current_app.config[name])


def _bytes(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,} bytes"


def concrete_model(model: Mapping[str, Any], x: Mapping[str, Any]) -> dict[str, Any] | None:
    """``model`` with each unknown input length (``null``) set to the data's,
    for Sequential and graph models alike; None when none is unknown or the
    data's rank differs (the data checks then say why)."""
    if "inputs" not in model:  # Sequential: one input
        declared = model["input_shape"]
        shape = x["shape"]
        if None not in declared or len(shape) != len(declared) + 1:
            return None
        concrete = [d if d is not None else n for d, n in zip(declared, shape[1:], strict=True)]
        return {**model, "input_shape": concrete}
    # A graph's x is in its inputs' order once check_graph_request arranged
    # it; a dataset's (one-input models only) is one array.
    shapes = [t["shape"] for t in _tensors(x)]
    if len(shapes) != len(model["inputs"]):
        return None
    inputs, changed = [], False
    for spec, shape in zip(model["inputs"], shapes, strict=True):
        declared = spec["shape"]
        if None in declared and len(shape) == len(declared) + 1:
            concrete = [d if d is not None else n for d, n in zip(declared, shape[1:], strict=True)]
            spec, changed = {**spec, "shape": concrete}, True
        inputs.append(spec)
    return {**model, "inputs": inputs} if changed else None


def _tensors(arrays: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tensors of a loaded ``x`` or ``y``: a graph model's arranged
    parts, else the one."""
    return list(arrays["parts"]) if "parts" in arrays else [arrays]


def _at_data_lengths(report: ModelReport, model: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    """``report`` again with unknown lengths at ``x``'s (itself where none is
    unknown or the data does not fit the model: the data checks say why)."""
    concrete = concrete_model(model, x)
    if concrete is None:
        return report
    try:
        return analyze(concrete)
    except SpecError:
        return report


def _held(arrays: Mapping[str, Any], itemsizes: list[int]) -> list[HeldArray]:
    """A loaded ``x`` or ``y`` as the worker will hold it: inline values
    (JSON) or a dataset's array (its stored dtype), converted to
    ``itemsizes`` (one per tensor; the last repeats)."""
    held = []
    for i, tensor in enumerate(_tensors(arrays)):
        array = tensor.get("array")
        stored = None if array is None else int(array.dtype.itemsize)
        itemsize = itemsizes[min(i, len(itemsizes) - 1)]
        held.append(HeldArray(tuple(tensor["shape"]), itemsize, stored))
    return held


def _logged_names(report: ModelReport, compile_options: Mapping[str, Any]) -> int:
    """How many values ``fit`` logs per epoch, before ``val_``'s."""
    outputs = getattr(report, "outputs", None)
    names = [name for name, _ in outputs] if outputs else ["output"]
    return len(history_names(names, compile_options.get("metrics")))


def job_cost_of(report: ModelReport, body: Mapping[str, Any]) -> JobCost:
    """The cost model's figures (:func:`seqlab.cost.job_cost`) for a loaded
    train request, at its data's lengths (a dataset's shapes already in
    its body)."""
    model, fit_options = body["model"], body["fit"]
    optimizer = body["compile"]["optimizer"]
    samples = body["data"]["x"]["shape"][0]
    train, n_val = split_samples(samples, fit_options["validation_split"])
    batch = fit_options["batch_size"]
    at_data = _at_data_lengths(report, model, body["data"]["x"])
    memory = train_memory(at_data, min(batch, max(train, 1)), optimizer, model.get("dtype"))
    validation = body.get("validation")
    if validation is not None and "x" in validation:
        # Keras evaluates the validation arrays in batches of the fit's size,
        # at their own lengths: a longer validation sequence needs more.
        at_val = _at_data_lengths(report, model, validation["x"])
        val_samples = validation["x"]["shape"][0]
        memory = _larger(
            memory,
            train_memory(at_val, min(batch, max(val_samples, 1)), optimizer, model.get("dtype")),
        )
    entries = model["inputs"] if "inputs" in model else [model]
    dtypes = [entry.get("dtype") for entry in entries]
    x_sizes = [INPUT_DTYPE_BYTES[d or "float32"] for d in dtypes]
    x = _held(body["data"]["x"], x_sizes)
    held = [*x, *_held(body["data"]["y"], [4])]
    if validation is not None and "x" in validation:
        held += [*_held(validation["x"], x_sizes), *_held(validation["y"], [4])]
    validated = n_val > 0 or validation is not None
    return job_cost(
        at_data,
        training=memory,
        x=x,
        held=held,
        optimizer=optimizer,
        epochs=fit_options["epochs"],
        history_names=_logged_names(report, body["compile"]) * (2 if validated else 1),
        max_prediction_bytes=settings.max_prediction_bytes(),
        store_predictions=fit_options.get("store_predictions", True),
        # With validation data the worker never runs the compiled fit.
        trained=[] if validated else None,
    )


def _larger(a: TrainMemory, b: TrainMemory) -> TrainMemory:
    """Of two estimates of one model (training and validation batches), the
    one with more activations (a known one where the other is unknown: data
    that does not fit the model is the data checks' refusal)."""
    if a.activations is None or (b.activations is not None and b.activations > a.activations):
        return b
    return a


def memory_message(cost: JobCost, limit: int) -> str:
    """Why a job's worker memory is over ``limit``: its parts."""
    m = cost.training
    step = m.static if m.total is None else m.total
    return (
        f"Training it is estimated to take {cost.worker_memory_known:,} bytes of worker "
        f"memory: the training step {step:,} (weights {m.weights:,}, gradients {m.gradients:,}, "
        f"{m.optimizer} state {m.optimizer_state:,}, activations {_bytes(m.activations)} "
        f"for batches of {m.batch_size}), the data {cost.data:,}, the predictions on the "
        f"training inputs {cost.predictions:,}, the model file {cost.model_file:,} and a "
        f"compiled fit's copy of the data {cost.compiled_fit:,}; "
        f"over the worker's budget of {limit:,} bytes (SEQLAB_WORKER_MEMORY_BYTES). "
        "A smaller fit.batch_size needs fewer activations; fit.store_predictions false "
        "skips the predictions."
    )


def check_limits(report: ModelReport, body: Mapping[str, Any]) -> JobCost:
    """Refuse a train request over any limit (every one it is over); its
    cost (:func:`job_cost_of`) when it is within them all.

    Raises:
        ApiValidationError: 422 with the reasons by field: ``model`` (its
            parameters, its worker memory: the training step at the
            training and the validation data's lengths, the data, the
            predictions and the model file), ``data.x`` and ``validation.x``
            (samples, values per sample), ``fit.epochs`` (epochs × samples).
    """
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    params, limit = report.total_params, _limit("SEQLAB_MAX_TRAIN_PARAMS")
    if params > limit:
        refuse(
            "model",
            f"The model has {params:,} parameters, over the limit of {limit:,} for "
            "training (SEQLAB_MAX_TRAIN_PARAMS).",
        )
    cost = job_cost_of(report, body)
    limit = _limit("SEQLAB_WORKER_MEMORY_BYTES")
    # Unknown activations (data that does not fit the model) leave the rest.
    if cost.worker_memory_known > limit:
        refuse("model", memory_message(cost, limit))
    validation = body.get("validation")
    for field, x in (("data.x", body["data"]["x"]), ("validation.x", (validation or {}).get("x"))):
        if x is not None:
            check_arrays(field, x, refuse)
    samples = body["data"]["x"]["shape"][0]
    epochs, limit = body["fit"]["epochs"], _limit("SEQLAB_MAX_EPOCH_SAMPLES")
    if epochs * samples > limit:
        refuse(
            "fit.epochs",
            f"fit.epochs × samples is {epochs:,} × {samples:,} = {epochs * samples:,}, over "
            f"the limit of {limit:,} (SEQLAB_MAX_EPOCH_SAMPLES).",
        )
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
    return cost


def check_arrays(field: str, x: Mapping[str, Any], refuse: Callable[[str, str], None]) -> None:
    """The samples of ``x`` (training or validation inputs) and the values
    in each, against ``SEQLAB_MAX_SAMPLES`` and ``SEQLAB_MAX_SAMPLE_VALUES``."""
    name = field.rpartition(".")[2] if field.startswith("data.") else field
    samples, limit = x["shape"][0], _limit("SEQLAB_MAX_SAMPLES")
    if samples > limit:
        refuse(
            field,
            f"{name} holds {samples:,} samples, over the limit of {limit:,} (SEQLAB_MAX_SAMPLES).",
        )
    # A graph model's sample is one item of each of its inputs.
    shapes = [t["shape"] for t in x.get("parts", [])] or [x["shape"]]
    per_sample, limit = sum(math.prod(s[1:]) for s in shapes), _limit("SEQLAB_MAX_SAMPLE_VALUES")
    if per_sample > limit:
        sizes = " + ".join(" × ".join(map(str, s[1:])) for s in shapes)
        refuse(
            field,
            f"Each sample of {name} holds {sizes} = {per_sample:,} "
            f"values, over the limit of {limit:,} (SEQLAB_MAX_SAMPLE_VALUES).",
        )


def limit_train_body() -> None:
    """Give ``POST /train`` its own body limit (Flask ≥ 3.1 reads
    ``request.max_content_length`` per request), and ``POST /datasets``
    its own; other routes keep
    ``MAX_CONTENT_LENGTH``."""
    if request.endpoint == TRAIN_ENDPOINT:
        request.max_content_length = int(current_app.config["SEQLAB_MAX_TRAIN_BODY_BYTES"])
    elif request.endpoint == UPLOAD_ENDPOINT:
        # The upload itself counts the file's bytes against the exact limit.
        limit = int(current_app.config["SEQLAB_MAX_DATASET_BYTES"])
        request.max_content_length = limit + MULTIPART_SLACK


def before_large_body_route() -> Response | None:
    """Before every request: the body limit and large-body slot of
    ``POST /train`` and ``POST /datasets`` (:func:`limit_train_body`, then
    :func:`take_body_slot`); every other route (``POST /params`` on every
    request) returns at once, having read its endpoint once."""
    endpoint = request.endpoint
    if endpoint != TRAIN_ENDPOINT and endpoint != UPLOAD_ENDPOINT:
        return None
    limit_train_body()
    return take_body_slot()


class BodySlots:
    """The large bodies one API process handles at once.

    Decoding JSON costs far more than its text: a 16 MiB train body of
    short sequences becomes some 500 MB of Python lists and seconds of CPU
    (``tests/test_limits.py`` measures it). Without a cap, a few tenants'
    concurrent large submits would hold every thread and the process's
    memory; with it, a large body over the cap is a 503 with
    ``Retry-After`` (its body read and dropped, never decoded), and the
    other routes never wait. While a slot is held the cyclic garbage collector is paused: the
    millions of lists a decode makes would otherwise trigger a collection
    every few hundred allocations (2.5 times the time, for no garbage).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._held = 0
        self._gc_was_enabled = False

    def take(self) -> bool:
        """Take a slot, pausing the collector with the first; False if none is free."""
        with self._lock:
            if self._held >= self.size:
                return False
            if self._held == 0:
                self._gc_was_enabled = gc.isenabled()
                gc.disable()
            self._held += 1
            return True

    def give_back(self) -> None:
        """Give a slot back, resuming the collector with the last."""
        with self._lock:
            self._held -= 1
            if self._held == 0 and self._gc_was_enabled:
                gc.enable()


def is_large_body() -> bool:
    """Whether this request brings a large body (no Content-Length: it may)."""
    if request.endpoint not in (TRAIN_ENDPOINT, UPLOAD_ENDPOINT):
        return False
    length = request.content_length
    return length is None or length > LARGE_BODY_BYTES


def take_body_slot() -> None:
    """Hold one of the process's large-body slots for this request.

    :raise 503: with ``Retry-After``, when none is free, its body read and
        dropped undecoded.
    """
    if not is_large_body():
        return
    slots: BodySlots = current_app.extensions["body_slots"]
    if not slots.take():
        # Read it (not decode it: the bytes cost little) so that the client,
        # still sending, gets this answer rather than a broken pipe.
        while request.stream.read(DRAIN_CHUNK):
            pass
        size = request.content_length
        what = f"{size:,} bytes" if size is not None else "no Content-Length"
        raise _slots_taken(slots, f"this one has {what}")
    g.body_slot = slots


def hold_large_slot(what: str) -> None:
    """Hold a large-body slot for work as large as a large body (a train
    request that reads a dataset's arrays to check them), unless this
    request holds one already.

    :raise 503: with ``Retry-After``, when none is free; ``what`` names the work.
    """
    if "body_slot" in g:
        return
    slots: BodySlots = current_app.extensions["body_slots"]
    if not slots.take():
        raise _slots_taken(slots, what)
    g.body_slot = slots


def _slots_taken(slots: BodySlots, what: str) -> ServiceUnavailable:
    """The 503 (with ``Retry-After``) of a request that found every
    large-body slot taken."""
    return ServiceUnavailable(
        f"This API process is reading its {slots.size} large request bodies or datasets "
        f"at once (SEQLAB_LARGE_BODIES, over {LARGE_BODY_BYTES:,} bytes each); {what}. "
        f"Retry after {LARGE_BODY_RETRY_SECONDS} s.",
        retry_after=LARGE_BODY_RETRY_SECONDS,
    )


def give_body_slot(_: BaseException | None = None) -> None:
    """Give this request's large-body slot back, if it held one."""
    slots = g.pop("body_slot", None)
    if slots is not None:
        slots.give_back()


class LimitExceeded(RequestEntityTooLarge):
    """A 413 raised by a view whose detail already names the limit (an
    upload counted as it arrives, a decompressed size)."""


def body_too_large(error: RequestEntityTooLarge) -> Response:
    """A 413 that names the route's limit, its value and the body's size."""
    if isinstance(error, LimitExceeded):
        return problem(413, error.description or error.name, title=error.name)
    if request.endpoint == TRAIN_ENDPOINT:
        name = "SEQLAB_MAX_TRAIN_BODY_BYTES"
    elif request.endpoint == UPLOAD_ENDPOINT:
        name = "SEQLAB_MAX_DATASET_BYTES"
    else:
        name = "FLASK_MAX_CONTENT_LENGTH"
    limit = request.max_content_length
    size = request.content_length
    # Without a Content-Length (a chunked body) werkzeug stops at the limit.
    received = f"{size:,} bytes, over" if size is not None else "over"
    route = f"{request.method} {request.path}"
    if limit is None:  # a limit set below the route's, by a server in front, say
        detail = f"The request body of {route} is too large ({name})."
    else:
        detail = f"The request body of {route} is {received} the limit of {limit:,} bytes ({name})."
    return problem(
        413,
        detail,
        title=error.name,
    )


def init_app(app: Flask) -> None:
    """Apply the per-route body limit and name it in 413 answers; cap the
    large bodies each process reads at once."""
    app.extensions["body_slots"] = BodySlots(int(app.config["SEQLAB_LARGE_BODIES"]))
    app.before_request(before_large_body_route)
    app.teardown_request(give_body_slot)
    app.register_error_handler(RequestEntityTooLarge, body_too_large)
