"""What a worker's Keras backend cannot train, from the engine's report.

The engine counts a model as Keras builds it under TensorFlow (the GPU
worker's backend). A worker may run JAX instead (``make up``, the CPU
worker), and Keras 3.15 on JAX 0.10 (CPU) fails on a few models that
TensorFlow trains:

* a float16 variable drawn by an ``Orthogonal`` initializer (the RNNs'
  default ``recurrent_initializer``): JAX's QR decomposition has no float16
  kernel (``NotImplementedError: Unsupported dtype float16``), so the layer
  does not build;
* ``MultiHeadAttention`` with a ``value_dim`` other than its ``key_dim``:
  Keras cannot build the model under JAX (``Unable to automatically build
  the model``);
* ``MultiHeadAttention`` computing in float16 (``float16`` and
  ``mixed_float16`` policies): XLA's CPU ``dot_general`` has no
  ``F16_F16_F32`` precision.

``tests/test_backends.py`` holds each rule to real Keras under both
backends: the model fails under JAX and trains under TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator

from .checks import initializer_arg
from .checks import initializer_name
from .engine import LayerReport
from .engine import ModelReport
from .registry import COMPUTE_DTYPES

#: The backends a worker may run.
BACKENDS = ("tensorflow", "jax")
#: How messages name them.
NAMES = {"tensorflow": "TensorFlow", "jax": "JAX"}


def walk(layers: list[LayerReport]) -> Iterator[LayerReport]:
    """Each layer report, then the layers it wraps (Bidirectional's forward
    and backward copies, TimeDistributed's layer)."""
    for report in layers:
        yield report
        yield from walk(report.sublayers)


def jax_problem(report: LayerReport) -> str | None:
    """Why Keras on JAX cannot train this layer, or None."""
    layer = report.layer
    config = layer.config
    for weight in report.weights if not report.sublayers else []:
        arg = initializer_arg(weight)
        if weight.dtype == "float16" and initializer_name(config.get(arg)) == "orthogonal":
            return (
                f"its float16 {weight.name.rsplit('/', 1)[-1]} takes the Orthogonal "
                f"{arg}, and JAX's QR decomposition has no float16 kernel. Choose another "
                "initializer, or the mixed_float16 policy (float32 variables)"
            )
    if layer.type == "MultiHeadAttention":
        value_dim = config.get("value_dim")
        if value_dim is not None and value_dim != config.get("key_dim"):
            return (
                f"Keras cannot build a MultiHeadAttention whose value_dim ({value_dim}) differs "
                f"from its key_dim ({config.get('key_dim')}) under JAX"
            )
        if COMPUTE_DTYPES[config.get("dtype")] == "float16":
            return (
                "a MultiHeadAttention computing in float16 needs XLA's F16_F16_F32 "
                "dot_general, which JAX on a CPU does not have"
            )
    return None


def backend_problems(report: ModelReport, backend: str) -> list[str]:
    """Why a worker running ``backend`` cannot train the model: one sentence
    per layer, naming it, in the model's order; empty when it can."""
    if backend != "jax":
        return []
    problems = []
    for layer in walk(report.layers):
        reason = jax_problem(layer)
        if reason is not None:
            problems.append(
                f'Layer "{layer.name}" ({layer.type}) cannot train under JAX: {reason}.'
            )
    return problems
