"""(i) A warm seed job: ``POST /train`` of a preset to ``succeeded``, as a client sees it.

For each of the seed article's three programs (``{"example": name}``), one
cold run then several warm ones through a real stack: a redis-server of
its own on a free port, the API under gunicorn (as ``make up`` serves it),
one Celery worker (JAX, as ``make up`` runs it). The client follows each
job by its event stream (``GET /jobs/<id>/events``: the terminal status
arrives as it is written) or, with ``--poll``, by polling ``GET /jobs/<id>``
every 10 ms. Each run is split by the job record's own clocks: the POST's
answer, the queue hop (created → started: the API publishing the task,
Celery handing it to the pool's child, the claim), the job in the child
(started → finished: build, fit, predict and save, the final write) and
the client's lag behind ``finished_at``. Medians of the warm runs, after
the worker's warm-up (``warm-up: done`` in its log, at most
:data:`WARM_UP_WAIT` s); they go in ``python -m bench``'s goals table
(``warm_seed_job``), beside the baseline's or, without one, the cold runs.

``--baseline DIR`` runs the same against another checkout first (a
``git worktree add /tmp/base main`` of the code before a change), in the
same run, one stack after the other: its figures are printed beside.

Run alone: ``python -m bench.warm_seed_job [--runs N] [--poll] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from . import goals
from .http_throughput import free_port
from .http_throughput import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("one_to_one", "many_to_one", "many_to_many")
#: The goal of issue 18: a warm seed job in at most this many seconds.
GOAL = 0.3
TERMINAL = ("succeeded", "failed", "cancelled")
#: Seconds to wait for the worker's warm-up to end before the first job.
WARM_UP_WAIT = 30.0


def epoch(stamp: str) -> float:
    """A record's ISO 8601 time (``...Z``) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def follow_events(base: str, job_id: str) -> str:
    """Read the job's event stream until its terminal status; that status."""
    req = urllib.request.Request(f"{base}/jobs/{job_id}/events")
    with urllib.request.urlopen(req, timeout=60) as response:
        kind = ""
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "status":
                status = json.loads(line[5:])["status"]
                if status in TERMINAL:
                    return status
    raise RuntimeError("the event stream ended before the job")


def run_job(base: str, example: str, poll: bool) -> dict[str, float]:
    """One job of ``example``: the client's seconds and the record's phases."""
    start_wall, start = time.time(), time.perf_counter()
    job = call(f"{base}/train", {"example": example})
    posted = time.perf_counter()
    if poll:
        while job["status"] not in TERMINAL:
            time.sleep(0.01)
            job = call(f"{base}/jobs/{job['id']}")
        status = job["status"]
    else:
        status = follow_events(base, job["id"])
    seen, seen_wall = time.perf_counter(), time.time()
    if status != "succeeded":
        raise RuntimeError(f"{example}: {status}")
    record = call(f"{base}/jobs/{job['id']}")
    created, started = epoch(record["created_at"]), epoch(record["started_at"])
    finished = epoch(record["finished_at"])
    timings = record["result"].get("timings", {})
    phases = {
        "total": seen - start,
        "post": posted - start,
        "queue_hop": started - created,
        "in_child": finished - started,
        "client_lag": seen_wall - finished,
        "created_from_start": created - start_wall,
    }
    for name, value in timings.items():
        phases[name.removesuffix("_seconds")] = value
    return phases


def worker_ready(log: Path) -> bool:
    text = log.read_bytes() if log.exists() else b""
    return b" ready." in text and b"predictor: ready" in text


def warmed_up(log: Path, timeout: float) -> float | None:
    """Wait for the pool child's warm-up to end (``warm-up: done in N s``,
    which the worker logs since it warms up every seed program); its
    seconds, or None past ``timeout`` (a checkout that does not log it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "warm-up: done in " in text:
            return float(text.split("warm-up: done in ", 1)[1].split(" s", 1)[0])
        time.sleep(0.2)
    return None


@contextlib.contextmanager
def stack(root: Path, workdir: Path) -> Iterator[str]:
    """Redis, a JAX worker and gunicorn serving ``root``'s code; the API's URL."""
    redis_port, api_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue, "PYTHONPATH": str(root),
           "KERAS_BACKEND": "jax", "SEQLAB_JAX_CACHE": str(workdir / "jax"),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    redis_argv = [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                  "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(workdir)]  # fmt: skip
    worker_argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                   "--loglevel", "info", "--hostname", f"{queue}@%h", "--without-mingle",
                   "--without-gossip"]  # fmt: skip
    api_argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{api_port}",
                "--worker-class", "gthread", "--threads", "4", "--workers", "1",
                "--log-level", "warning", "service:create_app()"]  # fmt: skip
    log = workdir / "worker.log"
    processes = [subprocess.Popen(redis_argv, stdout=subprocess.DEVNULL, start_new_session=True)]
    try:
        with open(log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    worker_argv,
                    cwd=root,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        processes.append(subprocess.Popen(api_argv, cwd=root, env=env, start_new_session=True))
        base = f"http://127.0.0.1:{api_port}"
        wait_healthy(f"{base}/healthz", timeout=60)
        deadline = time.monotonic() + 180
        while not worker_ready(log):
            if time.monotonic() > deadline or processes[1].poll() is not None:
                raise RuntimeError(f"the worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def measure(root: Path, runs: int, poll: bool) -> dict[str, dict[str, object]]:
    """Per example: its cold run and its warm runs' phases, on ``root``'s code."""
    out: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="seqlab-bench-") as tmp, stack(root, Path(tmp)) as base:
        # The worker's warm-up runs in the background: let it end first.
        seconds = warmed_up(Path(tmp) / "worker.log", timeout=WARM_UP_WAIT)
        told = f"{seconds} s" if seconds is not None else f"not logged in {WARM_UP_WAIT:g} s"
        print(f"    the worker's warm-up on {root}: {told}")
        for example in EXAMPLES:
            cold = run_job(base, example, poll)
            warm = [run_job(base, example, poll) for _ in range(runs)]
            out[example] = {"cold": cold, "warm": warm}
    return out


def medians(warm: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in warm) for name in warm[0]}


def show(name: str, results: dict[str, dict[str, object]]) -> dict[str, float]:
    print(f"    {name}:")
    totals = {}
    for example, result in results.items():
        warm = result["warm"]
        assert isinstance(warm, list)
        med = medians(warm)
        totals[example] = med["total"]
        cold = result["cold"]
        assert isinstance(cold, dict)
        parts = "  ".join(f"{k} {v:.3f}" for k, v in med.items() if k != "total")
        print(
            f"      {example:<13} {med['total']:.3f} s median of {len(warm)} "
            f"{[round(r['total'], 3) for r in warm]} (cold {cold['total']:.2f} s)"
        )
        print(f"        {parts}")
    return totals


def main(quick: bool = False, runs: int | None = None, poll: bool = False,
         baseline: str | None = None) -> None:  # fmt: skip
    runs = runs or (3 if quick else 7)
    how = "polling GET /jobs/<id> every 10 ms" if poll else "following its event stream"
    print(f"\n(i) warm seed job: POST /train → succeeded, the client {how} (JAX worker)")
    base_totals = None
    if baseline:
        base_totals = show(f"baseline ({baseline})", measure(Path(baseline), runs, poll))
    results = measure(ROOT, runs, poll)
    totals = show(f"this checkout ({ROOT})", results)
    for example, total in totals.items():
        before = f"; baseline {base_totals[example]:.3f} s" if base_totals else ""
        verdict = "met" if total <= GOAL else "NOT met"
        print(f"    {example:<13} {total:.3f} s{before}; goal ≤ {GOAL} s: {verdict}")
    if base_totals:
        against = "baseline " + "; ".join(f"{e} {t:.3f} s" for e, t in base_totals.items())
    else:
        colds = {e: r["cold"]["total"] for e, r in results.items()}  # type: ignore[index]
        against = "first (cold) " + "; ".join(f"{e} {t:.2f} s" for e, t in colds.items())
    goals.record(
        "warm_seed_job",
        "; ".join(f"{e} {t:.3f} s" for e, t in totals.items()),
        against,
        all(total <= GOAL for total in totals.values()),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--poll", action="store_true", help="poll GET /jobs/<id> instead")
    parser.add_argument("--baseline", help="another checkout to measure first")
    options = parser.parse_args()
    main(quick=options.quick, runs=options.runs, poll=options.poll, baseline=options.baseline)
