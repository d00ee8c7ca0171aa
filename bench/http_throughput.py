"""(b) Throughput of POST /params against GET /healthz on the same server.

Starts the production server (gunicorn with gthread workers, as ``make up``
and the API image run ``service:create_app()``) on a free
loopback port and drives it with wrk for a fixed duration, alternating the
two endpoints over several rounds so that machine noise hits both alike.
Reports the median requests per second of each and their ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from devtools.up import api_argv

from . import goals

GOAL = 0.70
#: gunicorn's processes and threads each (as tests/test_bounded_cost.py runs it).
PROCESSES, THREADS = 2, 4
#: The seed article's many-to-many model, the service's first example.
BODY = {
    "input_shape": [5, 1],
    "layers": [
        {"type": "LSTM", "units": 5, "return_sequences": True},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wrk(url: str, seconds: int, script: str | None) -> float:
    """Requests per second that wrk measured."""
    command = ["wrk", "-t1", "-c8", f"-d{seconds}s", url]
    if script:
        command[1:1] = ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


@contextlib.contextmanager
def api(env: dict[str, str]) -> Iterator[str]:
    """gunicorn as the service runs (``make up``'s command: gthread workers),
    2 processes × 4 threads, with ``env``; yields its base URL once healthy."""
    port = free_port()
    argv = api_argv(sys.executable, "127.0.0.1", str(port), str(THREADS))
    # No access log: its lines would be written for every request measured.
    argv.remove("--access-logfile")
    argv.remove("-")
    server = subprocess.Popen(
        argv,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "WEB_CONCURRENCY": str(PROCESSES), **env},
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def measure(seconds: int, rounds: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Alternate wrk runs on /healthz and /params against one fresh server."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
        )
    try:
        with api(env) as base:
            health, params = [], []
            wrk(f"{base}/healthz", 1, None)  # warm up both
            wrk(f"{base}/params", 1, lua.name)
            for _ in range(rounds):
                health.append(wrk(f"{base}/healthz", seconds, None))
                params.append(wrk(f"{base}/params", seconds, lua.name))
    finally:
        os.unlink(lua.name)
    return health, params


def report(label: str, health: list[float], params: list[float], key: str | None = None) -> float:
    ratio = statistics.median(p / h for p, h in zip(params, health, strict=True))
    if key is not None:
        goals.record(
            key,
            f"{ratio:.0%} ({statistics.median(params):,.0f} req/s)",
            f"GET /healthz {statistics.median(health):,.0f} req/s",
            ratio >= GOAL if key == "throughput" else None,
        )
    print(f"    {label}")
    print(
        f"      GET /healthz:  median {statistics.median(health):9,.0f} req/s  "
        f"rounds {[round(x) for x in health]}"
    )
    print(
        f"      POST /params:  median {statistics.median(params):9,.0f} req/s  "
        f"rounds {[round(x) for x in params]}"
    )
    print(f"      ratio /params / /healthz: median {ratio:.0%} of the per-round ratios")
    return ratio


def main(quick: bool = False) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install it (Debian: apt-get install wrk) and rerun.")
    seconds, rounds = (3, 3) if quick else (10, 5)
    print(
        f"\n(b) gunicorn (gthread, {PROCESSES} processes × {THREADS} threads) on loopback, "
        "wrk 1 thread 8 connections, "
        f"{rounds} alternating rounds of {seconds} s, body: the seed many-to-many model"
    )
    cached = report("default settings (response cache on: repeated bodies):",
                    *measure(seconds, rounds, {}), key="throughput")  # fmt: skip
    uncached = report("response cache off (FLASK_PARAMS_CACHE_SIZE=0: every request computed):",
                      *measure(seconds, rounds, {"FLASK_PARAMS_CACHE_SIZE": "0"}),
                      key="throughput_uncached")  # fmt: skip
    verdict = "met" if cached >= GOAL else "NOT met"
    print(
        f"    goal ≥ {GOAL:.0%}: {verdict} with the cache; {uncached:.0%} computing every request"
    )


if __name__ == "__main__":
    main()
