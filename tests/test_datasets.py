"""Datasets: uploads of real .npz files into a real Redis, their refusals,
ownership, and training on them with a real worker."""

import io
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import redis
from conftest import serve_api
from openapi_check import validate_response
from tenants import Tenants

from jobs.datasets import DatasetGone
from jobs.datasets import DatasetStore
from jobs.datasets import index_key
from jobs.datasets import resolve
from jobs.reaper import send_train_task

OCTET = {"Content-Type": "application/octet-stream"}
#: A small model on (50, 4) windows that trains fast on a CPU.
MODEL = {"input_shape": [50, 4], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 1}]}


def npz(**arrays):
    """The bytes of ``numpy.savez`` of ``arrays``."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def windows(samples, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 50, 4)).astype("float32")
    y = x[:, -5:, 0].mean(axis=1, keepdims=True)
    return x, y


@pytest.fixture
def tenants_app(redis_url, queue, tenants):
    return tenants.app(redis_url, queue)


def upload(client, body, headers=None, **kwargs):
    return client.post("/datasets", data=body, headers={**OCTET, **(headers or {})}, **kwargs)


def test_upload_read_list_and_delete(tenants_app, tenants, spec):
    client, alice = tenants_app.test_client(), tenants.bearer("alice")
    x, y = windows(30)
    first = upload(client, npz(x=x, y=y), alice)
    validate_response(spec, "/datasets", "POST", first)
    assert first.status_code == 201, first.get_json()
    record = first.get_json()
    assert first.headers["Location"] == f"/datasets/{record['id']}"
    assert record["arrays"] == {
        "x": {"shape": [30, 50, 4], "dtype": "float32", "bytes": 30 * 50 * 4 * 4},
        "y": {"shape": [30, 1], "dtype": "float32", "bytes": 30 * 4},
    }
    assert record["bytes"] == 30 * 50 * 4 * 4 + 30 * 4
    # One multipart file field works as well.
    form = {"file": (io.BytesIO(npz(x=x[:10], y=y[:10].astype("float64"))), "d.npz")}
    second = client.post("/datasets", data=form, headers=alice, content_type="multipart/form-data")
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["arrays"]["y"]["dtype"] == "float64"

    got = client.get(f"/datasets/{record['id']}", headers=alice)
    validate_response(spec, "/datasets/{dataset_id}", "GET", got)
    assert got.get_json() == record
    listing = client.get("/datasets", headers=alice)
    validate_response(spec, "/datasets", "GET", listing)
    ids = [d["id"] for d in listing.get_json()["datasets"]]
    assert ids == [second.get_json()["id"], record["id"]]  # newest first

    gone = client.delete(f"/datasets/{record['id']}", headers=alice)
    validate_response(spec, "/datasets/{dataset_id}", "DELETE", gone)
    assert gone.status_code == 204
    again = client.delete(f"/datasets/{record['id']}", headers=alice)
    validate_response(spec, "/datasets/{dataset_id}", "DELETE", again)
    assert again.status_code == 404
    assert client.get(f"/datasets/{record['id']}", headers=alice).status_code == 404
    ids = [d["id"] for d in client.get("/datasets", headers=alice).get_json()["datasets"]]
    assert ids == [second.get_json()["id"]]
    keys = tenants_app.extensions["datasets"].redis.keys(f"seqlab:dataset:{record['id']}*")
    assert keys == []


def _object_array_npz():
    return npz(x=np.array([[1], "a"], dtype=object), y=np.zeros((2, 1)))


def _npy():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 50, 4)))
    return buffer.getvalue()


X, Y = windows(8)
NAN_X = X.copy()
NAN_X[2, 3, 1] = np.nan


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (b"x,y\n1,2\n", "body", "not an .npz file"),
        (_npy(), "body", "single .npy array"),
        (_object_array_npz(), "x", "Python objects (dtype object)"),
        (npz(x=NAN_X, y=Y), "x", "NaN or infinite values (1 of them): x[2][3][1] is nan. "),
        (npz(x=X, y=Y[:7]), "y", "x has 8 samples but y has 7"),
        (npz(x=X), "y", "the .npz has no array 'y'"),
        (npz(x=X, y=np.array(["a"] * 8)), "y", "is not numeric"),
        (npz(x=X, y=Y, x_val=X), "y_val", "x_val needs y_val"),
        (npz(x=X, y=Y, weights=Y), "body", "Unknown arrays weights"),
    ],
    ids=["csv", "npy", "object", "nan", "samples", "no-y", "strings", "half-val", "unknown"],
)
def test_bad_uploads_are_422_and_store_nothing(tenants_app, tenants, spec, body, path, reason):
    client, alice = tenants_app.test_client(), tenants.bearer("alice")
    rv = upload(client, body, alice)
    validate_response(spec, "/datasets", "POST", rv)
    assert rv.status_code == 422, rv.get_json()
    assert reason in rv.get_json()["errors"][path][0]
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_uploads_over_the_byte_limit_are_413(redis_url, queue, tenants, spec):
    app = tenants.app(redis_url, queue, SEQLAB_MAX_DATASET_BYTES=100_000)
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(200)  # 160,000 bytes of x
    for rv in (
        upload(client, npz(x=x, y=y), alice),
        client.post(
            "/datasets",
            data={"file": (io.BytesIO(npz(x=x, y=y)), "d.npz")},
            headers=alice,
            content_type="multipart/form-data",
        ),
    ):
        validate_response(spec, "/datasets", "POST", rv)
        assert rv.status_code == 413, rv.get_json()
        assert "SEQLAB_MAX_DATASET_BYTES" in rv.get_json()["detail"]
        assert "100,000" in rv.get_json()["detail"]
    # A compressed file under the limit whose arrays are over it: also 413.
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((200, 50, 4), "float32"), y=np.zeros((200, 1)))
    assert len(buffer.getvalue()) < 100_000
    rv = upload(client, buffer.getvalue(), alice)
    assert rv.status_code == 413, rv.get_json()
    assert "arrays hold 161,600 bytes" in rv.get_json()["detail"]
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_datasets_per_tenant_are_limited(redis_url, queue, tenants):
    app = tenants.app(redis_url, queue, SEQLAB_MAX_DATASETS=2)
    client = app.test_client()
    x, y = windows(4)
    for _ in range(2):
        assert upload(client, npz(x=x, y=y), tenants.bearer("alice")).status_code == 201
    rv = upload(client, npz(x=x, y=y), tenants.bearer("alice"))
    assert rv.status_code == 422
    assert "SEQLAB_MAX_DATASETS" in rv.get_json()["detail"]
    # Another tenant has a count of its own.
    assert upload(client, npz(x=x, y=y), tenants.bearer("bob")).status_code == 201


def test_another_tenant_cannot_read_train_on_or_delete_a_dataset(tenants_app, tenants):
    client = tenants_app.test_client()
    alice, bob = tenants.bearer("alice"), tenants.bearer("bob")
    x, y = windows(8)
    dataset_id = upload(client, npz(x=x, y=y), alice).get_json()["id"]
    assert client.get(f"/datasets/{dataset_id}", headers=bob).status_code == 404
    assert client.delete(f"/datasets/{dataset_id}", headers=bob).status_code == 404
    assert client.get("/datasets", headers=bob).get_json()["datasets"] == []
    body = {"model": MODEL, "data": {"dataset": dataset_id}}
    rv = client.post("/train", json=body, headers=bob)
    assert rv.status_code == 404, rv.get_json()
    assert client.get("/jobs", headers=bob).get_json()["jobs"] == []
    # Ids of another form are the same 404.
    assert client.get("/datasets/seqlab:dataset:x", headers=alice).status_code == 404
    assert client.get(f"/datasets/{dataset_id}", headers=alice).status_code == 200


def test_train_requests_on_a_dataset_are_checked_before_queuing(tenants_app, tenants):
    client, alice = tenants_app.test_client(), tenants.bearer("alice")
    x, y = windows(8)
    dataset_id = upload(client, npz(x=x, y=y, x_val=x[:, :40], y_val=y), alice).get_json()["id"]
    wrong = {**MODEL, "input_shape": [20, 4]}
    rv = client.post("/train", json={"model": wrong, "data": {"dataset": dataset_id}},
                     headers=alice)  # fmt: skip
    assert rv.status_code == 422
    assert "does not fit the model's input" in rv.get_json()["errors"]["data.x"][0]
    # The dataset's own x_val must fit too.
    rv = client.post("/train", json={"model": MODEL, "data": {"dataset": dataset_id}},
                     headers=alice)  # fmt: skip
    assert rv.status_code == 422
    assert "Shape (8, 40, 4)" in rv.get_json()["errors"]["validation.x"][0]
    both = {"model": MODEL, "data": {"dataset": dataset_id, "x": [[0]]}}
    rv = client.post("/train", json=both, headers=alice)
    assert rv.status_code == 422
    assert "dataset" in rv.get_json()["errors"]["data.dataset"][0]
    split = {"model": MODEL, "data": {"x": x.tolist(), "y": y.tolist()},
             "validation": {"dataset": dataset_id}, "fit": {"validation_split": 0.5}}  # fmt: skip
    rv = client.post("/train", json=split, headers=alice)
    assert rv.status_code == 422
    assert "fit.validation_split" in rv.get_json()["errors"]
    assert client.get("/jobs", headers=alice).get_json()["jobs"] == []


def test_train_on_a_10_mb_upload_with_its_validation_set(redis_url, queue, worker, tenants):
    app = tenants.app(redis_url, queue)
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(13_000, seed=1)
    x_val, y_val = windows(1_000, seed=2)
    body = npz(x=x, y=y, x_val=x_val, y_val=y_val)
    assert len(body) > 10_000_000
    rv = upload(client, body, alice)
    assert rv.status_code == 201, rv.get_json()
    dataset_id = rv.get_json()["id"]
    request = {"model": MODEL, "data": {"dataset": dataset_id},
               "fit": {"epochs": 3, "batch_size": 256}}  # fmt: skip
    rv = client.post("/train", json=request, headers=alice)
    assert rv.status_code == 202, rv.get_json()
    location = rv.headers["Location"]
    deadline = time.monotonic() + 120
    while (job := client.get(location, headers=alice).get_json())["status"] not in (
        "succeeded", "failed", "cancelled",
    ):  # fmt: skip
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "succeeded", job.get("error")
    assert job["request"]["data_shapes"] == {
        "x": [13_000, 50, 4], "y": [13_000, 1], "dataset": dataset_id,
        "validation": {"dataset": dataset_id, "x": [1_000, 50, 4], "y": [1_000, 1]},
    }  # fmt: skip
    history = job["result"]["history"]
    assert len(history["val_loss"]) == 3
    # It learned the mean of the last steps: the validation loss falls.
    assert history["val_loss"][-1] < history["val_loss"][0]
    # Over 1,000 samples: the predictions are apart from the job document.
    assert "predictions" not in job["result"]
    rv = client.get(f"{location}/predictions", headers=alice)
    assert len(rv.get_json()["predictions"]) == 13_000


def test_a_dataset_deleted_before_its_job_starts_is_a_clear_error(redis_url):
    client = redis.Redis.from_url(redis_url)
    datasets = DatasetStore(client, 60)
    x, y = windows(5)
    record = datasets.create({"x": x, "y": y}, tenant=None)
    loaded = resolve({"dataset": record["id"]}, datasets)
    np.testing.assert_array_equal(loaded["x"], x)
    np.testing.assert_array_equal(loaded["y"], y)
    assert datasets.delete(record)
    assert not client.zscore(index_key(None), record["id"])
    with pytest.raises(DatasetGone):
        resolve({"dataset": record["id"]}, datasets)


def test_a_job_whose_dataset_was_deleted_before_it_started_fails_clearly(
    redis_url, queue, worker, tenants
):
    # Queued where no worker listens, so that the dataset goes first...
    app = tenants.app(redis_url, f"idle-{queue}")
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(8)
    dataset_id = upload(client, npz(x=x, y=y), alice).get_json()["id"]
    rv = client.post("/train", json={"model": MODEL, "data": {"dataset": dataset_id}},
                     headers=alice)  # fmt: skip
    assert rv.status_code == 202, rv.get_json()
    job_id = rv.get_json()["id"]
    assert client.delete(f"/datasets/{dataset_id}", headers=alice).status_code == 204
    # ...then handed to the real worker, as a reaper would.
    send_train_task(app.extensions["celery"], job_id, queue, None)
    deadline = time.monotonic() + 60
    while (job := client.get(f"/jobs/{job_id}", headers=alice).get_json())["status"] in (
        "queued", "running",
    ):  # fmt: skip
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "DatasetNotFound"
    assert dataset_id in job["error"]["message"]


def test_a_datasets_values_are_checked_like_inline_data(tenants_app, tenants):
    client, alice = tenants_app.test_client(), tenants.bearer("alice")
    # Token ids for an Embedding of 10 rows, labels for 3 classes.
    x = np.random.default_rng(0).integers(0, 10, (40, 6)).astype("int32")
    y = np.zeros((40,), "int64")
    x[5, 2], y[7] = 10, 1
    y_val = y[:8].copy()
    y_val[3] = 3
    model = {
        "input_shape": [6],
        "dtype": "int32",
        "layers": [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4},
            {"type": "LSTM", "units": 4},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    }
    body = npz(x=x, y=y, x_val=x[:8] % 10, y_val=y_val)
    dataset_id = upload(client, body, alice).get_json()["id"]
    request = {"model": model, "data": {"dataset": dataset_id},
               "compile": {"loss": "sparse_categorical_crossentropy"}}  # fmt: skip
    rv = client.post("/train", json=request, headers=alice)
    assert rv.status_code == 422, rv.get_json()
    assert rv.get_json()["errors"]["data.x"][0].endswith("data.x[5][2] is 10.")
    x[5, 2] = 9
    dataset_id = upload(client, npz(x=x, y=y, x_val=x[:8], y_val=y_val), alice).get_json()["id"]
    request["data"]["dataset"] = dataset_id
    rv = client.post("/train", json=request, headers=alice)
    assert rv.status_code == 422, rv.get_json()
    message = rv.get_json()["errors"]["validation.y"][0]
    assert "integer class labels in [0, 3)" in message
    assert message.endswith("validation.y[3] is 3.")
    assert client.get("/jobs", headers=alice).get_json()["jobs"] == []


def test_early_stopping_on_val_loss_needs_a_dataset_with_validation_arrays(redis_url, tenants):
    app = tenants.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(8)
    with_val = upload(client, npz(x=x, y=y, x_val=x, y_val=y), alice).get_json()["id"]
    without = upload(client, npz(x=x, y=y), alice).get_json()["id"]
    fit = {"epochs": 3, "early_stopping": {"monitor": "val_loss", "patience": 1}}
    rv = client.post("/train", json={"model": MODEL, "data": {"dataset": with_val}, "fit": fit},
                     headers=alice)  # fmt: skip
    assert rv.status_code == 202, rv.get_json()
    rv = client.post("/train", json={"model": MODEL, "data": {"dataset": without}, "fit": fit},
                     headers=alice)  # fmt: skip
    assert rv.status_code == 422
    assert "no validation data" in rv.get_json()["errors"]["fit.early_stopping.monitor"][0]


# -- bounded cost: what an upload may make the API decompress and store -------


def npy(array):
    """The bytes of ``numpy.save`` of ``array``."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def archive(*members, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``(name, bytes)`` members in this order, duplicates kept."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        with zipfile.ZipFile(buffer, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buffer.getvalue()


#: 1 MB: the byte limit of the tests below, so that their bombs stay small.
SMALL_LIMIT = 1_000_000


@pytest.fixture
def small_app(redis_url, queue, tenants):
    return tenants.app(redis_url, queue, SEQLAB_MAX_DATASET_BYTES=SMALL_LIMIT)


def test_a_decoy_x_npy_beside_a_large_x_member_is_refused(small_app, tenants, spec):
    # numpy.load reads the member literally named x; a check that maps x
    # and x.npy to one name may read the small decoy's header instead.
    client, alice = small_app.test_client(), tenants.bearer("alice")
    x, y = windows(4)
    big = npy(np.zeros((5_000, 50, 4), "float32"))  # 4 MB of zeros: 4 kB deflated
    for order in ((("x", big), ("x.npy", npy(x))), (("x.npy", npy(x)), ("x", big))):
        body = archive(*order, ("y.npy", npy(y)))
        assert len(body) < 50_000
        rv = upload(client, body, alice)
        validate_response(spec, "/datasets", "POST", rv)
        assert rv.status_code == 422, rv.get_json()
        reason = rv.get_json()["errors"]["body"][0]
        assert "x and x.npy" in reason and "array x" in reason
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_a_member_longer_than_its_header_says_is_stopped_at_the_limit(small_app, tenants, spec):
    client, alice = small_app.test_client(), tenants.bearer("alice")
    x, y = windows(4)
    # x's header claims 4 samples; its stream goes on with 4 MB of zeros.
    body = archive(("x.npy", npy(x) + bytes(4_000_000)), ("y.npy", npy(y)))
    rv = upload(client, body, alice)
    validate_response(spec, "/datasets", "POST", rv)
    assert rv.status_code == 413, rv.get_json()
    detail = rv.get_json()["detail"]
    assert "x.npy" in detail and f"{SMALL_LIMIT:,}" in detail, detail
    assert "SEQLAB_MAX_DATASET_BYTES" in detail
    # A few bytes too many, under the limit: a 422 that names them.
    rv = upload(client, archive(("x.npy", npy(x) + bytes(7)), ("y.npy", npy(y))), alice)
    assert rv.status_code == 422, rv.get_json()
    assert "7 bytes after" in rv.get_json()["errors"]["x"][0]
    # And one shorter than its header says.
    rv = upload(client, archive(("x.npy", npy(x)[:-8]), ("y.npy", npy(y))), alice)
    assert rv.status_code == 422, rv.get_json()
    assert "ends after" in rv.get_json()["errors"]["x"][0]
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_a_huge_npy_header_is_not_decompressed(small_app, tenants):
    client, alice = small_app.test_client(), tenants.bearer("alice")
    # A version 2.0 header whose length field says 4 GB; 4 MB of it follow.
    header = b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b" " * 4_000_000
    rv = upload(client, archive(("x.npy", header), ("y.npy", npy(np.zeros((4, 1))))), alice)
    assert rv.status_code == 422, rv.get_json()
    assert "header" in rv.get_json()["errors"]["x"][0]


def test_members_given_twice_or_under_other_names_are_refused(small_app, tenants, spec):
    client, alice = small_app.test_client(), tenants.bearer("alice")
    x, y = windows(4)
    rv = upload(client, archive(("x.npy", npy(x)), ("x.npy", npy(x)), ("y.npy", npy(y))), alice)
    validate_response(spec, "/datasets", "POST", rv)
    assert rv.status_code == 422, rv.get_json()
    assert "x.npy" in rv.get_json()["errors"]["body"][0]
    assert "more than once" in rv.get_json()["errors"]["body"][0]
    extra = [(f"w{i:02d}.npy", npy(y)) for i in range(20)]
    rv = upload(client, archive(("x.npy", npy(x)), ("y.npy", npy(y)), *extra), alice)
    assert rv.status_code == 422, rv.get_json()
    reason = rv.get_json()["errors"]["body"][0]
    assert "Unknown arrays w00, w01, " in reason
    assert "w09, and 10 more" in reason  # ten names at most
    # Bzip2 and LZMA members decompress in steps that nothing bounds.
    body = archive(("x.npy", npy(x)), ("y.npy", npy(y)), compression=zipfile.ZIP_BZIP2)
    rv = upload(client, body, alice)
    assert rv.status_code == 422, rv.get_json()
    assert "compressed with bzip2" in rv.get_json()["errors"]["x"][0]
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_an_archive_of_60000_members_is_answered_fast_and_small(tenants_app, tenants, spec):
    client, alice = tenants_app.test_client(), tenants.bearer("alice")
    one = npy(np.zeros((1, 1), "float32"))
    body = archive(*((f"a{i}", one) for i in range(60_000)))
    started = time.monotonic()
    rv = upload(client, body, alice)
    elapsed = time.monotonic() - started
    validate_response(spec, "/datasets", "POST", rv)
    assert rv.status_code == 422, rv.get_json()
    assert "too many members" in rv.get_json()["detail"]
    assert len(rv.data) < 1_000
    assert elapsed < 2, elapsed
    assert client.get("/datasets", headers=alice).get_json()["datasets"] == []


def test_a_refused_upload_gives_its_slot_back(redis_url, queue, tenants):
    app = tenants.app(redis_url, queue, SEQLAB_MAX_DATASETS=1)
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(4)
    assert upload(client, npz(x=x), alice).status_code == 422
    assert upload(client, b"", alice).status_code == 422
    first = upload(client, npz(x=x, y=y), alice)
    assert first.status_code == 201, first.get_json()
    assert upload(client, npz(x=x, y=y), alice).status_code == 422
    # A deleted dataset frees its slot.
    assert client.delete(f"/datasets/{first.get_json()['id']}", headers=alice).status_code == 204
    assert upload(client, npz(x=x, y=y), alice).status_code == 201


def test_a_lapsed_hold_frees_its_slot(redis_url):
    datasets = DatasetStore(redis.Redis.from_url(redis_url), 60, hold_seconds=0.2)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = datasets.reserve(tenant, 2)
    assert first and datasets.reserve(tenant, 2)
    assert datasets.reserve(tenant, 2) is None
    datasets.release(tenant, first)
    assert datasets.reserve(tenant, 2)
    time.sleep(0.3)  # both holds lapse (an upload whose process died)
    assert datasets.reserve(tenant, 2) and datasets.reserve(tenant, 2)
    assert datasets.reserve(tenant, 2) is None


def test_concurrent_uploads_store_at_most_the_limit(redis_url, queue, tmp_path):
    tenants = Tenants("carol")
    x, y = windows(2_000)  # 1.6 MB: long enough a read that the uploads overlap
    body = npz(x=x, y=y)

    def send(base):
        request = urllib.request.Request(
            f"{base}/datasets", data=body, method="POST",
            headers={**OCTET, **tenants.bearer("carol")},
        )  # fmt: skip
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    barrier = threading.Barrier(6)
    # Enough large-body slots (SEQLAB_LARGE_BODIES) that all six are read:
    # the race is between the dataset slots.
    with serve_api(
        tmp_path / "gunicorn.log", processes=2, threads=4, REDIS_URL=redis_url,
        SEQLAB_QUEUE=queue, SEQLAB_API_KEYS=tenants.config, SEQLAB_MAX_DATASETS="2",
        SEQLAB_LARGE_BODIES="6",
    ) as base:  # fmt: skip
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(send, [base] * 6))
        listing = urllib.request.Request(f"{base}/datasets", headers=tenants.bearer("carol"))
        with urllib.request.urlopen(listing, timeout=10) as response:
            stored = json.loads(response.read())["datasets"]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 201, 422, 422, 422, 422], answers
    for status, document in answers:
        if status == 422:
            assert "the limit (SEQLAB_MAX_DATASETS)" in document["detail"]
    assert len(stored) == 2
