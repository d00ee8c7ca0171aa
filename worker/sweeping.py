"""Train a sweep's trials that share one structure together.

Trials of one group differ only in ``seed`` and ``compile.learning_rate``
(``seqlab.sweeps.VECTOR_PATHS``): their models have the same shapes and
their train steps the same program, so under JAX one program trains them
all (:func:`train_vectorized`):

* each trial's model is built as its lone job builds it (its seed first:
  the same initial weights), compiled with its learning rate, and its
  train state taken from it as the compiled fit takes it
  (:func:`worker.fitting.fit_compiled`); the states are stacked on a
  leading axis. The learning rate is one of the optimizer's variables and
  the dropout seeds are non-trainable variables: both travel per trial;
* each trial's epochs are shuffled as its lone job's are: NumPy's global
  generator seeded as ``keras.utils.set_random_seed(seed)`` seeds it, one
  permutation for the build on a first batch where ``fit`` draws one, then
  one per epoch;
* :func:`make_group_function`: Keras's own ``train_step`` over every
  batch of every epoch, ``jax.vmap``-ped over the trials, the data shared,
  the metrics reset at each epoch's start, and with validation data
  Keras's own ``test_step`` over the validation batches at each epoch's end
  (the metrics reset first, as ``evaluate`` does), logged as ``val_*``;
  several epochs per call, a check (cancel, time limit) between calls;
* each trial's state goes back into its model, which is predicted and
  saved as a lone job's is.

Each trial's history is the one its lone job logs (tests/test_sweeping.py
against ``training.train``, tests/test_sweep_train.py through the API).
Otherwise (TensorFlow, early stopping, a fit past the compiled fit's
bounds) the trials run one by one in this process, each exactly a lone job
(:func:`train_one_by_one`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from jobs import settings
from seqlab.cost import COMPILED_MAX_INDICES

from . import steps as kept_steps
from . import training
from .backend import configure_backend
from .fitting import COMPILED_CALL_SECONDS
from .fitting import COMPILED_MAX_EPOCHS
from .fitting import batch
from .fitting import builds_on_a_batch
from .fitting import compiled_fits
from .fitting import padded
from .graph_arrays import job_arrays
from .graph_arrays import samples
from .monitor import Monitor

#: Group programs a process keeps (by structure and batch layout), least
#: recently used first out: each holds its first model's traced steps.
MAX_PROGRAMS = 4

_programs: OrderedDict[str, Any] = OrderedDict()

#: The names of Keras's JAX train state, in its order.
STATE_NAMES = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)


@dataclass
class TrialOutcome:
    """How one trial ended: ``status`` ``succeeded``, ``cancelled``,
    ``time_limit`` (its history and model so far kept) or ``failed``
    (``message`` says why; no model)."""

    status: str
    result: dict[str, Any] | None = None
    model_file: bytes | None = None
    message: str | None = None


OnTrial = Callable[[int, TrialOutcome], None]


def _ignore(*_: Any) -> None:
    return None


def train_group(
    requests: Sequence[Mapping[str, Any]],
    *,
    expected: Mapping[str, Any],
    on_trial: OnTrial,
    should_stop: Callable[[], bool],
    deadline: float | None = None,
    on_progress: Callable[[int, dict[str, Any]], None] = _ignore,
    on_history: Callable[[int, dict[str, Any]], None] = _ignore,
) -> str:
    """Train the trials ``requests`` (validated worker-form train requests,
    identical but for their seed and learning rate) and hand each one's
    outcome to ``on_trial(index, outcome)`` as it ends.

    ``expected``: the engine's counts of their (one) model; ``should_stop``:
    whether the group was cancelled (asked between compiled calls, or
    between trials); ``deadline``: ``time.monotonic()`` past which the
    group stops (its trials end ``time_limit``); ``on_progress`` and
    ``on_history``: a trial's progress and history so far, as a lone job
    reports them. Returns which way they trained: ``vectorized`` or
    ``one_by_one``.
    """
    backend = configure_backend()
    if backend == "jax" and not requests[0]["fit"].get("early_stopping"):
        with training.keras_lock:
            group = build_group(requests, expected)
            if group is not None:
                train_vectorized(
                    group, requests, on_trial=on_trial, should_stop=should_stop,
                    deadline=deadline, on_progress=on_progress, on_history=on_history,
                )  # fmt: skip
                return "vectorized"
    train_one_by_one(
        requests, expected=expected, on_trial=on_trial, should_stop=should_stop,
        deadline=deadline, on_progress=on_progress, on_history=on_history,
    )  # fmt: skip
    return "one_by_one"


def train_one_by_one(
    requests: Sequence[Mapping[str, Any]],
    *,
    expected: Mapping[str, Any],
    on_trial: OnTrial,
    should_stop: Callable[[], bool],
    deadline: float | None,
    on_progress: Callable[[int, dict[str, Any]], None],
    on_history: Callable[[int, dict[str, Any]], None],
) -> None:
    """Each trial in turn as its lone job (``training.train``); once the
    group is stopped, the trials not started end without a result."""
    for index, request in enumerate(requests):
        if should_stop():
            on_trial(index, TrialOutcome("cancelled"))
            continue
        if deadline is not None and time.monotonic() >= deadline:
            on_trial(index, TrialOutcome("time_limit"))
            continue
        try:
            result, model_file = training.train(
                request,
                expected=expected,
                on_progress=partial(on_progress, index),
                should_stop=should_stop,
                deadline=deadline,
                on_history=partial(on_history, index),
            )
        except training.Cancelled as stop:
            on_trial(index, TrialOutcome("cancelled", *stop.args))
        except training.TimeLimitReached as stop:
            on_trial(index, TrialOutcome("time_limit", *stop.args))
        except training.TrainingFailed as error:
            on_trial(index, TrialOutcome("failed", message=str(error)))
        else:
            on_trial(index, TrialOutcome("succeeded", result, model_file))


@dataclass
class Group:
    """The trials' built models and what their fit needs (:func:`build_group`)."""

    built: list[training.Built]
    states: list[Any]
    x: Any
    y: Any
    validation: tuple[Any, Any] | None
    builds_first: bool
    build_seconds: float


def build_group(requests: Sequence[Mapping[str, Any]], expected: Mapping[str, Any]) -> Group | None:
    """Each trial's compiled model, its train state and the shared data;
    None where the group cannot run as one compiled program (past the
    compiled fit's bounds). Holds ``training.keras_lock`` (the caller's)."""
    import keras

    started = time.perf_counter()
    first = requests[0]
    fit_args = first["fit"]
    batch_size, epochs = int(fit_args["batch_size"]), int(fit_args["epochs"])
    built, states = [], []
    x = y = validation = None
    builds_first = False
    # What the group's trials share traces one set of steps: the learning
    # rate is a variable's value, not part of the program.
    options = {k: v for k, v in first["compile"].items() if k != "learning_rate"}
    key = kept_steps.structure_key(first["model"], options)
    for request in requests:
        keras.utils.set_random_seed(int(request.get("seed", 0)))
        model, summary = training.build_checked(request["model"], expected)
        training.compile_model(model, request["compile"])
        kept_steps.attach(model, key)
        if x is None:
            arrays = job_arrays(request, model)
            x, y, validation = training.fit_data(request, *arrays)
            steps = math.ceil(samples(x) / batch_size)
            if not compiled_fits(model, x, y, epochs, steps):
                return None
        # Whether fit would draw a permutation for this build (epoch_orders).
        builds_first = builds_on_a_batch(model)
        first_batch = slice(0, batch_size)
        model._symbolic_build(data_batch=(batch(x, first_batch), batch(y, first_batch)))
        model.reset_metrics()
        states.append(
            model._get_jax_state(
                trainable_variables=True,
                non_trainable_variables=True,
                optimizer_variables=True,
                metrics_variables=True,
                purge_model_variables=True,
            )
        )
        built.append(training.Built(model=model, summary=summary, backend="jax"))
    return Group(built, states, x, y, validation, builds_first, time.perf_counter() - started)


def epoch_orders(seed: int, n: int, epochs: int, shuffle: bool, builds_first: bool) -> Any:
    """A trial's sample order per epoch, ``[epochs, n]`` (``int32``), drawn
    as its lone job draws them from NumPy's global generator."""
    import numpy as np

    if not shuffle:
        return np.broadcast_to(np.arange(n, dtype=np.int32), (epochs, n))
    np.random.seed(seed)  # as keras.utils.set_random_seed(seed) seeds it
    if builds_first:
        np.random.permutation(n)
    return np.stack([np.random.permutation(n) for _ in range(epochs)]).astype(np.int32)


def make_group_function(model: Any, validated: bool) -> Any:
    """Whole epochs of every trial's training as one jitted function::

        (logs, val_logs), state = function(state, initial_metrics, x, y,
            orders, count, x_val, y_val, batch_size=B, full=F, short=S,
            val_full=VF, val_short=VS)

    ``state`` and ``orders`` (``[trials, epochs, n]``) carry a leading trial
    axis; ``x``, ``y`` and the validation arrays are shared. Runs epochs
    ``0..count-1`` of ``orders`` for every trial from its state, as
    :func:`worker.steps.make_epochs_function` runs one model's, then (with
    validation) Keras's ``test_step`` over the validation batches, in
    order, from reset metrics; the logs of each epoch's last step (and last
    validation step), ``[trials, epochs, ...]``.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    def take(data: Any, index: Any) -> Any:
        if isinstance(data, list | tuple):
            return tuple(a[index] for a in data)
        return data[index]

    def one(state, initial_metrics, x, y, orders, count, x_val, y_val, *,
            batch_size: int, full: int, short: int, val_full: int, val_short: int):  # fmt: skip
        def train(state: Any, index: Any) -> tuple[Any, Any]:
            logs, state = model.train_step(state, (take(x, index), take(y, index)))
            return tuple(list(part) for part in state), logs

        def test(state: Any, index: Any) -> tuple[Any, Any]:
            logs, state = model.test_step(state, (take(x_val, index), take(y_val, index)))
            return tuple(list(part) for part in state), logs

        state = tuple(list(part) for part in state)
        index_shape = jnp.zeros((short or batch_size,), jnp.int32)
        logs_shape = jax.eval_shape(train, state, index_shape)[1]
        epochs = orders.shape[0]

        def zeros(shapes: Any, lead: tuple[int, ...] = ()) -> Any:
            return jax.tree.map(lambda s: jnp.zeros((*lead, *s.shape), s.dtype), shapes)

        buffers = zeros(logs_shape, (epochs,))
        val_shape = None
        if validated:
            test_state = (state[0], state[1], list(initial_metrics))
            val_index = jnp.zeros((val_short or batch_size,), jnp.int32)
            val_shape = jax.eval_shape(test, test_state, val_index)[1]
        val_buffers = zeros(val_shape, (epochs,)) if validated else {}

        def epoch(e: Any, carry: Any) -> Any:
            state, buffers, val_buffers = carry
            state = (*state[:3], list(initial_metrics))
            order = orders[e]

            def full_batch(b: Any, carry: Any) -> Any:
                index = lax.dynamic_slice(order, (b * batch_size,), (batch_size,))
                return train(carry[0], index)

            logs = zeros(logs_shape)
            if full:
                state, logs = lax.fori_loop(0, full, full_batch, (state, logs))
            if short:
                state, logs = train(state, order[full * batch_size : full * batch_size + short])
            buffers = jax.tree.map(lambda buf, value: buf.at[e].set(value), buffers, logs)
            if validated:
                tested = (state[0], state[1], list(initial_metrics))

                def val_batch(b: Any, carry: Any) -> Any:
                    index = b * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
                    return test(carry[0], index)

                val_logs = zeros(val_shape)
                if val_full:
                    tested, val_logs = lax.fori_loop(0, val_full, val_batch, (tested, val_logs))
                if val_short:
                    start = val_full * batch_size
                    tested, val_logs = test(tested, jnp.arange(start, start + val_short))
                # evaluate() puts its state back: the non-trainable variables.
                state = (state[0], tested[1], state[2], tested[2])
                val_buffers = jax.tree.map(
                    lambda buf, value: buf.at[e].set(value), val_buffers, val_logs
                )
            return state, buffers, val_buffers

        state, buffers, val_buffers = lax.fori_loop(0, count, epoch, (state, buffers, val_buffers))
        return (buffers, val_buffers), state

    def run(state, initial_metrics, x, y, orders, count, x_val, y_val, **static):  # fmt: skip
        mapped = jax.vmap(partial(one, **static), in_axes=(0, 0, None, None, 0, None, None, None))
        return mapped(state, initial_metrics, x, y, orders, count, x_val, y_val)

    return jax.jit(
        run,
        donate_argnums=0,
        static_argnames=("batch_size", "full", "short", "val_full", "val_short"),
    )


def group_function(model: Any, key: str, validated: bool) -> Any:
    """The kept group function of ``key`` (a structure), else a new one."""
    key = f"{key}|{validated}"
    function = _programs.get(key)
    if function is None:
        function = make_group_function(model, validated)
        _programs[key] = function
        while len(_programs) > MAX_PROGRAMS:
            _programs.popitem(last=False)
    _programs.move_to_end(key)
    return function


def train_vectorized(
    group: Group,
    requests: Sequence[Mapping[str, Any]],
    *,
    on_trial: OnTrial,
    should_stop: Callable[[], bool],
    deadline: float | None,
    on_progress: Callable[[int, dict[str, Any]], None],
    on_history: Callable[[int, dict[str, Any]], None],
) -> None:
    """The group's epochs as one program (see the module's docstring), then
    each trial predicted, saved and handed over."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    first = requests[0]
    fit_args = first["fit"]
    batch_size, epochs = int(fit_args["batch_size"]), int(fit_args["epochs"])
    shuffle = bool(fit_args["shuffle"])
    n = samples(group.x)
    full, short = divmod(n, batch_size)
    size = 1 << (n - 1).bit_length()
    capacity = max(1, min(COMPILED_MAX_EPOCHS, COMPILED_MAX_INDICES // size))
    capacity = 1 << (capacity.bit_length() - 1)
    options = {k: v for k, v in first["compile"].items() if k != "learning_rate"}
    key = kept_steps.structure_key(first["model"], options)
    function = group_function(group.built[0].model, key, group.validation is not None)
    orders = [
        epoch_orders(int(r.get("seed", 0)), n, epochs, shuffle, group.builds_first)
        for r in requests
    ]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *group.states)
    initial = [[np.array(v) for v in state[3]] for state in group.states]
    initial_metrics = jax.tree.map(lambda *leaves: jnp.stack(leaves), *initial)
    x_all, y_all = padded(group.x, size), padded(group.y, size)
    x_val, y_val = group.validation if group.validation is not None else (None, None)
    n_val = samples(x_val) if x_val is not None else 0
    static = {
        "batch_size": batch_size, "full": full, "short": short,
        "val_full": n_val // batch_size, "val_short": n_val % batch_size,
    }  # fmt: skip
    stop: list[str] = []
    monitors = [
        Monitor(
            epochs=epochs,
            steps_per_epoch=math.ceil(n / batch_size),
            on_progress=partial(on_progress, index),
            should_stop=lambda: bool(stop) and stop[0] == "cancelled",
            deadline=None,
            on_history=partial(on_history, index),
        )
        for index in range(len(requests))
    ]
    started = time.perf_counter()
    done, count = 0, 1
    while done < epochs and not stop:
        count = min(count, epochs - done, capacity)
        block = np.zeros((len(requests), capacity, size), dtype=np.int32)
        for trial, order in enumerate(orders):
            block[trial, :count, :n] = order[done : done + count]
        called = time.perf_counter()
        (logs, val_logs), stacked = function(
            stacked, initial_metrics, x_all, y_all, block, count, x_val, y_val, **static
        )
        logs, val_logs = jax.device_get((logs, val_logs))
        seconds = time.perf_counter() - called
        for trial, monitor in enumerate(monitors):
            for e in range(count):
                if monitor.stop:
                    break  # its loss was not finite: it ended there
                values = {name: v[trial, e] for name, v in logs.items()}
                values.update({f"val_{name}": v[trial, e] for name, v in val_logs.items()})
                monitor.record_epoch(values)
        done += count
        if should_stop():
            stop.append("cancelled")
        elif deadline is not None and time.monotonic() >= deadline and done < epochs:
            stop.append("time_limit")
        for monitor in monitors:
            if not monitor.stop:
                monitor.epochs_checked()
        count = max(1, min(8 * count, int(COMPILED_CALL_SECONDS * count / max(seconds, 1e-9))))
    trained = time.perf_counter()
    states = jax.device_get(stacked)
    for index, (built, request, monitor) in enumerate(
        zip(group.built, requests, monitors, strict=True)
    ):
        kept = time.perf_counter()
        model = built.model
        own = tuple([leaf[index] for leaf in part] for part in states)
        model._jax_state = dict(zip(STATE_NAMES, own, strict=True))
        model._jax_state_synced = False
        model.jax_state_sync()
        model._jax_state = None
        model.optimizer.finalize_variable_values(model.trainable_weights)
        if monitor.stopped_by not in (None, "cancelled", "time_limit"):
            on_trial(index, TrialOutcome("failed", message=monitor.stopped_by))
            continue
        predictions = training.predict_training_inputs(
            model, request, settings.max_prediction_bytes()
        )
        model_file = training.save(model)
        result = training.result_document(request, built, monitor, None, predictions)
        if stop:
            result["stopped"]["reason"] = stop[0]
        result["timings"] = {
            # The group's build and fit, shared by its trials: each one's share.
            "build_seconds": round(group.build_seconds / len(requests), 4),
            "train_seconds": round((trained - started) / len(requests), 4),
            "predict_and_save_seconds": round(time.perf_counter() - kept, 4),
        }
        result["trained_with"] = {"trials": len(requests), "vectorized": True}
        status = stop[0] if stop else "succeeded"
        on_trial(index, TrialOutcome(status, result, model_file))
