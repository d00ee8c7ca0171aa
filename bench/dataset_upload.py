"""(e) Dataset uploads: MB/s of a ~50 MB ``.npz`` through ``POST /datasets``
into Redis, beside two baselines measured in the same run: a raw Redis
``SET`` of the same bytes (the floor of any store in that Redis), and
``numpy.savez`` to a file plus ``numpy.load`` of it (the file round trip a
user would do anyway).

Starts a redis-server of its own on a free port and a gunicorn API on it;
the rounds alternate upload and baselines so that machine noise hits all
alike. Each uploaded dataset is deleted again.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
import urllib.request

import numpy as np
import redis

from .guard_cost import redis_server
from .http_throughput import api

MB = 1_000_000


def dataset_bytes(samples: int) -> bytes:
    """An .npz of ``samples`` windows of 64 steps × 4 features (float32)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 64, 4)).astype("float32")
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=x[:, -1, :1])
    return buffer.getvalue()


def upload(base: str, body: bytes) -> float:
    """Seconds of one upload (its 201 included); deletes the dataset after."""
    request = urllib.request.Request(
        f"{base}/datasets", data=body, headers={"Content-Type": "application/octet-stream"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        dataset_id = json.load(response)["id"]
    seconds = time.perf_counter() - started
    delete = urllib.request.Request(f"{base}/datasets/{dataset_id}", method="DELETE")
    urllib.request.urlopen(delete, timeout=30).close()
    return seconds


def redis_set(client: redis.Redis, body: bytes) -> float:
    started = time.perf_counter()
    client.set("bench:raw", body)
    seconds = time.perf_counter() - started
    client.delete("bench:raw")
    return seconds


def file_round_trip(body: bytes) -> float:
    """numpy.savez of the arrays to a file, then numpy.load of every array."""
    with np.load(io.BytesIO(body)) as npz:
        arrays = {name: npz[name] for name in npz.files}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "d.npz")
        started = time.perf_counter()
        np.savez(path, **arrays)
        with np.load(path, allow_pickle=False) as npz:
            for name in npz.files:
                npz[name]
        return time.perf_counter() - started


def main(quick: bool = False) -> None:
    rounds = 2 if quick else 5
    body = dataset_bytes(12_500 if quick else 48_000)
    size = len(body) / MB
    print(f"\n(e) dataset upload: a {size:.1f} MB .npz, median of {rounds} rounds")
    with redis_server() as url, api({"REDIS_URL": url, "SEQLAB_QUEUE": "bench-idle"}) as base:
        client = redis.Redis.from_url(url)
        times: dict[str, list[float]] = {"upload": [], "set": [], "file": []}
        upload(base, body)  # warm up: imports, the first connection
        for _ in range(rounds):
            times["upload"].append(upload(base, body))
            times["set"].append(redis_set(client, body))
            times["file"].append(file_round_trip(body))
    rows = [
        ("POST /datasets (stream, check, store in chunks)", "upload"),
        ("baseline: one Redis SET of the same bytes", "set"),
        ("baseline: numpy.savez to a file + numpy.load", "file"),
    ]
    for label, key in rows:
        seconds = statistics.median(times[key])
        print(f"  {label:<50} {size / seconds:8.1f} MB/s  ({seconds * 1000:.0f} ms)")
