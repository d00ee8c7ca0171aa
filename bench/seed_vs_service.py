"""(c) The seed article's three programs: run directly, and through seqlab.

Each script of ../shared/seed-scripts/ runs as a user would run it (a fresh
Python process, Keras's default TensorFlow backend); the same example goes
through the service: gunicorn serving the API, one real Celery worker, from
``POST /train`` to ``succeeded`` by polling ``GET /jobs/<id>``. The worker is
warm (started and warmed up before timing, as in production); its first,
cold run of each example is reported apart. Printed side by side, with the
final predictions of both.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from . import goals
from .http_throughput import free_port
from .http_throughput import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seed-scripts"
EXAMPLES = ("one_to_one", "many_to_one", "many_to_many")
GOAL = 25


def run_script(name: str) -> tuple[float, list[float]]:
    """Wall time of one seed script and the predictions it printed."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(SEEDS / f"{name}.py")],
        capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout  # fmt: skip
    elapsed = time.perf_counter() - start
    values = []
    for line in out.splitlines():
        try:
            values.append(float(line))
        except ValueError:
            continue
    return elapsed, values[-5:]


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())


def run_job(base: str, example: str) -> tuple[float, dict]:
    """Seconds from POST /train to a final status, and the job."""
    start = time.perf_counter()
    job = call(f"{base}/train", {"example": example})
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.01)
        job = call(f"{base}/jobs/{job['id']}")
    elapsed = time.perf_counter() - start
    if job["status"] != "succeeded":
        raise RuntimeError(f"{example}: {job['status']} {job.get('error')}")
    return elapsed, job


def flat(values: object) -> list[float]:
    if isinstance(values, list):
        return [x for v in values for x in flat(v)]
    return [float(values)]  # type: ignore[arg-type]


@contextlib.contextmanager
def service_stack(threads: int = 1) -> Iterator[str]:
    """A worker and gunicorn (2 processes) on a queue of their own, on the
    Redis at ``REDIS_URL`` (default database 12 of the local one); yields the
    API's base URL once healthy, and stops both."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue, "PYTHONPATH": str(ROOT)}
    bin_dir = Path(sys.executable).parent
    port = free_port()
    worker = subprocess.Popen(
        [str(bin_dir / "celery"), "-A", "worker.celery_app", "worker", "--loglevel", "warning",
         "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    api = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "--workers", "2", "--threads", str(threads), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "service:create_app()"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/healthz")
        yield base
    finally:
        for process in (api, worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (api, worker):
            process.wait(timeout=60)


def main(quick: bool = False) -> None:
    if not SEEDS.is_dir():
        print(f"\n(c) skipped: no seed scripts at {SEEDS}")
        goals.record("seed_jobs", "not run", f"no seed scripts at {SEEDS}")
        return
    rows = []
    with service_stack() as base:
        runs = 3 if quick else 5
        service: dict[str, list[float]] = {}
        cold: dict[str, float] = {}
        jobs: dict[str, dict] = {}
        for example in EXAMPLES:
            cold[example], _ = run_job(base, example)  # warms the worker up
            times = []
            for _ in range(runs):
                elapsed, jobs[example] = run_job(base, example)
                times.append(elapsed)
            service[example] = times
        for example in EXAMPLES:
            script_time, script_pred = run_script(example)
            rows.append((example, script_time, script_pred, service[example], cold[example],
                         flat(jobs[example]["result"]["predictions"]), jobs[example]))  # fmt: skip

    print("\n(c) seed programs: the script run directly vs POST /train → succeeded (warm worker)")
    figures, baselines, ratios = [], [], []
    for example, script_time, script_pred, times, cold_time, preds, job in rows:
        median = statistics.median(times)
        ratio = script_time / median
        ratios.append(ratio)
        figures.append(f"{example} {median:.2f} s ({ratio:.1f}×)")
        baselines.append(f"{example} {script_time:.2f} s")
        print(f"    {example}:")
        shown = [round(p, 2) for p in script_pred]
        print(f"      script:  {script_time:7.2f} s   predictions {shown}")
        print(
            f"      service: {median:7.2f} s median of {len(times)} "
            f"{[round(t, 2) for t in times]} (first, cold: {cold_time:.2f} s; "
            f"backend {job['result']['backend']}, {job['result']['device']})"
        )
        print(f"               predictions {[round(p, 2) for p in preds]}")
        print(
            f"      ratio:   {ratio:5.1f}× faster; goal ≥ {GOAL}×: "
            f"{'met' if ratio >= GOAL else 'NOT met'}"
        )
    goals.record(
        "seed_jobs",
        "; ".join(figures),
        "scripts run directly: " + "; ".join(baselines),
        min(ratios) >= GOAL,
    )


if __name__ == "__main__":
    main()
