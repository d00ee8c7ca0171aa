"""The bounded-cost findings, reproduced as they were found: against a real
gunicorn (gthread, 2 processes × 4 threads) on a real Redis, at the default
limits. Each was accepted before (a 201 or a 202); each is now refused
before anything is stored or queued. (The dataset race and the 60 event
streams run on gunicorn too, in test_datasets.py and test_streams.py.)"""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import serve_api
from tenants import Tenants

pytestmark = pytest.mark.slow

TENANTS = Tenants("dave")
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def api(redis_url, queue, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with serve_api(
        log, processes=2, threads=4, REDIS_URL=redis_url, SEQLAB_QUEUE=queue,
        SEQLAB_API_KEYS=TENANTS.config,
    ) as base:  # fmt: skip
        yield base


def call(base, method, path, body=None, headers=None):
    """(status, JSON document) of one request as tenant dave."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    kind = {"Content-Type": "application/json"} if isinstance(body, dict) else {}
    request = urllib.request.Request(
        f"{base}{path}", data=data, method=method,
        headers={**kind, **(headers or {}), **TENANTS.bearer("dave")},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def gunicorn_peak_rss(base):
    """The largest peak resident size (VmHWM, bytes) among the processes
    serving ``base``: gunicorn's master and its workers."""
    bind = base.removeprefix("http://").encode()
    peaks = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and bind in (proc / "cmdline").read_bytes():
                status = (proc / "status").read_text()
                peaks.append(int(status.split("VmHWM:")[1].split()[0]) * 1024)
        except (OSError, IndexError):
            continue  # a process that ended while it was read
    assert peaks, "no gunicorn process found"
    return max(peaks)


def test_the_decoy_zip_bomb_is_refused_unread(api):
    # The upload: a 100 MB x member (deflated to some 100 kB), then
    # a small x.npy decoy, whose header the size check used to read (the
    # last of the two names won) while numpy loaded the member named x.
    x, y = np.zeros((4, 10, 1), "float32"), np.zeros((4, 1), "float32")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x", npy(np.zeros((25_000_000,), "float32")))
        archive.writestr("x.npy", npy(x))
        archive.writestr("y.npy", npy(y))
    body = buffer.getvalue()
    assert len(body) < 300_000
    for _ in range(2):  # every worker process has served an upload first
        call(api, "POST", "/datasets", npz_of(x, y), OCTET)
    before = gunicorn_peak_rss(api)
    for _ in range(4):  # to either process
        status, document = call(api, "POST", "/datasets", body, OCTET)
        assert status == 422, document
        assert "x and x.npy" in document["errors"]["body"][0]
    # Nothing of the 100 MB was held: the peak grew by less than a tenth of it.
    assert gunicorn_peak_rss(api) - before < 10_000_000
    status, listing = call(api, "GET", "/datasets")
    assert all(d["bytes"] < 1_000 for d in listing["datasets"])


def npz_of(x, y, **more):
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y, **more)
    return buffer.getvalue()


def test_a_graph_models_null_length_is_estimated_at_the_datas(api):
    # The same LSTM(2048) on 64 × 1,500 steps: refused as Sequential, and
    # (the finding) queued as a graph.
    graph = {
        "inputs": [{"name": "steps", "shape": [None, 1]}],
        "layers": [{"type": "LSTM", "units": 2048, "inputs": "steps"},
                   {"type": "Dense", "units": 1, "name": "out"}],
        "outputs": "out",
    }  # fmt: skip
    sequential = {"input_shape": [None, 1], "layers": [{"type": "LSTM", "units": 2048},
                                                       {"type": "Dense", "units": 1}]}  # fmt: skip
    data = {"x": [[[0.5]] * 1500] * 64, "y": [[0.0]] * 64}
    for model in (sequential, graph):
        body = {"model": model, "data": data, "fit": {"batch_size": 64}}
        status, document = call(api, "POST", "/train", body)
        assert status == 422, document
        assert "(SEQLAB_WORKER_MEMORY_BYTES)" in document["errors"]["model"][0]


def test_validation_data_is_counted(api):
    # The finding: a 2,000,000-step validation set beside a 10-step
    # training set was queued.
    train = npz_of(np.zeros((4, 10, 1), "float32"), np.zeros((4, 1), "float32"))
    long = npz_of(np.zeros((1, 2_000_000, 1), "float32"), np.zeros((1, 1), "float32"))
    ids = []
    for body in (train, long):
        status, document = call(api, "POST", "/datasets", body, OCTET)
        assert status == 201, document
        ids.append(document["id"])
    model = {"input_shape": [None, 1], "layers": [{"type": "LSTM", "units": 8},
                                                  {"type": "Dense", "units": 1}]}  # fmt: skip
    body = {"model": model, "data": {"dataset": ids[0]}, "validation": {"dataset": ids[1]},
            "fit": {"validation_split": 0}}  # fmt: skip
    status, document = call(api, "POST", "/train", body)
    assert status == 422, document
    assert document["errors"]["validation.x"] == [
        "Each sample of validation.x holds 2000000 × 1 = 2,000,000 values, over the limit of "
        "100,000 (SEQLAB_MAX_SAMPLE_VALUES)."
    ]
    for dataset_id in ids:
        assert call(api, "DELETE", f"/datasets/{dataset_id}")[0] == 204


def test_large_bodies_over_the_slots_are_answered_503_not_cut(redis_url, queue, tmp_path):
    # Four 6 MB train bodies at once on one process with one large-body
    # slot: one is decoded, the others are answered 503 with Retry-After once
    # their bytes are read (a client still sending gets the answer, not a
    # broken pipe); /healthz answers meanwhile.
    body = json.dumps({
        "model": {"input_shape": [None, 1], "layers": [{"type": "Dense", "units": 1}]},
        "data": {"x": [[[0.5]] * 900_000], "y": [[0.5]]},
    }).encode()  # fmt: skip
    assert len(body) > 6_000_000
    barrier = threading.Barrier(4)

    def send(base):
        request = urllib.request.Request(
            f"{base}/train", data=body, method="POST",
            headers={"Content-Type": "application/json", **TENANTS.bearer("dave")},
        )  # fmt: skip
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, None
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Retry-After")

    with serve_api(
        tmp_path / "gunicorn.log", processes=1, threads=4, REDIS_URL=redis_url,
        SEQLAB_QUEUE=queue, SEQLAB_API_KEYS=TENANTS.config, SEQLAB_LARGE_BODIES="1",
    ) as base:  # fmt: skip
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, [base] * 4))
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert response.status == 200
    # The decoded ones are over the values limit (422): nothing is queued.
    assert {status for status, _ in answers} <= {422, 503}, answers
    assert 503 in [status for status, _ in answers], answers
    assert all(after == "2" for status, after in answers if status == 503), answers
