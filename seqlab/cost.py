"""The cost model: what one training job will cost the shared host, known
from its request before anything is stored or queued, in worker memory and
in bytes kept in Redis (:func:`job_cost`, :class:`JobCost`). The API checks
each limit against it (``service/limits.py``); the worker uses the same
figures for what it keeps (:func:`prediction_bytes_bound`). Pure standard
library, like the rest of the engine.

Its parts:

* **the training step**: :mod:`seqlab.memory` (weights, gradients, optimizer
  state, one batch's activations);
* **the data**: each array as the worker holds it, decoded from JSON into
  Python lists (:func:`lists_bytes`) or read from a dataset
  (:class:`HeldArray`);
* **the predictions**: on the training inputs after training, bounded as
  JSON by :func:`prediction_bytes_bound`;
* **the model file**: the trained model's ``.keras`` file
  (:func:`model_file_bytes`).

The model file is the file ``model.save()`` writes: a zip, stored
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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .engine import LayerReport
from .engine import ModelReport
from .memory import OPTIMIZER_SLOTS
from .memory import TrainMemory

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
    total = 0
    for layer in layers:
        total += len(layer.weights)
    return total


def layer_count(layers: list[LayerReport]) -> int:
    """The layers, each wrapped layer counted too (each has its own groups)."""
    total = len(layers)
    for layer in layers:
        if layer.sublayers:
            total += layer_count(layer.sublayers)
    return total


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


# -- the data a worker holds -----------------------------------------------------

#: A float that ``json.loads`` makes: a Python ``float`` object.
PY_FLOAT_BYTES = 24
#: A list's slot per item (a pointer), with the over-allocation of a list
#: grown by appending (at most 1/8 more), rounded up.
PY_LIST_ITEM_BYTES = 9
#: A list object's header and the slack of a short list's growth (measured
#: on CPython 3.12 by tracemalloc: 56 to 80 bytes).
PY_LIST_BYTES = 88
#: Per array, its objects (NumPy's array and the chunks' ``bytes`` headers).
ARRAY_OVERHEAD = 4096


def lists_bytes(shape: Sequence[int]) -> int:
    """An upper bound on the memory of the nested Python lists of floats that
    ``json.loads`` builds for an array of ``shape`` (or ``ndarray.tolist()``):
    a float object per value, a list per row at each depth and a slot per
    item. Held within 25 % of tracemalloc's figure by ``tests/test_cost.py``.

    >>> lists_bytes([2, 3])
    480
    """
    values = math.prod(shape)
    lists = sum(math.prod(shape[:depth]) for depth in range(len(shape)))
    items = sum(math.prod(shape[: depth + 1]) for depth in range(len(shape)))
    return values * PY_FLOAT_BYTES + items * PY_LIST_ITEM_BYTES + lists * PY_LIST_BYTES


@dataclass(frozen=True, slots=True)
class HeldArray:
    """One array of a job's data as the worker comes to hold it.

    ``itemsize`` is the bytes per value of the array the worker gives Keras
    (the input's dtype; targets are float32). ``stored_itemsize`` is that of
    a dataset's array as uploaded; None for data sent inline as JSON.
    """

    shape: tuple[int, ...]
    itemsize: int
    stored_itemsize: int | None = None

    @property
    def values(self) -> int:
        return math.prod(self.shape)

    @property
    def array_bytes(self) -> int:
        """The array Keras is given."""
        return self.values * self.itemsize

    def load_bytes(self) -> int:
        """What holding it costs the worker: inline data is read from Redis
        as JSON text (at most :data:`JSON_VALUE_BYTES` a value), decoded into
        Python lists (kept, with the job's request, until the job ends) and
        then made an array; a dataset's array is read as its chunks,
        joined (the array is a view of them), and converted where its dtype
        is not the input's. Each also has :data:`ARRAY_OVERHEAD`."""
        if self.stored_itemsize is None:
            # The JSON text too, twice while it is decoded (the bytes Redis
            # returns and the text json.loads makes of them).
            text = 2 * self.values * JSON_VALUE_BYTES
            return text + lists_bytes(self.shape) + self.array_bytes + ARRAY_OVERHEAD
        stored = self.values * self.stored_itemsize
        converted = self.array_bytes if self.stored_itemsize != self.itemsize else 0
        return 2 * stored + converted + ARRAY_OVERHEAD


# -- the compiled fit --------------------------------------------------------------

#: A JAX worker runs a short fit on small data as one compiled program
#: (``worker/fitting.py``, ``fit_compiled``) only where its ``x`` and ``y``
#: take at most this many bytes: the program holds a copy of them, padded to a
#: power of two samples.
COMPILED_MAX_DATA_BYTES = 4 * 1024 * 1024
#: ... and the sample orders of one call at most this many ``int32`` indices.
COMPILED_MAX_INDICES = 1 << 18


def compiled_fit_bytes(arrays: Sequence[HeldArray]) -> int:
    """What a compiled fit adds to the worker's memory for training on
    ``arrays`` (``x`` and ``y``): nothing past :data:`COMPILED_MAX_DATA_BYTES`,
    or for no arrays (a fit with validation data never runs compiled), else
    each padded to at most twice its samples, once on the host and once
    as the program's array, and one call's sample orders. An upper bound: the
    worker may still run Keras's own loop (a long job, validation data, early
    stopping, the TensorFlow backend)."""
    data = sum(a.array_bytes for a in arrays)
    if not arrays or data > COMPILED_MAX_DATA_BYTES:
        return 0
    return 2 * 2 * data + 4 * COMPILED_MAX_INDICES


# -- one training job ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobCost:
    """What one training job will cost, known before it is queued.

    Worker memory, in bytes, by what holds it (the figure checked against
    ``SEQLAB_WORKER_MEMORY_BYTES`` is their sum: an upper bound, as if none
    were freed before the job ends):

    * ``training``: one training step at its peak
      (:func:`seqlab.memory.train_memory`), at the data's real lengths, the
      larger of a training and a validation batch;
    * ``data``: the training and validation arrays
      (:meth:`HeldArray.load_bytes`);
    * ``predictions``: the final predictions pass over the training inputs:
      the inputs as arrays again, the outputs as an array, as Python lists
      and as JSON (one batch's outputs only when they could not be stored);
    * ``model_file``: saving, the ``.keras`` file twice (Keras writes its
      weights into an in-memory HDF5 file before the zip; the worker reads
      the zip back to store it);
    * ``compiled_fit``: a compiled fit's copy of small data
      (:func:`compiled_fit_bytes`).

    Bytes stored in Redis, kept for the job's lifetime: the model file, the
    predictions (none past ``SEQLAB_MAX_PREDICTION_BYTES``) and the history.
    """

    training: TrainMemory
    data: int
    predictions: int
    model_file: int
    stored_model_file: int
    stored_predictions: int
    stored_history: int
    compiled_fit: int = 0

    @property
    def worker_memory(self) -> int | None:
        """The job's worker memory; None when the activations are unknown
        (data that does not fit the model: the data checks refuse it)."""
        return None if self.training.total is None else self.worker_memory_known

    @property
    def worker_memory_known(self) -> int:
        """The job's worker memory without the activations where they are
        unknown: what a limit can refuse in any case."""
        step = self.training.static if self.training.total is None else self.training.total
        return step + self.data + self.predictions + self.model_file + self.compiled_fit

    @property
    def stored_bytes(self) -> int:
        """The bytes the job's results keep in Redis."""
        return self.stored_model_file + self.stored_predictions + self.stored_history

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready breakdown, in bytes (the job document's ``estimated_cost``)."""
        return {
            "worker_memory_bytes": self.worker_memory,
            "worker_memory": {
                "training_step": self.training.total,
                "data": self.data,
                "predictions": self.predictions,
                "model_file": self.model_file,
                "compiled_fit": self.compiled_fit,
            },
            "training_step": self.training.to_dict(),
            "stored_bytes": self.stored_bytes,
            "stored": {
                "model_file": self.stored_model_file,
                "predictions": self.stored_predictions,
                "history": self.stored_history,
            },
        }


def output_values(report: ModelReport) -> int | None:
    """Output values per sample, all outputs together; None where a
    dimension is unknown."""
    out = report.output_shape
    outputs = out if isinstance(out, list) else [out]
    if any(d is None for shape in outputs for d in shape[1:]):
        return None
    return sum(math.prod(shape[1:]) for shape in outputs)  # type: ignore[misc]


def predictions_cost(
    report: ModelReport,
    x: Sequence[HeldArray],
    batch_size: int,
    max_prediction_bytes: int,
    store: bool = True,
) -> tuple[int, int]:
    """The worker memory of the final predictions pass over the training
    inputs ``x`` and the bytes it stores, as ``worker/training.py``'s
    ``predict_training_inputs`` runs it."""
    if not store:
        return 0, 0
    samples = x[0].shape[0] if x else 0
    per_sample = output_values(report)
    inputs = sum(a.array_bytes for a in x)
    if per_sample is None:  # the data does not fit: refused by the data checks
        return inputs, 0
    bound = prediction_bytes_bound(samples, per_sample)
    if bound > max_prediction_bytes:  # one batch is computed, none is kept
        return inputs + min(batch_size, samples) * per_sample * 4, 0
    out = report.output_shape
    outputs = out if isinstance(out, list) else [out]
    lists = sum(lists_bytes([samples, *shape[1:]]) for shape in outputs)  # type: ignore[list-item]
    return inputs + samples * per_sample * 4 + lists + bound, bound


def job_cost(
    report: ModelReport,
    *,
    training: TrainMemory,
    x: Sequence[HeldArray],
    held: Sequence[HeldArray],
    optimizer: str,
    epochs: int,
    history_names: int,
    max_prediction_bytes: int,
    store_predictions: bool = True,
    trained: Sequence[HeldArray] | None = None,
) -> JobCost:
    """The cost of training ``report`` (analysed at the data's lengths).

    Args:
        training: the training step's estimate, at the larger batch.
        x: the training inputs, which the final pass predicts on.
        held: every array the job brings (training and validation, inputs
            and targets).
        history_names: values ``fit`` logs per epoch (with ``val_``'s).
        trained: the training ``x`` and ``y`` (a compiled fit's data); None
            for ``held`` (a job without validation arrays).
    """
    predictions, stored_predictions = predictions_cost(
        report, x, training.batch_size, max_prediction_bytes, store_predictions
    )
    file = model_file_bytes(report, optimizer)
    return JobCost(
        training=training,
        data=sum(a.load_bytes() for a in held),
        predictions=predictions,
        model_file=2 * file,
        stored_model_file=file,
        stored_predictions=stored_predictions,
        stored_history=epochs * history_names * JSON_VALUE_BYTES,
        compiled_fit=compiled_fit_bytes(held if trained is None else trained),
    )
