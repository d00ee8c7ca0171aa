"""Plain-text renderings: the job, the jobs table, a sparkline, the params report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: Eight heights of a sparkline, lowest first.
BARS = "▁▂▃▄▅▆▇█"
#: Points of a sparkline (wandb's run summary draws 40).
SPARK_WIDTH = 40
#: Predictions are printed when there are at most this many numbers.
FEW_PREDICTIONS = 50


def number(value: Any) -> str:
    """A metric for a human: 4 significant digits, exponent when small or large."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> tuple[str, bool]:
    """``values`` drawn in ``width`` block characters (means over equal
    stretches when there are more), and whether the scale is logarithmic:
    it is when every value is positive and they span more than two decades,
    as a loss that falls from 0.2 to 1e-5 would otherwise be a flat line."""
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return "", False
    log = min(finite) > 0 and max(finite) / min(finite) > 100
    points = [math.log10(v) if log else v for v in finite]
    if len(points) > width:
        points = [
            sum(chunk) / len(chunk)
            for chunk in (points[i * len(points) // width : (i + 1) * len(points) // width]
                          for i in range(width))
        ]  # fmt: skip
    low, high = min(points), max(points)
    span = high - low
    if span == 0:
        return BARS[0] * len(points), log
    return "".join(BARS[min(7, int((p - low) / span * 8))] for p in points), log


def _count(value: Any) -> int:
    # Predictions: nested lists, or an object of them by output name.
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 1


def _round(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return float(f"{value:.4g}") if isinstance(value, float) else value


def duration(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


def job_text(job: dict[str, Any]) -> str:
    """A job for a human: status, progress or results, the loss sparkline
    and, when they are few, the predictions."""
    result = job.get("result", {})
    timings = result.get("timings", {})
    head = f"job {job['id']} {job['status']}"
    if job.get("example"):
        head += f" ({job['example']})"
    if job["status"] in ("succeeded", "failed", "cancelled") and timings.get("total_seconds"):
        head += f" in {duration(timings['total_seconds'])}"
    lines = [head]
    rows: list[tuple[str, str]] = []
    if "error" in job:
        error = job["error"]
        rows.append(("error", f"{error.get('type', 'Error')}: {error.get('message', '')}"))
    params = job.get("params", {})
    if "total_params" in params:
        rows.append(("params", f"{params['total_params']:,}"))
    progress = job.get("progress")
    if progress and job["status"] in ("queued", "running"):
        rows.append(("epoch", f"{progress.get('epoch', 0)}/{progress.get('epochs', '?')}"))
        if progress.get("loss") is not None:
            rows.append(("loss", number(progress["loss"])))
        if progress.get("eta_seconds") is not None:
            rows.append(("eta", duration(progress["eta_seconds"])))
    for name, value in result.get("final_metrics", {}).items():
        rows.append((f"final {name}", number(value)))
    history = result.get("history", {})
    for name in ("loss", "val_loss"):
        if history.get(name):
            spark, log = sparkline(history[name])
            first, last = number(history[name][0]), number(history[name][-1])
            scale = " (log scale)" if log else ""
            rows.append((name, f"{spark}  {first} → {last}{scale}"))
    predictions = result.get("predictions")
    if predictions is not None:
        count = _count(predictions)
        if count <= FEW_PREDICTIONS:
            rows.append(("predictions", json.dumps(_round(predictions))))
        else:
            rows.append(("predictions", f"{count} numbers (seqlab job {job['id']} --json)"))
    if "device" in result:
        rows.append(("trained on", f"{result['device']}, Keras {result.get('keras_version', '?')} "
                                   f"({result.get('backend', '?')})"))  # fmt: skip
    width = max((len(name) for name, _ in rows), default=0)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def _when(stamp: str | None) -> str:
    if not stamp:
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def jobs_table(jobs: list[dict[str, Any]]) -> str:
    """One line per job: id, status, creation time, epochs done, last loss."""
    header = ("ID", "STATUS", "CREATED", "EPOCH", "LOSS")
    rows = [header]
    for job in jobs:
        progress = job.get("progress") or {}
        epoch = f"{progress['epoch']}/{progress['epochs']}" if "epochs" in progress else "-"
        loss = progress.get("loss")
        rows.append((job["id"], job["status"], _when(job.get("created_at")), epoch,
                     "-" if loss is None else number(loss)))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _formulas(layers: list[dict[str, Any]], indent: str) -> list[str]:
    lines = []
    for layer in layers:
        lines.append(f"{indent}{layer['name']} ({layer['type']}): {layer['formula']}")
        lines += _formulas(layer.get("sublayers", []), indent + "  ")
    return lines


def _bytes(value: int | None) -> str:
    if value is None:
        return "unknown (a length is None)"
    if value < 1000:
        return f"{value:,} B"
    scaled = float(value)
    for unit in ("kB", "MB", "GB", "TB"):
        scaled /= 1000
        if scaled < 1000 or unit == "TB":
            break
    return f"{scaled:.2f} {unit} ({value:,} B)"


def params_text(document: dict[str, Any]) -> str:
    """The ``POST /params`` document for a human: Keras's summary table, the
    formula of each layer's count, the MACs and the memory estimates, and
    last its warnings (a model Keras counts but cannot call), if any."""
    memory = document["train_memory"]
    macs = document["macs"]
    lines = [
        document["summary"].rstrip("\n"),
        "",
        "Formulas:",
        *_formulas(document["layers"], "  "),
        "",
        f"MACs per sample: {'unknown (a length is None)' if macs is None else f'{macs:,}'}",
        f"Training memory ({memory['optimizer']}, batch {memory['batch_size']}): "
        f"{_bytes(document['train_memory_bytes'])}, an estimate",
        f"Trained model file ({memory['optimizer']} state): at most "
        f"{_bytes(document['model_file_bytes'])}",
    ]
    warnings = document.get("warnings") or []  # a server older than the field
    if warnings:
        lines += [
            "",
            f"Warnings ({len(warnings)}): Keras builds and counts this model, but its first "
            "call (fit or predict) fails; POST /train refuses it.",
            *(f"  {w['field']}: {w['message']}" for w in warnings),
        ]
    return "\n".join(lines)
