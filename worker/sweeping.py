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

import gc
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
from seqlab.cost import prediction_bytes_bound

from . import steps as kept_steps
from . import training
from .backend import configure_backend
from .builder import build_layer
from .builder import build_model
from .builder import is_graph
from .fitting import COMPILED_CALL_SECONDS
from .fitting import COMPILED_MAX_EPOCHS
from .fitting import batch
from .fitting import builds_on_a_batch
from .fitting import compiled_fits
from .fitting import padded
from .graph_arrays import job_arrays
from .graph_arrays import samples
from .graph_arrays import take
from .group_files import StateFiles
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
    """The trials' initial train states, the model that stands for them
    all, and what their fit needs (:func:`build_group`)."""

    #: The first trial's model, compiled; every trial's state fits it.
    model: Any
    summary: str
    #: Its train state's variables, by part (trainable, non-trainable,
    #: optimizer, metrics): what each state's values are the values of.
    variables: list[list[Any]]
    #: Each trial's initial train state (values, in the variables' order).
    states: list[Any]
    #: Each trial's learning rate (the optimizer's, where a trial sets none).
    learning_rates: list[float]
    x: Any
    y: Any
    validation: tuple[Any, Any] | None
    builds_first: bool
    build_seconds: float


def build_group(requests: Sequence[Mapping[str, Any]], expected: Mapping[str, Any]) -> Group | None:
    """Each trial's compiled model, its train state and the shared data;
    None where the group cannot run as one compiled program (past the
    compiled fit's bounds). Holds ``training.keras_lock`` (the caller's).

    The cyclic garbage collector is paused meanwhile: building a model
    makes some tens of thousands of objects, and its collections would
    scan the group's models built so far again and again (a 128-trial
    group built twice as slowly per trial as a 32-trial one).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build_group(requests, expected)
    finally:
        if collecting:
            gc.enable()


def _build_group(
    requests: Sequence[Mapping[str, Any]], expected: Mapping[str, Any]
) -> Group | None:
    import keras
    import numpy as np

    started = time.perf_counter()
    first = requests[0]
    fit_args = first["fit"]
    batch_size, epochs = int(fit_args["batch_size"]), int(fit_args["epochs"])
    keras.utils.set_random_seed(int(first.get("seed", 0)))
    # As build_model's fresh session, without its garbage collection: it
    # would scan the group's models built so far, every time.
    keras.backend.clear_session(free_memory=False)
    model, summary = training.build_checked(first["model"], expected, fresh_session=False)
    # Not attach()-ed to the kept steps: the group traces its own program,
    # and a model that may never train must not lend its steps to others.
    training.compile_model(model, first["compile"])
    x, y, validation = training.fit_data(first, *job_arrays(first, model))
    if not compiled_fits(model, x, y, epochs, math.ceil(samples(x) / batch_size)):
        return None
    if model.optimizer.use_ema:  # its weights are finalized per model: one by one
        return None
    # Whether fit would draw a permutation for this build (epoch_orders).
    builds_first = builds_on_a_batch(model)
    model._symbolic_build(
        data_batch=(batch(x, slice(0, batch_size)), batch(y, slice(0, batch_size)))
    )
    model.reset_metrics()
    variables = [
        list(model.trainable_variables),
        list(model.non_trainable_variables),
        list(model.optimizer.variables),
        list(model.metrics_variables),
    ]
    template = model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
        purge_model_variables=True,
    )
    rate_slot = next(i for i, v in enumerate(variables[2]) if v is model.optimizer._learning_rate)
    default_rate = float(keras.optimizers.get(first["compile"]["optimizer"]).learning_rate)
    states, rates = [], []
    for request in requests:
        rate = request["compile"].get("learning_rate")
        rate = default_rate if rate is None else float(rate)
        rates.append(rate)
        if not states:
            states.append(template)
            continue
        # Another trial: its weights (and dropout seeds) are those its lone
        # job's model starts from: built as that job builds it, after its
        # seed. The optimizer's and metrics' start is every trial's, but for
        # the learning rate: the first trial's, with its own rate.
        keras.utils.set_random_seed(int(request.get("seed", 0)))
        keras.backend.clear_session(free_memory=False)
        weights, others = initial_values(request["model"])
        if [w.shape for w in weights] != [w.shape for w in template[0]] or [
            w.shape for w in others
        ] != [w.shape for w in template[1]]:
            return None  # not the first trial's structure after all
        optimizer = list(template[2])
        optimizer[rate_slot] = np.asarray(rate, dtype=variables[2][rate_slot].dtype)
        states.append((weights, others, optimizer, list(template[3])))
    return Group(
        model, summary, variables, states, rates, x, y, validation, builds_first,
        time.perf_counter() - started,
    )  # fmt: skip


def initial_values(spec: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """The initial values of the trainable and the non-trainable variables
    of ``spec``'s model, built after the caller's seed as the lone job
    builds it.

    A Sequential spec's layers are made in the builder's order (their
    initializers and seed generators draw their seeds as they are made)
    and each built on its input's shape: the variables the model's build
    would make, in its order, without tracing the model's call (most of a
    build's time); a graph spec's model is built whole.
    """
    if is_graph(spec):
        model = build_model(spec, fresh_session=False)
        layers = [model]
    else:
        import keras

        # As build_model makes them: the input first (it draws no seed).
        shape: Any = (spec.get("batch_size"), *spec["input_shape"])
        keras.Input(batch_shape=shape, dtype=spec.get("dtype") or "float32")
        layers = [build_layer(layer) for layer in spec["layers"]]
        for layer in layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
    trainable = [v.value for layer in layers for v in layer.trainable_variables]
    others = [v.value for layer in layers for v in layer.non_trainable_variables]
    return trainable, others


def epoch_orders(seed: int, n: int, epochs: int, shuffle: bool, builds_first: bool) -> Any:
    """A trial's sample order per epoch, ``[epochs, n]`` (``int32``), drawn
    as its lone job draws them from NumPy's global generator."""
    import numpy as np

    if not shuffle or n == 1:  # a permutation of one sample draws nothing
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
    each trial's predictions and file, and its outcome handed over."""
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
    function = group_function(group.model, key, group.validation is not None)
    orders = [
        epoch_orders(int(r.get("seed", 0)), n, epochs, shuffle, group.builds_first)
        for r in requests
    ]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *group.states)
    initial_metrics = jax.tree.map(jnp.copy, stacked[3])  # the state is donated
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
    finish(group, requests, monitors, stacked, stop[0] if stop else None, on_trial,
           build_seconds=group.build_seconds, train_seconds=trained - started)  # fmt: skip


def finish(
    group: Group,
    requests: Sequence[Mapping[str, Any]],
    monitors: Sequence[Monitor],
    stacked: Any,
    stopped_by: str | None,
    on_trial: OnTrial,
    *,
    build_seconds: float,
    train_seconds: float,
) -> None:
    """Each trial's predictions on the training inputs (one vectorized
    pass), its ``.keras`` file (:class:`~worker.group_files.StateFiles`)
    and result document, handed to ``on_trial`` in turn."""
    import jax

    model = group.model
    states = jax.device_get(stacked)
    # The model holds the first trial's final state (its variables were
    # purged for the fit): its config is serialized with every file.
    model._jax_state = dict(zip(STATE_NAMES, (list(p) for p in jax.tree.map(
        lambda leaf: leaf[0], stacked)), strict=True))  # fmt: skip
    model._jax_state_synced = False
    model.jax_state_sync()
    model._jax_state = None
    finished = time.perf_counter()
    predictions = predict_trials(group, requests[0], stacked)
    files = StateFiles(model, group.variables)
    rate = model.optimizer._learning_rate
    built = training.Built(model=model, summary=group.summary, backend="jax")
    share = time.perf_counter() - finished
    for index, (request, monitor) in enumerate(zip(requests, monitors, strict=True)):
        own_started = time.perf_counter()
        if monitor.stopped_by not in (None, "cancelled", "time_limit"):
            on_trial(index, TrialOutcome("failed", message=monitor.stopped_by))
            continue
        own = tuple([leaf[index] for leaf in part] for part in states)
        rate.assign(group.learning_rates[index])
        model_file = files.write(own)
        result = training.result_document(request, built, monitor, None, predictions[index])
        if stopped_by:
            result["stopped"]["reason"] = stopped_by
        result["timings"] = {
            # The group's build, fit and predictions, shared by its trials:
            # each one's share, then its own file and result.
            "build_seconds": round(build_seconds / len(requests), 4),
            "train_seconds": round(train_seconds / len(requests), 4),
            "predict_and_save_seconds": round(
                share / len(requests) + time.perf_counter() - own_started, 4
            ),
        }
        result["trained_with"] = {"trials": len(requests), "vectorized": True}
        on_trial(index, TrialOutcome(stopped_by or "succeeded", result, model_file))


def predict_trials(
    group: Group, request: Mapping[str, Any], stacked: Any
) -> list[training.TrainingPredictions]:
    """Every trial's predictions on the training inputs, as
    ``training.predict_training_inputs`` makes a lone job's (the same
    batches, the same bound on their size), computed for all trials at
    once: Keras's ``predict_step`` ``vmap``-ped over their states."""
    import jax
    import numpy as np

    model, trials = group.model, len(group.states)
    limit = settings.max_prediction_bytes()
    if not request["fit"].get("store_predictions", True):
        return [training.predict_training_inputs(model, request, limit)] * trials
    x, _ = job_arrays(request, model)
    size = training.prediction_batch_size(request)

    options = {k: v for k, v in request["compile"].items() if k != "learning_rate"}
    key = f"{kept_steps.structure_key(request['model'], options)}|predict"
    step = _programs.get(key)
    if step is None:

        def one(trainable: Any, non_trainable: Any, batch_x: Any) -> Any:
            return model.predict_step((trainable, non_trainable), (batch_x,))[0]

        step = _programs[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
        while len(_programs) > MAX_PROGRAMS:
            _programs.popitem(last=False)
    first = jax.device_get(step(stacked[0], stacked[1], take(x, slice(0, size))))
    count = samples(x)
    per_sample = sum(int(np.prod(np.shape(a)[2:])) for a in jax.tree.leaves(first))
    if prediction_bytes_bound(count, per_sample) > limit:
        # Too large for every trial alike: the lone job's answer says why.
        return [training.predict_training_inputs(model, request, limit)] * trials
    batches = [first] + [
        jax.device_get(step(stacked[0], stacked[1], take(x, slice(i, i + size))))
        for i in range(size, count, size)
    ]
    out = jax.tree.map(lambda *parts: np.concatenate(parts, axis=1), *batches)
    return [
        training.TrainingPredictions(
            values=training.as_lists(model, jax.tree.map(lambda a, i=i: a[i], out))
        )
        for i in range(trials)
    ]
