"""Run the worker's fit strategies and Keras's plain ``fit`` side by side.

Run as a script in a fresh process (``python tests/fit_compare.py BACKEND``)
because Keras binds its backend at import; prints one JSON document:
``{"unshuffled"|"shuffled": {case: {"fused": history, "plain": history,
"steps": [fused, plain]}}, "early_stopping": {case: {"worker": run, "plain": run}}}``.

``plain_program`` is the model a job trains, made in the caller's process;
tests/test_graph_train.py imports it too.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.jobs.schemas import METRICS  # noqa: E402  (pure: no Keras)

EPOCHS = 4
SAMPLES = 10
BATCH = 4  # 4 + 4 + 2: a short last batch each epoch

#: (loss, metrics, output units, label kind) per case. Every metric of the
#: allowlist appears in a case where its labels make sense.
CASES = {
    "regression": ("mse", [m for m in METRICS if "accuracy" not in m], 3, "dense"),
    "classification": (
        "categorical_crossentropy",
        ["accuracy", "binary_accuracy", "categorical_accuracy", "root_mean_squared_error"],
        3,
        "one_hot",
    ),
    "sparse": ("sparse_categorical_crossentropy", ["sparse_categorical_accuracy"], 3, "sparse"),
}


def data(kind: str, units: int):
    import numpy as np

    rng = np.random.default_rng(7)
    x = rng.normal(size=(SAMPLES, 6, 2)).astype("float32")
    if kind == "dense":
        return x, rng.normal(size=(SAMPLES, units)).astype("float32")
    labels = rng.integers(0, units, size=SAMPLES)
    if kind == "sparse":
        return x, labels.reshape(-1, 1).astype("float32")
    return x, np.eye(units, dtype="float32")[labels]


def plain_program(spec: dict, compile_options: dict, seed: int):
    """The model a job trains, in this process: Keras's random seed set to
    ``seed``, then the worker's own builder and ``compile``
    (worker/builder.py, worker/training.py). Fit it with Keras's plain
    ``fit`` for what the job's training should equal."""
    import keras

    from worker.builder import build_model
    from worker.training import compile_model

    keras.utils.set_random_seed(seed)
    m = build_model(spec)
    compile_model(m, compile_options)
    return m


def model(loss: str, metrics: list[str], units: int, seed: int):
    activation = None if loss == "mse" else "softmax"
    spec = {
        "input_shape": [6, 2],
        "layers": [
            {"type": "LSTM", "units": 5},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Dense", "units": units, "activation": activation},
        ],
    }
    return plain_program(spec, {"optimizer": "adam", "loss": loss, "metrics": metrics}, seed)


def counter():
    import keras

    class Count(keras.callbacks.Callback):
        """Counts optimizer steps into ``steps[-1]``."""

        def __init__(self, steps):
            super().__init__()
            self.steps = steps

        def on_train_batch_end(self, batch, logs=None):
            self.steps[-1] += 1

    return Count


def run(shuffle: bool) -> dict:
    from worker.fitting import fit_fused
    from worker.monitor import Monitor

    Count = counter()  # noqa: N806 (a class)
    out = {}
    for name, (loss, metrics, units, kind) in CASES.items():
        x, y = data(kind, units)
        seed = 3
        fused_model = model(loss, metrics, units, seed)
        steps = []

        monitor = Monitor(
            epochs=EPOCHS,
            steps_per_epoch=-(-SAMPLES // BATCH),
            on_progress=lambda _: None,
            should_stop=lambda: False,
        )
        steps.append(0)
        fit_fused(
            fused_model, x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=shuffle, monitor=monitor
        )
        steps[-1] = monitor.epochs_done * monitor.steps_per_epoch
        plain_model = model(loss, metrics, units, seed)
        steps.append(0)
        plain = plain_model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=EPOCHS,
            shuffle=shuffle,
            verbose=0,
            callbacks=[Count(steps)],
        ).history
        out[name] = {
            "fused": monitor.history.result(),
            "plain": {k: [float(v) for v in vs] for k, vs in plain.items()},
            "steps": steps,
        }
    return out


#: Early stopping cases: (monitor, validation_split, shuffle, EarlyStopping arguments).
#: Without validation data the worker runs them fused, else epoch by epoch.
EARLY_EPOCHS = 40
EARLY_CASES = {
    "loss_restored": (
        "loss",
        0.0,
        True,
        {"patience": 2, "min_delta": 0.02, "restore_best_weights": True},
    ),
    "loss_restored_unshuffled": (
        "loss",
        0.0,
        False,
        {"patience": 2, "min_delta": 0.02, "restore_best_weights": True},
    ),
    "val_loss_restored": (
        "val_loss",
        0.3,
        True,
        {"patience": 1, "restore_best_weights": True},
    ),
    "mae_baseline_warm_up": (
        "mae",
        0.0,
        False,
        {"patience": 3, "mode": "min", "baseline": 0.5, "start_from_epoch": 2},
    ),
    # Patience 0 in the wrong direction: Keras never stops at the first epoch.
    "mae_max_no_patience": ("mae", 0.0, False, {"patience": 0, "mode": "max"}),
    # Never stops: the best epoch's weights are restored after the last epoch.
    "restored_at_the_end": (
        "loss",
        0.0,
        False,
        {"patience": EARLY_EPOCHS, "min_delta": 0.05, "restore_best_weights": True},
    ),
}
#: The cases that run all their epochs.
EARLY_RUN_ALL = {"restored_at_the_end"}


def early_run(history: dict, epochs: int, best_epoch, restored, predictions) -> dict:
    return {
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "epochs": epochs,
        "best_epoch": best_epoch,
        "restored": restored,
        "predictions": [float(v) for v in predictions.ravel()],
    }


def replay(model, options: dict, history: dict) -> dict:
    """Keras's ``EarlyStopping`` of ``options`` told of ``history``'s epochs
    one by one, as ``fit`` would tell it: where it stops and its best epoch."""
    import keras

    callback = keras.callbacks.EarlyStopping(**options)
    callback.set_model(model)
    callback.on_train_begin()
    epochs = len(history["loss"])
    for epoch in range(epochs):
        callback.on_epoch_end(epoch, {k: vs[epoch] for k, vs in history.items()})
        if callback.stopped_epoch:
            epochs = epoch + 1
            break
    model.stop_training = False
    return {
        "epochs": epochs,
        "best_epoch": callback.best_epoch + 1 if callback.best is not None else None,
        "best": None if callback.best is None else float(callback.best),
    }


def run_early_stopping() -> dict:
    """The worker's fit with ``fit.early_stopping`` beside Keras's plain
    ``fit`` with ``keras.callbacks.EarlyStopping`` of the same arguments."""
    import keras
    import numpy as np

    from service.jobs.schemas import EarlyStoppingSchema
    from worker import training
    from worker.monitor import Monitor

    x, y = data("dense", 3)
    out = {}
    paths: list[str] = []

    def recorded(path, function):
        def run(*args, **kwargs):
            paths.append(path)
            return function(*args, **kwargs)

        return run

    fit_fused, fit_per_epoch = training.fit_fused, training.fit_per_epoch
    training.fit_fused = recorded("fused", fit_fused)
    training.fit_per_epoch = recorded("per_epoch", fit_per_epoch)
    for name, (monitor_name, split, shuffle, args) in EARLY_CASES.items():
        options = EarlyStoppingSchema().load({"monitor": monitor_name, **args})
        request = {
            "model": {},
            "data": {"x": x.tolist(), "y": y.tolist()},
            "fit": {
                "epochs": EARLY_EPOCHS,
                "batch_size": BATCH,
                "shuffle": shuffle,
                "validation_split": split,
                "early_stopping": options,
            },
        }
        worker_model = model("mse", ["mae"], 3, 5)
        monitor = Monitor(
            epochs=EARLY_EPOCHS,
            steps_per_epoch=training.steps_per_epoch(request),
            on_progress=lambda _: None,
            should_stop=lambda: False,
        )
        stopper = training.fit(worker_model, request, monitor)
        stopped = training.stopped(monitor, stopper, options)
        worker = early_run(
            monitor.history.result(),
            stopped["epoch"],
            stopped["best_epoch"],
            stopped["restored_best_weights"],
            np.asarray(worker_model.predict_on_batch(x)),
        )
        worker["reason"] = stopped["reason"]
        worker["best"] = stopped["best"]
        worker["path"] = paths.pop()
        worker["replayed"] = replay(worker_model, options, worker["history"])

        plain_model = model("mse", ["mae"], 3, 5)
        callback = keras.callbacks.EarlyStopping(**options)
        history = plain_model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=EARLY_EPOCHS,
            shuffle=shuffle,
            validation_split=split,
            callbacks=[callback],
            verbose=0,
        ).history
        out[name] = {
            "worker": worker,
            "plain": early_run(
                history,
                len(history["loss"]),
                callback.best_epoch + 1,
                callback.best_weights is not None,
                np.asarray(plain_model.predict_on_batch(x)),
            ),
        }
    training.fit_fused, training.fit_per_epoch = fit_fused, fit_per_epoch
    return out


#: A Functional model with two inputs and two outputs: the worker's own
#: ``fit`` (fused: no validation data) on lists of arrays beside Keras's.
GRAPH_SPEC = {
    "inputs": [{"name": "seq", "shape": [6, 2]}, {"name": "extra", "shape": [3]}],
    "layers": [
        {"type": "LSTM", "units": 5, "inputs": "seq"},
        {"type": "Concatenate", "inputs": ["lstm", "extra"]},
        {"type": "Dense", "units": 3, "name": "reg"},
        {
            "type": "Dense",
            "units": 3,
            "activation": "softmax",
            "name": "cls",
            "inputs": "concatenate",
        },
    ],
    "outputs": ["reg", "cls"],
}
GRAPH_COMPILE = {
    "optimizer": "adam",
    "loss": {"cls": "categorical_crossentropy", "reg": "mse"},
    "loss_weights": {"reg": 1.0, "cls": 0.5},
    "metrics": {"reg": ["mae"], "cls": ["accuracy"]},
}


def graph_data():
    import numpy as np

    rng = np.random.default_rng(11)
    seq = rng.normal(size=(SAMPLES, 6, 2)).astype("float32")
    extra = rng.normal(size=(SAMPLES, 3)).astype("float32")
    reg = rng.normal(size=(SAMPLES, 3)).astype("float32")
    cls = np.eye(3, dtype="float32")[rng.integers(0, 3, size=SAMPLES)]
    return [seq, extra], [reg, cls]


def run_graph(shuffle: bool) -> dict:
    """The worker's fit of a two-input, two-output graph beside Keras's
    plain ``fit`` of the same model on the same lists of arrays."""
    import keras
    import numpy as np

    from worker import training
    from worker.monitor import Monitor

    x, y = graph_data()
    request = {
        "model": GRAPH_SPEC,
        "data": {"x": [a.tolist() for a in x], "y": [a.tolist() for a in y]},
        "fit": {"epochs": EPOCHS, "batch_size": BATCH, "shuffle": shuffle},
    }
    keras.utils.set_random_seed(3)
    worker_model = plain_program(GRAPH_SPEC, GRAPH_COMPILE, 3)
    monitor = Monitor(
        epochs=EPOCHS,
        steps_per_epoch=training.steps_per_epoch(request),
        on_progress=lambda _: None,
        should_stop=lambda: False,
    )
    training.fit(worker_model, request, monitor)
    plain_model = plain_program(GRAPH_SPEC, GRAPH_COMPILE, 3)
    plain = plain_model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=shuffle, verbose=0)
    predictions = training.predict(worker_model, x, None)
    return {
        "fused": monitor.history.result(),
        "plain": {k: [float(v) for v in vs] for k, vs in plain.history.items()},
        "predictions": {k: np.asarray(v).shape for k, v in predictions.items()},
    }


def main() -> None:
    backend = sys.argv[1]
    os.environ["KERAS_BACKEND"] = backend
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import keras  # noqa: F401
    # Keras's fit warns about nothing here: make any warning an error.
    warnings.simplefilter("error")
    with warnings.catch_warnings():
        # EarlyStopping's get_weights() copies variables with np.array(v),
        # which NumPy 2 flags as deprecated: Keras's own warning, not fit's.
        warnings.simplefilter("ignore", DeprecationWarning)
        early = run_early_stopping()
    graph = {"unshuffled": run_graph(False), "shuffled": run_graph(True)}
    print(
        json.dumps(
            {
                "unshuffled": run(False),
                "shuffled": run(True),
                "early_stopping": early,
                "graph": graph,
            }
        )
    )


if __name__ == "__main__":
    main()
