"""What a job's results cost to keep: the size of the trained model's
``.keras`` file, and a bound on its predictions as JSON.

A job's model is stored as the file ``model.save()`` writes: a zip, stored
without compression, of ``config.json``, ``metadata.json`` and
``model.weights.h5``, which holds every variable of the model and of its
optimizer (Keras 3.15, ``keras/src/saving/saving_lib.py``). Its payload is
exact from the report: the weights in their dtypes, the optimizer's slots
per trainable variable (:data:`seqlab.memory.OPTIMIZER_SLOTS`) and its two
scalars (``iterations``, int64, int32 under JAX without 64-bit types, and
``learning_rate``, float32). Around it,
HDF5 groups and attributes per layer and per variable and the config's
JSON add tens of kilobytes, bounded here from above (measured on Keras 3.15:
14 to 270 KiB for 1 to 50 layers), so that a limit on stored bytes errs on
the safe side. ``tests/test_cost.py`` holds both to files Keras writes.
"""

from __future__ import annotations

from .engine import LayerReport
from .engine import ModelReport
from .memory import OPTIMIZER_SLOTS

#: The optimizer's own variables, whatever its slots: ``iterations`` (int64;
#: JAX, without 64-bit types, makes it int32) and ``learning_rate`` (float32).
OPTIMIZER_SCALAR_BYTES = {"tensorflow": 8 + 4, "jax": 4 + 4}
#: An upper bound on the file's structure: a base (the zip, the metadata,
#: the HDF5 superblock and root groups), per layer (its groups and config
#: entry) and per variable (its dataset headers, and its optimizer slots').
STRUCTURE_BASE = 16 * 1024
STRUCTURE_PER_LAYER = 4 * 1024
STRUCTURE_PER_VARIABLE = 2 * 1024


def variables(layers: list[LayerReport]) -> int:
    """How many variables (weights) the layers hold (a wrapper's list holds
    its wrapped layers')."""
    return sum(len(layer.weights) for layer in layers)


def layer_count(layers: list[LayerReport]) -> int:
    """The layers, each wrapped layer counted too (each has its own groups)."""
    return sum(1 + layer_count(layer.sublayers) for layer in layers)


def model_file_payload(
    report: ModelReport, optimizer: str = "adam", backend: str = "tensorflow"
) -> int:
    """The bytes of the variables a trained model's file holds: the
    weights, the optimizer's slots and its scalars (exact, for the file a
    worker running ``backend`` writes)."""
    slots = OPTIMIZER_SLOTS[optimizer] * report.trainable_bytes
    return report.param_bytes + slots + OPTIMIZER_SCALAR_BYTES[backend]


def model_file_bytes(report: ModelReport, optimizer: str = "adam") -> int:
    """An upper bound on the size of the trained model's ``.keras`` file:
    its payload plus the structure around it (see the module docstring),
    whichever backend writes it.

    >>> from seqlab import analyze
    >>> r = analyze({"input_shape": [5, 1], "layers": [
    ...     {"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}]})
    >>> model_file_payload(r), model_file_bytes(r)
    (1764, 36580)
    """
    structure = (
        STRUCTURE_BASE
        + STRUCTURE_PER_LAYER * layer_count(report.layers)
        + STRUCTURE_PER_VARIABLE * variables(report.layers)
    )
    return model_file_payload(report, optimizer) + structure


#: The most bytes one number of predictions takes as JSON with its separator
#: and its share of brackets: ``-1.2345678901234567e-308`` is 24 characters,
#: ``, `` two more, and each list (at most one a value) ``[``, ``]`` and
#: ``, ``. A float32 output usually takes some 21.
JSON_VALUE_BYTES = 30


def prediction_bytes_bound(samples: int, values_per_sample: int) -> int:
    """The most bytes predictions of ``samples`` samples of
    ``values_per_sample`` output values each (all outputs together) take as
    JSON: what ``SEQLAB_MAX_PREDICTION_BYTES`` is compared with, known
    before any is computed."""
    return samples * values_per_sample * JSON_VALUE_BYTES + 2
