"""Loss curves: GET /jobs/<id>/plot.png and plot.svg, of jobs trained by a
real worker (finished, and running: the curve so far), and the pure
functions that decide what is drawn."""

import io
import math
import struct
import time
import uuid
import xml.etree.ElementTree as ET

import matplotlib.image
import pytest
from openapi_check import validate_response
from tenants import Tenants
from test_imports import loaded_after
from test_jobs import LONG
from test_jobs import submit
from test_jobs import wait_for

from service.jobs.plots import block_middles
from service.jobs.plots import job_curves
from service.jobs.plots import panels
from service.jobs.plots import use_log_scale

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    """(width, height) from a PNG's IHDR chunk, which must come first."""
    assert data[:8] == PNG_MAGIC
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


def decoded(data):
    """The PNG decoded (by Pillow, through matplotlib): rows × columns × channels."""
    return matplotlib.image.imread(io.BytesIO(data), format="png")


# -- what is drawn ------------------------------------------------------------


@pytest.mark.parametrize(
    "values, log",
    [
        ([1.0, 0.5, 0.0099], True),  # 101×: more than two decades
        ([1.0, 0.01], False),  # exactly two decades
        ([0.2, 0.1, 0.05], False),
        ([0.3, 2.4e-14], True),  # the seed's many_to_one reaches 2.4e-14
        ([0.3, 0.0, 1e-9], True),  # zeros are left out of a log axis
        ([0.3, -0.5, 1e-9], False),  # a negative loss (cosine_similarity) has no log axis
        ([1.0, math.nan, math.inf, 0.5], False),  # gaps do not count
        ([5.0], False),
        ([], False),
    ],
)
def test_log_scale_when_values_span_more_than_two_decades(values, log):
    assert use_log_scale(values) is log


def test_points_are_drawn_at_their_blocks_middle_epoch():
    assert block_middles(3, 1, 3) == [1, 2, 3]
    # Blocks of 10 epochs over 25: 1..10, 11..20 and the partial 21..25.
    assert block_middles(3, 10, 25) == [5.5, 15.5, 23.0]
    assert block_middles(1, 100, 1) == [1.0]


def test_each_metric_gets_a_panel_with_its_validation_values():
    names = ["val_mae", "loss", "mae", "val_loss", "accuracy", "val_rmse"]
    assert panels(names) == [["loss", "val_loss"], ["accuracy"], ["mae", "val_mae"], ["val_rmse"]]


def running_record(**fields):
    return {
        "id": uuid.uuid4().hex,
        "status": "running",
        "attempt": 2,
        "request": {"model": {"name": "demo"}, "fit": {"epochs": 100_000}},
        "progress": {"loss": 0.25},
        "history_so_far": {
            "attempt": 2,
            "history": {"loss": [1.0, 0.5, 0.25]},
            "history_block": 100,
            "epochs_completed": 250,
        },
        **fields,
    }


def test_a_running_jobs_curve_is_its_history_so_far():
    curves = job_curves(running_record())
    assert curves.history == {"loss": [1.0, 0.5, 0.25]}
    assert (curves.block, curves.epochs) == (100, 250)
    assert curves.title == "demo · latest loss 0.25"
    assert "running, 250 of 100000 epochs" in curves.subtitle
    assert "means over blocks of 100 epochs" in curves.subtitle


def test_a_rerun_shows_nothing_of_the_run_before():
    assert job_curves(running_record(attempt=3)) is None
    assert job_curves(running_record(history_so_far=None)) is None


# -- the routes, with a real worker --------------------------------------------


def test_plot_of_a_finished_job(jobs_client, spec):
    body = {"example": "many_to_many", "fit": {"epochs": 40}}
    location = submit(jobs_client, body).headers["Location"]
    job = wait_for(jobs_client, location).get_json()
    assert job["status"] == "succeeded", job.get("error")

    rv = jobs_client.get(f"{location}/plot.png")
    assert rv.status_code == 200, rv.get_data()
    validate_response(spec, "/jobs/{job_id}/plot.png", "get", rv)
    assert rv.mimetype == "image/png"
    assert png_size(rv.data) == (800, 480)
    assert decoded(rv.data).shape[:2] == (480, 800)
    assert rv.headers["Cache-Control"] == "private, max-age=86400"
    # The same history, the same tag; a client holding it gets a 304.
    tag = rv.headers["ETag"]
    assert jobs_client.get(f"{location}/plot.png").headers["ETag"] == tag
    rv = jobs_client.get(f"{location}/plot.png", headers={"If-None-Match": tag})
    assert rv.status_code == 304 and rv.data == b""
    validate_response(spec, "/jobs/{job_id}/plot.png", "get", rv)

    rv = jobs_client.get(f"{location}/plot.svg")
    assert rv.status_code == 200
    validate_response(spec, "/jobs/{job_id}/plot.svg", "get", rv)
    assert rv.mimetype == "image/svg+xml"
    svg = ET.fromstring(rv.data)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(
        "".join(node.itertext()) for node in svg.iter("{http://www.w3.org/2000/svg}text")
    )
    final = job["result"]["final_metrics"]["loss"]
    assert f"sequential · final loss {final:.4g}" in text
    assert "example many_to_many" in text and "succeeded, 40 of 40 epochs" in text
    assert rv.headers["ETag"] != tag  # another picture of the same history


def test_plot_of_a_running_job_is_its_curve_so_far(jobs_client, spec):
    location = submit(jobs_client, LONG).headers["Location"]
    try:
        deadline = time.monotonic() + 120
        while (rv := jobs_client.get(f"{location}/plot.png")).status_code == 409:
            assert time.monotonic() < deadline, "no curve appeared"
            time.sleep(0.1)
        assert rv.status_code == 200, rv.get_data()
        validate_response(spec, "/jobs/{job_id}/plot.png", "get", rv)
        assert png_size(rv.data) == (800, 480)
        assert decoded(rv.data).shape[:2] == (480, 800)
        assert rv.headers["Cache-Control"] == "private, no-cache"
        first = rv.headers["ETag"]
        # Seconds later the history so far has grown: another picture.
        deadline = time.monotonic() + 30
        while (rv := jobs_client.get(f"{location}/plot.svg")).headers["ETag"] == first:
            assert time.monotonic() < deadline, "the curve so far did not grow"
            time.sleep(0.5)
        text = "".join(ET.fromstring(rv.data).itertext())
        assert "running" in text and "means over blocks of 100 epochs" in text
        job = jobs_client.get(location).get_json()
        assert job["status"] == "running" and "result" not in job
    finally:
        jobs_client.post(f"{location}/cancel")
        wait_for(jobs_client, location, timeout=30)
    # Cancelled: the partial history it keeps is what is drawn now.
    rv = jobs_client.get(f"{location}/plot.png")
    assert rv.status_code == 200 and rv.headers["Cache-Control"] == "private, max-age=86400"


def test_a_job_without_an_epoch_has_no_plot(idle_app, spec):
    client = idle_app.test_client()
    location = submit(client, {"example": "many_to_one"}).headers["Location"]
    for fmt in ("png", "svg"):
        rv = client.get(f"{location}/plot.{fmt}")
        assert rv.status_code == 409
        assert rv.content_type == "application/problem+json"
        assert "is queued and has no history yet" in rv.get_json()["detail"]
        validate_response(spec, f"/jobs/{{job_id}}/plot.{fmt}", "get", rv)
    # Cancelled while queued: it never will have one.
    assert client.post(f"{location}/cancel").status_code == 200
    rv = client.get(f"{location}/plot.png")
    assert rv.status_code == 409
    assert "ended (cancelled) before its first epoch" in rv.get_json()["detail"]


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_plot_of_an_unknown_or_another_tenants_job_is_404(redis_url, spec, fmt):
    tenants = Tenants()
    app = tenants.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    client = app.test_client()
    rv = client.post("/train", json={"example": "many_to_one"}, headers=tenants.bearer("alice"))
    location = rv.headers["Location"]
    # Alice's job, queued: hers to see (409: no history yet), nobody else's.
    assert client.get(f"{location}/plot.{fmt}", headers=tenants.bearer("alice")).status_code == 409
    theirs = client.get(f"{location}/plot.{fmt}", headers=tenants.bearer("bob"))
    unknown = client.get(f"/jobs/{uuid.uuid4().hex}/plot.{fmt}", headers=tenants.bearer("bob"))
    for rv in (theirs, unknown):
        assert rv.status_code == 404
        validate_response(spec, f"/jobs/{{job_id}}/plot.{fmt}", "get", rv)
    assert (
        client.get(f"/jobs/not-an-id/plot.{fmt}", headers=tenants.bearer("bob")).status_code == 404
    )
    assert client.get(f"{location}/plot.{fmt}").status_code == 401


def test_the_api_imports_matplotlib_for_a_plot_only():
    modules = loaded_after(
        "from service import create_app\n"
        "c = create_app({'TESTING': True}).test_client()\n"
        "assert c.post('/params', json={'input_shape': [5, 1], 'layers': "
        "[{'type': 'LSTM', 'units': 5}]}).status_code == 200\n"
        "assert c.get('/docs').status_code == 200"
    )
    assert "matplotlib" not in modules
    # The same check sees matplotlib once a picture is drawn.
    modules = loaded_after(
        "from service.jobs.plots import Curves, render\n"
        "render(Curves({'loss': [1.0, 0.5]}, 1, 2, 'title', 'subtitle'), 'png')"
    )
    assert "matplotlib" in modules
