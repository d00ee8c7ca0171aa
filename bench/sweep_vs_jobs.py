"""(j) A sweep against the same variants as separate jobs, as a client sees them.

Through a real stack (bench/warm_seed_job.py's: a redis-server of its own,
the API under gunicorn, one JAX Celery worker), side by side in one run,
rounds alternating:

* **32 variants of the seed's many_to_one** (16 seeds × 2 learning rates):
  ``POST /sweeps`` followed over its event stream to its final status,
  against 32 ``POST /train`` sent at once and followed until the last has
  ended; the issue's goal is ≥ 10× faster;
* **256 variants** (128 seeds × 2 learning rates), the same two ways;
* **a realistic model**: GRU(32) then Dense(1) on 2,000 windows of 40 steps
  of a noisy sine (the next value), 20 epochs, batch 32, validation split
  0.2, 16 seeds.

Each figure is a median over the rounds, after one untimed round of each
(the worker's warm-up, and the first sweep of a structure compiling its
vectorized program). Run alone: ``python -m bench.sweep_vs_jobs [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from . import goals
from .warm_seed_job import ROOT
from .warm_seed_job import TERMINAL
from .warm_seed_job import WARM_UP_WAIT
from .warm_seed_job import call
from .warm_seed_job import stack
from .warm_seed_job import warmed_up

#: The issue's goal: the sweep at least this many times faster.
GOAL = 10.0


def seed_sweep(seeds: int) -> dict:
    return {
        "example": "many_to_one",
        "vary": {"seed": list(range(seeds)), "compile.learning_rate": [0.01, 0.05]},
    }


def sine_windows(samples: int = 2000, steps: int = 40) -> dict:
    """Windows of a noisy sine and the value after each (deterministic)."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(samples + steps + 1) * 0.1
    series = np.sin(t) + 0.1 * rng.normal(size=t.shape)
    x = [[[round(float(v), 3)] for v in series[i : i + steps]] for i in range(samples)]
    y = [[round(float(series[i + steps]), 3)] for i in range(samples)]
    return {"x": x, "y": y}


def realistic_sweep(seeds: int) -> dict:
    return {
        "model": {
            "input_shape": [40, 1],
            "layers": [{"type": "GRU", "units": 32}, {"type": "Dense", "units": 1}],
        },
        "data": sine_windows(),
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 20, "batch_size": 32, "validation_split": 0.2},
        "vary": {"seed": list(range(seeds))},
    }


def trial_requests(sweep: dict) -> list[dict]:
    """The lone ``POST /train`` requests of a sweep's trials."""
    from seqlab.sweeps import expand

    base = {k: v for k, v in sweep.items() if k != "vary"}
    return [trial.request for trial in expand(base, sweep["vary"])]


def follow(base: str, path: str) -> str:
    """Read an event stream until its final status event; that status."""
    with urllib.request.urlopen(f"{base}{path}", timeout=600) as response:
        kind = ""
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "status":
                status = json.loads(line[5:])["status"]
                if status in TERMINAL:
                    return str(status)
    raise RuntimeError(f"{path}: the stream ended before the final status")


def run_sweep(base: str, body: dict) -> float:
    """Seconds from ``POST /sweeps`` to its final status seen over its events."""
    started = time.perf_counter()
    sweep = call(f"{base}/sweeps", body)
    status = follow(base, f"/sweeps/{sweep['id']}/events")
    seconds = time.perf_counter() - started
    if status != "succeeded":
        raise RuntimeError(f"sweep {sweep['id']}: {status}")
    return seconds


def run_jobs(base: str, requests: list[dict]) -> float:
    """Seconds from the first of ``POST /train`` of each request to the last
    job's end, each followed by polling ``GET /jobs/<id>`` every 10 ms once
    all are posted (the earlier ones may have ended by then)."""
    started = time.perf_counter()
    ids = [call(f"{base}/train", request)["id"] for request in requests]
    for job_id in ids:
        while (job := call(f"{base}/jobs/{job_id}"))["status"] not in TERMINAL:
            time.sleep(0.01)
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job_id}: {job['status']}")
    return time.perf_counter() - started


def compare(base: str, name: str, body: dict, rounds: int) -> tuple[float, float]:
    """Median seconds of the sweep and of its trials as separate jobs."""
    requests = trial_requests(body)
    run_sweep(base, body)  # untimed: compiles the group's program
    run_jobs(base, requests[:2])
    sweeps, jobs = [], []
    for _ in range(rounds):
        sweeps.append(run_sweep(base, body))
        jobs.append(run_jobs(base, requests))
    sweep, separate = statistics.median(sweeps), statistics.median(jobs)
    print(
        f"    {name}: sweep {sweep:.3f} s {[round(s, 3) for s in sweeps]}; "
        f"separate jobs {separate:.3f} s {[round(s, 3) for s in jobs]}; "
        f"{separate / sweep:.1f}× faster"
    )
    return sweep, separate


def main(quick: bool = False, rounds: int | None = None) -> None:
    rounds = rounds or (3 if quick else 5)
    print("\n(j) sweeps: POST /sweeps → succeeded vs the same trials as POST /train jobs (JAX)")
    with tempfile.TemporaryDirectory(prefix="seqlab-bench-") as tmp, stack(ROOT, Path(tmp)) as base:
        warmed_up(Path(tmp) / "worker.log", timeout=WARM_UP_WAIT)
        sweep, separate = compare(base, "32 variants of many_to_one", seed_sweep(16), rounds)
        goals.record(
            "sweep_32",
            f"{separate / sweep:.1f}× (sweep {sweep:.3f} s)",
            f"32 separate jobs {separate:.3f} s",
            separate / sweep >= GOAL,
        )
        big = 1 if quick else max(1, rounds // 2)
        sweep, separate = compare(base, "256 variants of many_to_one", seed_sweep(128), big)
        goals.record(
            "sweep_256",
            f"{separate / sweep:.1f}× (sweep {sweep:.3f} s)",
            f"256 separate jobs {separate:.3f} s",
        )
        seeds = 4 if quick else 16
        sweep, separate = compare(
            base, f"GRU(32), 2,000 windows, 20 epochs, {seeds} seeds", realistic_sweep(seeds), big
        )
        per = "" if math.isclose(seeds, 16) else f" ({seeds} seeds)"
        goals.record(
            "sweep_realistic",
            f"{separate / sweep:.1f}× (sweep {sweep:.3f} s){per}",
            f"{seeds} separate jobs {separate:.3f} s",
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    options = parser.parse_args()
    main(quick=options.quick, rounds=options.rounds)
