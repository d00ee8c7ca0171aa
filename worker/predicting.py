"""Answer ``POST /jobs/<id>/predict`` on a worker: the job's trained model,
loaded from its ``.keras`` file, applied to new instances.

Imported in the worker's predictor process (:mod:`worker.predictor`), and
inside the ``seqlab.predict`` task in a pool child (like
:mod:`worker.training`), never in the worker's main process nor in the API.
Each process keeps the few models it used last loaded (:class:`ModelCache`),
keyed by job id and the model file's digest, so that repeated predictions
skip ``load_model``; with each, the job's request (the API names the digest
in its request, so a cached model answers without reading the job record)
and, under JAX, the model's predict step jitted once
(:func:`batch_predictor`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple

from jobs.store import JobStore
from jobs.store import finite

from . import training
from .backend import configure_backend
from .builder import is_graph
from .failures import failure
from .graph_arrays import input_arrays

logger = logging.getLogger(__name__)

#: Models a worker process keeps loaded (``SEQLAB_PREDICT_CACHE_SIZE``).
CACHE_SIZE = int(os.environ.get("SEQLAB_PREDICT_CACHE_SIZE", "4"))
#: Their model files' bytes together (``SEQLAB_PREDICT_CACHE_BYTES``,
#: 2 GiB): a loaded model holds about its file (weights and optimizer
#: state), so four of the largest trainable models (1.2 GB files) would
#: otherwise keep some 5 GB in each predicting process.
CACHE_BYTES = int(os.environ.get("SEQLAB_PREDICT_CACHE_BYTES", str(2 * 1024**3)))


class Loaded(NamedTuple):
    """A loaded model with what answering from it takes."""

    model: Any
    #: The job's request (its ``model`` spec and ``fit``): a record's
    #: request never changes, nor does its model file under one digest.
    request: Mapping[str, Any]
    #: One batch's outputs (:func:`batch_predictor`), or None:
    #: ``model.predict_on_batch``.
    on_batch: Callable[[Any], Any] | None


class ModelCache:
    """The ``keras.Model``s used last, by (job id, model file digest), at
    most ``size`` of them and ``max_bytes`` of their files together."""

    def __init__(self, size: int, max_bytes: int = CACHE_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._models: OrderedDict[tuple[str, str], tuple[Any, int]] = OrderedDict()

    @property
    def held_bytes(self) -> int:
        """The kept models' file bytes."""
        return sum(nbytes for _, nbytes in self._models.values())

    def get(self, key: tuple[str, str]) -> Any | None:
        """The model under ``key`` (now the most recently used), or None."""
        entry = self._models.get(key)
        if entry is None:
            return None
        self._models.move_to_end(key)
        return entry[0]

    def put(self, key: tuple[str, str], model: Any, nbytes: int = 0) -> None:
        """Keep ``model`` (of a ``nbytes`` file), dropping the least recently
        used beyond the size or the bytes; one over the bytes alone is not kept."""
        if nbytes > self.max_bytes:
            return
        self._models[key] = (model, nbytes)
        self._models.move_to_end(key)
        while len(self._models) > max(self.size, 0) or self.held_bytes > self.max_bytes:
            self._models.popitem(last=False)


_cache = ModelCache(CACHE_SIZE)


def load(model_file: bytes) -> Any:
    """``keras.saving.load_model`` of the bytes of a ``.keras`` file."""
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(model_file)
        return keras.saving.load_model(path)


def stateful(model: Any) -> bool:
    """Whether ``model`` has a layer that keeps states between calls."""
    return any(
        getattr(layer, "stateful", False) for layer in model._flatten_layers(include_self=False)
    )


def reset_states(model: Any) -> None:
    """Zero the states of stateful layers: each answer is that of a freshly
    loaded model, whatever was predicted before."""
    for layer in model._flatten_layers(include_self=False):
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()


def batch_predictor(model: Any) -> Callable[[Any], Any] | None:
    """``model.predict_on_batch``'s computation as one jitted call (JAX), or
    None where ``predict_on_batch`` itself must run (another backend, a
    model Keras runs eagerly or without XLA, a stateful model).

    Keras's JAX ``predict_on_batch`` jits the very step this jits (the
    model's ``stateless_call`` with ``training=False``, its ``predict_step``)
    but around it, on every call, walks the model's layers, gathers every
    variable's value, assigns the non-trainable ones back and donates the
    state's buffers: some 40 µs of Python for a 10 µs program. Here the
    variables' values are read once, when the model is loaded, and the step
    is given them on each call; nothing is written back, so each answer is
    the freshly loaded model's (what :func:`reset_states` ensures for a
    stateful model, which keeps ``predict_on_batch``).
    tests/test_predict.py holds its outputs to ``model.predict``'s.

    The values stay valid as long as nothing else runs the model's own
    steps (``predict_on_batch`` donates them): a cached model is called
    only through what this returns.
    """
    import keras

    if keras.backend.backend() != "jax" or model.run_eagerly or not model.jit_compile:
        return None
    if stateful(model) or not all(layer.built for layer in model._flatten_layers()):
        return None
    import jax
    import numpy as np

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    kwargs = {"training": False} if model._call_has_training_arg else {}

    @jax.jit
    def step(trainable: Any, non_trainable: Any, x: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, x, **kwargs)
        return outputs

    def on_batch(x: Any) -> Any:
        return keras.tree.map_structure(np.asarray, step(trainable, non_trainable, x))

    return on_batch


_configured = False


def predict(
    jobs: JobStore,
    job_id: str,
    instances: list[Any],
    model_file: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The job's model's outputs for ``instances`` (samples first), in
    batches of :func:`~worker.training.prediction_batch_size` (a request of
    many instances costs one batch's activations, not all of theirs).

    Returns ``{"predictions", "model_cached", "model_load_seconds",
    "predict_seconds"}``, or ``{"error": {"type", "message"}}`` when the job
    has no model (anymore). The instances were checked against the model's
    input by the API. ``model_file``: the record's ``model_file`` as the API
    read it (its ``sha256``); where this process has that model loaded, the
    job record is not read at all. Otherwise the record is read, and the
    model file only when this process has not got it loaded
    (:func:`cached_model`).
    """
    global _configured
    digest = (model_file or {}).get("sha256")
    found: Loaded | None = _cache.get((job_id, digest)) if digest is not None else None
    job: dict[str, Any] | None = None
    if found is None:
        job = jobs.get(job_id, ("request", "model_file"))
        if job is None or "request" not in job:
            return no_model(job_id)
    with training.keras_lock:  # Keras's session state is global: one model at a time
        if not _configured:
            configure_backend()
            _configured = True
        import numpy as np

        started = time.perf_counter()
        cached = found is not None
        if found is None:
            assert job is not None
            found, cached = cached_model(jobs, job_id, job.get("model_file"), job["request"])
            if found is None:
                return no_model(job_id)
        loaded = time.perf_counter()
        model, request, on_batch = found
        spec: Mapping[str, Any] = request["model"]
        if on_batch is None:
            reset_states(model)
        if is_graph(spec):
            # Each input's values, in the model's order (the API arranged them).
            x = input_arrays(spec, instances)
        else:
            x = np.asarray(instances, dtype=spec.get("dtype") or "float32")
        predictions = training.predict(model, x, training.prediction_batch_size(request), on_batch)
        done = time.perf_counter()
    return {
        "predictions": finite(predictions),
        "model_cached": cached,
        "model_load_seconds": round(loaded - started, 4),
        "predict_seconds": round(done - loaded, 4),
    }


def answer(
    jobs: JobStore,
    job_id: str,
    instances: list[Any],
    model_file: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`predict`, or the error it raised as the API's answer
    (``{"error": {"type", "message"}}``: a 502 naming it)."""
    try:
        return predict(jobs, job_id, instances, model_file)
    except Exception as error:  # noqa: BLE001 (the API answers with the reason)
        logger.exception("predictions of job %s failed", job_id)
        return {"error": failure(type(error).__name__, str(error))}


def deliver(
    jobs: JobStore,
    job_id: str,
    answer: dict[str, Any],
    reply_key: str,
    reply_by: float | None,
    reply_ttl: int,
) -> bool:
    """Push ``answer`` on the request's reply list, with a TTL of
    ``reply_ttl`` s, if the API still waits (``reply_by``, epoch seconds);
    an answer no one waits for is not written at all. Whether it was."""
    if reply_by is not None and time.time() > reply_by:
        logger.info("predictions of job %s came after the API gave up; dropped", job_id)
        return False
    jobs.put_reply(reply_key, answer, reply_ttl)
    return True


def cached_model(
    jobs: JobStore,
    job_id: str,
    info: Mapping[str, Any] | None,
    request: Mapping[str, Any],
) -> tuple[Loaded | None, bool]:
    """The job's loaded model (with its ``request``) and whether it was
    cached; (None, False) if the job has no model file (anymore).

    The record's ``model_file`` names the file's digest (written with the
    file, :meth:`JobStore.finish_leased`): a cached model is found by it
    without reading the file, which may be hundreds of megabytes. A record
    from before digests were stored has its file read and hashed each time.
    """
    digest = (info or {}).get("sha256")
    if digest is not None and (found := _cache.get((job_id, digest))) is not None:
        return found, True
    model_file = jobs.get_model(job_id)
    if model_file is None:
        return None, False
    key = (job_id, hashlib.sha256(model_file).hexdigest())
    found = _cache.get(key)
    if found is not None:
        return found, True
    model = load(model_file)
    found = Loaded(model, request, batch_predictor(model))
    _cache.put(key, found, len(model_file))
    return found, False


def no_model(job_id: str) -> dict[str, Any]:
    """The answer for a job without a model file."""
    return {"error": {"type": "NoModel", "message": f"Job {job_id} has no model file."}}
