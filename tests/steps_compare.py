"""Train the same jobs twice in one process (JAX), the second time on the
steps the first traced (worker/steps.py), beside Keras's plain ``fit`` of a
fresh model; print one JSON document for tests/test_steps.py:
``{case: {"first": result, "again": result, "plain": history, "reused": bool,
"reused_epochs": bool}}``.

Run as a script in a fresh process (``python tests/steps_compare.py``):
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

SEQ = [i / 5.0 for i in range(5)]


def regression_data():
    import numpy as np

    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 6, 2)).round(3).tolist()
    y = rng.normal(size=(10, 3)).round(3).tolist()
    return {"x": x, "y": y}


#: Each case: a train request as the API stores it (fit defaults filled).
CASES = {
    # The seed's many_to_one, shorter: one sample, a batch of one.
    "seed": {
        "model": {
            "input_shape": [5, 1],
            "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 5}],
        },
        "data": {"x": [[[v] for v in SEQ]], "y": [SEQ]},
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 30, "batch_size": 1, "shuffle": True, "validation_split": 0.0},
        "seed": 0,
    },
    # Shuffled batches of 4 + 4 + 2, stateful metrics, dropout (seed state).
    "shuffled": {
        "model": {
            "input_shape": [6, 2],
            "layers": [
                {"type": "LSTM", "units": 5},
                {"type": "Dropout", "rate": 0.2},
                {"type": "Dense", "units": 3},
            ],
        },
        "data": regression_data(),
        "compile": {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "loss": "mse",
            "metrics": ["mae", "root_mean_squared_error"],
        },
        "fit": {"epochs": 6, "batch_size": 4, "shuffle": True, "validation_split": 0.0},
        "seed": 5,
    },
    # Keras's own fit with validation: the test step is reused too.
    "validation": {
        "model": {
            "input_shape": [6, 2],
            "layers": [{"type": "GRU", "units": 4}, {"type": "Dense", "units": 3}],
        },
        "data": regression_data(),
        "compile": {"optimizer": "rmsprop", "loss": "mae", "metrics": ["mse"]},
        "fit": {"epochs": 5, "batch_size": 3, "shuffle": True, "validation_split": 0.2},
        "seed": 2,
    },
}


def job(request: dict) -> dict:
    from seqlab import analyze
    from worker import training

    report = analyze(request["model"])
    result, _ = training.train(
        json.loads(json.dumps(request)),
        expected=report.counts(),
        on_progress=lambda _: None,
        should_stop=lambda: False,
    )
    return {k: result[k] for k in ("history", "predictions", "final_metrics")}


def plain(request: dict) -> dict:
    """Keras's plain ``fit`` of a fresh model of the request, its history."""
    import numpy as np
    from fit_compare import plain_program

    model = plain_program(request["model"], request["compile"], request["seed"])
    fit = request["fit"]
    history = model.fit(
        np.asarray(request["data"]["x"], dtype="float32"),
        np.asarray(request["data"]["y"], dtype="float32"),
        batch_size=fit["batch_size"],
        epochs=fit["epochs"],
        shuffle=fit["shuffle"],
        validation_split=fit["validation_split"],
        verbose=0,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def main() -> None:
    warnings.simplefilter("ignore")
    from worker import steps

    out = {}
    for name, request in CASES.items():
        steps.clear()
        first = job(request)
        key = steps.structure_key(request["model"], request["compile"])
        entry = steps._cache.get(key, {})
        kept = entry.get("train_function")
        kept_epochs = entry.get(steps.EPOCHS_FUNCTION)
        again = job(request)
        out[name] = {
            "first": first,
            "again": again,
            "plain": plain(request),
            # The second job ran on the very step functions the first made
            # (Keras's train step; the epochs function of a compiled fit).
            "reused": kept is not None and steps._cache[key]["train_function"] is kept,
            "reused_epochs": kept_epochs is not None
            and steps._cache[key][steps.EPOCHS_FUNCTION] is kept_epochs,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
