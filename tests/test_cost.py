"""The size of a trained model's ``.keras`` file (seqlab/cost.py) against
the files Keras 3.15 writes: the payload exact, the whole file bounded from
above, for every registered layer and the seed's models."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import keras_oracle as oracle
import numpy as np
import pytest
from specs import layer_graph

from seqlab import LAYERS
from seqlab import analyze
from seqlab.cost import ARRAY_OVERHEAD
from seqlab.cost import JSON_VALUE_BYTES
from seqlab.cost import HeldArray
from seqlab.cost import lists_bytes
from seqlab.cost import model_file_bytes
from seqlab.cost import model_file_payload
from seqlab.cost import prediction_bytes_bound
from seqlab.cost import predictions_cost
from seqlab.cost import variables
from seqlab.examples import EXAMPLES

pytestmark = pytest.mark.keras


def saved(spec: dict[str, Any], optimizer: str, tmp_path) -> tuple[Any, int, int]:
    """Keras's model of ``spec`` with its optimizer built, as a job saves it
    (on the backend this process imported Keras with): (the model, the
    file's size, the bytes of the HDF5 datasets in it)."""
    import h5py

    from worker.builder import build_model

    oracle.import_keras()
    model = build_model(spec)
    model.compile(optimizer=optimizer)
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        archive.extract("model.weights.h5", tmp_path)
    datasets: list[int] = []
    with h5py.File(tmp_path / "model.weights.h5") as weights:
        weights.visititems(
            lambda _, item: datasets.append(item.nbytes) if isinstance(item, h5py.Dataset) else None
        )
    return model, path.stat().st_size, sum(datasets)


def check(spec: dict[str, Any], optimizer: str, tmp_path) -> None:
    report = analyze(spec)
    model, size, payload = saved(spec, optimizer, tmp_path)
    assert variables(report.layers) == len(model.weights)
    backend = oracle.import_keras().backend.backend()
    assert model_file_payload(report, optimizer, backend) == payload
    estimate = model_file_bytes(report, optimizer)
    # An upper bound, and not a loose one: the structure it allows is at
    # most three times the structure Keras writes.
    assert size <= estimate
    assert estimate - payload <= 3 * (size - payload)


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_every_registered_layer(layer_type, tmp_path):
    check(layer_graph(layer_type), "adam", tmp_path)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_seed_models(name, optimizer, tmp_path):
    check(EXAMPLES[name]["model"], optimizer, tmp_path)


def test_a_large_model_is_its_payload_and_little_more(tmp_path):
    spec = {"input_shape": [10, 8], "layers": [{"type": "LSTM", "units": 256},
                                               {"type": "Dense", "units": 512}]}  # fmt: skip
    report = analyze(spec)
    _, size, payload = saved(spec, "adam", tmp_path)
    scalars = {"tensorflow": 8 + 4, "jax": 4 + 4}[oracle.import_keras().backend.backend()]
    assert model_file_payload(report, "adam", oracle.import_keras().backend.backend()) == payload
    assert payload == 3 * report.param_bytes + scalars
    assert size <= model_file_bytes(report) <= 1.01 * size


def test_doctests():
    import doctest

    import seqlab.cost

    assert doctest.testmod(seqlab.cost).failed == 0


# -- the data and the predictions a worker holds ---------------------------------

SHAPES = [(1000, 50, 1), (100, 10, 100), (5000, 1), (10, 1000, 3), (20000,), (1, 1, 1)]


def traced(make: Any) -> tuple[Any, int]:
    """What ``make()`` returns and the bytes it left allocated (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        value = make()
        return value, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lists_bound_what_json_decoding_builds(shape):
    # The worker decodes a job's inline data with json.loads: its lists and
    # floats, over the bound, would be memory the limit did not count.
    text = json.dumps(np.random.default_rng(0).random(shape, dtype="float32").tolist())
    _, measured = traced(lambda: json.loads(text))
    bound = lists_bytes(shape)
    assert measured <= bound <= 1.25 * measured + 512


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_inline_data_is_its_text_its_lists_and_its_array(shape):
    text = json.dumps(np.random.default_rng(0).random(shape, dtype="float32").tolist())

    def load():
        # As the worker reads a job's data: bytes from Redis, decoded.
        raw = text.encode()
        lists = json.loads(raw)
        return raw, lists, np.asarray(lists, dtype="float32")

    import tracemalloc

    tracemalloc.start()
    try:
        held = load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = HeldArray(shape, 4).load_bytes()
    # The text is bounded at the most a value can take (30 bytes; float32
    # values written by Python take some 20): the bound is within twice.
    assert peak <= bound <= 2 * peak + ARRAY_OVERHEAD + 512
    assert len(held[0]) <= np.prod(shape) * JSON_VALUE_BYTES


@pytest.mark.parametrize("stored", ["float32", "float64"])
def test_a_datasets_array_is_its_chunks_joined_and_converted(stored):
    raw = np.ones((2000, 30, 2), stored).tobytes()

    def load():
        # As jobs/datasets.py reads one (its chunks from Redis, joined, the
        # array a view of them) and the worker gives Keras the input's dtype.
        parts = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
        array = np.frombuffer(b"".join(parts), dtype=stored).reshape(2000, 30, 2)
        return parts, array, np.asarray(array, dtype="float32")

    _, measured = traced(load)
    bound = HeldArray((2000, 30, 2), 4, np.dtype(stored).itemsize).load_bytes()
    assert measured <= bound <= 1.05 * measured


def test_the_predictions_pass_is_bounded_before_it_runs():
    # The case, scaled: outputs of 200 samples × 50 steps × 64
    # values, as the worker holds them (the array, the lists, the JSON).
    report = analyze({"input_shape": [50, 1], "layers": [
        {"type": "LSTM", "units": 8, "return_sequences": True},
        {"type": "Dense", "units": 64}]})  # fmt: skip
    x = HeldArray((200, 50, 1), 4)
    out = np.random.default_rng(0).standard_normal((200, 50, 64)).astype("float32")

    def held():
        lists = out.tolist()
        return lists, json.dumps(lists)

    (_, text), measured = traced(held)
    memory, stored = predictions_cost(report, [x], 32, 64 * 1024**2)
    assert stored == prediction_bytes_bound(200, 50 * 64) >= len(text)
    assert measured + out.nbytes + x.array_bytes <= memory <= 1.5 * (measured + out.nbytes)
    # Past the limit, one batch's outputs and nothing stored.
    memory, stored = predictions_cost(report, [x], 32, len(text) // 2)
    assert (memory, stored) == (x.array_bytes + 32 * 50 * 64 * 4, 0)
    assert predictions_cost(report, [x], 32, 64 * 1024**2, store=False) == (0, 0)


# -- the compiled fit ----------------------------------------------------------------


def test_a_compiled_fits_copy_is_counted_up_to_its_data_bound():
    from seqlab.cost import COMPILED_MAX_DATA_BYTES
    from seqlab.cost import COMPILED_MAX_INDICES
    from seqlab.cost import compiled_fit_bytes

    x, y = HeldArray((1000, 5, 1), 4), HeldArray((1000, 1), 4)
    # Padded to at most twice the samples, on the host and as the program's
    # array; and one call's sample orders.
    assert compiled_fit_bytes([x, y]) == 4 * 24_000 + 4 * COMPILED_MAX_INDICES
    # Data past the bound runs Keras's own loop: no copy.
    big = HeldArray((COMPILED_MAX_DATA_BYTES // 4 + 1,), 4)
    assert compiled_fit_bytes([big]) == 0
    # Nor with validation data, which the limits pass as no arrays.
    assert compiled_fit_bytes([]) == 0
