"""``POST /train`` for Functional (graph) models: data as one array, a list
or an object by input/output name, checked against every input and output
before queuing; losses, loss weights and metrics per output; training
through the real worker; predictions by output name."""

from __future__ import annotations

import copy
import math

import pytest
from fit_compare import plain_program
from specs import TWO_BY_TWO

from jobs.store import TERMINAL

SAMPLES = 12


def arrays() -> tuple[dict[str, list], dict[str, list]]:
    """Deterministic data: ``reg`` is a function of the inputs, ``cls``
    one-hot labels of the sign pattern, so a few epochs lower both losses."""
    seq = [[[math.sin(i + t + f) for f in range(2)] for t in range(4)] for i in range(SAMPLES)]
    extra = [[math.cos(i * (k + 1)) for k in range(3)] for i in range(SAMPLES)]
    reg = [[sum(e), e[0] - s[-1][0]] for s, e in zip(seq, extra, strict=True)]
    cls = [[1.0 if k == i % 3 else 0.0 for k in range(3)] for i in range(SAMPLES)]
    return {"seq": seq, "extra": extra}, {"reg": reg, "cls": cls}


def body(x, y, **compile_options) -> dict:
    return {
        "model": copy.deepcopy(TWO_BY_TWO),
        "data": {"x": x, "y": y},
        "compile": {
            "loss": {"reg": "mse", "cls": "categorical_crossentropy"},
            "metrics": {"cls": ["accuracy"]},
            **compile_options,
        },
        "fit": {"epochs": 30, "batch_size": 4},
    }


def wait(client, location, timeout=180):
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = client.get(location).get_json()
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_two_inputs_two_outputs_train_with_list_and_dict_data(backend_client):
    jobs_client = backend_client
    x, y = arrays()
    by_name = body(x, y, loss_weights={"cls": 0.5, "reg": 1.0})
    # The list form in the model's order, losses and loss weights as lists.
    listed = body(
        [x["seq"], x["extra"]],
        [y["reg"], y["cls"]],
        loss=["mse", "categorical_crossentropy"],
        loss_weights=[1.0, 0.5],
        metrics={"cls": ["accuracy"]},
    )
    jobs = []
    for request in (by_name, listed):
        rv = jobs_client.post("/train", json=request)
        assert rv.status_code == 202, rv.get_json()
        jobs.append(wait(jobs_client, rv.headers["Location"]))
    for job in jobs:
        assert job["status"] == "succeeded", job.get("error")
        result = job["result"]
        history = result["history"]
        # Keras's per-output losses are kept beside the total.
        assert set(history) == {"loss", "reg_loss", "cls_loss", "cls_accuracy"}
        assert history["loss"][-1] < history["loss"][0]
        assert set(result["predictions"]) == {"reg", "cls"}
        assert len(result["predictions"]["reg"]) == SAMPLES
        assert len(result["predictions"]["cls"][0]) == 3
        assert result["keras_params"] == job["params"]["total_params"]
        assert job["request"]["data_shapes"] == {
            "x": {"seq": [SAMPLES, 4, 2], "extra": [SAMPLES, 3]},
            "y": {"reg": [SAMPLES, 2], "cls": [SAMPLES, 3]},
        }
    # Same data, same seed, same order: the same training either way.
    assert jobs[0]["result"]["history"] == jobs[1]["result"]["history"]

    # The trained model answers several inputs by name or in order,
    # each output by its name.
    job_id = jobs[0]["id"]
    first = {"seq": x["seq"][:2], "extra": x["extra"][:2]}
    answers = []
    for instances in (first, [first["seq"], first["extra"]]):
        rv = jobs_client.post(f"/jobs/{job_id}/predict", json={"instances": instances})
        assert rv.status_code == 200, rv.get_json()
        answers.append(rv.get_json()["predictions"])
    assert answers[0] == answers[1]
    expected = jobs[0]["result"]["predictions"]
    for name in ("reg", "cls"):
        for got, want in zip(answers[0][name], expected[name][:2], strict=True):
            pairs = zip(got, want, strict=True)
            assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) for a, b in pairs)
    rv = jobs_client.post(f"/jobs/{job_id}/predict", json={"instances": {"seq": first["seq"]}})
    assert rv.status_code == 422
    assert "instances" in rv.get_json()["errors"]


def refused(app, request):
    rv = app.test_client().post("/train", json=request)
    assert rv.status_code == 422, rv.get_json()
    return rv.get_json()


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda b: b["data"]["x"].update(seq=[[[0.0] * 2] * 5] * SAMPLES), "data.x.seq",
         "does not fit the model's input 'seq' (None, 4, 2)"),
        (lambda b: b["data"]["y"].update(cls=[[0.0] * 4] * SAMPLES), "data.y.cls",
         "does not fit the model's output 'cls' (None, 3) with loss categorical_crossentropy"),
        (lambda b: b["data"]["x"].update(other=[[1.0]] * SAMPLES), "data.x.other",
         "Unknown input 'other': the model's inputs are seq, extra."),
        (lambda b: b["data"]["x"].pop("extra"), "data.x", "Missing input 'extra'"),
        (lambda b: b["data"].update(x=[b["data"]["x"]["seq"]]), "data.x",
         "the model has 2 inputs (seq, extra)"),
        (lambda b: b["data"].update(x=[b["data"]["x"]["seq"], [[0.0] * 2] * SAMPLES]),
         "data.x.1", "does not fit the model's input 'extra' (None, 3)"),
        (lambda b: b["data"]["y"].update(reg=b["data"]["y"]["reg"][:5]), "data",
         "Every array needs the same number of samples"),
        (lambda b: b["compile"].update(loss={"reg": "mse"}), "compile.loss",
         "Missing a loss for output 'cls'"),
        (lambda b: b["compile"].update(loss={"reg": "mse", "cls": "mse", "dense": "mse"}),
         "compile.loss.dense", "Unknown output 'dense'"),
        (lambda b: b["compile"].update(loss_weights=[1.0]), "compile.loss_weights",
         "Received 1 loss weights, but the model has 2 outputs"),
        (lambda b: b["compile"].update(metrics={"regression": ["mae"]}),
         "compile.metrics.regression", "Unknown output 'regression'"),
        (lambda b: b["data"]["y"]["cls"].__setitem__(0, [2.0, 0.0, 0.0]), "data.y.cls",
         "categorical_crossentropy"),
        (lambda b: b["fit"].update(early_stopping={"monitor": "cls_mae"}),
         "fit.early_stopping.monitor", "reg_loss"),
        (lambda b: b["fit"].update(early_stopping={"monitor": "cls_loss"}),
         "fit.early_stopping.mode", "cannot tell whether 'cls_loss' should fall or rise"),
        (lambda b: b["data"].update(dataset="ds_x"), "data.dataset",
         "Give data.x and data.y inline: an uploaded dataset holds one x and one y array, "
         "and this model has 2 inputs and 2 outputs."),
    ],
)  # fmt: skip
def test_graph_requests_are_refused_before_queuing(idle_app, change, path, fragment):
    x, y = arrays()
    request = body(x, y)
    change(request)
    if "dataset" in request["data"]:
        del request["data"]["x"], request["data"]["y"]
    jobs = idle_app.extensions["jobs"]
    before = jobs.count()
    errors = refused(idle_app, request)["errors"]
    assert path in errors, errors
    assert any(fragment in message for message in errors[path]), errors[path]
    assert jobs.count() == before


def test_sequential_models_keep_one_array_and_one_loss(idle_app):
    request = {
        "model": {"input_shape": [2, 1], "layers": [{"type": "Dense", "units": 1}]},
        "data": {"x": [[[1.0], [2.0]]], "y": [[[1.0], [2.0]]]},
        "compile": {"loss": ["mse"]},
    }
    errors = refused(idle_app, request)["errors"]
    assert errors == {"compile.loss": ["A Sequential model has one output: give one loss."]}
    request["compile"] = {"loss": "mse"}
    request["data"]["x"] = {"input_layer": [[[1.0], [2.0]]]}
    errors = refused(idle_app, request)["errors"]
    assert errors == {"data.x": ["Must be a (nested) list of numbers, samples first."]}
    # A ragged list keeps Tensor's own words.
    request["data"]["x"] = [[[1.0]], [[1.0], [2.0]]]
    errors = refused(idle_app, request)["errors"]
    assert "Must be rectangular" in errors["data.x"][0]


def test_one_array_for_a_single_input_graph(idle_app):
    x, y = arrays()
    request = body(x, y)
    request["model"] = {
        "inputs": [{"shape": [3]}],
        "layers": [{"type": "Dense", "units": 2}],
    }
    request["data"] = {"x": x["extra"], "y": y["reg"]}
    request["compile"] = {"loss": "mse"}
    client = idle_app.test_client()
    rv = client.post("/train", json=request)
    assert rv.status_code == 202, rv.get_json()
    assert rv.get_json()["request"]["data_shapes"] == {
        "x": {"input_layer": [SAMPLES, 3]},
        "y": {"dense": [SAMPLES, 2]},
    }
    client.delete(f"/jobs/{rv.get_json()['id']}")


def test_per_output_histories_are_plotted_beside_the_loss():
    from service.jobs.plots import job_curves
    from service.jobs.plots import panels

    names = ["loss", "reg_loss", "cls_loss", "cls_accuracy", "val_loss", "val_cls_loss"]
    assert panels(names) == [
        ["loss", "val_loss"],
        ["cls_accuracy"],
        ["cls_loss", "val_cls_loss"],
        ["reg_loss"],
    ]
    job = {
        "id": "0" * 32,
        "status": "succeeded",
        "result": {"history": {n: [1.0, 0.5] for n in names}, "epochs_completed": 2},
        "request": {"model": {"inputs": [{"shape": [3]}], "layers": []}},
    }
    assert job_curves(job).title.startswith("functional · final loss")


def test_a_one_input_one_output_graph_trains_on_a_dataset(backend_client):
    """A dataset holds one x and one y: a Functional model with one input and
    one output (given as a list of one) trains on it, validation arrays too."""
    import io

    import numpy as np

    jobs_client = backend_client
    x, y = arrays()
    xs, ys = np.asarray(x["extra"], "float32"), np.asarray(y["reg"], "float32")
    buffer = io.BytesIO()
    np.savez(buffer, x=xs, y=ys, x_val=xs[:4], y_val=ys[:4])
    rv = jobs_client.post(
        "/datasets", data=buffer.getvalue(), headers={"Content-Type": "application/octet-stream"}
    )
    assert rv.status_code == 201, rv.get_json()
    dataset = rv.get_json()["id"]
    model = {
        "inputs": [{"name": "extra", "shape": [3]}],
        "layers": [{"type": "Dense", "units": 2, "name": "reg"}],
        "outputs": ["reg"],
    }
    request = {
        "model": model,
        "data": {"dataset": dataset},
        "fit": {"epochs": 3, "batch_size": 4, "early_stopping": {"monitor": "val_loss"}},
    }
    rv = jobs_client.post("/train", json=request)
    assert rv.status_code == 202, rv.get_json()
    job = wait(jobs_client, rv.headers["Location"])
    assert job["status"] == "succeeded", job.get("error")
    assert set(job["result"]["history"]) == {"loss", "val_loss"}
    # One output, even listed: the list of its values, as Keras's predict.
    assert len(job["result"]["predictions"]) == SAMPLES
    assert job["request"]["data_shapes"]["x"] == {"extra": [SAMPLES, 3]}
    # The validation arrays are checked against the model as data is.
    model["inputs"][0]["shape"] = [4]
    rv = jobs_client.post("/train", json=request)
    assert rv.status_code == 422
    assert "does not fit the model's input 'extra' (None, 4)" in rv.get_json()["detail"]


def test_validation_and_early_stopping_per_output_equal_keras(backend_client):
    """With validation_split and early stopping on a per-output validation
    loss (Keras's own fit, epoch by epoch): the history is what Keras's plain
    ``fit`` of the same program logs, and the downloaded model predicts, from
    a list of inputs, what the job answered, by output name."""
    import os
    import tempfile

    import keras
    import numpy as np

    jobs_client = backend_client
    x, y = arrays()
    request = body(x, y, loss_weights={"reg": 1.0, "cls": 0.5})
    request["fit"] = {
        "epochs": 12,
        "batch_size": 4,
        "shuffle": False,
        "validation_split": 0.25,
        "early_stopping": {"monitor": "val_cls_loss", "patience": 50, "mode": "min"},
    }
    rv = jobs_client.post("/train", json=request)
    assert rv.status_code == 202, rv.get_json()
    job = wait(jobs_client, rv.headers["Location"])
    assert job["status"] == "succeeded", job.get("error")
    history = job["result"]["history"]
    names = {"loss", "reg_loss", "cls_loss", "cls_accuracy"}
    assert set(history) == names | {f"val_{n}" for n in names}
    assert job["result"]["stopped"]["monitor"] == "val_cls_loss"

    # The same program in this process: Keras's plain fit on lists.
    model = plain_program(request["model"], job["request"]["compile"], 0)
    xs = [np.asarray(x["seq"], "float32"), np.asarray(x["extra"], "float32")]
    ys = [np.asarray(y["reg"], "float32"), np.asarray(y["cls"], "float32")]
    plain = model.fit(
        xs, ys, epochs=12, batch_size=4, shuffle=False, validation_split=0.25, verbose=0
    ).history
    assert set(plain) == set(history)
    # The same numbers where this process runs the worker's backend.
    same_backend = keras.backend.backend() == backend_client.backend
    for name, values in plain.items() if same_backend else ():
        pairs = zip(history[name], values, strict=True)
        assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) for a, b in pairs), name

    model_file = jobs_client.get(f"/jobs/{job['id']}/model").data
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(model_file)
        loaded = keras.saving.load_model(path)
    reg, cls = loaded.predict(xs, verbose=0)
    answered = job["result"]["predictions"]
    assert np.allclose(reg, answered["reg"], rtol=1e-4, atol=1e-5)
    assert np.allclose(cls, answered["cls"], rtol=1e-4, atol=1e-5)
