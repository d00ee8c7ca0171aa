"""Train a validated job request with Keras. The only module that imports it.

Imported inside the task, in the pool's child process, never in the worker's
main process (TensorFlow and XLA are not fork-safe) nor in the API.

Speed: the seed article's programs spend most of their time in Keras's
per-epoch overhead (a new data iterator, callbacks, metric resets per epoch,
a thousand times for a few microseconds of arithmetic). Without a
validation split this module feeds all epochs through one ``fit`` call:
the batches are the ones ``fit(epochs=E, shuffle=True)`` would form (each
epoch a fresh permutation, the same batch size, the same short last batch),
laid end to end, so the optimizer takes the same steps on the same batches.
Each step logs its own loss (see ``per_step_logs``) and the per-epoch
values are averaged here, weighted by batch size as Keras does.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from .builder import build_model

#: At most this many history points; longer jobs report blocks of epochs.
MAX_HISTORY = 1000
#: Seconds between progress reports (and cancel checks).
PROGRESS_INTERVAL = 0.5
SUMMARY_LINE_LENGTH = 76


#: One model at a time per process: Keras's session state is global.
_lock = threading.Lock()


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """Training stopped because the job was cancelled."""


class TrainingFailed(Exception):
    """Training ran but cannot give a result (the loss became NaN, say)."""


def configure_backend() -> str:
    """Pick the Keras backend before Keras is imported, and GPU memory habits.

    ``KERAS_BACKEND`` wins; otherwise JAX where it is installed (its compiled
    steps are several times cheaper for small sequence models), else
    TensorFlow. GPU memory grows on demand instead of being taken whole.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if "KERAS_BACKEND" not in os.environ:
        try:
            import jax  # noqa: F401
        except ImportError:
            os.environ["KERAS_BACKEND"] = "tensorflow"
        else:
            os.environ["KERAS_BACKEND"] = "jax"
    backend = os.environ["KERAS_BACKEND"]
    if backend == "jax":
        import jax

        # Compiled train steps outlive the model: the same model trained
        # again (an example, a retry) skips XLA compilation.
        cache = os.environ.get(
            "SEQLAB_JAX_CACHE", os.path.join(tempfile.gettempdir(), "seqlab-jax-cache")
        )
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return backend


def device_name() -> str:
    """The accelerator training runs on, or ``CPU``."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else f"{device.device_kind} ({device.platform})"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]
            )
            return str(details.get("device_name", gpus[0].name))
    return "CPU"


def per_step_logs(model: Any) -> bool:
    """Make ``fit`` log each step's own loss and metrics, not running means.

    Keras averages a metric from the start of the epoch; with all epochs in
    one ``fit`` call that would blur every epoch into the first. Under JAX
    the metric state is threaded through the compiled step, so it is zeroed
    on the way in; other backends reset it from the callback. Returns True
    when the callback must do it.
    """
    import keras

    if keras.backend.backend() != "jax":
        return True
    import jax.numpy as jnp

    model.make_train_function()
    step = model.train_function

    def train_function(state: Any, iterator: Any) -> Any:
        trainable, non_trainable, optimizer, metrics = state
        return step((trainable, non_trainable, optimizer, [jnp.zeros_like(v) for v in metrics]),
                    iterator)  # fmt: skip

    model.train_function = train_function
    return False


def epoch_batches(n: int, batch_size: int, epochs: int, shuffle: bool, seed: int) -> list[Any]:
    """The sample indices of every batch ``fit`` would form, epoch by epoch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = []
    for _ in range(epochs):
        order.append(rng.permutation(n) if shuffle else np.arange(n))
    return order


class Tracker:
    """A Keras callback: per-epoch history from per-step running means,
    progress reports, cancel checks, NaN detection."""

    def __init__(
        self,
        *,
        epochs: int,
        steps_per_epoch: int,
        batch_sizes: list[int],
        on_progress: Callable[[dict[str, Any]], None],
        should_stop: Callable[[], bool],
    ) -> None:
        import keras

        tracker = self

        class _Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
                if tracker.fused:
                    tracker.step_end(self.model, batch, logs or {})

            def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
                if not tracker.fused:
                    tracker.epochs_done = epoch + 1
                    tracker.epoch_end(self.model, dict(logs or {}))

        self.callback = _Callback()
        #: All epochs in one fit call (steps numbered across epochs).
        self.fused = True
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_sizes = batch_sizes  # per step within an epoch
        self.block = max(1, math.ceil(epochs / MAX_HISTORY))
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self.sums: dict[str, float] = {}
        self.weight = 0
        #: Reset Keras's running means after each step from the callback
        #: (backends where the train function does not do it).
        self.reset_metrics = False
        self.started = time.monotonic()
        self.last_report = 0.0
        self.stopped_by: str | None = None

    def step_end(self, model: Any, batch: int, logs: Mapping[str, Any]) -> None:
        # Each step's logs hold that step's own values (see per_step_logs);
        # an epoch's value is their mean weighted by batch size, as Keras's.
        size = self.batch_sizes[batch % self.steps_per_epoch]
        for name, value in logs.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value) * size
        self.weight += size
        if self.reset_metrics:
            model.reset_metrics()
        step = batch + 1
        if step % self.steps_per_epoch:
            return
        self.epochs_done = step // self.steps_per_epoch
        if self.epochs_done % self.block and self.epochs_done != self.epochs:
            return
        latest = {name: total / self.weight for name, total in self.sums.items()}
        for name, mean in latest.items():
            self.history.setdefault(name, []).append(mean)
        self.sums, self.weight = {}, 0
        self.epoch_end(model, latest)

    def epoch_end(self, model: Any, latest: Mapping[str, float]) -> None:
        """NaN check, progress report and cancel check at an epoch boundary."""
        if "loss" in latest and not math.isfinite(latest["loss"]):
            self.stopped_by = f"The loss became {latest['loss']} at epoch {self.epochs_done}."
            model.stop_training = True
            return
        now = time.monotonic()
        if now - self.last_report >= PROGRESS_INTERVAL or self.epochs_done == self.epochs:
            self.last_report = now
            elapsed = now - self.started
            left = self.epochs - self.epochs_done
            self.on_progress(
                {
                    "epoch": self.epochs_done,
                    "epochs": self.epochs,
                    "loss": float(latest["loss"]) if "loss" in latest else None,
                    "eta_seconds": round(elapsed / self.epochs_done * left, 3),
                }
            )
            if left and self.should_stop():
                self.stopped_by = "cancelled"
                model.stop_training = True


def warm_up() -> None:
    """Load Keras and compile a tiny model, so that the first job does not
    pay for importing TensorFlow and initializing XLA."""
    from seqlab.examples import example_request

    request = example_request("many_to_one")
    request["fit"].update(epochs=2, shuffle=True, validation_split=0.0)
    train(request, expected_params=170, on_progress=lambda _: None, should_stop=lambda: False)


def train(
    request: Mapping[str, Any],
    *,
    expected_params: int,
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> tuple[dict[str, Any], bytes]:
    """Build, compile and fit the model of a validated train request.

    Returns the result document and the trained model as ``.keras`` bytes.
    Raises :class:`Cancelled` (with the partial result as its argument) or
    :class:`TrainingFailed`.
    """
    with _lock:
        return _train(request, expected_params, on_progress, should_stop)


def _train(
    request: Mapping[str, Any],
    expected_params: int,
    on_progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> tuple[dict[str, Any], bytes]:
    t0 = time.perf_counter()
    backend = configure_backend()
    import keras
    import numpy as np

    spec, data = request["model"], request["data"]
    compile_args, fit_args = request["compile"], request["fit"]
    seed = int(request.get("seed", 0))
    keras.utils.set_random_seed(seed)
    model = build_model(spec)
    lines: list[str] = []
    model.summary(print_fn=lines.append, line_length=SUMMARY_LINE_LENGTH)
    summary = "".join(lines)
    keras_params = int(model.count_params())
    if keras_params != expected_params:
        raise TrainingFailed(
            f"Keras counts {keras_params} parameters but seqlab counted "
            f"{expected_params}: the engine and Keras disagree about this model."
        )
    optimizer = keras.optimizers.get(compile_args["optimizer"])
    if compile_args.get("learning_rate") is not None:
        optimizer.learning_rate = compile_args["learning_rate"]
    model.compile(
        optimizer=optimizer,
        loss=compile_args["loss"],
        metrics=list(compile_args.get("metrics") or []),
    )
    x = np.asarray(data["x"], dtype=spec.get("dtype") or "float32")
    y = np.asarray(data["y"], dtype="float32")
    epochs, batch_size = int(fit_args["epochs"]), int(fit_args["batch_size"])
    split = float(fit_args.get("validation_split") or 0.0)
    t_build = time.perf_counter()

    # Keras keeps the last samples for validation (array_slicing.py).
    n = math.floor(len(x) * (1.0 - split)) if split else len(x)
    n_val = len(x) - n
    steps_per_epoch = math.ceil(n / batch_size)
    sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
    tracker = Tracker(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_sizes=sizes,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    if n_val:
        # Validation runs at epoch ends: train epoch by epoch, as Keras does.
        tracker.fused = False
        fitted = model.fit(
            x[:n], y[:n], batch_size=batch_size, epochs=epochs, shuffle=fit_args["shuffle"],
            validation_data=(x[n:], y[n:]), callbacks=[tracker.callback], verbose=0,
        )  # fmt: skip
        history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
        history = thin(history, tracker.block)
    else:
        tracker.reset_metrics = per_step_logs(model)
        orders = epoch_batches(n, batch_size, epochs, fit_args["shuffle"], seed)
        if n % batch_size == 0:
            idx = np.concatenate(orders)
            model.fit(x[idx], y[idx], batch_size=batch_size, epochs=1, shuffle=False,
                      callbacks=[tracker.callback], verbose=0)  # fmt: skip
        else:
            # A short last batch per epoch: hand Keras the exact batches.
            def batches() -> Any:
                for order in orders:
                    for i in range(0, n, batch_size):
                        part = order[i : i + batch_size]
                        yield x[part], y[part]

            model.fit(batches(), steps_per_epoch=steps_per_epoch * epochs, epochs=1,
                      callbacks=[tracker.callback], verbose=0)  # fmt: skip
        history = tracker.history
    t_train = time.perf_counter()

    predictions = np.asarray(model.predict_on_batch(x)).tolist()
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            buffer.write(f.read())
    result = {
        "history": history,
        "history_block": tracker.block,
        "epochs_completed": tracker.epochs_done,
        "final_metrics": {k: v[-1] for k, v in history.items() if v},
        "predictions": predictions,
        "summary": summary,
        "keras_params": keras_params,
        "device": device_name(),
        "backend": backend,
        "keras_version": keras.__version__,
        "timings": {
            "build_seconds": round(t_build - t0, 4),
            "train_seconds": round(t_train - t_build, 4),
            "predict_and_save_seconds": round(time.perf_counter() - t_train, 4),
        },
    }
    if tracker.stopped_by == "cancelled":
        raise Cancelled(result, buffer.getvalue())
    if tracker.stopped_by:
        raise TrainingFailed(tracker.stopped_by)
    return result, buffer.getvalue()


def thin(history: dict[str, list[float]], block: int) -> dict[str, list[float]]:
    """Average per-epoch values over blocks of ``block`` epochs."""
    if block == 1:
        return history
    return {
        name: [
            sum(values[i : i + block]) / len(values[i : i + block])
            for i in range(0, len(values), block)
        ]
        for name, values in history.items()
    }
