"""Seed jobs across worker hosts, through a partition and a killed worker.

Three worker hosts (network namespaces on a bridge: devtools/netns.py), a
Redis on the bridge, the API under gunicorn on the machine itself. Sixteen
clients submit 1,000 seed jobs (``{"example": "many_to_one", "seed": n}``)
through ``POST /train``. While they run, host 1's cable is out for 60 s and
host 2's worker is SIGKILLed (its process group) and started again 5 s
later, as a supervisor would. Every job must end ``succeeded`` exactly
once: each job's event stream is read, and must hold one ``succeeded``
status and no other terminal one. Reported: the wall time from the first
submit to the last job ended, and jobs per second per worker, beside the
same on one host (one worker, no faults, the same jobs per worker) in the
same run.

Needs root (network namespaces). Run alone:
``python -m bench.across_hosts [--jobs N] [--partition S] [--broker redis|rabbitmq]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import redis

from devtools.netns import Host
from devtools.netns import Network
from devtools.netns import Relay
from devtools.netns import why_not
from jobs.store import TERMINAL
from jobs.store import JobStore

from . import goals
from .http_throughput import free_port
from .http_throughput import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
#: The workers' lease and reaper: a lost host's job runs again within ~7 s.
WORKER_ENV = {
    "SEQLAB_LEASE_SECONDS": "6",
    "SEQLAB_REAPER_SECONDS": "1",
    "SEQLAB_HEARTBEAT_SECONDS": "1",
    "SEQLAB_REDIS_TIMEOUT": "2",
    "SEQLAB_PREDICTOR": "0",
    "KERAS_BACKEND": "jax",
    "PYTHONUNBUFFERED": "1",
}


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


class Worker:
    """A Celery worker on a host (or on the machine, ``host`` None)."""

    def __init__(self, name: str, host: Host | None, env: dict, log: Path) -> None:
        self.name, self.host, self.env, self.log = name, host, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [*(self.host.prefix() if self.host else []), sys.executable, "-m", "celery",
                "-A", "worker.celery_app", "worker", "--loglevel", "info", "--hostname",
                f"{self.name}@%h", "--without-mingle", "--without-gossip"]  # fmt: skip
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextlib.contextmanager
def cluster(workdir: Path, hosts: int, broker: str) -> Iterator[tuple]:
    """Redis on the bridge (or loopback without hosts), ``hosts`` worker hosts
    with one worker each, and gunicorn here; yields (base, network, workers, store)."""
    with contextlib.ExitStack() as stack:
        network = stack.enter_context(Network()) if hosts else None
        bind = f"{network.gateway} 127.0.0.1" if network else "127.0.0.1"
        port = free_port()
        server = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", bind,
             "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(server.wait)
        stack.callback(server.terminate)
        address = network.gateway if network else "127.0.0.1"
        url = f"redis://{address}:{port}/0"
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(url).ping():
                    break
            time.sleep(0.05)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        broker_here = broker_hosts = None
        if broker == "rabbitmq":
            vhost = f"seqlab-bench-{uuid.uuid4().hex[:8]}"
            ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
            subprocess.run([ctl, "-q", "add_vhost", vhost], check=True)
            subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                           check=True)  # fmt: skip
            stack.callback(subprocess.run, [ctl, "-q", "delete_vhost", vhost], check=False)
            broker_here = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
            broker_hosts = broker_here
            if network:
                relay = Relay((network.gateway, 0), ("127.0.0.1", 5672))
                stack.callback(relay.close)
                broker_hosts = f"amqp://guest:guest@{network.gateway}:{relay.address[1]}/{vhost}"
        base_env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": url,
                    "SEQLAB_QUEUE": queue, "SEQLAB_JAX_CACHE": str(workdir / "jax")}  # fmt: skip
        workers = []
        for k in range(max(hosts, 1)):
            host = network.add_host() if network else None
            env = {**base_env, **WORKER_ENV,
                   **({"SEQLAB_BROKER_URL": broker_hosts} if broker_hosts else {})}  # fmt: skip
            worker = Worker(f"h{k + 1}-{queue}", host, env, workdir / f"h{k + 1}.log")
            worker.start()
            stack.callback(worker.stop)
            workers.append(worker)
        api_port = free_port()
        api_env = {**base_env, **({"SEQLAB_BROKER_URL": broker_here} if broker_here else {})}
        api = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{api_port}",
             "--worker-class", "gthread", "--threads", "16", "--workers", "2",
             "--log-level", "warning", "service:create_app()"],
            cwd=ROOT, env=api_env, start_new_session=True,
        )  # fmt: skip
        stack.callback(lambda: (os.killpg(api.pid, signal.SIGTERM), api.wait()))
        base = f"http://127.0.0.1:{api_port}"
        wait_healthy(f"{base}/healthz", timeout=60)
        deadline = time.monotonic() + 180
        for worker in workers:
            while b"warm-up: done" not in (worker.log.read_bytes() if worker.log.exists() else b""):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {worker.name} did not warm up")
                time.sleep(0.2)
        yield base, network, workers, JobStore.from_url(url, 3600)


def run(jobs: int, hosts: int, partition: float, broker: str) -> dict:
    """Submit ``jobs`` seed jobs from :data:`CLIENTS` clients and wait for all;
    with hosts, cut host 1 for ``partition`` s and kill host 2's worker."""
    with tempfile.TemporaryDirectory(prefix="seqlab-hosts-") as tmp, \
            cluster(Path(tmp), hosts, broker) as (base, network, workers, store):  # fmt: skip
        ids: list[str] = []
        lock = threading.Lock()
        faults: list[str] = []

        def client(n: int) -> None:
            for seed in range(n, jobs, CLIENTS):
                job = post(base, "/train", {"example": "many_to_one", "seed": seed})
                with lock:
                    ids.append(job["id"])

        def ended() -> int:
            return sum(1 for s in statuses(store, list(ids)) if s in TERMINAL)

        def inject() -> None:
            # Once a tenth of the jobs have ended: host 1 out, then host 2's worker killed.
            while ended() < jobs // 10:
                time.sleep(0.5)
            network.cut(network.hosts[0])
            faults.append(f"host 1 cut at {time.monotonic() - started:.1f} s")
            time.sleep(5)
            workers[1].kill()
            faults.append(f"host 2's worker SIGKILLed at {time.monotonic() - started:.1f} s")
            time.sleep(5)
            workers[1].start()
            time.sleep(max(0.0, partition - 10))
            network.mend(network.hosts[0])
            faults.append(f"host 1 back at {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS + 1) as pool:
            injector = pool.submit(inject) if network and hosts >= 2 else None
            list(pool.map(client, range(CLIENTS)))
            while ended() < jobs:
                time.sleep(0.5)
            wall = time.monotonic() - started
            if injector is not None:
                injector.result()
                # The cut-off host is back: give its late writes time to land
                # (they must be refused) before the streams are read.
                time.sleep(2 * float(WORKER_ENV["SEQLAB_LEASE_SECONDS"]))
                log = workers[0].log.read_bytes()
                dropped = log.count(b"is no longer this worker's; its outcome")
                faults.append(f"host 1's worker dropped {dropped} job(s) run again elsewhere, "
                              "its late outcome refused by the lease token")  # fmt: skip
        counts, attempts = check_exactly_once(store, ids)
        return {"jobs": len(ids), "wall": wall, "workers": max(hosts, 1), "faults": faults,
                "outcomes": counts, "attempts": attempts}  # fmt: skip


def statuses(store: JobStore, ids: list[str]) -> list[str]:
    with store.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(store.key(job_id), "status")
        return [json.loads(v) if v else "gone" for v in pipe.execute()]


def check_exactly_once(store: JobStore, ids: list[str]) -> tuple[Counter, Counter]:
    """Each job's stream holds one terminal status, ``succeeded``; the
    counts of outcomes and of attempts."""
    outcomes: Counter = Counter()
    attempts: Counter = Counter()
    for job_id in ids:
        events = [json.loads(e.data)["status"] for e in store.events(job_id, count=10_000)
                  if e.kind == "status"]  # fmt: skip
        terminal = [s for s in events if s in TERMINAL]
        if terminal != ["succeeded"]:
            raise AssertionError(f"job {job_id}: terminal statuses {terminal} (events {events})")
        outcomes["succeeded"] += 1
        attempts[int(json.loads(store.redis.hget(store.key(job_id), "attempt")))] += 1
    return outcomes, attempts


def main(quick: bool = False, jobs: int | None = None, partition: float | None = None,
         broker: str = "redis") -> None:  # fmt: skip
    reason = why_not()
    if reason:
        print(f"across hosts: skipped ({reason})")
        return
    jobs = jobs or (150 if quick else 1000)
    partition = partition if partition is not None else (20.0 if quick else 60.0)
    print(f"across hosts ({broker}): {jobs} seed jobs, {CLIENTS} clients, 3 worker hosts, "
          f"host 1 cut for {partition:g} s, host 2's worker killed")  # fmt: skip
    many = run(jobs, 3, partition, broker)
    # The same jobs per worker on one host, no faults: the baseline.
    one = run(max(jobs // 3, 1), 0, 0.0, broker)
    rate = lambda r: r["jobs"] / r["wall"] / r["workers"]  # noqa: E731
    for name, r in (("3 hosts, faults", many), ("1 host, no faults", one)):
        attempts = dict(sorted(r["attempts"].items()))
        print(f"  {name}: {r['jobs']} jobs in {r['wall']:.1f} s, {rate(r):.2f} jobs/s per "
              f"worker; outcomes {dict(r['outcomes'])}, attempts {attempts}")  # fmt: skip
    for fault in many["faults"]:
        print(f"    {fault}")
    goals.record(
        "across_hosts",
        f"{many['jobs']} succeeded once each; {rate(many):.2f} jobs/s per worker",
        f"1 host: {rate(one):.2f} jobs/s per worker ({rate(many) / rate(one):.2f}×)",
        met=many["outcomes"]["succeeded"] == many["jobs"],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--partition", type=float)
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    main(options.quick, options.jobs, options.partition, options.broker)
    print(goals.table())
