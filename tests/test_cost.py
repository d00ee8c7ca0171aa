"""The size of a trained model's ``.keras`` file (seqlab/cost.py) against
the files Keras 3.15 writes: the payload exact, the whole file bounded from
above, for every registered layer and the seed's models."""

from __future__ import annotations

import zipfile
from typing import Any

import keras_oracle as oracle
import pytest
from specs import layer_graph

from seqlab import LAYERS
from seqlab import analyze
from seqlab.cost import model_file_bytes
from seqlab.cost import model_file_payload
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
