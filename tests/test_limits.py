"""The limits of a training job (service/limits.py): each refusal is a 422
naming the field, the limit, its value and the request's value, with
nothing queued; the body of POST /train has its own limit (a 413)."""

import gc
import io
import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml
from openapi_check import validate_response

from seqlab import analyze
from seqlab.cost import ARRAY_OVERHEAD
from seqlab.cost import COMPILED_MAX_INDICES
from seqlab.cost import HeldArray
from seqlab.cost import compiled_fit_bytes
from seqlab.cost import model_file_bytes
from seqlab.cost import prediction_bytes_bound
from seqlab.cost import predictions_cost
from seqlab.examples import example_request
from seqlab.memory import train_memory
from service import create_app
from service.jobs.schemas import MAX_VALUES
from service.limits import DEFAULTS
from service.limits import from_environ

ROOT = Path(__file__).resolve().parent.parent

#: The issue's case: the seed's many_to_one model with an LSTM(200000),
#: 160,001,600,000 + 1,000,005 parameters.
HUGE = {
    "input_shape": [5, 1],
    "layers": [{"type": "LSTM", "units": 200_000}, {"type": "Dense", "units": 5}],
}


def post_train(app, body):
    """POST /train; returns the response and how many jobs it added."""
    jobs = app.extensions["jobs"]
    before = jobs.count()
    rv = app.test_client().post("/train", json=body)
    return rv, jobs.count() - before


def refused(spec, app, body, field):
    """The messages of a 422 at ``field``, with nothing queued."""
    rv, added = post_train(app, body)
    assert rv.status_code == 422, rv.get_json()
    validate_response(spec, "/train", "post", rv)
    assert added == 0
    return rv.get_json()["errors"][field]


def test_defaults_and_environment(monkeypatch):
    assert from_environ({}) == DEFAULTS
    assert from_environ({"SEQLAB_MAX_SAMPLES": " 50 "})["SEQLAB_MAX_SAMPLES"] == 50
    monkeypatch.setenv("SEQLAB_MAX_TRAIN_PARAMS", "1000")
    assert create_app({"TESTING": True}).config["SEQLAB_MAX_TRAIN_PARAMS"] == 1000


def test_compose_passes_each_limit_to_the_api_with_its_default():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["services"]["api"]["environment"]
    for name, default in DEFAULTS.items():
        assert environment[name] == f"${{{name}:-{default}}}"
    assert f"SEQLAB_WORKER_MEMORY_BYTES={DEFAULTS['SEQLAB_WORKER_MEMORY_BYTES']}" in (
        (ROOT / ".env.example").read_text().splitlines()
    )


@pytest.mark.parametrize("value", ["0", "-3", "many", "1e6", "2.5"])
def test_a_misread_limit_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("SEQLAB_MAX_EPOCH_SAMPLES", value)
    with pytest.raises(ValueError, match="SEQLAB_MAX_EPOCH_SAMPLES must be a positive integer"):
        create_app({"TESTING": True})


def test_the_issue_case_is_refused_for_training_and_counted(idle_app, spec):
    # The example's data (one sample) fits the model: only the limits refuse it.
    messages = refused(spec, idle_app, {"example": "many_to_one", "model": HUGE}, "model")
    assert messages[0] == (
        "The model has 160,002,600,005 parameters, over the limit of 100,000,000 for "
        "training (SEQLAB_MAX_TRAIN_PARAMS)."
    )
    memory = train_memory(analyze(HUGE), 1)
    assert f"the training step {memory.total:,} (" in messages[1]
    assert "budget of 8,589,934,592 bytes (SEQLAB_WORKER_MEMORY_BYTES)" in messages[1]

    rv = idle_app.test_client().post("/params", json=HUGE)
    assert rv.status_code == 200
    validate_response(spec, "/params", "post", rv)
    doc = rv.get_json()
    assert doc["total_params"] == 160_002_600_005
    assert doc["train_memory_bytes"] == train_memory(analyze(HUGE)).total
    assert doc["train_memory"]["batch_size"] == 32


def one_to_one(**changes):
    """The seed's one_to_one request: 5 samples of (1, 1), 1,000 epochs in
    batches of 5, 146 parameters; ``changes`` update its members."""
    body = example_request("one_to_one")
    for key, value in changes.items():
        body[key] = {**body[key], **value}
    return body


def two_features():
    """one_to_one with two values per sample."""
    return one_to_one(
        model={"input_shape": [1, 2]},
        data={"x": [[[v, v]] for v in (0.0, 0.2, 0.4, 0.6, 0.8)]},
    )


def worker_memory(body, x_shape, y_shape, batch, report=None):
    """The job's worker memory as seqlab/cost.py composes it, from its
    parts: the training step, the inline data (JSON, then float32 arrays),
    the predictions on the training inputs, the model file, twice, and a
    compiled fit's copy of the data."""
    report = report or analyze(body["model"])
    step = train_memory(report, batch, body["compile"].get("optimizer", "adam")).total
    x = HeldArray(tuple(x_shape), 4)
    data = x.load_bytes() + HeldArray(tuple(y_shape), 4).load_bytes()
    predictions, _ = predictions_cost(report, [x], batch, 64 * 1024**2)
    compiled = compiled_fit_bytes([x, HeldArray(tuple(y_shape), 4)])
    return step + data + predictions + 2 * model_file_bytes(report) + compiled


ONE_TO_ONE_MEMORY = worker_memory(one_to_one(), [5, 1, 1], [5, 1], 5)


@pytest.mark.parametrize(
    ("name", "value", "body", "field", "message"),
    [
        ("SEQLAB_MAX_TRAIN_PARAMS", 146, one_to_one(), "model",
         "The model has 146 parameters, over the limit of 145 for training "
         "(SEQLAB_MAX_TRAIN_PARAMS)."),
        ("SEQLAB_WORKER_MEMORY_BYTES", ONE_TO_ONE_MEMORY, one_to_one(), "model", None),
        ("SEQLAB_MAX_SAMPLES", 5, one_to_one(), "data.x",
         "x holds 5 samples, over the limit of 4 (SEQLAB_MAX_SAMPLES)."),
        ("SEQLAB_MAX_SAMPLE_VALUES", 2, two_features(), "data.x",
         "Each sample of x holds 1 × 2 = 2 values, over the limit of 1 "
         "(SEQLAB_MAX_SAMPLE_VALUES)."),
        ("SEQLAB_MAX_EPOCH_SAMPLES", 5000, one_to_one(), "fit.epochs",
         "fit.epochs × samples is 1,000 × 5 = 5,000, over the limit of 4,999 "
         "(SEQLAB_MAX_EPOCH_SAMPLES)."),
    ],
    ids=["params", "memory", "samples", "sample-values", "epoch-samples"],
)  # fmt: skip
def test_each_limit_refuses_one_over_and_takes_its_value(
    idle_app, spec, name, value, body, field, message
):
    idle_app.config[name] = value - 1
    (reason,) = refused(spec, idle_app, body, field)
    # The limit, its value and the request's value.
    assert f"{value:,}" in reason and f"{value - 1:,}" in reason and f"({name})" in reason
    assert message is None or reason == message

    idle_app.config[name] = value
    rv, added = post_train(idle_app, body)
    assert rv.status_code == 202, rv.get_json()
    assert added == 1


def test_memory_budget_message_names_its_parts(idle_app, spec):
    body = one_to_one(fit={"batch_size": 4}, compile={"optimizer": "sgd"})
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = 1
    (reason,) = refused(spec, idle_app, body, "model")
    report = analyze(body["model"])
    m = train_memory(report, 4, "sgd")
    x = HeldArray((5, 1, 1), 4)
    data = x.load_bytes() + HeldArray((5, 1), 4).load_bytes()
    predictions, _ = predictions_cost(report, [x], 4, 64 * 1024**2)
    file = 2 * model_file_bytes(report, "sgd")
    # 5 × (1 + 1) float32 values: padded, on the host and in the program; and
    # one call's sample orders.
    compiled = 4 * 40 + 4 * COMPILED_MAX_INDICES
    total = m.total + data + predictions + file + compiled
    assert reason == (
        f"Training it is estimated to take {total:,} bytes of worker memory: the training "
        f"step {m.total:,} (weights {m.weights:,}, gradients {m.gradients:,}, sgd state 0, "
        f"activations {m.activations:,} bytes for batches of 4), the data {data:,}, the "
        f"predictions on the training inputs {predictions:,}, the model file {file:,} and a "
        f"compiled fit's copy of the data {compiled:,}; "
        "over the worker's budget of 1 bytes (SEQLAB_WORKER_MEMORY_BYTES). A smaller "
        "fit.batch_size needs fewer activations; fit.store_predictions false skips the "
        "predictions."
    )


def test_memory_takes_the_batch_that_runs(idle_app, spec):
    # 5 samples, 2 for validation: batches of 3 samples, not of fit.batch_size.
    body = one_to_one(fit={"batch_size": 64, "validation_split": 0.4})
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = 1
    (reason,) = refused(spec, idle_app, body, "model")
    assert "for batches of 3)" in reason


def test_unknown_lengths_take_the_datas(idle_app, spec):
    model = {"input_shape": [None, 1], "layers": [{"type": "LSTM", "units": 8},
                                                  {"type": "Dense", "units": 1}]}  # fmt: skip
    x = [[[0.1]] * 400] * 2
    body = {"model": model, "data": {"x": x, "y": [[0.0], [1.0]]}, "fit": {"batch_size": 2}}
    concrete = analyze({**model, "input_shape": [400, 1]})
    needed = worker_memory(body | {"compile": {}}, [2, 400, 1], [2, 1], 2, concrete)
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = needed - 1
    (reason,) = refused(spec, idle_app, body, "model")
    assert f"estimated to take {needed:,} bytes" in reason
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = needed
    rv, added = post_train(idle_app, body)
    assert (rv.status_code, added) == (202, 1)


def test_every_limit_a_request_is_over_is_listed(idle_app, spec):
    for name in DEFAULTS:
        if name != "SEQLAB_MAX_TRAIN_BODY_BYTES":
            idle_app.config[name] = 1
    rv, added = post_train(idle_app, two_features())
    assert (rv.status_code, added) == (422, 0)
    errors = rv.get_json()["errors"]
    assert set(errors) == {"model", "data.x", "fit.epochs"}
    assert [len(errors[f]) for f in ("model", "data.x", "fit.epochs")] == [2, 2, 1]
    assert rv.get_json()["detail"] == f"model: {errors['model'][0]}"


# -- request bodies -------------------------------------------------------------


def numbers(count, seed=0):
    rng = random.Random(seed)
    return [rng.random() for _ in range(count)]


def test_train_body_over_its_limit_is_413_naming_it(idle_app, spec):
    idle_app.config["SEQLAB_MAX_TRAIN_BODY_BYTES"] = 2000
    body = json.dumps(one_to_one(data={"x": [[[v]] for v in numbers(200)],
                                       "y": [[v] for v in numbers(200)]}))  # fmt: skip
    jobs = idle_app.extensions["jobs"]
    before = jobs.count()
    rv = idle_app.test_client().post("/train", data=body, content_type="application/json")
    assert rv.status_code == 413
    validate_response(spec, "/train", "post", rv)
    assert rv.get_json()["detail"] == (
        f"The request body of POST /train is {len(body):,} bytes, over the limit of 2,000 bytes "
        "(SEQLAB_MAX_TRAIN_BODY_BYTES)."
    )
    assert jobs.count() == before


def test_train_takes_a_few_hundred_thousand_numbers(idle_app, spec):
    """The default body limit lets 300,000 numbers through at full float64
    precision (about 6 MB), five times /params' 1 MiB."""
    x = numbers(300_000)
    body = one_to_one(
        model={"input_shape": [30, 1]},
        data={"x": [[[v] for v in x[i : i + 30]] for i in range(0, len(x), 30)],
              "y": [[v] for v in numbers(10_000, seed=1)]},
        fit={"epochs": 1},
    )  # fmt: skip
    data = json.dumps(body)
    assert 1_048_576 * 5 < len(data) < DEFAULTS["SEQLAB_MAX_TRAIN_BODY_BYTES"]
    rv = idle_app.test_client().post("/train", data=data, content_type="application/json")
    assert rv.status_code == 202, rv.get_json()
    idle_app.extensions["jobs"].delete(rv.get_json()["id"])


def test_the_default_body_limit_binds_before_the_tensor_bound():
    # At full precision (about 20 bytes a number) the default body holds
    # fewer numbers than a Tensor field takes (MAX_VALUES): a request is
    # refused for its size, with the limit named, rather than by the parser.
    per_number = len(json.dumps(numbers(1000))) / 1000
    assert 300_000 < DEFAULTS["SEQLAB_MAX_TRAIN_BODY_BYTES"] / per_number <= MAX_VALUES


def test_params_keeps_its_own_limit(idle_app, spec):
    body = b" " * 1_048_577
    rv = idle_app.test_client().post("/params", data=body, content_type="application/json")
    assert rv.status_code == 413
    validate_response(spec, "/params", "post", rv)
    assert rv.get_json()["detail"] == (
        "The request body of POST /params is 1,048,577 bytes, over the limit of 1,048,576 bytes "
        "(FLASK_MAX_CONTENT_LENGTH)."
    )


# -- the estimate in POST /params ------------------------------------------------


def test_params_reports_the_estimate_it_assumed(client, spec):
    model = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]}
    rv = client.post("/params?train_batch_size=8&optimizer=sgd", json=model)
    assert rv.status_code == 200
    validate_response(spec, "/params", "post", rv)
    doc = rv.get_json()
    m = train_memory(analyze(model), 8, "sgd")
    assert doc["train_memory"] == m.to_dict()
    assert doc["train_memory_bytes"] == m.total
    # Another query is another answer, not the cached one.
    assert client.post("/params", json=model).get_json()["train_memory"]["optimizer"] == "adam"


def test_params_estimate_of_an_unknown_length_is_null(client, spec):
    rv = client.post(
        "/params", json={"input_shape": [None, 1], "layers": [{"type": "GRU", "units": 3}]}
    )
    validate_response(spec, "/params", "post", rv)
    doc = rv.get_json()
    assert doc["train_memory_bytes"] is None and doc["train_memory"]["activations"] is None
    assert doc["train_memory"]["weights"] == doc["param_bytes"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("train_batch_size=0", "train_batch_size"), ("train_batch_size=x", "train_batch_size"),
     ("train_batch_size=" + "9" * 5000, "train_batch_size"), ("optimizer=magic", "optimizer")],
)  # fmt: skip
def test_params_refuses_bad_estimate_options(client, spec, query, field):
    rv = client.post(
        f"/params?{query}", json={"input_shape": [1], "layers": [{"type": "Dense", "units": 1}]}
    )
    assert rv.status_code == 422
    validate_response(spec, "/params", "post", rv)
    assert list(rv.get_json()["errors"]) == [field]


# -- the memory budget counts graph models and validation data too ------------


def lstm_on(length, graph):
    """LSTM(2048) over a null length, as a Sequential or a graph model."""
    if not graph:
        return {"input_shape": [None, 1], "layers": [{"type": "LSTM", "units": 2048},
                                                     {"type": "Dense", "units": 1}]}  # fmt: skip
    return {
        "inputs": [{"name": "steps", "shape": [None, 1]}],
        "layers": [{"type": "LSTM", "units": 2048, "inputs": "steps"},
                   {"type": "Dense", "units": 1, "name": "out"}],
        "outputs": "out",
    }  # fmt: skip


@pytest.mark.parametrize("graph", [False, True], ids=["sequential", "graph"])
def test_a_null_length_takes_the_datas_in_graph_models_too(idle_app, spec, graph):
    # The issue's case: 64 sequences of 1,500 steps. Estimated without
    # activations, the graph form was queued (202) where the Sequential one
    # was refused.
    body = {
        "model": lstm_on(None, graph),
        "data": {"x": [[[0.5]] * 1500] * 64, "y": [[0.0]] * 64},
        "fit": {"batch_size": 64},
    }
    concrete = analyze(lstm_on(None, False) | {"input_shape": [1500, 1]})
    needed = train_memory(concrete, 64).total
    assert needed > DEFAULTS["SEQLAB_WORKER_MEMORY_BYTES"]
    (reason,) = refused(spec, idle_app, body, "model")
    assert f"the training step {needed:,} (" in reason


def upload_npz(app, **arrays):
    """A dataset of ``arrays`` uploaded through the API; its id."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    rv = app.test_client().post(
        "/datasets", data=buffer.getvalue(), content_type="application/octet-stream"
    )
    assert rv.status_code == 201, rv.get_json()
    return rv.get_json()["id"]


def short_and_long(app, validation_steps):
    """A train request on 10 steps whose validation dataset has ``validation_steps``."""
    train_id = upload_npz(app, x=np.zeros((4, 10, 1), "float32"), y=np.zeros((4, 1), "float32"))
    val_id = upload_npz(
        app, x=np.zeros((2, validation_steps, 1), "float32"), y=np.zeros((2, 1), "float32")
    )
    model = {"input_shape": [None, 1], "layers": [{"type": "LSTM", "units": 16},
                                                  {"type": "Dense", "units": 1}]}  # fmt: skip
    return {
        "model": model,
        "data": {"dataset": train_id},
        "validation": {"dataset": val_id},
        "fit": {"batch_size": 2, "validation_split": 0},
    }


def test_validation_data_counts_against_the_value_limit(idle_app, spec):
    # The issue's case, scaled down: a long validation set beside short
    # training sequences was counted by neither limit.
    idle_app.config["SEQLAB_MAX_SAMPLE_VALUES"] = 1000
    body = short_and_long(idle_app, 5000)
    (reason,) = refused(spec, idle_app, body, "validation.x")
    assert reason == (
        "Each sample of validation.x holds 5000 × 1 = 5,000 values, over the limit of "
        "1,000 (SEQLAB_MAX_SAMPLE_VALUES)."
    )


def test_validation_data_counts_against_the_memory_budget(idle_app, spec):
    body = short_and_long(idle_app, 5000)
    model = body["model"]
    at = {n: train_memory(analyze(model | {"input_shape": [n, 1]}), 2).total for n in (10, 5000)}
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = 1
    (reason,) = refused(spec, idle_app, body, "model")
    # The step at the validation data's length, and the dataset's float32
    # arrays: read (their chunks, joined), already of the input's dtype.
    assert f"the training step {at[5000]:,} (" in reason
    data = 2 * 4 * (4 * 10 + 4 + 2 * 5000 + 2) + 4 * ARRAY_OVERHEAD
    assert f"the data {data:,}," in reason
    needed = int(reason.split(" bytes of worker memory")[0].rsplit(" ", 1)[1].replace(",", ""))
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = needed - 1
    refused(spec, idle_app, body, "model")
    idle_app.config["SEQLAB_WORKER_MEMORY_BYTES"] = needed
    rv, added = post_train(idle_app, body)
    assert (rv.status_code, added) == (202, 1)
    assert at[10] < at[5000]


def test_the_job_document_shows_the_cost_its_limits_were_checked_against(idle_app, spec):
    body = one_to_one()
    rv, added = post_train(idle_app, body)
    assert (rv.status_code, added) == (202, 1)
    job = idle_app.test_client().get(f"/jobs/{rv.get_json()['id']}")
    validate_response(spec, "/jobs/{job_id}", "get", job)
    cost = job.get_json()["estimated_cost"]
    assert cost["worker_memory_bytes"] == ONE_TO_ONE_MEMORY == sum(cost["worker_memory"].values())
    assert cost["training_step"] == train_memory(analyze(body["model"]), 5).to_dict()
    report = analyze(body["model"])
    # 5 predictions of one value each; 1,000 epochs of the loss alone.
    assert cost["stored"] == {
        "model_file": model_file_bytes(report),
        "predictions": prediction_bytes_bound(5, 1),
        "history": 1000 * 30,
    }
    assert cost["stored_bytes"] == sum(cost["stored"].values())


# -- large bodies -----------------------------------------------------------------


def large_body(values=400_000):
    """A train request of ``values`` steps of one value: some 4.4 MB of JSON,
    over LARGE_BODY_BYTES, refused by the value limits once read."""
    return json.dumps({
        "model": {"input_shape": [None, 1], "layers": [{"type": "Dense", "units": 1}]},
        "data": {"x": [[[0.5]] * values], "y": [[0.5]]},
    }).encode()  # fmt: skip


def test_a_large_body_over_the_processs_slots_is_503_undecoded(idle_app, spec):
    # One slot, held (as by a large body being read on another thread).
    app = create_app({**idle_app.config, "SEQLAB_LARGE_BODIES": 1})
    slots = app.extensions["body_slots"]
    assert slots.take()
    client = app.test_client()
    rv = client.post("/train", data=large_body(), content_type="application/json")
    assert rv.status_code == 503
    validate_response(spec, "/train", "post", rv)
    assert rv.headers["Retry-After"] == "2"
    assert (
        "(SEQLAB_LARGE_BODIES, over 1,048,576 bytes each); this one has" in rv.get_json()["detail"]
    )
    # A small train request, and every other route, do not wait for a slot.
    rv = client.post("/train", json=one_to_one())
    assert rv.status_code == 202, rv.get_json()
    assert client.get("/healthz").status_code == 200
    slots.give_back()
    rv = client.post("/train", data=large_body(), content_type="application/json")
    assert rv.status_code == 422, rv.get_json()


def test_a_large_body_pauses_the_collector_while_it_is_read(app):
    slots = app.extensions["body_slots"]
    assert gc.isenabled()
    paused = []
    app.before_request(lambda: paused.append(not gc.isenabled()) and None)
    rv = app.test_client().post("/train", data=large_body(), content_type="application/json")
    assert rv.status_code == 422
    assert paused == [True] and gc.isenabled() and slots._held == 0
    app.test_client().post("/train", json=one_to_one())
    assert paused == [True, False]


def test_a_large_bodys_cost_in_the_api(app):
    # What the slots bound: decoding a train body of short sequences takes
    # some 30 times its size in Python objects.
    body = large_body()
    tracemalloc.start()
    try:
        rv = app.test_client().post("/train", data=body, content_type="application/json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rv.status_code == 422
    assert 10 * len(body) < peak < 60 * len(body)


def test_a_train_request_reading_a_large_dataset_needs_a_slot_too(idle_app, spec):
    # Its body is small, but the API reads and checks the dataset's arrays:
    # as much memory as a large body.
    app = create_app({**idle_app.config, "SEQLAB_LARGE_BODIES": 1})
    large = upload_npz(app, x=np.zeros((40, 10_000, 1), "float32"), y=np.zeros((40, 1), "float32"))
    small = upload_npz(app, x=np.zeros((4, 10, 1), "float32"), y=np.zeros((4, 1), "float32"))
    model = {"input_shape": [None, 1], "layers": [{"type": "Dense", "units": 1},
                                                  {"type": "GlobalAveragePooling1D"}]}  # fmt: skip
    slots = app.extensions["body_slots"]
    assert slots.take()
    client = app.test_client()
    rv = client.post("/train", json={"model": model, "data": {"dataset": large}})
    assert rv.status_code == 503
    validate_response(spec, "/train", "post", rv)
    assert rv.headers["Retry-After"] == "2"
    assert f"this request reads 1,600,160 bytes of dataset {large}" in rv.get_json()["detail"]
    rv = client.post("/train", json={"model": model, "data": {"dataset": small}})
    assert rv.status_code == 202, rv.get_json()
    slots.give_back()
    rv = client.post("/train", json={"model": model, "data": {"dataset": large}})
    assert rv.status_code == 202, rv.get_json()
    assert slots._held == 0
