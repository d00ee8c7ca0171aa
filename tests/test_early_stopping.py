"""``fit.early_stopping``: Keras's EarlyStopping arguments in ``POST /train``,
refused with the field's path when they cannot work, and a real job (a real
Redis and Celery worker) that stops before its epoch count and says why.

Exactness against Keras's own ``EarlyStopping`` on both backends:
tests/test_fitting.py.
"""

import pytest
from openapi_check import validate_response
from test_jobs import submit
from test_jobs import wait_for

EPOCHS = 1000


@pytest.mark.parametrize(
    ("early_stopping", "fit", "path", "reason"),
    [
        # Keras's default monitor, without validation data: it would never stop.
        ({}, {}, "fit.early_stopping.monitor", "no validation data"),
        ({"monitor": "val_loss"}, {}, "fit.early_stopping.monitor", "no validation data"),
        ({"monitor": "mae"}, {}, "fit.early_stopping.monitor", "one of loss"),
        ({"monitor": "val_mse"}, {"validation_split": 0.4}, "fit.early_stopping.monitor", "mse"),
        ({"monitor": "loss", "patience": -1}, {}, "fit.early_stopping.patience", "0"),
        ({"monitor": "loss", "patience": 1.5}, {}, "fit.early_stopping.patience", "integer"),
        ({"monitor": "loss", "min_delta": -0.1}, {}, "fit.early_stopping.min_delta", "0"),
        ({"monitor": "loss", "mode": "up"}, {}, "fit.early_stopping.mode", "auto, min, max"),
        (
            {"monitor": "loss", "restore_best_weights": 1},
            {},
            "fit.early_stopping.restore_best_weights",
            "boolean",
        ),
        (
            {"monitor": "loss", "start_from_epoch": -2},
            {},
            "fit.early_stopping.start_from_epoch",
            "0",
        ),
        ({"monitor": "loss", "verbose": 1}, {}, "fit.early_stopping.verbose", "Unknown"),
        ("loss", {}, "fit.early_stopping", "Invalid input type"),
    ],
)
def test_bad_early_stopping_is_422_and_nothing_is_queued(
    jobs_app, spec, early_stopping, fit, path, reason
):
    client = jobs_app.test_client()
    before = jobs_app.extensions["jobs"].count()
    body = {"example": "one_to_one", "fit": {**fit, "early_stopping": early_stopping}}
    rv = client.post("/train", json=body)
    assert rv.status_code == 422, rv.get_json()
    validate_response(spec, "/train", "post", rv)
    errors = rv.get_json()["errors"]
    # The field's own path ("fit.early_stopping" itself may read "fit.early_stopping._schema").
    messages = errors.get(path) or errors.get(f"{path}._schema")
    assert messages, errors
    assert any(reason in message for message in messages), errors
    assert jobs_app.extensions["jobs"].count() == before


@pytest.mark.parametrize(
    ("early_stopping", "fit"),
    [
        ({"monitor": "loss"}, {}),
        ({"monitor": "mae", "mode": "min", "baseline": 0.1}, {}),
        ({"monitor": "val_mae", "patience": 3}, {"validation_split": 0.4}),
        (None, {}),
    ],
)
def test_good_early_stopping_is_accepted(idle_app, early_stopping, fit):
    body = {
        "example": "one_to_one",
        "compile": {"metrics": ["mae"]},
        "fit": {**fit, "early_stopping": early_stopping},
    }
    rv = idle_app.test_client().post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()


def test_early_stopping_ends_a_job_before_its_epochs(jobs_client, spec):
    patience = 3
    body = {
        "example": "one_to_one",
        "compile": {"metrics": ["mae"]},
        "fit": {
            "epochs": EPOCHS,
            "early_stopping": {
                "monitor": "mae",
                "patience": patience,
                "min_delta": 0.01,
                "restore_best_weights": True,
            },
        },
    }
    rv = wait_for(jobs_client, submit(jobs_client, body).headers["Location"])
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    job = rv.get_json()
    assert job["status"] == "succeeded", job.get("error")
    result = job["result"]
    stopped = result["stopped"]
    assert stopped["reason"] == "early_stopping"
    assert stopped["epoch"] == result["epochs_completed"] < EPOCHS
    assert len(result["history"]["mae"]) == stopped["epoch"]
    # Keras stops `patience` epochs after the last improvement, and keeps
    # the value of the best epoch (1-based here).
    assert stopped["best_epoch"] == stopped["epoch"] - patience
    assert stopped["best"] == result["history"]["mae"][stopped["best_epoch"] - 1]
    assert stopped["monitor"] == "mae"
    assert stopped["restored_best_weights"] is True
    # The job's last progress is the epoch it stopped at, with nothing left.
    assert job["progress"]["epoch"] == stopped["epoch"]
    assert job["progress"]["eta_seconds"] == 0


def test_a_job_without_early_stopping_ran_all_its_epochs(jobs_client):
    body = {"example": "one_to_one", "fit": {"epochs": 3}}
    job = wait_for(jobs_client, submit(jobs_client, body).headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert job["result"]["stopped"] == {"reason": "epochs", "epoch": 3}
