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
    with _lock:
        _cache[key] = {name: getattr(model, name) for name in FUNCTIONS}
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)
    return False


def clear() -> None:
    """Forget every kept step (tests)."""
    with _lock:
        _cache.clear()
