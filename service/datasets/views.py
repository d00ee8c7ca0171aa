"""Datasets: ``POST /datasets`` (an ``.npz`` upload), ``GET /datasets``,
``GET /datasets/<id>``, ``DELETE /datasets/<id>``; and what ``POST /train``
needs of one (:func:`resolve_train_data`).

An upload is streamed to a temporary file in chunks, within
``SEQLAB_MAX_DATASET_BYTES`` (413), then loaded with numpy
``allow_pickle=False`` and checked (422, nothing stored) before its arrays
go to Redis (jobs/datasets.py). Each dataset belongs to the tenant that
uploaded it: another tenant's id is answered as an unknown one.
"""

from __future__ import annotations

import math
import tempfile
import zipfile
from typing import IO
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import request
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import UnsupportedMediaType

from jobs.datasets import ARRAY_NAMES
from jobs.datasets import DatasetGone
from jobs.datasets import DatasetStore
from modelspec.errors import ApiValidationError
from seqlab import ModelReport

from .. import auth
from ..limits import LimitExceeded
from .checks import check_shapes
from .checks import check_values
from .domains import plain_number

bp = Blueprint("datasets", __name__)

#: Bytes read from the request at a time.
READ_BYTES = 1024 * 1024
#: Array kinds a model can train on: bool, signed and unsigned integers, floats.
NUMERIC_KINDS = "biuf"


def store() -> DatasetStore:
    return current_app.extensions["datasets"]  # type: ignore[no-any-return]


def max_bytes() -> int:
    return int(current_app.config["SEQLAB_MAX_DATASET_BYTES"])


def no_such_dataset(dataset_id: str) -> NotFound:
    """The 404 for an id that names no dataset the caller may see."""
    shown = dataset_id if len(dataset_id) <= 64 else f"{dataset_id[:64]}…"
    return NotFound(f"There is no dataset {shown!r} (datasets are kept for a limited time).")


def get_dataset_or_404(dataset_id: str) -> dict[str, Any]:
    """The record of a dataset the caller may see (the ownership rule of
    service/auth.py); unknown ids, ids of another form and other tenants'
    datasets are one and the same 404."""
    record = store().get(dataset_id)
    if record is None or not auth.owned_by_caller(record.get("tenant")):
        raise no_such_dataset(dataset_id)
    return record


def dataset_document(record: dict[str, Any]) -> dict[str, Any]:
    """A dataset record as the API shows it (no tenant, no chunk counts)."""
    return {
        "id": record["id"],
        "created_at": record["created_at"],
        "bytes": record["bytes"],
        "arrays": {
            name: {k: array[k] for k in ("shape", "dtype", "bytes")}
            for name, array in record["arrays"].items()
        },
        "links": {"self": f"/datasets/{record['id']}"},
    }


def too_large(detail: str) -> LimitExceeded:
    return LimitExceeded(f"{detail} (SEQLAB_MAX_DATASET_BYTES, {max_bytes():,} bytes).")


def refuse(path: str, message: str) -> ApiValidationError:
    return ApiValidationError(f"{path}: {message}", {path: [message]})


# -- reading the upload ------------------------------------------------------


def _copy_limited(source: IO[bytes], target: IO[bytes]) -> None:
    """Copy in chunks, refusing more than the limit as soon as it is passed."""
    limit, total = max_bytes(), 0
    while chunk := source.read(READ_BYTES):
        total += len(chunk)
        if total > limit:
            raise too_large("The upload is over the limit of a dataset")
        target.write(chunk)


def receive_upload(target: IO[bytes]) -> None:
    """Write the uploaded file into ``target``: the body of an
    ``application/octet-stream`` request, or the one file of a
    ``multipart/form-data`` one (which werkzeug spools to disk)."""
    mimetype = request.mimetype
    if mimetype == "application/octet-stream":
        size = request.content_length
        if size is not None and size > max_bytes():
            raise too_large(f"The upload of {size:,} bytes is over the limit of a dataset")
        _copy_limited(request.stream, target)
    elif mimetype == "multipart/form-data":
        files = list(request.files.values())
        if len(files) != 1:
            raise refuse(
                "body", f"Send exactly one file field (the .npz); this form has {len(files)}."
            )
        _copy_limited(files[0].stream, target)
    else:
        raise UnsupportedMediaType(
            "Upload an .npz as application/octet-stream or as the one file of a "
            f"multipart/form-data body; this request is {mimetype or 'without a Content-Type'}."
        )
    if target.tell() == 0:
        raise refuse("body", "The upload is empty: send an .npz file (numpy.savez).")
    target.seek(0)


def _headers(npz: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Each member's shape and dtype, read from its .npy header alone, so
    that nothing is decompressed before its size is known."""
    import numpy as np

    found = {}
    for member in npz.zip.namelist():
        name = member[:-4] if member.endswith(".npy") else member
        with npz.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        found[name] = (shape, dtype)
    return found


def load_arrays(file: IO[bytes]) -> dict[str, Any]:
    """The checked arrays of an uploaded ``.npz``, by name.

    :raise 422: an unreadable file, an array name other than x, y, x_val,
        y_val, a missing x or y (or one of x_val/y_val without the other),
        object or non-numeric arrays, arrays without samples, NaN or
        infinite values, mismatched sample counts.
    :raise 413: arrays that hold more than the limit once decompressed.
    """
    import numpy as np

    # numpy.load would try anything that is neither a zip nor an .npy as a
    # pickle and say so: name what the upload is not instead.
    magic = file.read(6)
    file.seek(0)
    if not magic.startswith((b"PK\x03\x04", b"\x93NUMPY")):
        raise refuse(
            "body", "The upload is not an .npz file (numpy.savez writes a zip archive of arrays)."
        )
    try:
        npz = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        reason = f"The upload is not a readable .npz file (numpy.savez): {error}"
        raise refuse("body", reason) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise refuse(
            "body", "The upload is a single .npy array; send an .npz (numpy.savez) with x and y."
        )
    with npz:
        try:
            headers = _headers(npz)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise refuse("body", f"The .npz holds an unreadable array: {error}") from None
        errors: dict[str, list[str]] = {}
        unknown = sorted(set(headers) - set(ARRAY_NAMES))
        if unknown:
            errors["body"] = [
                f"Unknown arrays {', '.join(unknown)}: an .npz holds x and y, and optionally "
                "x_val and y_val."
            ]
        for name in ("x", "y"):
            if name not in headers:
                errors[name] = [f"Missing: the .npz has no array {name!r} (it has "
                                f"{', '.join(sorted(headers)) or 'none'})."]  # fmt: skip
        if ("x_val" in headers) != ("y_val" in headers):
            given, missing = ("x_val", "y_val") if "x_val" in headers else ("y_val", "x_val")
            errors[missing] = [f"Missing: {given} needs {missing} (validation data is a pair)."]
        for name, (shape, dtype) in headers.items():
            if name not in ARRAY_NAMES:
                continue
            if dtype.hasobject:
                errors[name] = [
                    "Holds Python objects (dtype object), which are loaded only by unpickling "
                    "(allow_pickle=False here): save numeric arrays."
                ]
            elif dtype.kind not in NUMERIC_KINDS:
                errors[name] = [f"dtype {dtype.str} is not numeric: bool, integer or float only."]
            elif not shape:
                errors[name] = ["Is a scalar: arrays hold samples first."]
            elif shape[0] == 0:
                errors[name] = ["Holds no samples."]
        if errors:
            first = next(iter(errors))
            raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
        decompressed = sum(math.prod(s) * d.itemsize for s, d in headers.values())
        if decompressed > max_bytes():
            raise too_large(f"The arrays hold {decompressed:,} bytes, over the limit of a dataset")
        try:
            arrays = {name: npz[name] for name in ARRAY_NAMES if name in headers}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise refuse("body", f"The .npz holds an unreadable array: {error}") from None
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(array))
            if bad.size:
                where = "".join(f"[{i}]" for i in np.unravel_index(bad[0], array.shape))
                errors[name] = [
                    f"Holds NaN or infinite values ({bad.size:,} of them): {name}{where} is "
                    f"{plain_number(array.flat[bad[0]])}. Keras would train to a NaN loss."
                ]
    for inputs, targets in (("x", "y"), ("x_val", "y_val")):
        if inputs in arrays and arrays[inputs].shape[0] != arrays[targets].shape[0]:
            errors.setdefault(targets, []).append(
                f"{inputs} has {arrays[inputs].shape[0]:,} samples but {targets} has "
                f"{arrays[targets].shape[0]:,}: every input needs a target."
            )
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
    return arrays


# -- routes ----------------------------------------------------------------


@bp.post("/datasets")
def upload_dataset() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Upload an ``.npz`` (``x``, ``y``, optionally ``x_val``, ``y_val``)."""
    tenant = auth.caller()
    limit = int(current_app.config["SEQLAB_MAX_DATASETS"])
    # Before the body is read: a tenant at its limit uploads nothing.
    if store().count(tenant) >= limit:
        raise refuse(
            "body",
            f"You have {limit} datasets, the limit (SEQLAB_MAX_DATASETS); delete one first.",
        )
    with tempfile.TemporaryFile() as spool:
        receive_upload(spool)
        arrays = load_arrays(spool)
    record = store().create(arrays, tenant)
    return dataset_document(record), 201, {"Location": f"/datasets/{record['id']}"}


@bp.get("/datasets")
def list_datasets() -> dict[str, Any]:
    """The caller's datasets, newest first."""
    limit = max(int(current_app.config["SEQLAB_MAX_DATASETS"]), 100)
    return {"datasets": [dataset_document(r) for r in store().page(auth.caller(), limit)]}


@bp.get("/datasets/<dataset_id>")
def get_dataset(dataset_id: str) -> dict[str, Any]:
    """A dataset's arrays: their shapes, dtypes and sizes."""
    return dataset_document(get_dataset_or_404(dataset_id))


@bp.delete("/datasets/<dataset_id>")
def delete_dataset(dataset_id: str) -> tuple[str, int]:
    """Delete a dataset; a job queued on it and not yet started then fails."""
    if not store().delete(get_dataset_or_404(dataset_id)):
        raise no_such_dataset(dataset_id)  # a concurrent delete won
    return "", 204


# -- POST /train --------------------------------------------------------------


def _tensors(record: dict[str, Any], names: tuple[str, str]) -> tuple[dict[str, Any], ...]:
    """Two of a dataset's arrays as ``check_data`` takes them: the shape from
    the record, the values as NumPy arrays read from Redis (a 64 MiB dataset
    takes a fraction of a second to read and check)."""
    try:
        arrays = store().load(record["id"], names)
    except DatasetGone:
        raise no_such_dataset(record["id"]) from None
    return tuple(
        {"shape": record["arrays"][name]["shape"], "array": arrays[name], "first_bool": None}
        for name in names
    )


def resolve_train_data(body: dict[str, Any]) -> dict[str, Any] | None:
    """Put the shapes of a train request's datasets in its body; returns
    what the worker needs to load them (None for inline data alone).

    ``data.dataset`` gives ``data.x``/``data.y`` its ``x``/``y`` shapes;
    the validation data is ``validation.dataset``'s ``x``/``y`` or else the
    data's own ``x_val``/``y_val``, as ``body["validation"]`` shapes.

    :raise 404: a dataset the caller cannot see, named by its field.
    :raise 422: validation data together with ``fit.validation_split``.
    """
    refs: dict[str, Any] = {}
    data = body["data"]
    if "dataset" in data:
        record = get_dataset_or_404(data["dataset"])
        data["x"], data["y"] = _tensors(record, ("x", "y"))
        refs["dataset"] = record["id"]
        if "x_val" in record["arrays"]:
            refs["validation"] = {"dataset": record["id"], "x": "x_val", "y": "y_val"}
            x_val, y_val = _tensors(record, ("x_val", "y_val"))
            body["validation"] = {"x": x_val, "y": y_val}
    if "validation" in body and "dataset" in body["validation"]:
        record = get_dataset_or_404(body["validation"]["dataset"])
        refs["validation"] = {"dataset": record["id"], "x": "x", "y": "y"}
        x_val, y_val = _tensors(record, ("x", "y"))
        body["validation"] = {"x": x_val, "y": y_val}
    if "validation" in refs and body["fit"]["validation_split"]:
        raise refuse(
            "fit.validation_split",
            "Validation data is given (validation.dataset, or the dataset's x_val and "
            "y_val): set validation_split to 0, or leave the validation data out.",
        )
    return refs or None


def check_validation_data(report: ModelReport, body: dict[str, Any]) -> None:
    """The validation arrays against the model, their shapes and values, as
    ``check_data`` does ``data.x``/``data.y`` (errors under ``validation.x``/``.y``)."""
    if "validation" not in body:
        return
    errors: dict[str, list[str]] = {}
    pseudo = {**body, "data": body["validation"], "fit": {**body["fit"], "validation_split": 0}}
    check_shapes(report, pseudo, errors)
    if not errors:
        check_values(report, pseudo, errors)
    renamed = {}
    for path, reasons in errors.items():
        new = path.replace("data", "validation", 1)
        # The messages name the place too: data.y[3] is validation.y[3].
        renamed[new] = [reason.replace(f"{path}[", f"{new}[") for reason in reasons]
    if renamed:
        first = next(iter(renamed))
        raise ApiValidationError(f"{first}: {renamed[first][0]}", renamed)
