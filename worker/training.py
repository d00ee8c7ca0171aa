"""Train a validated job request with Keras: build, check, compile, fit,
predict, save. The only module (with its helpers) that imports Keras.

Imported inside the task, in the pool's child process, never in the worker's
main process (TensorFlow and XLA are not fork-safe) nor in the API. How the
epochs are run is :mod:`worker.fitting`'s business; what is reported while
they run, :mod:`worker.monitor`'s.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from seqlab.fit import split_samples

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
    """Load Keras and compile a tiny model, so that the first job does not
    pay for importing TensorFlow and initializing XLA."""
    from seqlab import analyze
    from seqlab.examples import example_request

    request = example_request("many_to_one")
    request["fit"].update(epochs=2, shuffle=True, validation_split=0.0)
    report = analyze(request["model"])
    train(request, expected=report.counts(), on_progress=_ignore, should_stop=_never)


def _ignore(_: Any) -> None:
    return None


def _never() -> bool:
    return False


def train(
    request: Mapping[str, Any],
    *,
    expected: Mapping[str, Any],
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
    deadline: float | None = None,
    on_history: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Build, compile and fit the model of a validated train request.

    ``expected`` holds the engine's counts (a job's ``params``); the built
    model must agree with them. ``deadline`` (``time.monotonic()``) is the
    job's time limit; ``on_history`` gets the history so far every few
    seconds (:class:`~worker.monitor.Monitor`). Returns the result document
    and the trained model as ``.keras`` bytes. Raises :class:`Cancelled` or
    :class:`TimeLimitReached` (with the partial result and model as
    arguments), or :class:`TrainingFailed`.
    """
    with keras_lock:
        started = time.perf_counter()
        backend = configure_backend()
        import keras

        keras.utils.set_random_seed(int(request.get("seed", 0)))
        model, summary = build_checked(request["model"], expected)
        compile_model(model, request["compile"])
        built = time.perf_counter()
        monitor = Monitor(
            epochs=int(request["fit"]["epochs"]),
            steps_per_epoch=steps_per_epoch(request),
            on_progress=on_progress,
            should_stop=should_stop,
            deadline=deadline,
            on_history=on_history,
        )
        stopper = fit(model, request, monitor)
        trained = time.perf_counter()
        x, _ = job_arrays(request, model)
        predictions = predict(model, x, model_batch_size(request["model"]))
        model_file = save(model)
        result = {
            "history": monitor.history.result(),
            "history_block": monitor.history.block,
            "epochs_completed": monitor.epochs_done,
            "final_metrics": {k: finite_or_none(v) for k, v in monitor.last_epoch.items()},
            "stopped": stopped(monitor, stopper, request["fit"].get("early_stopping")),
            "predictions": predictions,
            "summary": summary,
            "keras_params": int(model.count_params()),
            "peak_rss_bytes": monitor.peak_rss_bytes,
            "device": device_name(),
            "backend": backend,
            "keras_version": keras.__version__,
            "timings": {
                "build_seconds": round(built - started, 4),
                "train_seconds": round(trained - built, 4),
                "predict_and_save_seconds": round(time.perf_counter() - trained, 4),
            },
        }
    if monitor.stopped_by == "cancelled":
        raise Cancelled(result, model_file)
    if monitor.stopped_by == "time_limit":
        raise TimeLimitReached(result, model_file)
    if monitor.stopped_by:
        raise TrainingFailed(monitor.stopped_by)
    return result, model_file


def build_checked(spec: Mapping[str, Any], expected: Mapping[str, Any]) -> tuple[Any, str]:
    """The Keras model of ``spec`` and the summary Keras prints for it,
    after checking that it is the model the engine counted."""
    model = build_model(spec)
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


def model_batch_size(spec: Mapping[str, Any]) -> int | None:
    """The model's fixed batch size (a stateful model's), or None."""
    if is_graph(spec):
        return spec["inputs"][0].get("batch_size")
    return spec.get("batch_size")


def steps_per_epoch(request: Mapping[str, Any]) -> int:
    """Optimizer steps per epoch: training samples over the batch size."""
    fit_args = request["fit"]
    x = request["data"]["x"]
    count = len(parts(x)[0]) if is_graph(request["model"]) else len(x)
    n, _ = split_samples(count, fit_args.get("validation_split") or 0.0)
    return math.ceil(n / int(fit_args["batch_size"]))


def fit(model: Any, request: Mapping[str, Any], monitor: Monitor) -> Any:
    """Fit the compiled model on the request's data, reporting to ``monitor``.

    Returns the Keras ``EarlyStopping`` callback that ran, or None.
    """
    import numpy as np

    fit_args = request["fit"]
    x, y = job_arrays(request, model)
    n, n_val = split_samples(samples(x), fit_args.get("validation_split") or 0.0)
    options = {
        "batch_size": int(fit_args["batch_size"]),
        "epochs": int(fit_args["epochs"]),
        "shuffle": bool(fit_args["shuffle"]),
    }
    own = request["data"].get("validation")
    if own is not None:
        # Validation data of its own (a dataset's): Keras's validation_data.
        y_val = np.asarray(own[1], dtype="float32")
        # A graph model whose outputs are a list of one takes y as a list.
        validation = (np.asarray(own[0], dtype=x.dtype), [y_val] if isinstance(y, list) else y_val)
        x_fit, y_fit = x, y
    elif n_val:
        # Keras keeps the last samples for validation (validation_split).
        validation = (take(x, slice(n, None)), take(y, slice(n, None)))
        x_fit, y_fit = take(x, slice(None, n)), take(y, slice(None, n))
    else:
        validation, x_fit, y_fit = None, x, y
    stopper = None
    if fit_args.get("early_stopping"):
        # Keras's own EarlyStopping in Keras's own fit: exact by construction
        # (the fused fit has no epoch ends for it to act on).
        stopper = early_stopping(fit_args["early_stopping"])
        fit_per_epoch(
            model, x_fit, y_fit, validation, monitor=monitor, callbacks=[stopper], **options
        )
        if stopper.stopped_epoch and not monitor.stop:
            monitor.ended_early()
    elif validation is not None:
        # Validation runs at epoch ends: Keras's own fit, epoch by epoch.
        fit_per_epoch(model, x_fit, y_fit, validation, monitor=monitor, **options)
    else:
        fit_fused(model, x, y, monitor=monitor, **options)
    return stopper


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


def predict(model: Any, x: Any, batch_size: int | None) -> Any:
    """The model's outputs for ``x`` (one array, or a list for several
    inputs), in batches of the model's fixed batch size where it has one (a
    stateful model accepts no other).

    A model with several outputs answers an object by output name (Keras's
    ``model.output_names``), or a list in output order where two outputs
    share a name (two tensors of one layer); one output (even given as a
    list of one, which Keras's ``predict`` unwraps) the list of its values.
    """
    import keras
    import numpy as np

    if not batch_size:
        out = model.predict_on_batch(x)
    else:
        batches = [
            model.predict_on_batch(take(x, slice(i, i + batch_size)))
            for i in range(0, samples(x), batch_size)
        ]
        out = keras.tree.map_structure(lambda *a: np.concatenate(a), *batches)
    if not isinstance(out, list | tuple):
        return np.asarray(out).tolist()
    lists = [np.asarray(o).tolist() for o in out]
    names = list(model.output_names)
    if len(set(names)) == len(names) == len(lists):
        return dict(zip(names, lists, strict=True))
    return lists


def save(model: Any) -> bytes:
    """The model as the bytes of a ``.keras`` file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()
