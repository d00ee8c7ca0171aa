"""The goals of issue 18 in one table: each bench records its figure here,
and ``python -m bench`` prints them together at the end.

A row whose bench did not run (``--only``, no seed scripts) says so: the
table always names every goal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    goal: str
    target: str
    figure: str = "not run"
    baseline: str = ""
    met: bool | None = None


#: The rows in the order the table prints them; keys are what benches record.
ROWS: dict[str, Row] = {
    "params_sequential": Row(
        "POST /params (uncached, in the app) vs Keras build, Sequential", "≥ 100×"
    ),
    "params_functional": Row(
        "POST /params (uncached, in the app) vs Keras build, Functional", "≥ 100×"
    ),
    "graph_schema": Row("graph schema load vs the same layers as a Sequential spec", "≤ 2×"),
    "throughput": Row("POST /params vs GET /healthz throughput (gunicorn gthread 2×4)", "≥ 70 %"),
    "throughput_uncached": Row("  the same, response cache off", "(reported)"),
    "predict_latency": Row(
        "POST /jobs/<id>/predict p50, warm worker, vs plain Keras", "(reported)"
    ),
    "predict_idle": Row("POST /jobs/<id>/predict p50 through the API, idle worker", "≤ 3 ms"),
    "predict_training": Row(
        "POST /jobs/<id>/predict p50 through the API, while the worker trains", "≤ 10 ms"
    ),
    "seed_jobs": Row("seed programs: script run directly vs POST /train → succeeded", "≥ 25× each"),
    "warm_seed_job": Row(
        "warm seed job: POST /train → succeeded seen by the client, median, JAX worker",
        "≤ 0.3 s each",
    ),
    "sweep_32": Row(
        "sweep of 32 many_to_one variants vs the same 32 as separate jobs, POST → all ended",
        "≥ 10×",
    ),
    "sweep_256": Row("  the same, 256 variants", "(reported)"),
    "sweep_realistic": Row(
        "  the same, GRU(32) on 2,000 sine windows, 20 epochs, validation, 16 seeds",
        "(reported)",
    ),
    "across_hosts": Row(
        "1,000 seed jobs, 16 clients, 3 worker hosts, one cut 60 s, one worker killed",
        "each succeeded once",
    ),
}


def record(key: str, figure: str, baseline: str, met: bool | None = None) -> None:
    """Set the figure of the row ``key`` (one of :data:`ROWS`)."""
    row = ROWS[key]
    row.figure, row.baseline, row.met = figure, baseline, met


def table() -> str:
    """The goals, their figures and baselines, one line each."""
    header = ("goal", "target", "figure", "verdict", "baseline")
    lines = [
        (
            row.goal,
            row.target,
            row.figure,
            "—" if row.met is None else ("met" if row.met else "NOT met"),
            row.baseline,
        )
        for row in ROWS.values()
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    out = ["\nIssue 18 goals"]
    for cells in [header, tuple("-" * w for w in widths), *lines]:
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(out)
