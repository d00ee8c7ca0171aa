"""The predictor's jitted step (worker/predicting.py ``batch_predictor``)
beside Keras's own ``predict`` and ``predict_on_batch`` of the same saved
model, loaded twice as the predictor loads it; print one JSON document for
tests/test_predict.py: ``{case: {"jitted", "runs", "equal_to_predict_on_batch",
"max_diff_to_predict"}}``.

Run as a script in a fresh process (``python tests/predict_compare.py``):
Keras binds its backend at import, and the step is JAX's.
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

from specs import ENCODER_DECODER  # noqa: E402
from specs import MANY_TO_MANY  # noqa: E402
from specs import POLICY_SPEC  # noqa: E402
from specs import STATEFUL_JOB  # noqa: E402
from specs import TWO_BY_TWO  # noqa: E402

#: The seed's model, dtype policies, an integer input through Embedding
#: with Dropout and BatchNormalization (their inference behaviour), two
#: inputs and two named outputs, a decoder started from the encoder's
#: states; each with the dtype of its instances.
CASES = {
    "many_to_many": (MANY_TO_MANY, "float32"),
    "policies": (POLICY_SPEC, "float32"),
    "embedding": (
        {
            "input_shape": [6],
            "dtype": "int32",
            "layers": [
                {"type": "Embedding", "input_dim": 10, "output_dim": 4},
                {"type": "Dropout", "rate": 0.5},
                {"type": "GRU", "units": 3, "return_sequences": True},
                {"type": "BatchNormalization"},
                {"type": "LSTM", "units": 2},
                {"type": "Dense", "units": 1},
            ],
        },
        "int32",
    ),
    "two_by_two": (TWO_BY_TWO, "float32"),
    "encoder_decoder": (ENCODER_DECODER, "float32"),
}
#: (instances, batch size) of each run: one batch, a short one, many of the
#: fit's batch size (the last shorter), all in one.
RUNS = ((1, 8), (3, 8), (37, 8), (37, None))


def instances(model, count, dtype):
    """``count`` instances of each of the model's inputs: Embedding indices
    for an integer dtype, else normal floats."""
    import numpy as np

    rng = np.random.default_rng(count)
    arrays = [
        rng.integers(0, 10, (count, *t.shape[1:])).astype(dtype)
        if dtype.startswith("int")
        else rng.normal(size=(count, *t.shape[1:])).astype(dtype)
        for t in model.inputs
    ]
    return arrays if len(arrays) > 1 else arrays[0]


def loaded_twice(spec, dtype):
    """A model of ``spec`` trained a step (BatchNormalization's statistics
    moved, the optimizer built), saved as the worker saves it and loaded
    twice as the predictor loads it: two models that share nothing."""
    import keras
    import numpy as np

    from modelspec.model import load_model_spec
    from worker import predicting
    from worker import training

    keras.utils.set_random_seed(0)
    model = training.build_model(load_model_spec(spec))
    training.compile_model(model, {"optimizer": "adam", "loss": "mean_squared_error"})
    batch = spec.get("batch_size") or 4
    rng = np.random.default_rng(0)
    y = [rng.normal(size=(2 * batch, *t.shape[1:])).astype("float32") for t in model.outputs]
    model.fit(instances(model, 2 * batch, dtype), y if len(y) > 1 else y[0],
              batch_size=batch, epochs=1, verbose=0)  # fmt: skip
    return [predicting.load(training.save(model)) for _ in range(2)]


def flat(answer):
    """An answer's values, outputs one after another, as one float64 array."""
    import numpy as np

    parts = answer.values() if isinstance(answer, dict) else [answer]
    return np.concatenate([np.ravel(np.asarray(p, dtype="float64")) for p in parts])


def compare(spec, dtype):
    from worker import predicting
    from worker import training

    fast, plain = loaded_twice(spec, dtype)
    on_batch = predicting.batch_predictor(fast)
    if on_batch is None:
        return {"jitted": False}
    runs, equal, worst = 0, True, 0.0
    for count, batch_size in RUNS:
        x = instances(plain, count, dtype)
        expected = training.as_lists(plain, plain.predict(x, batch_size=8, verbose=0))
        exact = training.predict(plain, x, batch_size)  # predict_on_batch, batch by batch
        for _ in range(2):  # nothing carries over from one call to the next
            answer = training.predict(fast, x, batch_size, on_batch)
            runs += 1
            equal = equal and answer == exact
            if isinstance(expected, dict) and list(answer) != list(expected):
                equal = False
            worst = max(worst, float(abs(flat(answer) - flat(expected)).max()))
    return {"jitted": True, "runs": runs, "equal_to_predict_on_batch": equal,
            "max_diff_to_predict": worst}  # fmt: skip


def main() -> None:
    from worker import predicting
    from worker import training

    training.configure_backend()
    warnings.filterwarnings("ignore")
    result = {name: compare(spec, dtype) for name, (spec, dtype) in CASES.items()}
    fast, _ = loaded_twice(STATEFUL_JOB["model"], "float32")
    result["stateful"] = {"jitted": predicting.batch_predictor(fast) is not None}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
