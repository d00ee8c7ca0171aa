"""Plain functions behind the job views: shape a train request and job
records into what the worker and the API need (the checks of a request's
data are in ``data_checks``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobs.store import prediction_samples
from seqlab import ModelReport

#: A job document shows ``result.predictions`` for training sets of up to
#: this many samples; ``GET /jobs/<id>/predictions`` has them all.
INLINE_PREDICTIONS = 1000


def job_params(report: ModelReport, summary: str) -> dict[str, Any]:
    """The engine's counts that a job document carries, with its summary."""
    return {**report.counts(), "summary": summary}


def job_model(report: ModelReport) -> dict[str, Any]:
    """The model in a word, as every job document shows it (the jobs list
    included): its Keras name and its parameter count."""
    return {"name": report.name, "total_params": report.total_params}


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
    if "model" in job:  # jobs queued before it was kept have none
        doc["model"] = job["model"]
    if "example" in job.get("request", {}):
        doc["example"] = job["request"]["example"]
    if "sweep" in job:  # a sweep's trial
        doc["sweep"] = job["sweep"]
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
    if "queue" in job:  # jobs queued before routing name none until they start
        doc["queue"] = job["queue"]
    if "warnings" in job:
        doc["warnings"] = job["warnings"]
    doc["params"] = job["params"]
    if "estimated_cost" in job:  # jobs queued before the cost model have none
        doc["estimated_cost"] = job["estimated_cost"]
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
        # Records the worker wrote before predictions were stored apart
        # may hold many: polls stay light.
        if prediction_samples(result.get("predictions") or ()) > INLINE_PREDICTIONS:
            del result["predictions"]
        result["timings"] = {
            "queued_seconds": _seconds_between(job["created_at"], job.get("started_at")),
            **result.get("timings", {}),
            "total_seconds": _seconds_between(job["created_at"], job.get("finished_at")),
        }
        doc["result"] = result
    return doc
