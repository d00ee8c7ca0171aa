"""Train a validated job request with Keras, in four phases run in order by
:func:`train`: :func:`build` (backend, seed, model, engine agreement,
compile), :func:`fit` (the epochs), :func:`predict_training_inputs` (the
result's predictions) and :func:`save` (the ``.keras`` file). Each phase is
one function whose inputs determine its cost, so that its memory and time
can be estimated and bounded on its own; state passes between them as
arguments and return values (:class:`Built`), never through globals. The
only module (with its helpers) that imports Keras.

Imported inside the task, in the pool's child process, never in the worker's
main process (TensorFlow and XLA are not fork-safe) nor in the API. How the
epochs are run is :mod:`worker.fitting`'s business; what is reported while
they run, :mod:`worker.monitor`'s.
"""

from __future__ import annotations

import gc
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobs import settings
from seqlab import analyze
from seqlab.backends import backend_problems
from seqlab.cost import JSON_VALUE_BYTES
from seqlab.cost import prediction_bytes_bound
from seqlab.fit import split_samples

from . import steps
from .agreement import EngineMismatch
from .agreement import check_agreement
from .backend import configure_backend
from .backend import device_name
from .builder import build_model
from .builder import is_graph
from .fitting import early_stopping
from .fitting import fit_fused
from .fitting import fit_per_epoch
from .graph_arrays import job_arrays
from .graph_arrays import parts
from .graph_arrays import samples
from .graph_arrays import take
from .monitor import Monitor
from .monitor import finite_or_none

SUMMARY_LINE_LENGTH = 76

#: One model at a time per process: Keras's session state is global. The
#: prediction endpoint (:mod:`worker.predicting`) holds it too.
keras_lock = threading.Lock()


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """Training stopped because the job was cancelled.

    ``args``: the partial result document and the model's ``.keras`` bytes.
    """


class TimeLimitReached(Exception):  # noqa: N818 (a signal, not an error)
    """Training stopped at the job's time limit.

    ``args``: the partial result document and the model's ``.keras`` bytes.
    """


class TrainingFailed(Exception):
    """Training cannot give a result (the loss became NaN, say)."""


def warm_up() -> None:
    """Load Keras and train each of the seed's programs for two epochs, so
    that the first job does not pay for importing TensorFlow and
    initializing XLA, and a seed job finds its steps traced and compiled
    (:mod:`worker.steps`: the same programs run any number of epochs)."""
    from seqlab.examples import SEED_EXAMPLES
    from seqlab.examples import example_request

    for name in SEED_EXAMPLES:
        request = example_request(name)
        request["fit"].update(epochs=2, shuffle=True, validation_split=0.0)
        report = analyze(request["model"])
        train(request, expected=report.counts(), on_progress=_ignore, should_stop=_never)
    with keras_lock:  # not while a job's objects are alive
        settle_heap()


def settle_heap() -> None:
    """Put what this process holds now out of the garbage collector's sight.

    Keras, JAX and TensorFlow leave some millions of objects that live as
    long as the process; every job's ``keras.backend.clear_session`` runs a
    full collection, which scanned them all: some 0.3 s of a warm seed job
    of 1 s (2 CPUs). Frozen (:func:`gc.freeze`), they are skipped, and a
    job's collection scans only what was made since, in milliseconds.
    Frozen objects are still freed when no longer referenced; only a cycle
    among them is never collected, so this runs once everything loaded is
    loaded and the garbage of the warm-up collected, between jobs.
    """
    gc.collect()
    gc.freeze()


def _ignore(_: Any) -> None:
    return None


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Built:
    """What :func:`build` hands to the later phases."""

    #: The compiled ``keras.Model`` (its optimizer's variables are made by
    #: the first training step, in :func:`fit`).
    model: Any
    #: The summary Keras prints for the model (the result's ``summary``).
    summary: str
    #: The Keras backend in use (``jax`` or ``tensorflow``).
    backend: str


def train(
    request: Mapping[str, Any],
    *,
    expected: Mapping[str, Any],
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
    deadline: float | None = None,
    on_history: Callable[[dict[str, Any]], None] | None = None,
    max_prediction_bytes: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Build, compile and fit the model of a validated train request, then
    predict its training inputs and save it.

    ``expected`` holds the engine's counts (a job's ``params``); the built
    model must agree with them. ``deadline`` (``time.monotonic()``) is the
    job's time limit; ``on_history`` gets the history so far every few
    seconds (:class:`~worker.monitor.Monitor`); ``max_prediction_bytes``
    caps the predictions kept (``SEQLAB_MAX_PREDICTION_BYTES`` where None:
    :func:`predict_training_inputs`). Returns the result document
    and the trained model as ``.keras`` bytes. Raises :class:`Cancelled` or
    :class:`TimeLimitReached` (with the partial result and model as
    arguments), or :class:`TrainingFailed`.

    The orchestrator: it runs the phases in order (:func:`build`,
    :func:`fit`, :func:`predict_training_inputs`, :func:`save`), holds the
    clock and wires the job's callbacks into the fit's
    :class:`~worker.monitor.Monitor`; the phases read no clock and know
    nothing of the job beyond their arguments.
    """
    with keras_lock:
        started = time.perf_counter()
        built = build(request, expected)
        built_at = time.perf_counter()
        monitor = Monitor(
            epochs=int(request["fit"]["epochs"]),
            steps_per_epoch=steps_per_epoch(request),
            on_progress=on_progress,
            should_stop=should_stop,
            deadline=deadline,
            on_history=on_history,
        )
        stopper = fit(built.model, request, monitor)
        trained = time.perf_counter()
        # Whatever stopped the fit, the model is predicted and saved: a
        # cancelled or timed-out job keeps its partial result and model.
        if max_prediction_bytes is None:
            max_prediction_bytes = settings.max_prediction_bytes()
        predictions = predict_training_inputs(built.model, request, max_prediction_bytes)
        model_file = save(built.model)
        result = result_document(request, built, monitor, stopper, predictions)
        # Read last, as the whole document once was: predict_and_save_seconds
        # also covers assembling the result.
        result["timings"] = {
            "build_seconds": round(built_at - started, 4),
            "train_seconds": round(trained - built_at, 4),
            "predict_and_save_seconds": round(time.perf_counter() - trained, 4),
        }
    raise_if_stopped(monitor, result, model_file)
    return result, model_file


def build(request: Mapping[str, Any], expected: Mapping[str, Any]) -> Built:
    """Phase 1: the compiled Keras model of ``request``, seeded, checked
    against the engine's counts ``expected``.

    Picks the backend (:func:`~worker.backend.configure_backend`, before
    Keras is first imported), seeds Keras's generators with the request's
    ``seed`` (the weights' initial values, dropout and the fit's shuffling
    follow from it), builds the model, checks it against the
    engine (:class:`TrainingFailed` where they disagree) and compiles it.

    Cost: time, importing Keras and its backend on a process's first job
    (seconds; :func:`warm_up` pays it at the worker's start), then building
    the layers (milliseconds to a second); memory, the weights
    (``ModelReport.param_bytes``) beside the backend's own runtime. No XLA
    program is compiled and no optimizer variable made yet: the first
    training step does both (:func:`fit`).
    """
    backend = configure_backend()
    # The API refuses these while a worker of this backend is alive; a job
    # queued while none was (its record warns) ends here, saying why.
    problems = backend_problems(analyze(request["model"]), backend)
    if problems:
        raise TrainingFailed(" ".join(problems))
    import keras

    keras.utils.set_random_seed(int(request.get("seed", 0)))
    model, summary = build_checked(request["model"], expected)
    compile_model(model, request["compile"])
    # The steps of the last model of this structure, already traced (JAX).
    steps.attach(model, steps.structure_key(request["model"], request["compile"]))
    return Built(model=model, summary=summary, backend=backend)


def build_checked(
    spec: Mapping[str, Any], expected: Mapping[str, Any], *, fresh_session: bool = True
) -> tuple[Any, str]:
    """The Keras model of ``spec`` and the summary Keras prints for it,
    after checking that it is the model the engine counted
    (``fresh_session``: as :func:`~worker.builder.build_model`'s)."""
    model = build_model(spec, fresh_session=fresh_session)
    lines: list[str] = []
    model.summary(print_fn=lines.append, line_length=SUMMARY_LINE_LENGTH)
    try:
        check_agreement(model, expected)
    except EngineMismatch as error:
        raise TrainingFailed(str(error)) from None
    return model, "".join(lines)


def compile_model(model: Any, options: Mapping[str, Any]) -> None:
    """``model.compile`` with the request's optimizer, loss and metrics.

    With several outputs, a loss (or loss weight, or metric list) given by
    output name is put in the model's output order, as Keras 3 matches
    lists more reliably than dicts; one loss applies to every output, as in
    Keras, and one list of metrics is computed for every output (Keras
    itself refuses a flat list for several outputs).
    """
    import keras

    optimizer = keras.optimizers.get(options["optimizer"])
    if options.get("learning_rate") is not None:
        optimizer.learning_rate = options["learning_rate"]
    # A Sequential model has no output_names before it is compiled: one output.
    names = list(getattr(model, "output_names", None) or [])
    metrics: Any = options.get("metrics") or []
    if isinstance(metrics, Mapping) or len(names) > 1:
        metrics = [
            list(metrics.get(name, []) if isinstance(metrics, Mapping) else metrics)
            for name in names
        ]
        if len(names) == 1:
            metrics = metrics[0]  # Keras logs one output's metrics by their own names
    else:
        metrics = list(metrics)
    extra = {}
    if options.get("loss_weights") is not None:
        extra["loss_weights"] = by_output(options["loss_weights"], names)
    model.compile(
        optimizer=optimizer, loss=by_output(options["loss"], names), metrics=metrics, **extra
    )


def by_output(value: Any, names: list[str]) -> Any:
    """A per-output setting in the model's output order (an object by output
    name becomes a list); one value or a list as given."""
    if isinstance(value, Mapping):
        return [value[name] for name in names]
    return value


def steps_per_epoch(request: Mapping[str, Any]) -> int:
    """Optimizer steps per epoch: training samples over the batch size."""
    fit_args = request["fit"]
    x = request["data"]["x"]
    count = len(parts(x)[0]) if is_graph(request["model"]) else len(x)
    n, _ = split_samples(count, fit_args.get("validation_split") or 0.0)
    return math.ceil(n / int(fit_args["batch_size"]))


def fit(model: Any, request: Mapping[str, Any], monitor: Monitor) -> Any:
    """Phase 2: fit the compiled model on the request's data, reporting to
    ``monitor`` (which may stop it: cancelled, time limit, NaN loss).

    Returns the Keras ``EarlyStopping`` callback that ran, or None; the
    history is the monitor's. Without validation data, all epochs run as
    one fused ``fit`` (:func:`~worker.fitting.fit_fused`), early stopping
    (``fit.early_stopping``) included; with validation data, as Keras's own
    ``fit`` (:func:`~worker.fitting.fit_per_epoch`).

    Cost: memory, the request's ``x`` and ``y`` as arrays (:func:`fit_data`)
    beside the request's own lists, plus one training step's peak
    (weights, gradients, optimizer state and one batch's activations:
    :func:`seqlab.memory.train_memory`), plus the history (at most
    :data:`~worker.monitor.MAX_HISTORY` points a metric); time, compiling
    the train step (and the validation step, with validation data) on the
    first batch, then ``epochs × steps_per_epoch(request)`` steps, plus a
    validation pass at each epoch's end where there is validation data.
    """
    fit_args = request["fit"]
    x, y = job_arrays(request, model)
    x_fit, y_fit, validation = fit_data(request, x, y)
    options = {
        "batch_size": int(fit_args["batch_size"]),
        "epochs": int(fit_args["epochs"]),
        "shuffle": bool(fit_args["shuffle"]),
    }
    # Keras's own EarlyStopping, in either fit (worker/fitting.py).
    stopper = early_stopping(fit_args["early_stopping"]) if fit_args.get("early_stopping") else None
    if validation is not None:
        # Validation runs at epoch ends: Keras's own fit, epoch by epoch.
        callbacks = [stopper] if stopper is not None else []
        fit_per_epoch(
            model, x_fit, y_fit, validation, monitor=monitor, callbacks=callbacks, **options
        )
    else:
        fit_fused(model, x, y, monitor=monitor, stopper=stopper, **options)
    if stopper is not None and stopper.stopped_epoch and not monitor.stop:
        monitor.ended_early()
    return stopper


def fit_data(request: Mapping[str, Any], x: Any, y: Any) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """The samples to fit on and the validation data (or None), from the
    job's arrays ``x`` and ``y`` (:func:`~worker.graph_arrays.job_arrays`).

    The request's own validation data (a dataset's) becomes new arrays;
    ``validation_split`` keeps the last samples for validation, as Keras
    does, as views of ``x`` and ``y`` (no copy).
    """
    import numpy as np

    own = request["data"].get("validation")
    if own is not None:
        # Validation data of its own (a dataset's): Keras's validation_data.
        y_val = np.asarray(own[1], dtype="float32")
        # A graph model whose outputs are a list of one takes y as a list.
        validation = (np.asarray(own[0], dtype=x.dtype), [y_val] if isinstance(y, list) else y_val)
        return x, y, validation
    n, n_val = split_samples(samples(x), request["fit"].get("validation_split") or 0.0)
    if n_val:
        # Keras keeps the last samples for validation (validation_split).
        validation = (take(x, slice(n, None)), take(y, slice(n, None)))
        return take(x, slice(None, n)), take(y, slice(None, n)), validation
    return x, y, None


def stopped(monitor: Monitor, stopper: Any, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Why and when training stopped, and early stopping's best epoch.

    ``reason``: ``epochs`` (all ran), ``early_stopping``, ``cancelled`` or
    ``time_limit``; ``epoch``: the last epoch run (1-based). With early
    stopping, ``monitor``, ``best`` (its best value) and ``best_epoch``
    (1-based; null if no epoch was monitored, all before
    ``start_from_epoch``), and whether the model's weights are those of the
    best epoch (Keras restores them at the end of any fit, early or not).
    """
    if monitor.stopped_by in ("cancelled", "time_limit"):
        reason = monitor.stopped_by
    elif stopper is not None and stopper.stopped_epoch:
        reason = "early_stopping"
    else:
        reason = "epochs"
    document: dict[str, Any] = {"reason": reason, "epoch": monitor.epochs_done}
    if stopper is not None and options:
        monitored = stopper.best is not None
        document.update(
            monitor=options["monitor"],
            best=finite_or_none(float(stopper.best)) if monitored else None,
            best_epoch=stopper.best_epoch + 1 if monitored else None,
            restored_best_weights=bool(
                stopper.restore_best_weights and stopper.best_weights is not None
            ),
        )
    return document


@dataclass
class TrainingPredictions:
    """The result's predictions (:func:`predict_training_inputs`): the
    outputs as :func:`predict` answers them, or None with why none are kept
    (``not_stored``: ``reason``, ``disabled`` or ``too_large``, and a
    ``message``; with ``too_large`` the ``bytes_bound`` and ``limit_bytes``)."""

    values: Any = None
    not_stored: dict[str, Any] | None = None


def predict_training_inputs(
    model: Any, request: Mapping[str, Any], max_bytes: int
) -> TrainingPredictions:
    """Phase 3: the trained model's outputs for every training input (the
    result's ``predictions``), as :func:`predict` answers them, in batches
    of the fit's ``batch_size`` (of the model's fixed batch size, a
    stateful model's); none where ``fit.store_predictions`` is false, or
    where they could take more than ``max_bytes`` as JSON
    (:func:`~seqlab.cost.prediction_bytes_bound`, from the first batch's
    output values per sample: the rest are then never computed).

    Cost: memory, the request's ``x`` (and ``y``) as arrays again (the
    fit's are not kept), one batch's forward pass (activations of
    ``batch_size`` samples, no more than a training step's), the outputs
    of all samples (4 bytes a value) and those outputs again as Python
    lists (about 32 bytes a value): both bounded by ``max_bytes`` (at
    least :data:`~seqlab.cost.JSON_VALUE_BYTES` bytes a value). Time: one
    forward pass over the samples, after compiling the predict step for
    the batch's shape (and the last, smaller batch's).
    """
    import keras
    import numpy as np

    fit_args = request["fit"]
    if not fit_args.get("store_predictions", True):
        return TrainingPredictions(
            not_stored={
                "reason": "disabled",
                "message": "The request's fit.store_predictions is false: no predictions "
                "on the training inputs were computed nor stored.",
            }
        )
    x, _ = job_arrays(request, model)
    batches = predict_batches(model, x, prediction_batch_size(request))
    first = next(batches)
    count = samples(x)
    per_sample = sum(int(np.prod(np.shape(a)[1:])) for a in keras.tree.flatten(first))
    bound = prediction_bytes_bound(count, per_sample)
    if bound > max_bytes:
        return TrainingPredictions(
            not_stored={
                "reason": "too_large",
                "message": f"The predictions on the {count} training inputs could take "
                f"{bound} bytes as JSON ({count} samples × {per_sample} output values × "
                f"{JSON_VALUE_BYTES} bytes), over this server's limit of {max_bytes} bytes "
                "(SEQLAB_MAX_PREDICTION_BYTES): none were stored. Download the model "
                "(GET /jobs/<id>/model), or ask POST /jobs/<id>/predict for fewer "
                "instances at a time.",
                "bytes_bound": bound,
                "limit_bytes": max_bytes,
            }
        )
    out = keras.tree.map_structure(lambda *a: np.concatenate(a), first, *batches)
    return TrainingPredictions(values=as_lists(model, out))


def model_batch_size(spec: Mapping[str, Any]) -> int | None:
    """The model's fixed batch size (a stateful model's), or None."""
    if is_graph(spec):
        return spec["inputs"][0].get("batch_size")
    return spec.get("batch_size")


def prediction_batch_size(request: Mapping[str, Any]) -> int:
    """How many samples a prediction of the job's model computes at a time:
    the model's fixed batch size (a stateful model accepts no other), else
    the fit's ``batch_size``, so that a prediction's activations take no
    more memory than a training step's, however many samples it is asked
    for."""
    return model_batch_size(request["model"]) or int(request["fit"]["batch_size"])


def predict(
    model: Any,
    x: Any,
    batch_size: int | None,
    on_batch: Callable[[Any], Any] | None = None,
) -> Any:
    """The model's outputs for ``x`` (one array, or a list for several
    inputs), in batches of ``batch_size`` where given (a stateful model
    accepts no other than its own), else in one batch; as :func:`as_lists`
    answers them. ``on_batch`` computes one batch (default
    ``model.predict_on_batch``; the predictor's jitted call of the same
    step, :func:`worker.predicting.batch_predictor`)."""
    import keras
    import numpy as np

    on_batch = on_batch or model.predict_on_batch
    if not batch_size or samples(x) <= batch_size:
        out = on_batch(x)
    else:
        batches = list(predict_batches(model, x, batch_size, on_batch))
        out = keras.tree.map_structure(lambda *a: np.concatenate(a), *batches)
    return as_lists(model, out)


def predict_batches(
    model: Any, x: Any, batch_size: int, on_batch: Callable[[Any], Any] | None = None
) -> Iterator[Any]:
    """``model.predict_on_batch`` (or ``on_batch``) of each ``batch_size``
    samples of ``x`` in turn (the last batch may be smaller), computed as
    they are asked for."""
    on_batch = on_batch or model.predict_on_batch
    for i in range(0, samples(x), batch_size):
        yield on_batch(take(x, slice(i, i + batch_size)))


def as_lists(model: Any, out: Any) -> Any:
    """Outputs of ``predict_on_batch`` as JSON takes them.

    A model with several outputs answers an object by output name (Keras's
    ``model.output_names``), or a list in output order where two outputs
    share a name (two tensors of one layer); one output (even given as a
    list of one, which Keras's ``predict`` unwraps) the list of its values.
    """
    import numpy as np

    if not isinstance(out, list | tuple):
        return np.asarray(out).tolist()
    lists = [np.asarray(o).tolist() for o in out]
    names = list(model.output_names)
    if len(set(names)) == len(names) == len(lists):
        return dict(zip(names, lists, strict=True))
    return lists


def save(model: Any) -> bytes:
    """Phase 4: the model as the bytes of a ``.keras`` file (its config,
    its weights and its optimizer's state).

    Cost: the file, written to a temporary directory then read into
    memory: about the weights plus the optimizer's variables (Adam keeps
    two a trainable weight: some three times the weights in all); time,
    writing and reading it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def result_document(
    request: Mapping[str, Any],
    built: Built,
    monitor: Monitor,
    stopper: Any,
    predictions: TrainingPredictions,
) -> dict[str, Any]:
    """The job's result from what the phases gave (all but ``timings``,
    the orchestrator's): history, metrics, why it stopped, predictions (or
    ``predictions_not_stored``: why there are none), summary and where it ran."""
    import keras

    model = built.model
    kept: dict[str, Any] = (
        {"predictions_not_stored": predictions.not_stored}
        if predictions.not_stored is not None
        else {"predictions": predictions.values}
    )
    return {
        "history": monitor.history.result(),
        "history_block": monitor.history.block,
        "epochs_completed": monitor.epochs_done,
        "final_metrics": {k: finite_or_none(v) for k, v in monitor.last_epoch.items()},
        "stopped": stopped(monitor, stopper, request["fit"].get("early_stopping")),
        **kept,
        "summary": built.summary,
        "keras_params": int(model.count_params()),
        "peak_rss_bytes": monitor.peak_rss_bytes,
        "device": device_name(),
        "backend": built.backend,
        "keras_version": keras.__version__,
    }


def raise_if_stopped(monitor: Monitor, result: dict[str, Any], model_file: bytes) -> None:
    """Raise :class:`Cancelled` or :class:`TimeLimitReached` (with the
    partial result and model) or :class:`TrainingFailed` where the monitor
    stopped the fit before its end; nothing where it ran to its end (or
    early stopping ended it)."""
    if monitor.stopped_by == "cancelled":
        raise Cancelled(result, model_file)
    if monitor.stopped_by == "time_limit":
        raise TimeLimitReached(result, model_file)
    if monitor.stopped_by:
        raise TrainingFailed(monitor.stopped_by)
