"""The largest legal requests against the limits, on a real stack: a Redis of
its own, the API under gunicorn (gthread, 2 processes × 4 threads, as ``make
up`` runs it) and a Celery worker (JAX). For each, what it cost: the API's
peak resident memory, the worker's pool process's peak against the job's
``estimated_cost``, and the answers. ``python -m bench.worst_requests``
(a few minutes); not part of ``make bench``'s speed table.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024**2
#: A worker budget this 2-core, 24 GiB machine can run a job at.
BUDGET = 3 * 1024**3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: bytes | None = None,
         kind: str = "application/json") -> tuple[int, dict, dict]:  # fmt: skip
    """(status, JSON document, headers) of one request."""
    request = urllib.request.Request(f"{base}{path}", data=body, method=method,
                                     headers={"Content-Type": kind} if body else {})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def status_field(pid: int, field: str) -> int:
    """A /proc/<pid>/status size in bytes (VmHWM, VmRSS)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(text.split(f"{field}:")[1].split()[0]) * 1024


def descendants(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if ppid == pid:
                out += [int(proc.name), *descendants(int(proc.name))]
    return out


class PeakRss:
    """The largest VmRSS of a process tree while it is watched (50 ms polls)."""

    def __init__(self, root: int) -> None:
        self.root, self.peak, self._stop = root, {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid in [self.root, *descendants(self.root)]:
                try:
                    self.peak[pid] = max(self.peak.get(pid, 0), status_field(pid, "VmRSS"))
                except (OSError, IndexError):
                    pass
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_now(root: int) -> dict[int, int]:
    sizes = {}
    for pid in [root, *descendants(root)]:
        try:
            sizes[pid] = status_field(pid, "VmRSS")
        except (OSError, IndexError):
            pass
    return sizes


def growth(before: dict[int, int], peak: dict[int, int]) -> int:
    """The largest growth of one process's RSS over its size before."""
    return max((peak[p] - before.get(p, peak[p]) for p in peak), default=0)


def wait_job(base: str, job_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, job, _ = call(base, "GET", f"/jobs/{job_id}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job_id)


def train_body(rng: np.random.Generator) -> bytes:
    """The largest legal inline train body: 100 samples × 10,000 steps (the
    schema's 1,000,000 numbers a tensor, SEQLAB_MAX_SAMPLE_VALUES's 100,000 a
    sample) of 9-digit floats, some 15 MB of JSON under the 16 MiB limit."""
    x = np.round(rng.random((100, 10_000, 1)), 9).tolist()
    y = np.round(rng.random((100, 1)), 9).tolist()
    return json.dumps({"model": CONV, "data": {"x": x, "y": y},
                       "fit": {"epochs": 2, "batch_size": 32}}).encode()  # fmt: skip


CONV = {"input_shape": [None, 1], "layers": [
    {"type": "Conv1D", "filters": 8, "kernel_size": 8, "strides": 8},
    {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 1}]}  # fmt: skip


def npz_upload(samples: int, steps: int) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((samples, steps, 1), "float32"), y=np.ones((samples, 1), "float32"))
    return buffer.getvalue()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-worst-"))
    port = free_port()
    redis_proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp)],
                                  stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": f"redis://127.0.0.1:{port}/0",
           "SEQLAB_QUEUE": "worst", "WEB_CONCURRENCY": "2",
           "SEQLAB_WORKER_MEMORY_BYTES": str(BUDGET)}  # fmt: skip
    from devtools.up import api_argv

    api_port = free_port()
    api = subprocess.Popen(api_argv(sys.executable, "127.0.0.1", str(api_port), "4"), cwd=ROOT,
                           env=env, stdout=open(tmp / "api.log", "wb"), stderr=subprocess.STDOUT,
                           start_new_session=True)  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                               "--loglevel", "info", "--without-mingle", "--without-gossip"],
                              cwd=ROOT, env=env, stdout=open(tmp / "worker.log", "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 120
        while b" ready." not in (tmp / "worker.log").read_bytes() or not _up(base):
            assert time.monotonic() < deadline, "the stack did not start"
            time.sleep(0.3)
        rng = np.random.default_rng(0)
        report: list[str] = []
        # A first job, so that the pool process has imported Keras and JAX.
        status, warm, _ = call(base, "POST", "/train", b'{"example": "many_to_one"}')
        assert status == 202, warm
        wait_job(base, warm["id"])

        # 1. The largest dataset upload (64 MiB of float32 arrays).
        upload = npz_upload(1670, 10_000)
        before = rss_now(api.pid)
        with PeakRss(api.pid) as peak:
            status, dataset, _ = call(base, "POST", "/datasets", upload, "application/octet-stream")
        report.append(f"POST /datasets of {len(upload):,} bytes: {status}; API process grew "
                      f"{growth(before, peak.peak) / MiB:,.0f} MiB")  # fmt: skip
        assert status == 201, dataset

        # 2. The largest inline train body, then a job on the dataset: the
        # API's growth, and the pool process's peak against the estimate.
        body = train_body(rng)
        dataset_job = json.dumps({"model": CONV, "data": {"dataset": dataset["id"]},
                                  "fit": {"epochs": 1, "batch_size": 64}}).encode()  # fmt: skip
        for name, job_body in (("inline body", body), ("64 MiB dataset", dataset_job)):
            before = rss_now(api.pid)
            with PeakRss(api.pid) as peak:
                started = time.perf_counter()
                status, job, _ = call(base, "POST", "/train", job_body)
                seconds = time.perf_counter() - started
            report.append(f"POST /train ({name}) of {len(job_body):,} bytes: {status} in "
                          f"{seconds:.2f} s; API process grew "
                          f"{growth(before, peak.peak) / MiB:,.0f} MiB")  # fmt: skip
            assert status == 202, job
            before = rss_now(worker.pid)
            with PeakRss(worker.pid) as peak:
                done = wait_job(base, job["id"])
            estimate = done["estimated_cost"]["worker_memory_bytes"]
            held = done["estimated_cost"]["worker_memory"]
            parts = ", ".join(f"{k} {v / MiB:,.1f}" for k, v in held.items())
            report.append(f"  its job: {done['status']}; estimated worker memory "
                          f"{estimate / MiB:,.0f} MiB ({parts}; "
                          f"budget {BUDGET / MiB:,.0f}); the pool process grew "
                          f"{growth(before, peak.peak) / MiB:,.0f} MiB")  # fmt: skip

        # 3. Six of the largest bodies at once on 2 processes (2 slots each).
        answers: list[object] = []
        before = rss_now(api.pid)
        with PeakRss(api.pid) as peak:
            threads = [threading.Thread(target=send, args=(base, body, answers))
                       for _ in range(6)]  # fmt: skip
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        total = sum(peak.peak.values()) - sum(before.values())
        statuses = sorted(map(str, answers))
        report.append(f"6 such bodies at once: {statuses}; the API's processes grew "
                      f"{total / MiB:,.0f} MiB in all")  # fmt: skip
        print("\n".join(report))
    finally:
        for process in (api, worker, redis_proc):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in (api, worker, redis_proc):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker still training a copy
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def send(base: str, body: bytes, answers: list[object]) -> None:
    """POST /train ``body``; its status, or the error that cut it, in ``answers``."""
    try:
        answers.append(call(base, "POST", "/train", body)[0])
    except OSError as error:
        answers.append(type(error).__name__)


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
