"""Two ways to run Keras's ``fit`` for a job, both reporting to a Monitor.

The seed article's programs spend almost all their time in Keras's
per-epoch overhead (a new data iterator, callbacks, metric resets, a
thousand times for microseconds of arithmetic). Without validation data,
:func:`fit_fused` runs all epochs as one ``fit`` over a stream of batches:

* the batches are formed as ``fit(epochs=E, shuffle=...)`` forms them: the
  same batch size, the same short last batch, and under JAX the very same
  permutations, drawn from NumPy's global generator at each epoch's start
  as Keras's array adapter draws them (``keras.utils.set_random_seed``
  seeds it). Under TensorFlow, Keras shuffles with ``tf.data`` instead: the
  epochs are then equally uniform permutations, not the same ones;
* the metrics are reset at each epoch's first step, as ``fit`` resets them,
  so each epoch's values (RMSE, AUC, precision, any stateful metric) are
  those Keras computes for the epoch, read at the epoch's last step;
* batches are made as they are consumed: memory does not grow with epochs.

With early stopping (``fit.early_stopping``) and no validation data, the
fused fit drives Keras's own ``EarlyStopping`` callback by hand: its
``on_train_begin`` before the fit, its ``on_epoch_end`` at each fused
epoch's last step with that epoch's values (those Keras's ``fit`` hands it
at the epoch's end), its ``on_train_end`` after. It decides when to stop
(it sets ``model.stop_training``, which ends the fused fit after that
step) and which weights to keep (``get_weights`` at the best epoch's end:
under JAX, reading the model syncs the fit's state back to it first), as
in Keras's own ``fit``, rather than a reimplementation of it.

A short job (at most :data:`COMPILED_MAX_STEPS` steps, data of at most
:data:`COMPILED_MAX_DATA_BYTES`) without early stopping goes further under
JAX: :func:`fit_compiled` runs its epochs, several at a time, as one
compiled program of Keras's own train step
(:func:`worker.steps.make_epochs_function`), fed the batches ``fit`` forms
(the same permutations, drawn as above), the metrics reset at each epoch's
start as ``fit`` resets them, and reads each epoch's values back once per
call. The seed's programs are a thousand steps of microseconds each: a
call per step, and its read-back, were most of a job.

With validation data, :func:`fit_per_epoch` is Keras's own ``fit``, early
stopping or not: the validation pass runs at Keras's epoch ends.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from seqlab.cost import COMPILED_MAX_DATA_BYTES
from seqlab.cost import COMPILED_MAX_INDICES

from . import steps as kept_steps
from .graph_arrays import samples
from .graph_arrays import take
from .monitor import CHECK_INTERVAL
from .monitor import Monitor

#: Jobs of at most this many optimizer steps (epochs × steps per epoch),
#: of at most this many a epoch, run compiled (:func:`fit_compiled`);
#: longer ones report progress within an epoch and are stopped within a
#: step by Keras's own loop.
COMPILED_MAX_STEPS = 10_000
COMPILED_MAX_EPOCH_STEPS = 256
#: ... and whose ``x`` and ``y`` take at most COMPILED_MAX_DATA_BYTES: a
#: compiled fit holds a copy of them (padded to a power of two samples) beside
#: the job's arrays; its sample orders take at most COMPILED_MAX_INDICES
#: (``int32``). Both bound the memory the cost model counts
#: (``seqlab/cost.py``, ``compiled_fit_bytes``).
#: A compiled call runs at most this many epochs.
COMPILED_MAX_EPOCHS = 1024
#: A compiled call lasts about this long once the pace is known, so that
#: progress, cancel and the time limit are checked as often as in Keras's loop.
COMPILED_CALL_SECONDS = CHECK_INTERVAL / 2
#: An epoch slower than this (timed after the first call, which may
#: compile) hands the rest of the fit over to Keras's loop.
COMPILED_SLOW_EPOCH_SECONDS = CHECK_INTERVAL


def batch_stream(
    x: Any, y: Any, batch_size: int, epochs: int, shuffle: bool, *, builds_first: bool = False
) -> Iterator[Any]:
    """Every batch of ``epochs`` epochs, made lazily, as ``fit`` forms them;
    ``x`` and ``y`` are arrays, or lists of arrays (a graph model's).

    ``builds_first``: ``fit`` on arrays would first draw one permutation to
    build the model's loss and metrics on a batch (see
    :func:`builds_on_a_batch`); draw it too, so the epochs' draws match.
    """
    import numpy as np

    n = samples(x)
    if shuffle and builds_first:
        np.random.permutation(n)
    for _ in range(epochs):
        # Keras's ArrayDataAdapter: one global permutation per epoch (of
        # the samples, shared by every input and output of a graph model).
        order = np.random.permutation(n) if shuffle else None
        for start in range(0, n, batch_size):
            part = (
                slice(start, start + batch_size)
                if order is None
                else order[start : start + batch_size]
            )
            yield batch(x, part), batch(y, part)


def batch(data: Any, part: Any) -> Any:
    """One batch of an array, or of each array of a list, as a tuple:
    ``tf.data`` (TensorFlow's generator adapter) reads a list as one tensor."""
    taken = take(data, part)
    return tuple(taken) if isinstance(taken, list) else taken


def builds_on_a_batch(model: Any) -> bool:
    """Whether ``fit`` will first build the model, its compiled loss or its
    metrics on one batch of a fresh data iterator (``Trainer._symbolic_build``,
    Keras 3.15), which draws a shuffling permutation of its own."""
    unbuilt = not all(layer.built for layer in model._flatten_layers())
    for tracker in (
        getattr(model, "_compile_metrics", None),
        getattr(model, "_compile_loss", None),
    ):
        unbuilt = unbuilt or (tracker is not None and not tracker.built)
    return unbuilt


def monitor_callback(monitor: Monitor, *, fused: bool, stopper: Any = None) -> Any:
    """A Keras callback feeding ``monitor`` and stopping ``fit`` when told.

    ``fused``: all epochs run as one Keras epoch, so epoch ends are found by
    counting steps; ``stopper`` (fused only): a Keras ``EarlyStopping``
    told of each such epoch end after the monitor (as in
    :func:`fit_per_epoch`, where it runs after the monitor's callback),
    unless the monitor stops the fit there.
    """
    import keras

    steps = monitor.steps_per_epoch

    class MonitorCallback(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # TensorFlow keeps metric state in variables: reset them as
            # fit does at an epoch's start (JAX: see reset_metrics_each_epoch).
            if fused and batch and batch % steps == 0 and keras.backend.backend() != "jax":
                self.model.reset_metrics()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            logs = logs or {}
            if fused and (batch + 1) % steps == 0:
                monitor.epoch_end(logs)
                if stopper is not None and not monitor.stop:
                    # The epoch's values are those fit hands on_epoch_end
                    # (see the module's docstring); 0-based, as Keras counts.
                    stopper.on_epoch_end((batch + 1) // steps - 1, logs)
            else:
                monitor.step_end(batch % steps if fused else batch, logs)
            if monitor.stop:
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if not fused:
                monitor.epoch_end(logs or {})
                if monitor.stop:
                    self.model.stop_training = True

    return MonitorCallback()


def reset_metrics_each_epoch(model: Any, steps_per_epoch: int) -> None:
    """Under JAX, zero the metric state at each epoch's first step.

    The JAX trainer threads metric state through its compiled step and
    syncs it back only after ``fit``'s epoch, so a callback cannot reset
    it; the train function is wrapped instead. The reset values are those
    ``fit`` itself starts from (the state of the very first step).
    """
    import numpy as np

    model.make_train_function()
    step = model.train_function
    count = itertools.count()
    initial: list[Any] = []

    def train_function(state: Any, data: Any) -> Any:
        trainable, non_trainable, optimizer, metrics = state
        if next(count) % steps_per_epoch == 0:
            if not initial:
                initial.extend(np.array(v) for v in metrics)
            # Host arrays: the step takes each to a buffer of its own (it may
            # donate, free, its inputs), cheaper than a device copy each.
            metrics = list(initial)
        return step((trainable, non_trainable, optimizer, metrics), data)

    model.train_function = train_function


def fit_fused(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int,
    epochs: int,
    shuffle: bool,
    monitor: Monitor,
    stopper: Any = None,
) -> None:
    """All epochs in one ``fit`` call (see the module's docstring).

    ``stopper``: a Keras ``EarlyStopping`` (:func:`early_stopping`), run at
    each epoch's end as Keras's ``fit`` runs it: it may end the fit at an
    epoch's end, and restores the best epoch's weights after the fit where
    it was told to (whether it stopped early or not, as in Keras).
    """
    import keras

    if stopper is None and compiled_fits(model, x, y, epochs, monitor.steps_per_epoch):
        epochs -= fit_compiled(
            model, x, y, batch_size=batch_size, epochs=epochs, shuffle=shuffle, monitor=monitor
        )
        if not epochs or monitor.stop:
            return
        # Its epochs are slow: Keras's loop runs the rest, checking in within them.
        model.reset_metrics()
    steps = monitor.steps_per_epoch
    if keras.backend.backend() == "jax":
        reset_metrics_each_epoch(model, steps)
    if stopper is not None:
        # Not in fit's callbacks: fit would run its on_epoch_end once, at
        # the end of the one fused epoch.
        stopper.set_model(model)
        stopper.on_train_begin()
    model.fit(
        batch_stream(x, y, batch_size, epochs, shuffle, builds_first=builds_on_a_batch(model)),
        steps_per_epoch=steps * epochs,
        epochs=1,
        shuffle=False,  # the stream is already shuffled (and Keras warns otherwise)
        callbacks=[monitor_callback(monitor, fused=True, stopper=stopper)],
        verbose=0,
    )
    if stopper is not None:
        # As fit ends its callbacks (not when fit raised): restore the best weights.
        stopper.on_train_end()


def data_bytes(data: Any) -> int:
    """The bytes of an array, or of a list of them."""
    return sum(a.nbytes for a in data) if isinstance(data, list) else int(data.nbytes)


def compiled_fits(model: Any, x: Any, y: Any, epochs: int, steps_per_epoch: int) -> bool:
    """Whether :func:`fit_compiled` runs this fit: JAX compiling the model's
    steps with XLA, a short job (:data:`COMPILED_MAX_STEPS`, and
    :data:`COMPILED_MAX_EPOCH_STEPS` a epoch) on small data
    (:data:`COMPILED_MAX_DATA_BYTES`), one step per execution."""
    import keras

    return (
        keras.backend.backend() == "jax"
        and bool(model.jit_compile)
        and not model.run_eagerly
        and model.steps_per_execution == 1
        and epochs * steps_per_epoch <= COMPILED_MAX_STEPS
        and steps_per_epoch <= COMPILED_MAX_EPOCH_STEPS
        and data_bytes(x) + data_bytes(y) <= COMPILED_MAX_DATA_BYTES
    )


def padded(data: Any, size: int) -> Any:
    """An array (or each of a list) as a JAX array of ``size`` samples, the
    samples first, then zeros (never taken: see :func:`fit_compiled`)."""
    import jax.numpy as jnp
    import numpy as np

    if isinstance(data, list):
        return [padded(a, size) for a in data]
    extra = np.zeros((size - len(data), *data.shape[1:]), dtype=data.dtype)
    return jnp.asarray(np.concatenate([data, extra]) if len(extra) else data)


def fit_compiled(
    model: Any, x: Any, y: Any, *, batch_size: int, epochs: int, shuffle: bool, monitor: Monitor
) -> int:
    """All epochs as Keras's ``fit(x, y, batch_size, epochs, shuffle)`` runs
    them (JAX), several epochs per call of the model's epochs function
    (:func:`worker.steps.make_epochs_function`), without a return to Python
    between steps.

    What ``fit`` does around its steps is done here as it does it: the
    model, its loss and metrics built on a first batch (drawing one
    permutation where ``fit`` draws one), the metrics reset, the train
    state taken from the model, and at the end put back into it and the
    optimizer's values finalized. Each epoch's order is drawn from NumPy's
    global generator as Keras's array adapter draws it.

    The first call runs one epoch (it may compile the program); each next
    runs as many as :data:`COMPILED_CALL_SECONDS` hold at the pace of the
    last, at most eight times as many. After each call its epochs are
    recorded in ``monitor``, then it checks in once: a cancel or the time
    limit stops the fit there, the history ending with the model's state.
    A loss that is not finite stops it at that epoch. Where an epoch after
    the first call takes longer than :data:`COMPILED_SLOW_EPOCH_SECONDS`,
    it stops there too, the model's state put back: returns the epochs
    run, and :func:`fit_fused` runs the rest in Keras's loop.
    """
    import jax
    import numpy as np

    run = kept_steps.epochs_function(model)
    n = samples(x)
    size = 1 << (n - 1).bit_length()  # a program per power of two, not per count
    full_batches, short = divmod(n, batch_size)
    capacity = max(1, min(COMPILED_MAX_EPOCHS, COMPILED_MAX_INDICES // size))
    capacity = 1 << (capacity.bit_length() - 1)
    first = slice(0, batch_size)
    if builds_on_a_batch(model) and shuffle:
        np.random.permutation(n)  # fit's symbolic build reads a first, shuffled batch
    model._symbolic_build(data_batch=(batch(x, first), batch(y, first)))
    model.reset_metrics()
    state = model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
        purge_model_variables=True,
    )
    initial_metrics = [np.array(v) for v in state[3]]
    x_all, y_all = padded(x, size), padded(y, size)
    done, count, calls, slow = 0, 1, 0, False
    while done < epochs and not monitor.stop and not slow:
        count = min(count, epochs - done, capacity)
        orders = np.zeros((capacity, size), dtype=np.int32)
        for row in orders[:count]:
            row[:n] = np.random.permutation(n) if shuffle else np.arange(n)
        started = time.perf_counter()
        logs, state = run(state, initial_metrics, x_all, y_all, orders, count, full_batches,
                          batch_size=batch_size, short=short)  # fmt: skip
        logs = jax.device_get(logs)
        seconds = time.perf_counter() - started
        calls += 1
        slow = calls > 1 and seconds / count > COMPILED_SLOW_EPOCH_SECONDS
        done += count
        for e in range(count):
            monitor.record_epoch({name: values[e] for name, values in logs.items()})
            if monitor.stop:
                break
        if not monitor.stop:
            monitor.epochs_checked()
        count = max(1, min(8 * count, int(COMPILED_CALL_SECONDS * count / max(seconds, 1e-9))))
    model._jax_state = dict(
        zip(("trainable_variables", "non_trainable_variables", "optimizer_variables",
             "metrics_variables"), state, strict=True)
    )  # fmt: skip
    model._jax_state_synced = False
    model.jax_state_sync()
    model._jax_state = None
    if done == epochs or monitor.stop:  # else Keras's fit runs the rest, and ends it so
        model.optimizer.finalize_variable_values(model.trainable_weights)
    return done


def early_stopping(options: Mapping[str, Any]) -> Any:
    """Keras's own ``EarlyStopping`` callback with a request's validated
    ``fit.early_stopping`` arguments (silent: the job reports instead)."""
    import keras

    return keras.callbacks.EarlyStopping(**options, verbose=0)


def fit_per_epoch(
    model: Any,
    x: Any,
    y: Any,
    validation: tuple[Any, Any] | None,
    *,
    batch_size: int,
    epochs: int,
    shuffle: bool,
    monitor: Monitor,
    callbacks: Sequence[Any] = (),
) -> None:
    """Keras's own ``fit``, epoch by epoch, validating at each epoch's end
    when there is ``validation`` data; ``callbacks`` run after the monitor's
    (an ``EarlyStopping`` then sees the epoch the monitor has recorded)."""
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=shuffle,
        validation_data=validation,
        callbacks=[monitor_callback(monitor, fused=False), *callbacks],
        verbose=0,
    )
