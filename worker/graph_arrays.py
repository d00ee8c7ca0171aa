"""The arrays of a Functional (graph) model's job, in the structure Keras
takes them: one array per input and per output, in the model's order.

The API resolves ``data.x``/``data.y`` (one array, a list, or an object by
input/output name) to lists in the model's input and output order before it
queues a job (``service/datasets/graph_checks.py``); a dataset's arrays arrive as one
array. Here they become NumPy arrays of each input's dtype, passed to Keras
as a list where the model was built on a list, else as the one array.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from .builder import is_graph


def parts(value: Any) -> list[Any]:
    """A graph job's stored ``x`` or ``y``: the list of per-input (or
    per-output) values, or one array (a dataset's), as a list."""
    import numpy as np

    return [value] if isinstance(value, np.ndarray) else list(value)


def several_outputs(spec: Mapping[str, Any], model: Any) -> bool:
    """Whether the model's outputs are a list (Keras's output structure)."""
    return isinstance(spec.get("outputs"), list) or len(model.outputs) > 1


def as_structure(arrays: Sequence[Any], listed: bool) -> Any:
    """Arrays as Keras takes them for a model built on a list (``listed``) or
    on one tensor."""
    return list(arrays) if listed else arrays[0]


def job_arrays(request: Mapping[str, Any], model: Any) -> tuple[Any, Any]:
    """``x`` and ``y`` of a job as Keras's ``fit`` takes them for ``model``."""
    import numpy as np

    spec, data = request["model"], request["data"]
    if not is_graph(spec):
        x = np.asarray(data["x"], dtype=spec.get("dtype") or "float32")
        return x, np.asarray(data["y"], dtype="float32")
    return input_arrays(spec, parts(data["x"])), as_structure(
        [np.asarray(v, dtype="float32") for v in parts(data["y"])], several_outputs(spec, model)
    )


def input_arrays(spec: Mapping[str, Any], values: Sequence[Any]) -> Any:
    """Each input's values as an array of its dtype, structured as the model."""
    import numpy as np

    arrays = [
        np.asarray(value, dtype=entry.get("dtype") or "float32")
        for entry, value in zip(spec["inputs"], values, strict=True)
    ]
    return as_structure(arrays, len(spec["inputs"]) > 1)


def samples(data: Any) -> int:
    """The number of samples of one array or of a list of them."""
    return len(data[0]) if isinstance(data, list) else len(data)


def take(data: Any, index: Any) -> Any:
    """``data[index]`` of one array, or of each array of a list."""
    return [a[index] for a in data] if isinstance(data, list) else data[index]
