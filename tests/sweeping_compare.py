"""A group of trials trained together (worker/sweeping.py ``train_group``)
beside each trial's lone job (worker/training.py ``train``), under JAX;
prints one JSON document for tests/test_sweeping.py::

    {case: {"path": "vectorized" | "one_by_one",
            "trials": [{"values", "group": outcome, "lone": outcome}],
            "stopped": [outcome] (the "stop" case only)}}

where an outcome is ``{"status", "history", "weights", "predictions",
"stopped"}``: the result's history, the saved model's weights (loaded back
from its ``.keras`` bytes) and the predictions, as lists of floats.

Run as a script in a fresh process (``python tests/sweeping_compare.py``):
Keras binds its backend at import.
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["KERAS_BACKEND"] = "jax"


def regression_data(samples: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(3)
    x = rng.normal(size=(samples, 6, 2)).round(3).tolist()
    y = rng.normal(size=(samples, 3)).round(3).tolist()
    return {"x": x, "y": y}


def request_of(model, data, compile_, fit) -> dict:
    """A train request as the worker gets it (defaults filled)."""
    return {
        "model": model,
        "data": data,
        "compile": {"metrics": [], **compile_},
        "fit": {"shuffle": True, "validation_split": 0.0, "store_predictions": True, **fit},
        "seed": 0,
    }


def seed_request() -> dict:
    from seqlab.examples import example_request

    request = example_request("many_to_one")
    request["fit"].update(epochs=40, shuffle=True, validation_split=0.0, store_predictions=True)
    request["compile"]["metrics"] = []
    return request


REGRESSION = {
    "input_shape": [6, 2],
    "layers": [
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "Dropout", "rate": 0.2},
        {"type": "GRU", "units": 3},
        {"type": "Dense", "units": 3},
    ],
}
CASES = {
    "seed": seed_request,
    # Shuffled, 13 samples in batches of 4 (a short last batch), dropout, a metric.
    "shuffled": lambda: request_of(
        REGRESSION,
        regression_data(13),
        {"optimizer": "adam", "loss": "mean_squared_error", "metrics": ["mae"]},
        {"epochs": 6, "batch_size": 4},
    ),
    # The last quarter for validation (5 of 20 samples: a short validation batch).
    "validated": lambda: request_of(
        REGRESSION,
        regression_data(20),
        {"optimizer": "rmsprop", "loss": "mean_squared_error", "metrics": ["mae"]},
        {"epochs": 5, "batch_size": 4, "validation_split": 0.25},
    ),
}
VARY = [(0, 0.01), (0, 0.05), (7, 0.01), (7, 0.05)]


def trials(case: str) -> list[dict]:
    out = []
    for seed, rate in VARY:
        request = CASES[case]()
        request["seed"] = seed
        request["compile"]["learning_rate"] = rate
        out.append(request)
    return out


def weights_of(model_file: bytes) -> list:
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        with open(path, "wb") as f:
            f.write(model_file)
        model = keras.saving.load_model(path)
    return [w.tolist() for w in model.get_weights()]


def outcome(status: str, result: dict | None, model_file: bytes | None) -> dict:
    return {
        "status": status,
        "history": (result or {}).get("history"),
        "stopped": (result or {}).get("stopped"),
        "weights": weights_of(model_file) if model_file else None,
        "predictions": (result or {}).get("predictions"),
        "zip": model_file is not None and zipfile.is_zipfile(io.BytesIO(model_file)),
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    from seqlab import analyze
    from worker import sweeping
    from worker import training

    report: dict = {}
    for case in CASES:
        requests = trials(case)
        expected = analyze(requests[0]["model"]).counts()
        got: dict = {}
        path = sweeping.train_group(
            copy.deepcopy(requests),
            expected=expected,
            on_trial=lambda i, o, got=got: got.__setitem__(
                i, outcome(o.status, o.result, o.model_file)
            ),
            should_stop=lambda: False,
        )
        rows = []
        for index, request in enumerate(requests):
            result, model_file = training.train(
                copy.deepcopy(request), expected=expected,
                on_progress=lambda _: None, should_stop=lambda: False,
            )  # fmt: skip
            rows.append(
                {"values": VARY[index], "group": got[index],
                 "lone": outcome("succeeded", result, model_file)}
            )  # fmt: skip
        report[case] = {"path": path, "trials": rows}
    # A cancel after the first compiled call ends every trial with its history so far.
    requests = trials("seed")
    for request in requests:
        request["fit"]["epochs"] = 5000
    calls = []
    stopped: dict = {}
    sweeping.train_group(
        requests,
        expected=analyze(requests[0]["model"]).counts(),
        on_trial=lambda i, o: stopped.__setitem__(i, outcome(o.status, o.result, o.model_file)),
        should_stop=lambda: calls.append(1) or len(calls) >= 1,
    )
    report["stop"] = {"stopped": [stopped[i] for i in sorted(stopped)]}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
