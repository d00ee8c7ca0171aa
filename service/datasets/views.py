"""Datasets: ``POST /datasets`` (an ``.npz`` upload), ``GET /datasets``,
``GET /datasets/<id>``, ``DELETE /datasets/<id>``; and what ``POST /train``
needs of one (:func:`resolve_train_data`).

An upload holds one of its tenant's ``SEQLAB_MAX_DATASETS`` slots first
(422 at the limit), is streamed to a temporary file in chunks, within
``SEQLAB_MAX_DATASET_BYTES`` (413), then read as ``numpy.load`` reads an
``.npz`` (its members resolved alike, each decompressed through a reader
that stops at the byte limit, no pickles) and checked (422, nothing stored)
before its arrays go to Redis (jobs/datasets.py). Each dataset belongs to the tenant that
uploaded it: another tenant's id is answered as an unknown one.
"""

from __future__ import annotations

import math
import tempfile
import zipfile
from collections.abc import Callable
from typing import IO
from typing import Any

import numpy as np
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
from ..limits import LARGE_BODY_BYTES
from ..limits import LimitExceeded
from ..limits import hold_large_slot
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


#: Zip directory entries the upload may have before it is refused unread:
#: zipfile parses the whole directory when it opens an archive (60,000
#: entries take a quarter of a second; a 64 MiB upload holds over a
#: million). Counted as central-directory signatures in the file, an upper
#: bound on what zipfile can parse; an .npz has four members at most, and
#: chance matches in the data are rare (one in 2**32 per offset).
MAX_ZIP_ENTRIES = 1000
#: The zip directory's signature of an entry (a central file header).
CENTRAL_HEADER = b"PK\x01\x02"
#: Bytes an .npy header may take: numpy refuses longer ones
#: (numpy.lib.format's max_header_size, 10,000), and reads the length its
#: header claims before it checks, so a claim of 4 GiB is read through a
#: reader that stops here.
MAX_NPY_HEADER = 16 * 1024
#: The compressions whose reading zipfile bounds (numpy.savez stores,
#: savez_compressed deflates): bzip2 and LZMA members are decompressed a
#: whole compressed block at a time, however large the output.
READABLE_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
COMPRESSION_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
#: Names listed in a refusal at most.
NAMES_SHOWN = 10


def _some(names: list[str]) -> str:
    """At most :data:`NAMES_SHOWN` names, and how many more there are."""
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown}, and {len(names) - NAMES_SHOWN:,} more"


class BoundedReader:
    """A read-only file over ``raw`` that counts the bytes it returns and
    raises ``over()`` once more than ``budget`` have been read, having read
    at most one byte past it (a caller asking for more gets less)."""

    def __init__(self, raw: IO[bytes], budget: int, over: Callable[[], Exception]) -> None:
        self.raw = raw
        self.budget = budget
        self.over = over
        self.total = 0

    def read(self, size: int | None = -1) -> bytes:
        room = self.budget - self.total
        if size is None or size < 0 or size > room:
            size = room + 1
        data = self.raw.read(size)
        self.total += len(data)
        if self.total > self.budget:
            raise self.over()
        return data


def _entries_at_most(file: IO[bytes]) -> int:
    """How many zip directory entries ``file`` can hold at most: the
    central-header signatures in it (chunks overlap by 3 bytes, so none
    is missed or counted twice)."""
    count, tail = 0, b""
    while chunk := file.read(READ_BYTES):
        data = tail + chunk
        count += data.count(CENTRAL_HEADER)
        tail = data[-3:]
    file.seek(0)
    return count


def open_archive(file: IO[bytes]) -> zipfile.ZipFile:
    """The upload as a zip archive, its directory's size bounded first.

    :raise 422: not a zip (a single .npy named as such), an unreadable one,
        one with more than :data:`MAX_ZIP_ENTRIES` entries.
    """
    # numpy.load would try anything that is neither a zip nor an .npy as a
    # pickle and say so: name what the upload is not instead.
    magic = file.read(6)
    file.seek(0)
    if magic.startswith(b"\x93NUMPY"):
        raise refuse(
            "body", "The upload is a single .npy array; send an .npz (numpy.savez) with x and y."
        )
    if not magic.startswith(b"PK\x03\x04"):
        raise refuse(
            "body", "The upload is not an .npz file (numpy.savez writes a zip archive of arrays)."
        )
    entries = _entries_at_most(file)
    if entries > MAX_ZIP_ENTRIES:
        raise refuse(
            "body",
            f"The .npz has too many members ({entries:,} zip directory entries, over "
            f"{MAX_ZIP_ENTRIES:,}): it holds x and y, and optionally x_val and y_val.",
        )
    try:
        return zipfile.ZipFile(file)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        reason = f"The upload is not a readable .npz file (numpy.savez): {error}"
        raise refuse("body", reason) from None


def resolve_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Each array's member, by array name, as ``numpy.load`` resolves it:
    its ``files`` are the members' names without ``.npy``, and ``npz[k]``
    opens the member literally named ``k`` if there is one, else ``k.npy``
    (zipfile opening the last of a name given twice). So that the member
    checked is the member read, every member must be one array's only one.

    :raise 422: members given twice, an array under two names (``x`` and
        ``x.npy``), members that are no array of :data:`ARRAY_NAMES`, each
        listing at most :data:`NAMES_SHOWN` names.
    """
    infos = archive.infolist()
    seen: dict[str, int] = {}
    for info in infos:
        seen[info.filename] = seen.get(info.filename, 0) + 1
    problems = []
    unknown = sorted({n.removesuffix(".npy") for n in seen} - set(ARRAY_NAMES))
    if unknown:
        problems.append(
            f"Unknown arrays {_some(unknown)}: an .npz holds x and y, and optionally "
            "x_val and y_val."
        )
    twice = [n for n, count in seen.items() if count > 1]
    if twice:
        problems.append(
            f"Members given more than once in the zip directory: {_some(twice)} "
            "(numpy.load would read only the last of each)."
        )
    aliased = [n for n in ARRAY_NAMES if n in seen and f"{n}.npy" in seen]
    for name in aliased:
        problems.append(
            f"{name} and {name}.npy both name array {name} (numpy.load reads the member "
            f"{name}): keep one."
        )
    if problems:
        raise ApiValidationError(f"body: {problems[0]}", {"body": problems})
    return {info.filename.removesuffix(".npy"): info for info in infos}


def _check_compression(name: str, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise refuse(name, f"The member {info.filename} is encrypted.")
    if info.compress_type not in READABLE_COMPRESSIONS:
        method = COMPRESSION_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise refuse(
            name,
            f"The member {info.filename} is compressed with {method}: numpy.savez stores "
            "arrays and savez_compressed deflates them; save it with either.",
        )


def _read_header(name: str, member: IO[bytes]) -> tuple[tuple[int, ...], bool, Any]:
    """An .npy member's shape, Fortran order and dtype, read through a
    reader that stops at :data:`MAX_NPY_HEADER` bytes."""
    import numpy as np

    def over() -> Exception:
        return refuse(name, f"Its .npy header is longer than {MAX_NPY_HEADER:,} bytes.")

    bounded = BoundedReader(member, MAX_NPY_HEADER, over)
    version = np.lib.format.read_magic(bounded)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"an .npy of version {version[0]}.{version[1]} (1.0 to 3.0 are read)")
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(bounded)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(bounded)
    return shape, fortran, dtype


def _read_data(
    name: str, info: zipfile.ZipInfo, member: IO[bytes], header: tuple[Any, ...], data: IO[bytes]
) -> Any:
    """The array an .npy member's header describes, read from ``data`` (the
    bounded reader over ``member``, past the header); the member must end
    there."""
    import numpy as np

    shape, fortran, dtype = header
    size = math.prod(shape) * dtype.itemsize
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        chunk = data.read(min(READ_BYTES, size - done))
        if not chunk:
            raise refuse(name, f"The member {info.filename} ends after {done:,} of its "
                               f"{size:,} bytes of data.")  # fmt: skip
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    extra = 0
    while chunk := data.read(READ_BYTES):  # to the end: zipfile checks the CRC there
        extra += len(chunk)
    if extra:
        raise refuse(
            name,
            f"The member {info.filename} holds {extra:,} bytes after the data its .npy "
            f"header describes ({size:,} bytes).",
        )
    if fortran:
        return np.frombuffer(buffer, dtype).reshape(shape[::-1]).transpose()
    return np.frombuffer(buffer, dtype).reshape(shape)


def _header_errors(headers: dict[str, tuple[Any, ...]]) -> dict[str, list[str]]:
    """The refusals that the members' names and headers alone tell."""
    errors: dict[str, list[str]] = {}
    for name in ("x", "y"):
        if name not in headers:
            errors[name] = [f"Missing: the .npz has no array {name!r} (it has "
                            f"{', '.join(sorted(headers)) or 'none'})."]  # fmt: skip
    if ("x_val" in headers) != ("y_val" in headers):
        given, missing = ("x_val", "y_val") if "x_val" in headers else ("y_val", "x_val")
        errors[missing] = [f"Missing: {given} needs {missing} (validation data is a pair)."]
    for name, (shape, _, dtype) in headers.items():
        if dtype.hasobject:
            errors[name] = [
                "Holds Python objects (dtype object), which are loaded only by unpickling "
                "(allow_pickle=False here): save numeric arrays."
            ]
        elif dtype.kind not in NUMERIC_KINDS:
            errors[name] = [f"dtype {dtype.str} is not numeric: bool, integer or float only."]
        elif not shape:
            errors[name] = ["Is a scalar: arrays hold samples first."]
        elif any(n < 0 for n in shape):
            errors[name] = [f"Its .npy header gives a negative shape {shape}."]
        elif shape[0] == 0:
            errors[name] = ["Holds no samples."]
    return errors


def load_arrays(file: IO[bytes]) -> dict[str, Any]:
    """The checked arrays of an uploaded ``.npz``, by name.

    The members are resolved as ``numpy.load`` resolves them
    (:func:`resolve_members`), their .npy headers read and checked, then
    their data read through one :class:`BoundedReader` that stops at
    ``SEQLAB_MAX_DATASET_BYTES`` decompressed: neither the zip directory's
    sizes nor the headers are trusted for what is read.

    :raise 422: an unreadable file, an array name other than x, y, x_val,
        y_val (or one given twice, or as both x and x.npy), a missing x or
        y (or one of x_val/y_val without the other), object or non-numeric
        arrays, arrays without samples, members other than stored or
        deflated, members shorter or longer than their headers say, NaN or
        infinite values, mismatched sample counts.
    :raise 413: arrays that hold more than the limit once decompressed.
    """
    import numpy as np

    unreadable = (
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        RuntimeError,
        NotImplementedError,
    )
    with open_archive(file) as archive:
        members = resolve_members(archive)
        for name, info in members.items():
            _check_compression(name, info)
        headers = {}
        try:
            for name, info in members.items():
                with archive.open(info) as member:
                    headers[name] = _read_header(name, member)
        except unreadable as error:
            raise refuse(name, f"The .npz holds an unreadable array: {error}") from None
        errors = _header_errors(headers)
        if errors:
            first = next(iter(errors))
            raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
        declared = sum(math.prod(s) * d.itemsize for s, _, d in headers.values())
        if declared > max_bytes():
            raise too_large(f"The arrays hold {declared:,} bytes, over the limit of a dataset")

        def over() -> Exception:
            return too_large(
                f"The member {members[name].filename} ({name}) decompresses to more than "
                f"{max_bytes():,} bytes with the arrays before it, over the limit of a dataset"
            )

        arrays = {}
        data: BoundedReader | None = None
        try:
            for name in ARRAY_NAMES:
                if name not in members:
                    continue
                with archive.open(members[name]) as member:
                    _read_header(name, member)
                    if data is None:
                        data = BoundedReader(member, max_bytes(), over)
                    else:  # one budget for all the arrays
                        data.raw = member
                    arrays[name] = _read_data(name, members[name], member, headers[name], data)
        except unreadable as error:
            raise refuse(name, f"The .npz holds an unreadable array: {error}") from None
    errors = {}
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
    # Before the body is read, a slot is held (atomically counted with the
    # stored datasets and the other uploads under way): a tenant at its
    # limit uploads nothing, and concurrent uploads cannot all pass.
    hold = store().reserve(tenant, limit)
    if hold is None:
        raise refuse(
            "body",
            f"You have {limit} datasets, the limit (SEQLAB_MAX_DATASETS); delete one first.",
        )
    try:
        with tempfile.TemporaryFile() as spool:
            receive_upload(spool)
            arrays = load_arrays(spool)
        record = store().create(arrays, tenant, hold)
    except BaseException:
        store().release(tenant, hold)
        raise
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
    takes a fraction of a second to read and check). Arrays as large as a
    large body hold one of the process's large-body slots (503 if none is
    free): they cost the API what decoding such a body does."""
    size = sum(
        math.prod(record["arrays"][n]["shape"]) * np.dtype(record["arrays"][n]["dtype"]).itemsize
        for n in names
    )
    if size > LARGE_BODY_BYTES:
        hold_large_slot(f"this request reads {size:,} bytes of dataset {record['id']}")
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


def check_validation_data(
    report: ModelReport, body: dict[str, Any], *, values: bool = True
) -> None:
    """The validation arrays against the model, their shapes and values, as
    ``check_data`` does ``data.x``/``data.y`` (errors under ``validation.x``/``.y``;
    ``values`` as there)."""
    if "validation" not in body:
        return
    errors: dict[str, list[str]] = {}
    pseudo = {**body, "data": body["validation"], "fit": {**body["fit"], "validation_split": 0}}
    check_shapes(report, pseudo, errors)
    if not errors and values:
        check_values(report, pseudo, errors)
    renamed = {}
    for path, reasons in errors.items():
        new = path.replace("data", "validation", 1)
        # The messages name the place too: data.y[3] is validation.y[3].
        renamed[new] = [reason.replace(f"{path}[", f"{new}[") for reason in reasons]
    if renamed:
        first = next(iter(renamed))
        raise ApiValidationError(f"{first}: {renamed[first][0]}", renamed)
