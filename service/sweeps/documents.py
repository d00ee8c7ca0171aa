"""Plain functions behind the sweep views: a sweep's document from its
record and its trials' job records, and the request schema of its own
fields (``vary``, ``objective``)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate

from seqlab.sweeps import best_trial
from seqlab.sweeps import sweep_status

from ..jobs.schemas import TrainRequestSchema

#: The fields of a trial's job record that a sweep document reads.
TRIAL_FIELDS = ("id", "started_at", "finished_at", "progress", "error", "result", "model")
#: The parts of a trial job's result a sweep document shows (the rest, and
#: the predictions, are the job's: ``GET /jobs/<id>``).
RESULT_PARTS = ("history", "history_block", "epochs_completed", "final_metrics", "stopped")


class ObjectiveSchema(ma.Schema):
    """``objective``: which logged value ranks the trials, and which way."""

    metric = fields.String(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "A value fit logs each epoch (loss, val_loss, mae...)."},
    )
    mode = fields.String(load_default="min", validate=validate.OneOf(("min", "max")))


class SweepFieldsSchema(ma.Schema):
    """The members of a ``POST /sweeps`` body beside its train request."""

    vary = fields.Raw(required=True)
    objective = fields.Nested(ObjectiveSchema)


class PassedData(fields.Field):
    """A trial's ``data``/``validation``: the sweep's, already loaded once
    by the train request schema, passed through unchanged (every trial
    shares them; ``vary`` cannot reach them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return value


class TrialRequestSchema(TrainRequestSchema):
    """A trial's train request: checked as ``POST /train`` checks one, but
    for its data, which the sweep's request loaded once for all trials."""

    data = PassedData(required=True)
    validation = PassedData()


sweep_fields_schema = SweepFieldsSchema()
trial_request_schema = TrialRequestSchema()


def trial_document(
    sweep_id: str, number: int, trial: Mapping[str, Any], job: Mapping[str, Any]
) -> dict[str, Any]:
    """One trial as a sweep document lists it: its values, its job's status
    and progress, its parameter count and, once ended, its result's history,
    final metrics and why it stopped."""
    doc: dict[str, Any] = {
        "trial": number,
        "values": trial["values"],
        "job": trial["job"],
        "status": job["status"],
        "total_params": (job.get("model") or {}).get("total_params", trial.get("total_params")),
        "links": {
            "job": f"/jobs/{trial['job']}",
            "model": f"/sweeps/{sweep_id}/trials/{number}/model",
            "predict": f"/sweeps/{sweep_id}/trials/{number}/predict",
        },
    }
    if "progress" in job:
        doc["progress"] = job["progress"]
    if "error" in job:
        doc["error"] = {k: v for k, v in job["error"].items() if k != "traceback"}
    if job.get("result"):
        doc["result"] = {k: job["result"][k] for k in RESULT_PARTS if k in job["result"]}
    return doc


def sweep_document(
    sweep: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], *, full: bool = True
) -> dict[str, Any]:
    """A sweep as the API shows it; ``full`` adds its trials and models."""
    sweep_id = sweep["id"]
    statuses = [job["status"] if job["status"] != "expired" else "failed" for job in jobs]
    counts = {status: statuses.count(status) for status in dict.fromkeys(statuses)}
    results = {n: job.get("result") for n, job in enumerate(jobs)}
    finished = [job.get("finished_at") for job in jobs]
    status = sweep_status(statuses)
    doc: dict[str, Any] = {
        "id": sweep_id,
        "status": status,
        "created_at": sweep["created_at"],
        "finished_at": max(finished)
        if status in ("succeeded", "failed", "cancelled") and all(finished)
        else None,  # fmt: skip
        "trial_count": len(jobs),
        "trial_statuses": counts,
        "vary": sweep["vary"],
        "objective": sweep["objective"],
        "best": best_trial(results, sweep["objective"]),
        "links": {
            "self": f"/sweeps/{sweep_id}",
            "cancel": f"/sweeps/{sweep_id}/cancel",
            "events": f"/sweeps/{sweep_id}/events",
            "plot": f"/sweeps/{sweep_id}/plot.png",
        },
    }
    if "example" in sweep:
        doc["example"] = sweep["example"]
    if not full:
        return doc
    doc["models"] = sweep["models"]
    doc["request"] = sweep["request"]
    doc["trials"] = [
        trial_document(sweep_id, n, trial, job)
        for n, (trial, job) in enumerate(zip(sweep["trials"], jobs, strict=True))
    ]
    return doc
