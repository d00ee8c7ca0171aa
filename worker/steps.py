"""Keras's compiled steps, reused by the next model of the same structure (JAX).

Under JAX, Keras's train, test and predict steps are pure functions of the
model's state: ``model.make_train_function()`` wraps ``jax.jit`` around
``model.train_step(state, data)``, and every variable (weights, optimizer
slots and learning rate, metric totals, seed generators) comes in through
``state`` and goes out through its result; the model object lends only its
structure, read once, while JAX traces the step. Two models built from the
same spec and compiled with the same options trace to the same program. A
fresh model's steps are traced again on their first call (some tenths of a
second for the seed's LSTM, longer than the rest of its job), so a process
keeps the step functions of the models it trained, by spec and compile
options, and hands them to the next model of the same key: its steps are
already traced and compiled, for every batch shape it met.

The step computes exactly what the new model's own would (the same traced
program, fed the new model's state); tests/test_steps.py holds a reused
step's history to Keras's plain ``fit`` of a fresh model. Under TensorFlow a
step reads its model's variables directly, so nothing is reused there.

Beside Keras's three steps, an entry keeps the model's *epochs function*
(:func:`make_epochs_function`): whole epochs of Keras's own train step in
one compiled program, which :func:`worker.fitting.fit_compiled` runs for a
short job instead of one step call per batch.

Each entry keeps its first model alive (the traced functions hold it): the
cache is bounded in entries (:data:`MAX_ENTRIES`, least recently used
first out) and takes only models of at most :data:`MAX_PARAMS` parameters.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

#: Models whose steps a process keeps, least recently used dropped first.
MAX_ENTRIES = 8
#: Only models of at most this many parameters are kept (their weights and
#: optimizer slots stay alive with their steps: some 16 MB each at most).
MAX_PARAMS = 1_000_000

#: The step functions Keras's JAX trainer keeps on a model.
FUNCTIONS = ("train_function", "test_function", "predict_function")
#: Where a model keeps its epochs function (:func:`epochs_function`).
EPOCHS_FUNCTION = "_seqlab_epochs_function"

_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def structure_key(spec: Mapping[str, Any], compile_options: Mapping[str, Any]) -> str:
    """What determines a model's traced steps: its spec and compile options
    (an option left out, null or empty compiles as it would absent)."""
    options = {k: v for k, v in compile_options.items() if v is not None and v != []}
    return json.dumps([spec, options], sort_keys=True, separators=(",", ":"))


def attach(model: Any, key: str) -> bool:
    """Give a freshly compiled ``model`` the step functions of the last model
    of ``key`` (True), or make its own and keep them for the next (False).

    Call after ``model.compile`` and before the fit (which would make
    them); nothing under another backend than JAX, or for a model over
    :data:`MAX_PARAMS`, or one that does not compile its steps with XLA.
    """
    import keras

    if keras.backend.backend() != "jax" or model.run_eagerly or not model.jit_compile:
        return False
    with _lock:
        functions = _cache.get(key)
        if functions is not None:
            _cache.move_to_end(key)
    if functions is not None:
        for name, function in functions.items():
            setattr(model, name, function)
        return True
    if model.count_params() > MAX_PARAMS:
        return False
    model.make_train_function()
    model.make_test_function()
    model.make_predict_function()
    epochs_function(model)
    with _lock:
        _cache[key] = {name: getattr(model, name) for name in (*FUNCTIONS, EPOCHS_FUNCTION)}
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)
    return False


def epochs_function(model: Any) -> Any:
    """The model's epochs function: the one its key's entry keeps
    (:func:`attach`), else one made now for this model (JAX)."""
    function = getattr(model, EPOCHS_FUNCTION, None)
    if function is None:
        function = make_epochs_function(model)
        setattr(model, EPOCHS_FUNCTION, function)
    return function


def make_epochs_function(model: Any) -> Any:
    """Whole epochs of ``model``'s train step as one jitted function (JAX)::

        logs, state = function(state, initial_metrics, x, y, orders, count,
                               full_batches, batch_size=B, short=S)

    runs ``count`` epochs from ``state`` (Keras's JAX train state, donated):
    epoch ``e`` resets the metric variables to ``initial_metrics`` (as
    ``fit`` resets them at an epoch's start), then steps through
    ``full_batches`` batches of ``B`` samples and, where ``S`` > 0, one
    short batch of ``S``, the samples in the order of ``orders[e]`` (a
    permutation, or the identity: the batches ``fit`` forms, taken from
    ``x`` and ``y``, which may hold padding past the samples). ``logs``:
    each value Keras's step logs, per epoch (``[K, ...]`` for ``orders``
    of ``K`` rows), the epoch's last step's: what ``fit`` hands its
    callbacks at the epoch's end.

    Every step is Keras's own ``train_step`` of the same state and batch,
    one after the other: the values are those of ``fit``'s step calls, with
    no return to Python between them. ``count`` and ``full_batches`` are
    arguments, not constants: one program runs any number of epochs.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    step = jax.jit(model.train_step)

    def take(data: Any, index: Any) -> Any:
        # A list of arrays (a graph model's) as a tuple, as worker.fitting.batch gives it.
        if isinstance(data, list | tuple):
            return tuple(a[index] for a in data)
        return data[index]

    def run(state: Any, initial_metrics: Any, x: Any, y: Any, orders: Any, count: Any,
            full_batches: Any, batch_size: int, short: int) -> Any:  # fmt: skip
        def train(state: Any, index: Any) -> tuple[Any, Any]:
            logs, state = step(state, (take(x, index), take(y, index)))
            return tuple(list(part) for part in state), logs

        state = tuple(list(part) for part in state)
        shapes = jax.eval_shape(train, state, jnp.zeros((short or batch_size,), jnp.int32))[1]
        no_logs = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        epochs = orders.shape[0]
        buffers = jax.tree.map(lambda s: jnp.zeros((epochs, *s.shape), s.dtype), shapes)

        def epoch(e: Any, carry: Any) -> Any:
            state, buffers = carry
            state = (*state[:3], list(initial_metrics))
            order = orders[e]

            def full(b: Any, carry: Any) -> Any:
                index = lax.dynamic_slice(order, (b * batch_size,), (batch_size,))
                return train(carry[0], index)

            logs = no_logs
            if orders.shape[1] >= batch_size:  # else no batch is full
                state, logs = lax.fori_loop(0, full_batches, full, (state, logs))
            if short:
                index = lax.dynamic_slice(order, (full_batches * batch_size,), (short,))
                state, logs = train(state, index)
            buffers = jax.tree.map(lambda buf, value: buf.at[e].set(value), buffers, logs)
            return state, buffers

        state, buffers = lax.fori_loop(0, count, epoch, (state, buffers))
        return buffers, state

    return jax.jit(run, donate_argnums=0, static_argnames=("batch_size", "short"))


def clear() -> None:
    """Forget every kept step (tests)."""
    with _lock:
        _cache.clear()
