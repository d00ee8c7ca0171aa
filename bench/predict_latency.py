"""(e) Prediction latency: ``POST /jobs/<id>/predict`` against Keras in a
plain process.

The seed's many_to_many model is trained through the service (gunicorn, one
real Celery worker); then 100 requests of one instance each go to a warm
worker (its model cache already holding the model), one after another, each
on a connection of its own (``urllib``: the figure of the goals' table);
then 100 more over one kept-alive connection (what ``requests.Session``
or ``httpx.Client`` do), for comparison.
The baseline, in the same run: a fresh Python process that loads the
downloaded ``.keras`` file with ``keras.saving.load_model`` and calls
``model.predict`` on the same instance 100 times. p50 and p95 of each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from . import goals
from .seed_vs_service import call
from .seed_vs_service import run_job
from .seed_vs_service import service_stack

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = [[[0.1], [0.3], [0.5], [0.7], [0.9]]]

# The baseline: what a user does with the downloaded file.
BASELINE = """
import json, sys, time
import numpy as np
started = time.perf_counter()
import keras
model = keras.saving.load_model(sys.argv[1])
x = np.asarray(json.loads(sys.argv[2]), dtype="float32")
model.predict(x, verbose=0)
first = time.perf_counter() - started
times, on_batch = [], []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    model.predict(x, verbose=0)
    times.append(time.perf_counter() - t)
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    model.predict_on_batch(x)
    on_batch.append(time.perf_counter() - t)
print(json.dumps({"first": first, "times": times, "on_batch": on_batch}))
"""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def post_raw(url: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.read()


def kept_alive(url: str, body: dict, requests: int) -> list[float]:
    """Seconds of each of ``requests`` POSTs over one HTTP/1.1 connection."""
    parts = urllib.parse.urlsplit(url)
    data = json.dumps(body).encode()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    times = []
    try:
        for _ in range(requests):
            start = time.perf_counter()
            connection.request("POST", parts.path, data, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            times.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"POST {parts.path}: {response.status}")
    finally:
        connection.close()
    return times


def baseline(model_file: bytes, requests: int, backend: str) -> dict:
    """Seconds to load and first predict, and each later ``predict`` and
    ``predict_on_batch``, in a fresh process on the worker's backend."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(model_file)
        out = subprocess.run(
            [sys.executable, "-c", BASELINE, path, json.dumps(INSTANCE), str(requests)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend},
        ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(quick: bool = False) -> None:
    requests = 30 if quick else 100
    with service_stack(threads=4) as base:
        _, job = run_job(base, "many_to_many")
        url = f"{base}/jobs/{job['id']}/predict"
        first = call(url, {"instances": INSTANCE})  # loads the model into the cache
        service, answer = [], first
        for _ in range(requests):
            start = time.perf_counter()
            answer = json.loads(post_raw(url, {"instances": INSTANCE}))
            service.append(time.perf_counter() - start)
        kept = kept_alive(url, {"instances": INSTANCE}, requests)
        with urllib.request.urlopen(f"{base}/jobs/{job['id']}/model", timeout=30) as response:
            model_file = response.read()
    plain = baseline(model_file, requests, job["result"]["backend"])

    ms = 1000
    print("\n(e) predict latency, one instance, many_to_many (warm worker vs plain Keras)")
    print(
        f"    service: p50 {percentile(service, 50) * ms:7.2f} ms  p95 "
        f"{percentile(service, 95) * ms:7.2f} ms  of {requests} POST /jobs/<id>/predict "
        f"(model_cached {answer['model_cached']}; worker's own predict "
        f"{answer['predict_seconds'] * ms:.2f} ms; first request, loading it: "
        f"{first['model_load_seconds'] * ms:.0f} ms to load)"
    )
    print(
        f"             p50 {percentile(kept, 50) * ms:7.2f} ms  p95 "
        f"{percentile(kept, 95) * ms:7.2f} ms  of {requests} over one kept-alive connection"
    )
    print(
        f"    keras:   p50 {percentile(plain['times'], 50) * ms:7.2f} ms  p95 "
        f"{percentile(plain['times'], 95) * ms:7.2f} ms  of {requests} model.predict in a "
        f"plain process (import, load_model and first predict: {plain['first']:.2f} s)"
    )
    print(
        f"             p50 {percentile(plain['on_batch'], 50) * ms:7.2f} ms  p95 "
        f"{percentile(plain['on_batch'], 95) * ms:7.2f} ms  of {requests} "
        f"model.predict_on_batch (what the worker calls; backend {job['result']['backend']})"
    )
    print(
        f"    service/keras at p50: "
        f"{percentile(service, 50) / percentile(plain['times'], 50):.1f}×; "
        f"mean service {statistics.mean(service) * ms:.2f} ms"
    )
    goals.record(
        "predict_latency",
        f"p50 {percentile(service, 50) * ms:.2f} ms, p95 {percentile(service, 95) * ms:.2f} ms",
        f"model.predict p50 {percentile(plain['times'], 50) * ms:.2f} ms "
        f"(predict_on_batch {percentile(plain['on_batch'], 50) * ms:.2f} ms)",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="30 requests instead of 100")
    main(quick=parser.parse_args().quick)
