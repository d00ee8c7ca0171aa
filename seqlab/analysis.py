"""The public entry point: a model spec to its report, by the engine its form needs.

A spec with ``inputs`` is a graph (Functional) model, walked by
``seqlab.graph``; any other is a Sequential model, walked by
``seqlab.engine``. The dispatch lives here, above both engines, since the
graph engine is built on the Sequential engine's pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .engine import ModelReport
from .engine import analyze_sequential
from .graph import analyze_graph


def analyze(spec: Mapping[str, Any], *, strict: bool = True) -> ModelReport:
    """Analyze a model spec as Keras 3 would build it.

    A spec with ``inputs`` is a graph (a Functional model, see
    :func:`seqlab.graph.analyze_graph`, which returns a ``GraphReport``);
    any other is a Sequential spec (:func:`seqlab.engine.analyze_sequential`).

    Args:
        spec: ``{"input_shape": [...], "layers": [...], "batch_size"?: int,
            "name"?: str}``, validated by the schema; or a graph spec.
        strict: refuse a model that Keras builds and counts but that fails
            on its first call (fit or predict: an RNN's ``initial_state`` of
            the wrong count or size, attention whose query and key sizes
            disagree, a mask a layer cannot take, an activation that cannot
            run), raising the first such failure. With False the model is
            reported as Keras builds it, and those failures are listed in
            the report's ``first_call_failures`` (what ``POST /params``
            answers as ``warnings``); a model Keras refuses to build is
            refused either way. Training needs the default.

    Returns:
        The per-layer report and totals.

    Raises:
        SpecError: where Keras would refuse the model (or, ``strict``, fail
            on its first call); its ``path`` names the layer (``layers.2``)
            or argument.

    >>> r = analyze({"input_shape": [1, 1], "layers": [
    ...     {"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}]})
    >>> [(x.name, x.output_shape, x.params) for x in r.layers]
    [('lstm', (None, 5), 140), ('dense', (None, 1), 6)]
    """
    if "inputs" in spec:
        return analyze_graph(spec, strict=strict)
    return analyze_sequential(spec, strict=strict)
