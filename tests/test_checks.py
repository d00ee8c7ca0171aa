"""The checks of a POST /train request's data against its model
(service/datasets/checks.py, service/datasets/domains.py).

Each refused case is posted to the API, which must answer 422 naming the
field and queue nothing, and run through real Keras the way the worker
would run it, which must fail or silently compute something else than the
request says (``proof``). Each accepted edge case must be queued and must
train in Keras.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import keras_oracle as oracle
import numpy as np
import pytest
from openapi_check import validate_response

from service.datasets.domains import OVERFLOW
from service.datasets.domains import plain_number
from service.datasets.domains import stored
from service.jobs.schemas import train_request_schema

DENSE3 = {"input_shape": [2], "layers": [{"type": "Dense", "units": 3, "activation": "softmax"}]}
SPARSE = {"loss": "sparse_categorical_crossentropy"}
STATEFUL = {
    "input_shape": [3, 1],
    "batch_size": 2,
    "layers": [{"type": "LSTM", "units": 2, "stateful": True}, {"type": "Dense", "units": 1}],
}


def request(model, x, y, loss=None, **fit):
    """A train request; ``loss`` and ``fit`` only where given."""
    body = {"model": model, "data": {"x": x, "y": y}}
    if loss:
        body["compile"] = {"loss": loss}
    if fit:
        body["fit"] = fit
    return body


def typed(dtype, layers=None, shape=(2,)):
    """A model whose input is ``dtype``."""
    layers = layers or [{"type": "Dense", "units": 1}]
    return {"input_shape": list(shape), "dtype": dtype, "layers": layers}


def embedding(input_dim, *before, dtype=None, shape=(3,)):
    model = {
        "input_shape": list(shape),
        "layers": [*before, {"type": "Embedding", "input_dim": input_dim, "output_dim": 2}],
    }
    if dtype:
        model["dtype"] = dtype
    return model


def dropout(noise_shape, input_shape=(6, 4), wrapped=False):
    layer = {"type": "Dropout", "rate": 0.5, "noise_shape": noise_shape}
    if wrapped:
        layer = {"type": "TimeDistributed", "layer": layer}
    return {"input_shape": list(input_shape), "layers": [layer]}


def ones(*shape):
    return [ones(*shape[1:]) for _ in range(shape[0])] if shape else 1.0


# -- what Keras does with a request ---------------------------------------


@dataclass
class Run:
    """One short training run of a request, as the worker runs it."""

    model: Any = None
    x: Any = None
    loss: list[float] = field(default_factory=list)
    predictions: Any = None
    error: Exception | None = None

    @property
    def failed(self) -> bool:
        """Keras raised, or the loss or the predictions are not finite."""
        import numpy as np

        if self.error is not None:
            return True
        return not (np.all(np.isfinite(self.loss)) and np.all(np.isfinite(self.predictions)))


def keras_run(body: dict[str, Any]) -> Run:
    """Build, compile, convert the data, fit one epoch and predict, as
    worker/training.py does, with warnings ignored as in the worker."""
    keras = oracle.import_keras()
    import numpy as np

    from worker.builder import build_model

    loaded = train_request_schema.load(body)
    spec, fit = loaded["model"], loaded["fit"]
    run = Run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.utils.set_random_seed(0)
        run.model = build_model(spec)
        run.model.compile(optimizer="adam", loss=loaded["compile"]["loss"])
        try:
            run.x = np.asarray(loaded["data"]["x"]["value"], dtype=spec.get("dtype") or "float32")
            y = np.asarray(loaded["data"]["y"]["value"], dtype="float32")
            # Keras keeps the last samples for validation (array_slicing.py).
            n = math.floor(len(run.x) * (1.0 - fit["validation_split"]))
            validation = (run.x[n:], y[n:]) if n < len(run.x) else None
            history = run.model.fit(
                run.x[:n], y[:n], batch_size=fit["batch_size"], epochs=1, shuffle=False,
                validation_data=validation, verbose=0,
            )  # fmt: skip
            run.loss = history.history["loss"]
            run.predictions = run.model.predict(
                run.x, batch_size=spec.get("batch_size") or 32, verbose=0
            )
        except Exception as error:  # what the worker would report, if anything
            run.error = error
    return run


# Proofs: given the run of the refused request, show that Keras fails or
# trains on something else than the request says.


def fails(run: Run) -> bool:
    return run.failed


def fails_or_zero_loss(run: Run) -> bool:
    # TensorFlow's sparse cross-entropy raises; JAX's gathers nothing: 0.0.
    return run.failed or run.loss == [0.0]


def same_as(twin: dict[str, Any]) -> Callable[[Run], bool]:
    """Keras trains exactly as on ``twin``: it changed the data silently."""

    def proof(run: Run) -> bool:
        import numpy as np

        other = keras_run(twin)
        assert not other.failed, other.error
        return (
            run.error is None
            and run.loss == other.loss
            and np.array_equal(run.predictions, other.predictions)
        )

    return proof


def rejects_batch(size: int) -> Callable[[Run], bool]:
    """The stateful model cannot be called on a batch of ``size`` (which
    TensorFlow's graph-mode fit lets through unchecked)."""

    def proof(run: Run) -> bool:
        try:
            run.model(run.x[:size])
        except ValueError as error:
            return "stateful" in str(error)
        return False

    return proof


def dropout_breaks_on_batch_of_one(run: Run) -> bool:
    """JAX raises; TensorFlow broadcasts the mask the other way and makes
    a batch of 1 into a batch of 2."""
    try:
        output = run.model.layers[0](run.x[:1], training=True)
    except Exception:
        return True
    return tuple(output.shape) != run.x[:1].shape


def jax_wraps_int64(run: Run) -> bool:
    """The JAX backend (the worker's default) stores int64 data as int32."""
    import numpy as np

    jax_core = pytest.importorskip("keras.src.backend.jax.core")
    tensor = jax_core.convert_to_tensor(np.asarray(run.x, dtype="int64"))
    return str(tensor.dtype) == "int32" and int(tensor[0][0]) == 0  # 2**40 wrapped


def negative_cross_entropy(run: Run) -> bool:
    """Keras trains without a word on a cross-entropy that can go below 0."""
    keras = oracle.import_keras()

    loss = float(keras.losses.binary_crossentropy([[2.0]], [[0.9]])[0])
    return run.error is None and loss < 0


def negative_loss(run: Run) -> bool:
    return run.error is None and run.loss[0] < 0


EMB_Y = ones(2, 3, 2)
SIGMOID = {"input_shape": [2], "layers": [{"type": "Dense", "units": 1, "activation": "sigmoid"}]}

#: id: (request, the field refused, a fragment of its message, the Keras proof)
REFUSED = {
    "sparse_label_out_of_range": (
        request(DENSE3, [[1, 2], [3, 4]], [[7], [-2]]) | {"compile": SPARSE},
        "data.y", "in [0, 3)", fails_or_zero_loss,
    ),
    "sparse_label_classes": (
        request(DENSE3, [[1, 2], [3, 4]], [[3], [3]]) | {"compile": SPARSE},
        "data.y", "data.y[0][0] is 3", fails_or_zero_loss,
    ),
    "sparse_label_fraction": (
        request(DENSE3, [[1, 2], [3, 4]], [[0], [1.5]]) | {"compile": SPARSE},
        "data.y", "data.y[1][0] is 1.5",
        same_as(request(DENSE3, [[1, 2], [3, 4]], [[0], [1]]) | {"compile": SPARSE}),
    ),
    "uint8_overflow": (
        request(typed("uint8"), [[300, 1], [3, 4]], [[1], [0]]),
        "data.x", "data.x[0][0] is 300", fails,
    ),
    "uint8_negative": (
        request(typed("uint8"), [[0, 1], [3, -1]], [[1], [0]]),
        "data.x", "data.x[1][1] is -1", fails,
    ),
    "uint8_fraction": (
        request(typed("uint8"), [[2.5, 1], [3, 4]], [[1], [0]]),
        "data.x", "data.x[0][0] is 2.5",
        same_as(request(typed("uint8"), [[2, 1], [3, 4]], [[1], [0]])),
    ),
    "int32_overflow": (
        request(typed("int32"), [[2**31, 1], [3, 4]], [[1], [0]]),
        "data.x", "data.x[0][0] is 2147483648", fails,
    ),
    "int64_beyond_int32": (
        request(typed("int64"), [[2**40, 1], [3, 4]], [[1], [0]]),
        "data.x", "data.x[0][0] is 1099511627776", jax_wraps_int64,
    ),
    "bool_not_0_or_1": (
        request(typed("bool"), [[2, 1], [0, 1]], [[1], [0]]),
        "data.x", "data.x[0][0] is 2",
        same_as(request(typed("bool"), [[1, 1], [0, 1]], [[1], [0]])),
    ),
    "float16_overflow": (
        request(typed("float16"), [[70000, 1], [3, 4]], [[1], [0]]),
        "data.x", "data.x[0][0] is 70000", fails,
    ),
    "bfloat16_overflow": (
        request(typed("bfloat16"), [[1, 1], [3, 1e39]], [[1], [0]]),
        "data.x", "data.x[1][1] is 1e+39", fails,
    ),
    "bfloat16_integer_beyond_int64": (
        request(typed("bfloat16"), [[2**64, 1], [3, 4]], [[1], [0]]),
        "data.x", "write it as a float: 1.8446744073709552e+19", fails,
    ),
    "float64_beyond_float32": (
        request(typed("float64"), [[1, 1], [1e39, 4]], [[1], [0]]),
        "data.x", "data.x[1][0] is 1e+39 (it becomes inf in float32)", fails,
    ),
    "float16_policy_first_layer": (
        request({"input_shape": [2], "layers": [{"type": "Dense", "units": 1, "dtype": "float16"}]},
                [[1, 1], [70000, 4]], [[1], [0]]),
        "data.x", "model.layers.0 computes in float16 and casts its inputs", fails,
    ),
    "float32_overflow": (
        request({"input_shape": [2], "layers": [{"type": "Dense", "units": 1}]},
                [[1e39, 1], [3, 4]], [[1], [0]]),
        "data.x", "float32", fails,
    ),
    "targets_overflow": (
        request({"input_shape": [2], "layers": [{"type": "Dense", "units": 1}]},
                [[1, 1], [3, 4]], [[1], [-1e39]]),
        "data.y", "data.y[1][0] is -1e+39", fails,
    ),
    "embedding_id_too_large": (
        request(embedding(5), [[0, 1, 2], [3, 4, 7]], EMB_Y),
        "data.x", "data.x[1][2] is 7", fails,
    ),
    "embedding_negative_id": (
        request(embedding(5), [[0, 1, 2], [3, -1, 4]], EMB_Y),
        "data.x", "data.x[1][1] is -1",
        same_as(request(embedding(5), [[0, 1, 2], [3, 4, 4]], EMB_Y)),
    ),
    "embedding_fractional_id": (
        request(embedding(5), [[0, 1.7, 2], [3, 1, 4]], EMB_Y),
        "data.x", "data.x[0][1] is 1.7",
        same_as(request(embedding(5), [[0, 1, 2], [3, 1, 4]], EMB_Y)),
    ),
    "embedding_id_inexact_in_float16": (
        request(embedding(5000, dtype="float16"), [[0, 2049, 2], [3, 1, 4]], EMB_Y),
        "data.x", "data.x[0][1] is 2049 (it becomes 2048.0 in float16)",
        same_as(request(embedding(5000, dtype="float16"), [[0, 2048, 2], [3, 1, 4]], EMB_Y)),
    ),
    "embedding_behind_float16_reshape": (
        request(embedding(5000, {"type": "Reshape", "target_shape": [3], "dtype": "float16"}),
                [[0, 2049, 2], [3, 1, 4]], EMB_Y),
        "data.x", "data.x[0][1] is 2049 (it becomes 2048.0 in float16)",
        same_as(request(
            embedding(5000, {"type": "Reshape", "target_shape": [3], "dtype": "float16"}),
            [[0, 2048, 2], [3, 1, 4]], EMB_Y)),
    ),
    "embedding_behind_reshape": (
        request(
            {"input_shape": [3], "layers": [
                {"type": "Reshape", "target_shape": [3, 1]},
                {"type": "TimeDistributed",
                 "layer": {"type": "Embedding", "input_dim": 5, "output_dim": 2}}]},
            [[0, 1, 2], [3, 5, 4]], ones(2, 3, 1, 2),
        ),
        "data.x", "model.layers.1.layer takes integer token ids in [0, 5)", fails,
    ),
    "dropout_before_embedding": (
        request(embedding(5, {"type": "Dropout", "rate": 0.5}), [[4, 4, 4]] * 8, ones(8, 3, 2)),
        "model.layers.0.rate", "scales the token ids", fails,
    ),
    "stateful_sample_count": (
        request(STATEFUL, ones(5, 3, 1), ones(5, 1), batch_size=2),
        "data.x", "multiple of 2; data.x has 5", rejects_batch(1),
    ),
    "stateful_fit_batch_size": (
        request(STATEFUL, ones(4, 3, 1), ones(4, 1), batch_size=4),
        "fit.batch_size", "fit.batch_size is 4", fails,
    ),
    "stateful_default_batch_size": (
        request(STATEFUL, ones(4, 3, 1), ones(4, 1)),
        "fit.batch_size", "fit.batch_size is 32", fails,
    ),
    "stateful_validation_split": (
        request(STATEFUL, ones(6, 3, 1), ones(6, 1), batch_size=2, validation_split=0.34),
        "fit.validation_split", "into 3 and 3", rejects_batch(1),
    ),
    "noise_shape_features": (
        request(dropout([1, 1, 3]), ones(4, 6, 4), ones(4, 6, 4)),
        "model.layers.0.noise_shape", "dimension 3 is neither 1 nor the input's 4", fails,
    ),
    "noise_shape_unknown_length": (
        request(dropout([1, 5, 1], (None, 4)), ones(4, 6, 4), ones(4, 6, 4)),
        "model.layers.0.noise_shape", "input (None, 6, 4)", fails,
    ),
    "noise_shape_short_batch": (
        request(dropout([2, 1, 4]), ones(5, 6, 4), ones(5, 6, 4), batch_size=2),
        "model.layers.0.noise_shape", "every training batch size (2 and 1)",
        dropout_breaks_on_batch_of_one,
    ),
    "noise_shape_rank_in_time_distributed": (
        request(dropout([1, 1, 4], wrapped=True), ones(4, 6, 4), ones(4, 6, 4)),
        "model.layers.0.layer.noise_shape", "it has 3 dimensions, the input 2", fails,
    ),
    "binary_crossentropy_target": (
        request(SIGMOID, [[1, 2], [3, 4]], [[2], [0]], "binary_crossentropy"),
        "data.y", "data.y[0][0] is 2", negative_cross_entropy,
    ),
    "categorical_crossentropy_target": (
        request(DENSE3, [[1, 2], [3, 4]], [[-1, 0, 0], [-1, 0, 0]], "categorical_crossentropy"),
        "data.y", "data.y[0][0] is -1", negative_loss,
    ),
    "kl_divergence_target": (
        request(DENSE3, [[1, 2], [3, 4]], [[2, 0, 0], [0, 1, 0]], "kl_divergence"),
        "data.y", "data.y[0][0] is 2",
        same_as(request(DENSE3, [[1, 2], [3, 4]], [[1, 0, 0], [0, 1, 0]], "kl_divergence")),
    ),
    "msle_target": (
        request(SIGMOID, [[1, 2], [3, 4]], [[-1], [0.5]], "mean_squared_logarithmic_error"),
        "data.y", "data.y[0][0] is -1",
        same_as(request(SIGMOID, [[1, 2], [3, 4]], [[0], [0.5]],
                        "mean_squared_logarithmic_error")),
    ),
}  # fmt: skip

#: Refused by the request's types alone; Keras never sees them.
REFUSED_TYPES = {
    "bool_in_float_input": (
        request(DENSE3, [[True, 2], [3, 4]], [[1], [0]]) | {"compile": SPARSE},
        "data.x",
        "data.x[0][0] is true",
    ),
    "bool_in_targets": (
        request(typed("bool"), [[True, False], [1, 0]], [[1], [False]]),
        "data.y",
        "data.y[1][0] is false",
    ),
    "huge_integer_in_x": (
        request(DENSE3, [[10**400, 2], [3, 4]], [[1], [0]]) | {"compile": SPARSE},
        "data.x",
        "an integer of about 401 digits at [0][0]",
    ),
    "huge_integer_in_y": (
        request(SIGMOID, [[1, 2], [3, 4]], [[1], [-(10**309)]]),
        "data.y",
        "an integer of about 310 digits at [1][0]",
    ),
}

ACCEPTED = {
    "sparse_labels_up_to_classes_minus_1": request(DENSE3, [[1, 2], [3, 4]], [[2], [0]])
    | {"compile": SPARSE},
    "sparse_labels_as_floats": request(DENSE3, [[1, 2], [3, 4]], [[2.0], [0.0]])
    | {"compile": SPARSE},
    "uint8_bounds": request(typed("uint8"), [[255, 0], [3, 4.0]], [[1], [0]]),
    "int32_bounds": request(typed("int32"), [[2**31 - 1, -(2**31)], [3, 4]], [[1], [0]]),
    "int64_within_int32": request(typed("int64"), [[2**31 - 1, -5], [3, 4]], [[1], [0]]),
    "bool_as_json_and_numbers": request(typed("bool"), [[True, False], [1, 0]], [[1], [0]]),
    "float16_max": request(typed("float16"), [[65504, -65519], [3, 4]], [[1], [0]]),
    "bfloat16_large_float": request(typed("bfloat16"), [[1.8e19, 1], [3, 4]], [[1], [0]]),
    "float64_values": request(typed("float64"), [[0.1234567890123, 1e-300], [3, 4]], [[1], [0]]),
    "stateful_batches_fit": request(STATEFUL, ones(4, 3, 1), ones(4, 1), batch_size=2),
    "stateful_split_fits": request(
        STATEFUL, ones(8, 3, 1), ones(8, 1), batch_size=2, validation_split=0.5
    ),
    "embedding_ids_up_to_input_dim_minus_1": request(embedding(5), [[0, 1, 2], [3, 4, 4]], EMB_Y),
    "embedding_masked_padding": request(
        {
            "input_shape": [3, 1],
            "layers": [
                {"type": "Masking", "mask_value": -1},
                {"type": "Reshape", "target_shape": [3]},
                {"type": "Embedding", "input_dim": 5, "output_dim": 2},
            ],
        },
        [[[-1], [2], [4]], [[1], [-1], [-1]]],
        EMB_Y,
    ),
    "embedding_after_dense_unchecked": request(
        {
            "input_shape": [3],
            "layers": [
                {"type": "Dense", "units": 3},
                {"type": "Embedding", "input_dim": 5, "output_dim": 2},
            ],
        },
        [[0, 1, 2], [3, 4, 4]],
        EMB_Y,
    ),
    "noise_shape_broadcasts": request(dropout([1, 1, 4]), ones(5, 6, 4), ones(5, 6, 4)),
    "noise_shape_batch_every_batch": request(
        dropout([2, 6, 1]), ones(4, 6, 4), ones(4, 6, 4), batch_size=2
    ),
    "noise_shape_shorter": request(dropout([4], (None, 4)), ones(3, 7, 4), ones(3, 7, 4)),
    "binary_crossentropy_bounds": request(
        SIGMOID, [[1, 2], [3, 4]], [[1], [0]], "binary_crossentropy"
    ),
    "msle_zero": request(SIGMOID, [[1, 2], [3, 4]], [[0], [1]], "mean_squared_logarithmic_error"),
    "mse_any_target": request(SIGMOID, [[1, 2], [3, 4]], [[-7], [1e18]]),
}


# -- the API ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [pytest.param(*case[:3], id=name) for name, case in {**REFUSED, **REFUSED_TYPES}.items()],
)
def test_refused_at_submit_and_nothing_is_queued(idle_app, spec, body, path, fragment):
    jobs = idle_app.extensions["jobs"]
    before = jobs.count()
    rv = idle_app.test_client().post("/train", json=body)
    assert rv.status_code == 422, rv.get_json()
    assert rv.content_type == "application/problem+json"
    validate_response(spec, "/train", "post", rv)
    errors = rv.get_json()["errors"]
    assert path in errors, errors
    assert any(fragment in message for message in errors[path]), errors[path]
    assert rv.get_json()["detail"].startswith(next(iter(errors)))
    assert jobs.count() == before


@pytest.mark.parametrize("body", [pytest.param(b, id=name) for name, b in ACCEPTED.items()])
def test_valid_edge_cases_are_queued(idle_app, body):
    client = idle_app.test_client()
    jobs = idle_app.extensions["jobs"]
    before = jobs.count()
    rv = client.post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()
    assert jobs.count() == before + 1
    client.delete(f"/jobs/{rv.get_json()['id']}")  # only its acceptance matters here


def test_float64_token_ids_are_checked_in_float32(idle_app):
    """An Embedding casts a float64 input to its float32 compute dtype, so
    ids past 2**24 must be exact in float32 (checked by hand with Keras:
    id 2**24 + 1 looks up row 2**24; a table that large is no test)."""
    model = embedding(2**25, dtype="float64", shape=(1,))
    client = idle_app.test_client()
    rv = client.post("/train", json=request(model, [[2**24 + 1]], [[[1.0, 1.0]]]))
    assert rv.status_code == 422
    assert "data.x[0][0] is 16777217 (it becomes 16777216.0 in float32)" in rv.get_json()["detail"]
    rv = client.post("/train", json=request(model, [[2**24 + 2]], [[[1.0, 1.0]]]))
    assert rv.status_code == 202
    client.delete(f"/jobs/{rv.get_json()['id']}")


def test_every_error_of_a_request_is_listed(idle_app):
    body = request(STATEFUL, ones(5, 3, 1), ones(5, 1), batch_size=3)
    rv = idle_app.test_client().post("/train", json=body)
    assert rv.status_code == 422
    assert set(rv.get_json()["errors"]) == {"fit.batch_size", "data.x"}


# -- Keras ----------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize(
    ("body", "proof"), [pytest.param(case[0], case[3], id=name) for name, case in REFUSED.items()]
)
def test_keras_fails_or_trains_on_other_data_where_refused(body, proof):
    run = keras_run(body)
    assert proof(run), (run.error, run.loss)


@pytest.mark.keras
@pytest.mark.parametrize("body", [pytest.param(b, id=name) for name, b in ACCEPTED.items()])
def test_keras_trains_the_accepted_edge_cases(body):
    run = keras_run(body)
    assert not run.failed, (run.error, run.loss)


# -- the value domains --------------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize("dtype", sorted(OVERFLOW))
def test_float_rounding_is_numpys(dtype):
    """``stored`` rounds as NumPy (and ml_dtypes for bfloat16) do, at the
    edge of each dtype's range and between its integers."""
    import numpy as np

    oracle.import_keras()  # registers bfloat16 with NumPy (ml_dtypes)
    limit = OVERFLOW[dtype]
    values = [limit, math.nextafter(limit, 0), -limit, 2049.0, 2051.0, 257.0, 2**24 + 1.0, 0.1]
    # Integers go through float64 first (2**128 - 2**103 - 1 becomes inf in
    # float32); bfloat16 takes none beyond int64 (a rule of its own).
    values += [
        v for v in (int(limit) - 1, 2**62 + 1, 2**24 + 1) if dtype != "bfloat16" or v < 2**63
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy warns about overflow
        # One value at a time: NumPy converts a list of ints through int64.
        expected = [float(np.asarray([v], dtype=dtype)[0]) for v in values]
    assert [stored(v, dtype) for v in values] == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (np.float64("nan"), "nan"),
        (np.float32("inf"), "inf"),
        (np.float64("-inf"), "-inf"),
        (np.float64(1e39), "1e+39"),
        (np.float32(0.1), "0.1"),
        (np.int64(-3), "-3"),
        (np.bool_(True), "true"),
        (math.inf, "inf"),
        (1e39, "1e+39"),
        (2**70, str(2**70)),
        (False, "false"),
    ],
)
def test_messages_show_numbers_plainly(value, shown):
    # NumPy's repr would read np.float64(nan) in a refusal.
    assert plain_number(value) == shown
