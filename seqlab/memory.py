"""An estimate of the memory that training a model takes, from its report.

``train_memory(report, batch_size, optimizer)`` adds up what one training
step holds at its peak:

* **weights**: every variable, in its own dtype (``ModelReport.param_bytes``);
* **gradients**: one per trainable variable, in the variable's dtype;
* **optimizer state**: the slots Keras 3.15's optimizer creates per trainable
  variable, in the variable's dtype (``add_optimizer_variables``): Adam,
  AdamW, Nadam, Adamax and Adadelta keep two, RMSprop, Adagrad and Lion
  one, plain SGD none (Keras's defaults: no momentum, no AMSGrad, RMSprop
  not centred: ``keras/src/optimizers/*.py``, ``build``);
* **activations**: what the forward pass keeps for the backward pass, for
  one batch: the input and target batch, then each layer's values per
  sample (:data:`KEPT`) in the layer's compute dtype, times the batch size.

The activation model, per sample (T time steps, D input features per
step, H a recurrent layer's units per step: ``units``, or ``length ×
filters`` for ConvLSTM1D), calibrated on Keras 3.15 with JAX (the default
worker backend) by the growth of peak memory between two batch sizes:

* the input sample, and the target three times over: the target, the
  loss's residual and the gradient of the model's output (float32);
* each layer its output, in its compute dtype (Dense and Conv1D too: the
  common activations take their gradient from the output);
  BatchNormalization and LayerNormalization also their normalized input,
  Dropout and SpatialDropout1D (rate > 0) also their mask; Flatten and
  Reshape are views and keep nothing, nor does a Dropout of rate 0
  (Keras returns its input);
* a recurrent layer runs a scan (``jax.lax.scan``) whose backward pass
  needs every step's residuals, whatever ``return_sequences``: the
  time-major copy of its input (T·D) and per step the gates' inputs and
  outputs and the carries, measured at 13·H for LSTM, 17·H for
  ConvLSTM1D, 18·H for GRU (reset_after) and 4·H for SimpleRNN; plus
  its output;
* TimeDistributed keeps its layer's values once per time step;
  Bidirectional both layers' and the merged output;
* merging layers and ReLU their output; Attention and AdditiveAttention
  the scores before and after the softmax and their output;
  MultiHeadAttention each projection's output and the scores twice
  (an estimate from the shapes, not calibrated on measurements).

It is an estimate: it leaves out the framework (the CUDA context, XLA's
compiled programs and workspace, allocator slack), which adds a few hundred
megabytes per process; XLA may fuse away some activations, and
TensorFlow's cuDNN recurrent kernels keep fewer. ``tests/test_memory.py``
holds it within a factor of 1.5 of measured training steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import LayerReport
from .engine import ModelReport
from .registry import COMPUTE_DTYPES
from .registry import DTYPE_BYTES
from .registry import Output

#: Keras's ``fit`` batch size when none is given.
DEFAULT_BATCH_SIZE = 32

#: Slots per trainable variable of each optimizer, at Keras 3.15's defaults.
OPTIMIZER_SLOTS = {
    "adam": 2,
    "adamw": 2,
    "nadam": 2,
    "adamax": 2,
    "adadelta": 2,
    "rmsprop": 1,
    "adagrad": 1,
    "lion": 1,
    "sgd": 0,
}

#: The optimizers a job may name (``compile.optimizer``), in the order
#: messages list them.
OPTIMIZERS = ("adam", "adamw", "adamax", "nadam", "rmsprop", "sgd", "adagrad", "adadelta", "lion")

#: Bytes per value of each model input dtype (``spec["dtype"]``).
INPUT_DTYPE_BYTES = {**DTYPE_BYTES, "int32": 4, "int64": 8, "uint8": 1, "bool": 1}


#: Values a recurrent layer keeps per time step and unit (see the module).
RECURRENT_RESIDUALS = {"SimpleRNN": 4, "GRU": 18, "LSTM": 13, "ConvLSTM1D": 17}


@dataclass(frozen=True, slots=True)
class TrainMemory:
    """Bytes one training step holds, by kind (see the module docstring)."""

    batch_size: int
    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    #: None when a length the activations depend on is unknown.
    activations: int | None

    @property
    def static(self) -> int:
        """Weights, gradients and optimizer state: what no batch size changes."""
        return self.weights + self.gradients + self.optimizer_state

    @property
    def total(self) -> int | None:
        """The estimate; None when the activations are unknown."""
        return None if self.activations is None else self.static + self.activations

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready breakdown, in bytes."""
        return {
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer_state": self.optimizer_state,
            "activations": self.activations,
        }


def values(output: Output) -> int | None:
    """Values per sample of an output (the batch excluded); None if unknown."""
    shapes = output if isinstance(output, list) else [output]
    total = 0
    for shape in shapes:
        rest = shape[1:]
        if None in rest:
            return None
        total += math.prod(rest)  # type: ignore[arg-type]
    return total


def compute_bytes(report: LayerReport) -> int:
    """Bytes per value in the layer's compute dtype."""
    return DTYPE_BYTES[COMPUTE_DTYPES[report.layer.config["dtype"]]]


def _times(factor: int) -> Callable[[LayerReport], int | None]:
    def rule(report: LayerReport) -> int | None:
        out = values(report.output_shape)
        return None if out is None else factor * out * compute_bytes(report)

    return rule


def _dropout(report: LayerReport) -> int | None:
    # Keras returns the input itself when rate is 0 (nothing new is kept).
    return _times(2)(report) if report.layer.config["rate"] > 0 else 0


def _recurrent(report: LayerReport) -> int | None:
    layer, shape = report.layer, report.input_shape
    steps, step_in = shape[1], values((None, *shape[2:]))
    step_out = values(layer.step_output(shape))  # type: ignore[attr-defined]
    out = values(report.output_shape)
    if steps is None or step_in is None or step_out is None or out is None:
        return None
    kept = steps * (step_in + RECURRENT_RESIDUALS[report.type] * step_out) + out
    return kept * compute_bytes(report)


def _time_distributed(report: LayerReport) -> int | None:
    steps, inner = report.input_shape[1], kept_bytes(report.sublayers[0])
    return None if steps is None or inner is None else steps * inner


def _bidirectional(report: LayerReport) -> int | None:
    parts = [kept_bytes(sub) for sub in report.sublayers]
    merged = _times(0 if report.layer.config["merge_mode"] is None else 1)(report)
    if None in parts or merged is None:
        return None
    return sum(parts) + merged  # type: ignore[arg-type]


def _attention(report: LayerReport) -> int | None:
    # Attention and AdditiveAttention: the scores before and after the
    # softmax, (*query[:-1], key steps), and the output.
    query, value = report.input_shape[0], report.input_shape[1]  # type: ignore[index]
    key = report.input_shape[2] if len(report.input_shape) > 2 else value  # type: ignore[index, arg-type]
    out = values(_first(report.output_shape))
    scores = values((*query[:-1], key[-2])) if len(key) > 1 else None
    if out is None or scores is None:
        return None
    return (2 * scores + out) * compute_bytes(report)


def _multi_head_attention(report: LayerReport) -> int | None:
    # The query, key and value projections, the scores before and after the
    # softmax, the heads' combined values and the output projection.
    parts = [sub.output_shape for sub in report.sublayers]
    kept = [values(_first(shape)) for shape in parts]  # type: ignore[arg-type]
    if None in kept:
        return None
    return sum(kept) * compute_bytes(report)  # type: ignore[arg-type]


def _first(output: Output) -> Output:
    return output[0] if isinstance(output, list) else output


#: Bytes each layer type keeps per sample for the backward pass (None when
#: a length is unknown). Every registered layer has a rule: a test checks it.
KEPT: dict[str, Callable[[LayerReport], int | None]] = {
    "Dense": _times(1),
    "Conv1D": _times(1),
    "Embedding": _times(1),
    "Activation": _times(1),
    "Masking": _times(1),
    "Permute": _times(1),
    "RepeatVector": _times(1),
    "MaxPooling1D": _times(1),
    "AveragePooling1D": _times(1),
    "GlobalAveragePooling1D": _times(1),
    "GlobalMaxPooling1D": _times(1),
    "Flatten": _times(0),
    "Reshape": _times(0),
    "Dropout": _dropout,
    "SpatialDropout1D": _dropout,
    "BatchNormalization": _times(2),
    "LayerNormalization": _times(2),
    "SimpleRNN": _recurrent,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "ConvLSTM1D": _recurrent,
    "ReLU": _times(1),
    "Add": _times(1),
    "Subtract": _times(1),
    "Multiply": _times(1),
    "Average": _times(1),
    "Maximum": _times(1),
    "Minimum": _times(1),
    "Concatenate": _times(1),
    "Dot": _times(1),
    "Attention": _attention,
    "AdditiveAttention": _attention,
    "MultiHeadAttention": _multi_head_attention,
    "TimeDistributed": _time_distributed,
    "Bidirectional": _bidirectional,
}


def kept_bytes(report: LayerReport) -> int | None:
    """Bytes one layer keeps per sample for the backward pass."""
    return KEPT[report.type](report)


def activation_bytes(report: ModelReport, input_dtype: str | None = None) -> int | None:
    """Bytes per sample of the activations: the input sample, the target
    (float32, as the worker sends it) with the loss's residual and the
    output's gradient, and what each layer keeps."""
    calls = getattr(report, "calls", None)
    if calls is not None:
        return _graph_activation_bytes(report, calls)
    x, y = values(report.input_shape), values(report.output_shape)
    if x is None or y is None:
        return None
    kept = _kept_total(report.layers)
    if kept is None:
        return None
    return x * INPUT_DTYPE_BYTES[input_dtype or "float32"] + 3 * y * 4 + kept


def _kept_total(layers: list[LayerReport]) -> int | None:
    """What the layers keep together; None as soon as one is unknown."""
    total = 0
    for layer in layers:
        kept = KEPT[layer.type](layer)
        if kept is None:
            return None
        total += kept
    return total


def _graph_activation_bytes(report: Any, calls: list[LayerReport]) -> int | None:
    """``activation_bytes`` of a Functional model (a ``GraphReport``): every
    input in its dtype, every output's target, and what each call of each
    layer keeps (a shared layer keeps its activations once per call)."""
    x = [values(shape) for _, shape in report.inputs]
    y = [values(shape) for _, shape in report.outputs]
    if None in x or None in y:
        return None
    kept = _kept_total([call for call in calls if call.type != "InputLayer"])
    if kept is None:
        return None
    dtypes = report.input_dtypes or ["float32"] * len(x)
    inputs = sum(n * INPUT_DTYPE_BYTES[d] for n, d in zip(x, dtypes, strict=True))  # type: ignore[operator]
    return inputs + 3 * sum(y) * 4 + kept  # type: ignore[arg-type]


def train_batch_size(report: ModelReport, batch_size: int | None = None) -> int:
    """The batch a training step takes: the model's own fixed batch size,
    else ``batch_size``, else Keras's default of 32."""
    inputs = getattr(report, "inputs", None)
    fixed = inputs[0][1][0] if inputs else report.input_shape[0]
    return fixed or batch_size or DEFAULT_BATCH_SIZE


def train_memory(
    report: ModelReport,
    batch_size: int | None = None,
    optimizer: str = "adam",
    input_dtype: str | None = None,
) -> TrainMemory:
    """Estimate the memory of one training step (see the module docstring).

    Args:
        report: the model, as :func:`seqlab.analyze` reports it.
        batch_size: the fit's batch size; a model with a fixed batch size
            uses its own, and None means Keras's default of 32.
        optimizer: a Keras optimizer name of :data:`OPTIMIZER_SLOTS`.
        input_dtype: the model input's dtype (``spec["dtype"]``; float32).

    Raises:
        KeyError: for an optimizer the table does not know.

    >>> from seqlab import analyze
    >>> m = train_memory(analyze({"input_shape": [5, 1], "layers": [
    ...     {"type": "Dense", "units": 2}]}), batch_size=1)
    >>> (m.weights, m.gradients, m.optimizer_state, m.activations)
    (16, 16, 32, 180)
    """
    batch = train_batch_size(report, batch_size)
    trainable = report.trainable_bytes
    per_sample = activation_bytes(report, input_dtype)
    return TrainMemory(
        batch_size=batch,
        optimizer=optimizer,
        weights=report.param_bytes,
        gradients=trainable,
        optimizer_state=OPTIMIZER_SLOTS[optimizer] * trainable,
        activations=None if per_sample is None else batch * per_sample,
    )
