"""(d) The cost of the API key guard on the hot paths: ``POST /params`` and
``GET /jobs/<id>`` with keys on against keys off, in the same run.

Starts a redis-server of its own on a free port (never a Redis it was not
given), queues one job on a queue no worker serves, and runs two gunicorn
servers on it, one open and one with API keys; wrk drives each route on the
two servers in alternating rounds, so that machine noise hits both alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from .http_throughput import BODY
from .http_throughput import api
from .http_throughput import free_port
from .http_throughput import wrk

SECRET = secrets.token_urlsafe(32)
KEYS = f"bench:{SECRET},other:{secrets.token_urlsafe(32)}"


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL."""
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is missing: install it (apt-get install redis-server) and rerun.")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(0.5)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def queue_job(base: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(
        f"{base}/train",
        data=json.dumps({"example": "one_to_one"}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Location"])


def lua(method: str, headers: dict[str, str], body: str | None) -> str:
    """A wrk script for one request; the caller deletes the file."""
    lines = [f'wrk.method = "{method}"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    return script.name


def main(quick: bool = False) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install it (Debian: apt-get install wrk) and rerun.")
    seconds, rounds = (3, 3) if quick else (10, 5)
    print(
        "\n(d) the API key guard: keys off against keys on (2 tenants), gunicorn (2 sync "
        f"workers) each, wrk 1 thread 8 connections, {rounds} alternating rounds of {seconds} s"
    )
    bearer = {"Authorization": f"Bearer {SECRET}"}
    json_type = {"Content-Type": "application/json"}
    scripts: list[str] = []
    with redis_server() as url:
        env = {"REDIS_URL": url, "SEQLAB_QUEUE": f"bench-idle-{secrets.token_hex(4)}"}
        with api(env) as open_api, api({**env, "SEQLAB_API_KEYS": KEYS}) as keyed_api:
            runs = {}
            for label, base, headers in (
                ("off", open_api, {}),
                ("on", keyed_api, bearer),
            ):
                job = queue_job(base, headers)
                params = lua("POST", {**json_type, **headers}, json.dumps(BODY))
                poll = lua("GET", headers, None)
                scripts += [params, poll]
                runs[label] = {
                    "POST /params": (f"{base}/params", params),
                    "GET /jobs/<id>": (f"{base}{job}", poll),
                }
            try:
                for route in ("POST /params", "GET /jobs/<id>"):
                    rates: dict[str, list[float]] = {"off": [], "on": []}
                    for label in rates:  # warm up
                        wrk(*runs[label][route][:1], 1, runs[label][route][1])
                    for _ in range(rounds):
                        for label in rates:
                            rates[label].append(wrk(runs[label][route][0], seconds,
                                                    runs[label][route][1]))  # fmt: skip
                    off, on = (statistics.median(rates[k]) for k in ("off", "on"))
                    ratio = statistics.median(
                        b / a for a, b in zip(rates["off"], rates["on"], strict=True)
                    )
                    print(
                        f"    {route:15} keys off: median {off:8,.0f} req/s   keys on: median "
                        f"{on:8,.0f} req/s   on/off: {ratio:.0%} (median of per-round ratios)"
                    )
            finally:
                for script in scripts:
                    os.unlink(script)


if __name__ == "__main__":
    main()
