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

With validation data, :func:`fit_per_epoch` is Keras's own ``fit``, early
stopping or not: the validation pass runs at Keras's epoch ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from .graph_arrays import samples
from .graph_arrays import take
from .monitor import Monitor


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
