"""Plain functions behind the job views: check a train request against its
model, and shape job records into the documents the API returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from seqlab import ModelReport
from seqlab.registry import format_shape

from .problems import ApiValidationError
from .train_schemas import SPARSE_LOSSES


def _fits(actual: list[int], expected: tuple[int | None, ...]) -> bool:
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )


def check_data(report: ModelReport, request: Mapping[str, Any]) -> None:
    """Refuse data that does not fit the model, before anything is queued.

    ``x`` must be ``(samples, *input_shape)``, ``y`` ``(samples,
    *output_shape)`` (or the integer-label shape for sparse losses), with
    the same number of samples.
    """
    x, y = request["data"]["x"]["shape"], request["data"]["y"]["shape"]
    model_in = report.input_shape[1:]
    output = report.output_shape
    if isinstance(output, list):
        raise ApiValidationError(
            "model: a model with several outputs (return_state, merge_mode null) "
            "cannot be trained here; end it with a single-output layer.",
            {"model.layers": ["The last layer returns several tensors."]},
        )
    errors: dict[str, list[str]] = {}
    if not _fits(x[1:], model_in):
        errors["data.x"] = [
            f"Shape {format_shape(tuple(x))} does not fit the model's input "
            f"{format_shape((None, *model_in))}."
        ]
    model_out = output[1:]
    loss = request["compile"]["loss"]
    allowed = [model_out]
    if loss in SPARSE_LOSSES:  # integer class labels, one per output position
        allowed = [model_out[:-1], (*model_out[:-1], 1)]
    if not any(_fits(y[1:], shape) for shape in allowed):
        shapes = " or ".join(format_shape((None, *s)) for s in allowed)
        errors["data.y"] = [
            f"Shape {format_shape(tuple(y))} does not fit the model's output "
            f"{format_shape(output)} "
            f"with loss {loss}: expected {shapes}."
        ]
    if x[0] != y[0]:
        errors.setdefault("data", []).append(
            f"x has {x[0]} samples but y has {y[0]}: every input needs a target."
        )
    split = request["fit"]["validation_split"]
    if split:
        train = training_samples(x[0], split)
        if not 0 < train < x[0]:
            errors["fit.validation_split"] = [
                f"With {x[0]} samples, validation_split={split} keeps {train} for training "
                f"and {x[0] - train} for validation; Keras needs at least one of each."
            ]
    layer = request["model"]["layers"][0]
    if layer["type"] == "Embedding" and "data.x" not in errors:
        check_token_ids(request["data"]["x"]["value"], layer["input_dim"], errors)
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)


def training_samples(samples: int, validation_split: float) -> int:
    """How many samples Keras trains on; it validates on the rest (the last)."""
    return math.floor(samples * (1.0 - validation_split))


def check_token_ids(x: Any, input_dim: int, errors: dict[str, list[str]]) -> None:
    """An Embedding's inputs must be integer ids below ``input_dim``."""
    stack = [x]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif item != math.floor(item) or not 0 <= item < input_dim:
            errors["data.x"] = [
                f"An Embedding takes integer ids in [0, {input_dim}). Received: {item!r}."
            ]
            return


def job_params(report: ModelReport, summary: str) -> dict[str, Any]:
    """The engine's counts that a job document carries."""
    return {
        "total_params": report.total_params,
        "trainable_params": report.trainable_params,
        "non_trainable_params": report.non_trainable_params,
        "layers": [
            {
                "name": layer.name,
                "type": layer.type,
                "output_shape": layer.to_dict()["output_shape"],
                "params": layer.params,
            }
            for layer in report.layers
        ],
        "summary": summary,
    }


def stored_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as the job record keeps it: all but the training data,
    which is stored apart (:func:`stored_data`) so that polls never parse it."""
    return {
        "model": request["model"],
        "compile": request["compile"],
        "fit": request["fit"],
        "seed": request["seed"],
        **({"example": request["example"]} if "example" in request else {}),
    }


def stored_data(request: Mapping[str, Any]) -> dict[str, Any]:
    """The training data as the worker needs it: plain nested lists."""
    return {"x": request["data"]["x"]["value"], "y": request["data"]["y"]["value"]}


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return round((parse(end) - parse(start)).total_seconds(), 3)


def job_document(job: Mapping[str, Any], *, full: bool = True) -> dict[str, Any]:
    """A job record as the API shows it; ``full`` adds results and the request."""
    job_id = job["id"]
    doc: dict[str, Any] = {
        "id": job_id,
        "status": job["status"],
        "created_at": job["created_at"],
        "started_at": job.get("started_at"),
        "finished_at": job.get("finished_at"),
        "links": {
            "self": f"/jobs/{job_id}",
            "cancel": f"/jobs/{job_id}/cancel",
            "model": f"/jobs/{job_id}/model",
        },
    }
    if "example" in job.get("request", {}):
        doc["example"] = job["request"]["example"]
    if job.get("cancel_requested") and job["status"] == "running":
        doc["cancel_requested"] = True
    if "attempt" in job:  # runs started: 2 once a lost worker's job ran again
        doc["attempt"] = job["attempt"]
    if "progress" in job:
        doc["progress"] = job["progress"]
    if "error" in job:
        doc["error"] = {k: v for k, v in job["error"].items() if k != "traceback"}
    if not full:
        return doc
    doc["params"] = job["params"]
    request = job["request"]
    doc["request"] = {
        "model": request["model"],
        "compile": request["compile"],
        "fit": request["fit"],
        "seed": request["seed"],
        "data_shapes": job.get("data_shapes"),
    }
    if "result" in job:
        result = dict(job["result"])
        result["timings"] = {
            "queued_seconds": _seconds_between(job["created_at"], job.get("started_at")),
            **result.get("timings", {}),
            "total_seconds": _seconds_between(job["created_at"], job.get("finished_at")),
        }
        doc["result"] = result
    return doc
