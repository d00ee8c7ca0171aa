"""Models Keras builds and counts but cannot call: ``POST /params`` (and
``seqlab params``) answer them 200 with Keras's numbers and ``warnings``;
``POST /train`` refuses them with the 422 it always gave.

The numbers below are Keras 3.15's ``count_params()`` of the built models
(checked with real Keras by ``test_keras_builds_these_and_fails_their_first_call``
and, over the corpora, by the oracle tests ``test_graph_oracle.py`` and
``test_keras_oracle.py``).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_check import validate_response

from seqlab import SpecError
from seqlab import analyze

ROOT = Path(__file__).resolve().parent.parent


def seq2seq(states: list[str], dec_units: int = 6) -> dict[str, Any]:
    """An LSTM encoder whose states start an LSTM decoder."""
    return {
        "inputs": [{"name": "src", "shape": [5, 3]}, {"name": "tgt", "shape": [4, 2]}],
        "layers": [
            {"type": "LSTM", "units": 6, "return_state": True, "name": "enc", "inputs": "src"},
            {"type": "LSTM", "units": dec_units, "name": "dec", "inputs": "tgt",
             "initial_state": states},
            {"type": "Dense", "units": 1},
        ],
    }  # fmt: skip


def attention(query_units: int, key_units: int, kind: str = "Attention") -> dict[str, Any]:
    """Attention of a projected query over a projected value (= key)."""
    return {
        "inputs": [{"shape": [8, 5]}, {"shape": [11, 5]}],
        "layers": [
            {"type": "Dense", "units": query_units, "inputs": "input_layer"},
            {"type": "Dense", "units": key_units, "inputs": "input_layer_1"},
            {"type": kind, "inputs": ["dense", "dense_1"]},
        ],
    }


#: name: (spec, Keras's total, the warning's field, words of its message)
CASES: dict[str, tuple[dict[str, Any], int, str, str]] = {
    "initial_state count": (
        seq2seq(["enc[0][1]"]), 463, "layers.1.initial_state",
        "IndexError: list index out of range. Keras builds the model, but it fails on its "
        'first call (fit or predict): layer "dec" (LSTM) takes initial_state as 2 tensor(s)',
    ),
    "initial_state size": (
        seq2seq(["enc[0][1]", "enc[0][2]"], dec_units=4), 357, "layers.1.initial_state.0",
        "Dimensions must be equal: state 0 has shape (None, 6), the layer's is (None, 4)",
    ),
    "Attention query/key sizes": (
        attention(9, 8), 102, "layers.2.inputs",
        "Matrix size-incompatible: the query's last axis (9) and the key's (8) must agree",
    ),
    "AdditiveAttention query/key sizes": (
        attention(9, 8, "AdditiveAttention"), 111, "layers.2.inputs",
        "Incompatible shapes: the query's last axis (9) and the key's (8) must agree",
    ),
    "masked ConvLSTM1D that shortens the sequence": (
        {"input_shape": [1, 6, 7], "layers": [
            {"type": "Masking"}, {"type": "LayerNormalization"},
            {"type": "ConvLSTM1D", "filters": 1, "kernel_size": [5]}]},
        178, "layers.2", "Keras builds the model, but it fails on its first call",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_engine_reports_first_call_failures_without_raising(name: str) -> None:
    spec, total, field, words = CASES[name]
    with pytest.raises(SpecError) as strict:
        analyze(spec)  # the default stays strict: training needs it
    report = analyze(spec, strict=False)
    assert report.total_params == total
    first = report.first_call_failures[0]
    assert (first.path, first.message) == (strict.value.path, strict.value.message)
    assert first.path == field and words in first.message


def test_a_model_that_runs_has_no_first_call_failures() -> None:
    assert analyze(seq2seq(["enc[0][1]", "enc[0][2]"]), strict=False).first_call_failures == []
    assert analyze(attention(8, 8), strict=False).first_call_failures == []


def test_a_model_keras_refuses_to_build_is_refused_either_way() -> None:
    """Keras's build refusal wins over an earlier layer's first-call
    failure (it is Keras's verdict on the model), strict or not."""
    spec = {"input_shape": [5, 3], "layers": [
        {"type": "Dense", "units": 3, "activation": "glu"},  # fails on the first call
        {"type": "Dense", "units": 2}]}  # fmt: skip
    assert analyze(spec, strict=False).first_call_failures  # alone: a warning
    spec["layers"] += [{"type": "Flatten"}, {"type": "LSTM", "units": 2}]  # LSTM on rank 2
    for strict in (True, False):
        with pytest.raises(SpecError) as error:
            analyze(spec, strict=strict)
        assert error.value.path == "layers.3", error.value.message
        assert "expected ndim=3, found ndim=2" in error.value.message
    mha = {  # key and value lengths differ: MultiHeadAttention refuses to build
        "inputs": [{"shape": [5, 4]}, {"shape": [7, 4]}, {"shape": [6, 4]}],
        "layers": [{"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3,
                    "inputs": ["input_layer", "input_layer_1", "input_layer_2"]}],
    }  # fmt: skip
    with pytest.raises(SpecError, match="All dimensions of `value` and `key`"):
        analyze(mha, strict=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_params_answers_200_with_warnings_and_train_keeps_its_422(
    client: Any, spec: Any, idle_app: Any, name: str
) -> None:
    model, total, field, words = CASES[name]
    rv = client.post("/params", json=model)
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/params", "post", rv)
    document = rv.get_json()
    assert document["total_params"] == total
    assert f"Total params: {total:,} " in document["summary"]
    [warning] = document["warnings"]
    assert warning["field"] == field and words in warning["message"]

    x = [[[0.0] * 3] * 5] * 4
    train = {"model": copy.deepcopy(model), "data": {"x": x, "y": [[0.0]] * 4},
             "compile": {"loss": "mse"}, "fit": {"epochs": 1}}  # fmt: skip
    before = idle_app.extensions["jobs"].count()
    refused = idle_app.test_client().post("/train", json=train)
    assert refused.status_code == 422, refused.get_json()
    problem = refused.get_json()
    path = f"model.{field}"
    assert problem["errors"] == {path: [warning["message"]]}
    assert problem["detail"] == f"{path}: {warning['message']}"
    assert idle_app.extensions["jobs"].count() == before


def test_params_of_a_model_that_runs_has_an_empty_warnings_list(client: Any, spec: Any) -> None:
    rv = client.post("/params", json=attention(8, 8))
    assert rv.status_code == 200
    validate_response(spec, "/params", "post", rv)
    assert rv.get_json()["warnings"] == []


def test_params_still_refuses_what_keras_cannot_build(client: Any) -> None:
    model = seq2seq(["enc[0][1]", "enc[0][2]"])
    model["layers"][1]["units"] = 0
    rv = client.post("/params", json=model)
    assert rv.status_code == 422
    assert "layers.1.units" in rv.get_json()["errors"]


def test_the_cli_prints_the_warnings_and_exits_0(tmp_path: Path) -> None:
    model, total, field, words = CASES["initial_state count"]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    rv = subprocess.run(
        [sys.executable, "-m", "seqlab_cli", "params", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    assert f"Total params: {total:,} " in rv.stdout
    lines = rv.stdout.splitlines()
    assert lines[-2].startswith("Warnings (1): Keras builds and counts this model")
    assert lines[-1].startswith(f"  {field}: ") and words in lines[-1]


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_builds_these_and_fails_their_first_call(name: str) -> None:
    """Keras's ``count_params()`` and ``summary()`` of the built model are the
    engine's, and its first call fails."""
    import keras_oracle as oracle

    model = CASES[name][0]
    engine = analyze(model, strict=False)
    if oracle.is_graph(model):
        build = oracle.cached_graph_build(model)
        assert isinstance(build.report, dict) and build.first_call, build.verdict
        assert oracle.compare_graph(oracle.graph_report_fields(engine), build.report) == []
    else:
        assert oracle.compare(oracle.report_fields(engine), oracle.keras_report(model)) == []
        assert oracle.keras_run_error(model)
