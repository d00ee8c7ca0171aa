"""Reading what the commands take: model specs and training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .errors import REFUSED
from .errors import CliError

#: The keys of a whole ``POST /train`` request (a model spec has none of them).
TRAIN_KEYS = frozenset({"model", "example", "data", "compile", "fit", "seed"})
#: A ``.npz``'s validation arrays (Keras's ``validation_data``).
VALIDATION_ARRAYS = ("x_val", "y_val")


def read_json(name: str) -> Any:
    """The JSON document in file ``name``, or on stdin for ``-``.

    :raise CliError: (exit status 2) naming the file and what is wrong.
    """
    shown = "stdin" if name == "-" else name
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"Cannot read {shown}: {error}", REFUSED) from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CliError(f"{shown} is not JSON: {error}", REFUSED) from None


def is_train_request(document: Any) -> bool:
    """Whether a SPEC file holds a whole train request rather than a model
    (a compact spec or Keras's ``to_json``, neither of which has these keys)."""
    return isinstance(document, dict) and not TRAIN_KEYS.isdisjoint(document)


def model_of(document: Any) -> Any:
    """The model of a SPEC document: itself, or a train request's ``model``."""
    if is_train_request(document):
        if "model" not in document:
            raise CliError("The train request in SPEC has no model (give --example?).", REFUSED)
        return document["model"]
    return document


def read_data(argument: str) -> dict[str, Any]:
    """``--data``: ``{"x": [...], "y": [...]}`` from a ``.npz`` (arrays ``x``
    and ``y``), a pair ``X.npy,Y.npy``, or a JSON file of that object.

    A ``.npz`` with validation arrays gives them too, as NumPy arrays with
    its ``x`` and ``y`` (``{"x", "y", "x_val", "y_val"}``): the API takes
    them only in an uploaded dataset (see :func:`npz_bytes`).

    :raise CliError: (exit status 2) naming the file and what is wrong.
    """
    names = argument.split(",")
    suffixes = [Path(name).suffix.lower() for name in names]
    if suffixes == [".npz"]:
        arrays = _load(names[0])
        with arrays:
            missing = [key for key in ("x", "y") if key not in arrays.files]
            if missing:
                raise CliError(f"{names[0]} has no array {' or '.join(missing)} "
                               f"(it holds: {', '.join(arrays.files) or 'nothing'}).",
                               REFUSED)  # fmt: skip
            validation = [key for key in VALIDATION_ARRAYS if key in arrays.files]
            if validation == list(VALIDATION_ARRAYS):
                return {key: arrays[key] for key in ("x", "y", *VALIDATION_ARRAYS)}
            if validation:
                other = next(key for key in VALIDATION_ARRAYS if key not in validation)
                raise CliError(f"{names[0]} has {validation[0]} but no {other}: the "
                               "validation data needs both.", REFUSED)  # fmt: skip
            return {"x": arrays["x"].tolist(), "y": arrays["y"].tolist()}
    if suffixes == [".npy", ".npy"]:
        return {"x": _load(names[0]).tolist(), "y": _load(names[1]).tolist()}
    if len(names) == 1:
        data = read_json(names[0])
        if not isinstance(data, dict) or not {"x", "y"} <= data.keys():
            raise CliError(f'{names[0]} must hold a JSON object {{"x": [...], "y": [...]}}.',
                           REFUSED)  # fmt: skip
        return {"x": data["x"], "y": data["y"]}
    raise CliError(f"--data takes FILE.npz, FILE.json or X.npy,Y.npy, not {argument!r}.", REFUSED)


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """The ``.npz`` of ``arrays`` (``numpy.savez``), for ``POST /datasets``."""
    import io

    import numpy

    out = io.BytesIO()
    numpy.savez(out, **arrays)
    return out.getvalue()


def _load(name: str) -> Any:
    """``numpy.load`` of a ``.npy`` or ``.npz`` file, without pickles."""
    try:
        import numpy
    except ImportError:
        raise CliError("Reading .npy and .npz files needs NumPy: pip install 'seqlab[cli]'.",
                       REFUSED) from None  # fmt: skip
    try:
        return numpy.load(name, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CliError(f"Cannot read {name}: {error}", REFUSED) from None
