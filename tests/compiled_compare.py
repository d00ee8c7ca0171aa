"""The worker's compiled fit (worker/fitting.py ``fit_compiled``) beside
Keras's plain ``fit`` of the same fresh model, under JAX; prints one JSON
document for tests/test_compiled_fit.py::

    {"cases": {case: {"path": "compiled" | "keras", "calls": [int],
                      "worker": run, "plain": run}},
     "fits": {check: bool}}

where a run is ``{"history", "weights", "optimizer", "predictions"}``: the
history as the job records it, every weight and optimizer variable after
the fit, and the trained model's outputs on ``x``, as lists of floats; ``calls``: the
epochs each call of the compiled program ran; ``fits``: which fits
``compiled_fits`` runs compiled (:func:`which_fit`).

Run as a script in a fresh process (``python tests/compiled_compare.py``):
Keras binds its backend at import.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["KERAS_BACKEND"] = "jax"


def regression_data(samples: int):
    import numpy as np

    rng = np.random.default_rng(3)
    x = rng.normal(size=(samples, 6, 2)).round(3).tolist()
    y = rng.normal(size=(samples, 3)).round(3).tolist()
    return {"x": x, "y": y}


def embedding_data():
    import numpy as np

    rng = np.random.default_rng(4)
    x = rng.integers(0, 10, size=(9, 5)).tolist()
    y = rng.normal(size=(9, 2)).round(3).tolist()
    return {"x": x, "y": y}


def seed_request(name: str) -> dict:
    """A seed program as the API stores it (fit defaults filled)."""
    from seqlab.examples import example_request

    request = example_request(name)
    request["fit"].update(shuffle=True, validation_split=0.0)
    request["seed"] = 0
    return request


def cases() -> dict:
    from fit_compare import GRAPH_COMPILE
    from fit_compare import GRAPH_SPEC
    from fit_compare import graph_data

    graph_x, graph_y = graph_data()
    out = {name: seed_request(name) for name in ("one_to_one", "many_to_one", "many_to_many")}
    out.update(
        {
            # Batches of 4 + 4 + 2, dropout (seed state), stateful metrics.
            "short_batches": {
                "model": {
                    "input_shape": [6, 2],
                    "layers": [
                        {"type": "LSTM", "units": 5},
                        {"type": "Dropout", "rate": 0.2},
                        {"type": "Dense", "units": 3},
                    ],
                },
                "data": regression_data(10),
                "compile": {
                    "optimizer": "adam",
                    "learning_rate": 0.01,
                    "loss": "mse",
                    "metrics": ["mae", "root_mean_squared_error"],
                },
                "fit": {"epochs": 40, "batch_size": 4, "shuffle": True},
                "seed": 5,
            },
            # Fewer samples than a batch: each epoch is one short batch.
            "one_short_batch": {
                "model": {
                    "input_shape": [6, 2],
                    "layers": [{"type": "GRU", "units": 4}, {"type": "Dense", "units": 3}],
                },
                "data": regression_data(3),
                "compile": {"optimizer": "rmsprop", "loss": "mae", "metrics": ["mse"]},
                "fit": {"epochs": 25, "batch_size": 8, "shuffle": True},
                "seed": 2,
            },
            # Integer inputs, a mask; not shuffled.
            "embedding": {
                "model": {
                    "input_shape": [5],
                    "dtype": "int32",
                    "layers": [
                        {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
                        {"type": "LSTM", "units": 3},
                        {"type": "Dense", "units": 2},
                    ],
                },
                "data": embedding_data(),
                "compile": {"optimizer": "sgd", "loss": "mse"},
                "fit": {"epochs": 30, "batch_size": 3, "shuffle": False},
                "seed": 1,
            },
            # Two inputs, two outputs, losses and metrics by output name.
            "graph": {
                "model": GRAPH_SPEC,
                "data": {
                    "x": [a.tolist() for a in graph_x],
                    "y": [a.tolist() for a in graph_y],
                },
                "compile": GRAPH_COMPILE,
                "fit": {"epochs": 12, "batch_size": 4, "shuffle": True},
                "seed": 3,
            },
        }
    )
    return out


def flat(values) -> list[float]:
    import numpy as np

    return [float(v) for v in np.ravel(np.asarray(values, dtype="float64"))]


def state(model, x) -> dict:
    import keras

    outputs = model.predict_on_batch(x)
    return {
        "weights": [flat(w) for w in model.get_weights()],
        "optimizer": [flat(v) for v in model.optimizer.variables],
        "predictions": [flat(o) for o in keras.tree.flatten(outputs)],
    }


def worker_run(
    request: dict, epochs: int | None = None, stop_after_first: bool = False, slow: bool = False
):
    """The worker's fit of ``request`` (``training.fit``): its path, how
    many compiled calls ran, and the run. ``stop_after_first``: a cancel
    seen at the first check (after the first call); ``slow``: every epoch
    counts as slow (handed over to Keras's loop after the second call)."""
    from fit_compare import plain_program

    from worker import fitting
    from worker import monitor as monitor_module
    from worker import training
    from worker.graph_arrays import job_arrays

    calls: list[int] = []
    paths: list[str] = []
    compiled, kept_run = fitting.fit_compiled, fitting.kept_steps.epochs_function

    def recorded(*args, **kwargs):
        paths.append("compiled")
        return compiled(*args, **kwargs)

    def counted(model):
        run = kept_run(model)

        def call(*args, **kwargs):
            calls.append(args[5])  # the epochs this call runs
            return run(*args, **kwargs)

        return call

    fitting.fit_compiled, fitting.kept_steps.epochs_function = recorded, counted
    interval, slow_epoch = monitor_module.CHECK_INTERVAL, fitting.COMPILED_SLOW_EPOCH_SECONDS
    if stop_after_first:
        monitor_module.CHECK_INTERVAL = 0.0
    if slow:
        fitting.COMPILED_SLOW_EPOCH_SECONDS = 0.0
    try:
        model = plain_program(request["model"], request["compile"], request["seed"])
        monitor = monitor_module.Monitor(
            epochs=epochs or request["fit"]["epochs"],
            steps_per_epoch=training.steps_per_epoch(request),
            on_progress=lambda _: None,
            should_stop=lambda: stop_after_first,
        )
        training.fit(model, request, monitor)
    finally:
        fitting.fit_compiled, fitting.kept_steps.epochs_function = compiled, kept_run
        monitor_module.CHECK_INTERVAL = interval
        fitting.COMPILED_SLOW_EPOCH_SECONDS = slow_epoch
    x, _ = job_arrays(request, model)
    run = {"history": monitor.history.result(), **state(model, x)}
    return ("compiled" if paths else "keras"), calls, run


def plain_run(request: dict, epochs: int | None = None) -> dict:
    """Keras's plain ``fit`` of a fresh model of ``request``."""
    from fit_compare import plain_program

    from worker.graph_arrays import job_arrays

    model = plain_program(request["model"], request["compile"], request["seed"])
    x, y = job_arrays(request, model)
    fit = request["fit"]
    history = model.fit(
        x,
        y,
        batch_size=fit["batch_size"],
        epochs=epochs or fit["epochs"],
        shuffle=fit["shuffle"],
        verbose=0,
    ).history
    return {"history": {k: [float(v) for v in vs] for k, vs in history.items()}, **state(model, x)}


def which_fit() -> dict:
    """``compiled_fits`` of a few jobs' shapes, by name."""
    import numpy as np

    from worker import fitting

    class Model:
        jit_compile, run_eagerly, steps_per_execution = True, False, 1

    class Eager(Model):
        run_eagerly = True

    small = np.zeros((5, 1, 1), dtype="float32")
    big = np.zeros((fitting.COMPILED_MAX_DATA_BYTES // 4 + 1,), dtype="float32")
    longest = fitting.COMPILED_MAX_STEPS
    return {
        "seed": fitting.compiled_fits(Model(), small, small, 1000, 1),
        "graph_at_the_bound": fitting.compiled_fits(
            Model(),
            [small, small],
            small,
            longest // fitting.COMPILED_MAX_EPOCH_STEPS,
            fitting.COMPILED_MAX_EPOCH_STEPS,
        ),
        "past_the_steps": fitting.compiled_fits(Model(), small, small, longest + 1, 1),
        "past_the_epoch_steps": fitting.compiled_fits(
            Model(), small, small, 1, fitting.COMPILED_MAX_EPOCH_STEPS + 1
        ),
        "past_the_bytes": fitting.compiled_fits(Model(), big, small, 1, 1),
        "eager": fitting.compiled_fits(Eager(), small, small, 1, 1),
    }


def main() -> None:
    warnings.simplefilter("ignore")
    out = {}
    for name, request in cases().items():
        path, calls, worker = worker_run(request)
        out[name] = {"path": path, "calls": calls, "worker": worker, "plain": plain_run(request)}
    # A cancel seen after the first call: the history and the model end at
    # the same epoch, that of a plain fit of as many epochs.
    request = cases()["short_batches"]
    path, calls, worker = worker_run(request, stop_after_first=True)
    epochs = len(worker["history"]["loss"])
    out["cancelled"] = {
        "path": path,
        "calls": calls,
        "worker": worker,
        "plain": plain_run(request, epochs=epochs),
    }
    # Slow epochs: two compiled calls of one epoch, then Keras's loop.
    path, calls, worker = worker_run(request, slow=True)
    out["handed_over"] = {"path": path, "calls": calls, "worker": worker,
                          "plain": plain_run(request)}  # fmt: skip
    print(json.dumps({"cases": out, "fits": which_fit()}))


if __name__ == "__main__":
    main()
