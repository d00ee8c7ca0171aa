"""Build specs with real Keras and extract what Keras reports about them.

The oracle of the Keras comparison tests: ``keras_report(spec)`` builds the
model through ``worker.builder.build_model`` (the same path the worker takes)
and returns what ``model.summary()`` and the layers say, or the Keras error.
``engine_report(spec)`` returns the same fields computed by seqlab, so the two
can be compared key by key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

# Keras and TensorFlow log on import; keep the test output readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from seqlab import LAYERS  # noqa: E402
from seqlab import SpecError  # noqa: E402
from seqlab import analyze  # noqa: E402
from seqlab import render_summary  # noqa: E402
from seqlab.argspec import Kind  # noqa: E402
from seqlab.engine import LayerReport  # noqa: E402
from seqlab.engine import ModelReport  # noqa: E402
from seqlab.errors import DUPLICATE_BY_DESIGN  # noqa: E402

#: The keys of a report that both sides produce (``json`` is Keras's only).
COMPARED = (
    "names",
    "output_shapes",
    "params",
    "trainable",
    "non_trainable",
    "sublayer_names",
    "weight_shapes",
    "total",
    "summary",
)

Shape = tuple[Any, ...]


def import_keras():
    """Import Keras quietly (TF prints warnings on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import keras

    return keras


def _shape(tensor_or_list: Any) -> Shape | list[Shape]:
    if isinstance(tensor_or_list, list | tuple):
        return [tuple(t.shape) for t in tensor_or_list]
    return tuple(tensor_or_list.shape)


def _count(weights: list[Any]) -> int:
    total = 0
    for w in weights:
        size = 1
        for d in w.shape:
            size *= d
        total += size
    return total


def _sublayers(layer: Any) -> list[Any]:
    """The layers a wrapper owns (RNN cells are internals, not sublayers)."""
    return [
        sub
        for sub in layer._flatten_layers(include_self=False, recursive=False)
        if not type(sub).__name__.endswith("Cell")
    ]


def _weights(layer: Any) -> list[tuple[str, tuple[int, ...], bool, str]]:
    """Each weight's name, shape, the variable's own ``trainable`` flag and
    its dtype.

    The flag is the variable's, which is what the model's footer counts; the
    layer's ``trainable_weights`` view (empty for a frozen layer) is in the
    ``trainable``/``non_trainable`` fields.
    """
    return [(w.name, tuple(w.shape), bool(w.trainable), str(w.dtype)) for w in layer.weights]


def summary_text(model: Any, line_length: int | None = None, columns: int | None = None) -> str:
    """``model.summary()`` text as printed to a pipe: the 76-column table.

    Without ``line_length`` Keras picks its default; Keras then asks
    ``shutil.get_terminal_size``, which reads ``COLUMNS`` or the terminal of
    ``sys.__stdout__``, and rich's console (the ``Model:`` line) asks
    ``os.get_terminal_size`` of stdin, stdout and stderr. All are taken
    away, as when the output is piped: 76 columns, and 80 for the console.
    ``columns`` sets ``COLUMNS`` (a console that wide).
    """
    lines: list[str] = []
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)

    def no_terminal(*args: Any) -> os.terminal_size:
        raise OSError("not a terminal")

    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch.object(
            shutil, "get_terminal_size", lambda fallback=(80, 24): os.terminal_size(fallback)
        ),
        mock.patch.object(os, "get_terminal_size", no_terminal),
    ):
        model.summary(
            line_length=line_length,
            print_fn=lambda text, *args, **kwargs: lines.append(text),
        )
    return "".join(lines)


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def keras_report(spec: Mapping[str, Any]) -> dict[str, Any] | str:
    """What Keras says about ``spec``: a report dict, or the error text.

    Any exception while building is Keras refusing the model.
    """
    if is_graph(spec):
        return keras_graph_report(spec)
    keras = import_keras()
    from worker.builder import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # A fresh session, as build_model's own, without its gc.collect()
        # (a tenth of a second with TensorFlow loaded).
        keras.backend.clear_session(free_memory=False)
        try:
            model = build_model(spec, fresh_session=False)
        except Exception as error:  # noqa: BLE001 - any refusal counts
            return error_text(error)
        if not model.built or getattr(model, "_functional", None) is None:
            # Sequential.build swallows NotImplementedError and leaves the
            # model unbuilt: the worker could not use it either.
            return "NotBuilt: Sequential.build returned without building the model"
        layers = model.layers
        report = {
            "names": [layer.name for layer in layers],
            "output_shapes": [_shape(layer.output) for layer in layers],
            "params": [layer.count_params() for layer in layers],
            "trainable": [_count(layer.trainable_weights) for layer in layers],
            "non_trainable": [_count(layer.non_trainable_weights) for layer in layers],
            "sublayer_names": [[s.name for s in _sublayers(layer)] for layer in layers],
            "weight_shapes": [_weights(layer) for layer in layers],
            "total": model.count_params(),
            "summary": summary_text(model),
            "json": model.to_json(),
        }
    return report


#: The length given to unknown (None) dimensions when a model is run.
RUN_LENGTH = 8


def keras_run_error(spec: Mapping[str, Any]) -> str | None:
    """Why Keras cannot use the model it builds for ``spec``; None if it can.

    Keras's symbolic build skips checks that the first real call makes, and
    it may describe a model other than the one it runs: ``TimeDistributed``
    of a layer given the wrong rank (it builds that layer without its
    InputSpec; GlobalAveragePooling1D then reports ``(None, T, C)`` and
    computes ``(B, T)``), or given the list of a ``return_state`` layer. The
    engine refuses these; this tells them apart from a genuine
    disagreement.

    The model is called on a batch of zeros (``batch_size`` or 2 samples,
    unknown dimensions ``RUN_LENGTH``), each output is compared with the
    shape the summary shows, and one training step is taken.
    """
    import numpy as np

    keras = import_keras()
    from worker.builder import build_model

    batch = spec.get("batch_size") or 2
    dims = [RUN_LENGTH if d is None else d for d in spec["input_shape"]]
    x = np.zeros((batch, *dims), dtype=spec.get("dtype") or "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        try:
            model = build_model(spec, fresh_session=False)
            declared = [tuple(t.shape) for t in model.outputs]
            outputs = model(x)
            several = isinstance(outputs, list | tuple)
            y: Any = tuple(np.asarray(o) for o in outputs) if several else np.asarray(outputs)
            actual = [o.shape for o in y] if several else [y.shape]
            if len(actual) != len(declared) or any(
                len(a) != len(d) or any(dd not in (None, aa) for dd, aa in zip(d, a, strict=True))
                for a, d in zip(actual, declared, strict=False)
            ):
                return f"the model computes shapes {actual}, its summary shows {declared}"
            model.compile(optimizer="sgd", loss=["mse"] * len(y) if several else "mse")
            model.train_on_batch(x, y)
        except Exception as error:  # noqa: BLE001 - any failure counts
            return error_text(error)
    return None


def _engine_weights(layer: LayerReport) -> list[tuple[str, tuple[int, ...], bool, str]]:
    return [
        (w.name.rsplit("/", 1)[-1], tuple(w.shape), w.trainable, w.dtype) for w in layer.weights
    ]


def report_fields(report: ModelReport) -> dict[str, Any]:
    """The fields of ``keras_report`` computed from a seqlab report."""
    layers = report.layers
    return {
        "names": [layer.name for layer in layers],
        "output_shapes": [layer.output_shape for layer in layers],
        "params": [layer.params for layer in layers],
        "trainable": [layer.trainable_params for layer in layers],
        "non_trainable": [layer.non_trainable_params for layer in layers],
        "sublayer_names": [[s.name for s in layer.sublayers] for layer in layers],
        "weight_shapes": [_engine_weights(layer) for layer in layers],
        "total": report.total_params,
        "summary": render_summary(report),
    }


def engine_report(spec: Mapping[str, Any]) -> dict[str, Any] | str:
    """What seqlab says about ``spec``, in the form of :func:`keras_report`."""
    if is_graph(spec):
        return engine_graph_report(spec)
    try:
        return report_fields(analyze(spec))
    except SpecError as error:
        return f"SpecError at {error.path or '<spec>'}: {error.message}"


#: Keras refusals that are internal failures rather than reasons (an index
#: out of range, a variable of unknown shape, a missing config key): the
#: engine gives its own reason for these, and only the verdict is compared.
#: Each pattern is matched against the start of Keras's reason
#: (``keras_reason``).
KERAS_INTERNAL = (
    "tuple index out of range",
    "'value'",
    "axis -1 is out of bounds for an array with dimension 0",
    "Shapes used to initialize variables must be fully-defined",
    "Cannot convert '",
    # A layer after a return_state stack handed Keras's tuple (Reshape.call).
    "'tuple' object has no attribute",
)


def keras_reason(text: str) -> str:
    """Keras's refusal as the engine quotes it.

    Normalised away, as they cannot be equal: the exception type; the
    ``Exception encountered when calling X.call()`` frame around the reason
    (the reason is the bold part) and its dump of the call's arguments; the
    ``Inputs received: [<KerasTensor ...>]`` list; and what follows the
    first line (a TensorFlow op's NodeDef).
    """
    _, _, reason = text.partition(": ")
    if reason.startswith("Exception encountered when calling"):
        reason = reason.split("\x1b[1m", 1)[-1].split("\x1b[0m", 1)[0]
    reason = reason.split(" Inputs received: ", 1)[0]
    return reason.split("\n", 1)[0].strip()


def refusal_differs(engine: str, keras: str) -> bool:
    """Whether the engine's refusal does not quote Keras's reason word for
    word (it may add a hint after it)."""
    if keras_reason(keras).startswith(KERAS_INTERNAL):
        return False
    message = engine.split(": ", 1)[-1]  # "SpecError at <path>: <message>"
    return not message.startswith(keras_reason(keras))


def compare(
    engine: dict[str, Any] | str,
    keras: dict[str, Any] | str,
    *,
    keys: tuple[str, ...] = COMPARED,
) -> list[str]:
    """The differences between two reports, as readable lines (empty: agree).

    Two refusals agree when the engine quotes Keras's reason
    (``refusal_differs``)."""
    if isinstance(engine, str) or isinstance(keras, str):
        if isinstance(engine, str) and isinstance(keras, str):
            if refusal_differs(engine, keras):
                return [f"refusal: engine {engine!r} / keras {keras_reason(keras)!r}"]
            return []
        return [f"verdict: engine {_verdict(engine)} / keras {_verdict(keras)}"]
    out = []
    for key in keys:
        if engine[key] != keras[key]:
            if key == "summary":
                out.append(f"summary:\n--- engine\n{engine[key]}--- keras\n{keras[key]}")
            else:
                out.append(f"{key}: engine {engine[key]!r} / keras {keras[key]!r}")
    return out


def _verdict(report: dict[str, Any] | str) -> str:
    return repr(report) if isinstance(report, str) else "accepts"


def unbuilt_model_json(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``to_json`` document of ``spec`` without building the model.

    For specs Keras refuses to build: the layers are constructed (not built)
    with the worker's builder and serialized one by one, after an
    ``InputLayer`` config. A layer whose constructor already refuses its
    arguments is written by hand in the same form, so that deserializing it
    runs that constructor again.
    """
    keras = import_keras()
    from worker.builder import build_layer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        batch_shape = [spec.get("batch_size"), *spec["input_shape"]]
        layers: list[dict[str, Any]] = [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {
                    "batch_shape": batch_shape,
                    "dtype": spec.get("dtype") or "float32",
                    "name": "input_layer",
                },
                "registered_name": None,
            }
        ]
        layers += [_serialize_layer(keras, build_layer, s) for s in spec["layers"]]
    config: dict[str, Any] = {"name": spec.get("name") or "sequential", "layers": layers}
    return {"module": "keras", "class_name": "Sequential", "config": config}


def _serialize_layer(keras: Any, build_layer: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return keras.saving.serialize_keras_object(build_layer(spec))
    except Exception:  # noqa: BLE001 - the constructor refuses: write it out
        layer_args = {arg.name for arg in LAYERS[spec["type"]].all_args() if arg.kind is Kind.LAYER}
        config = {
            key: (
                _serialize_layer(keras, build_layer, value)
                if key in layer_args and value is not None
                else value
            )
            for key, value in spec.items()
            if key != "type"
        }
        return {
            "module": "keras.layers",
            "class_name": spec["type"],
            "config": config,
            "registered_name": None,
        }


def keras_loads(doc: Mapping[str, Any]) -> Any:
    """``keras.models.model_from_json`` on ``doc``; raises what Keras raises."""
    import json

    keras = import_keras()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        return keras.models.model_from_json(json.dumps(doc))


# -- graphs (Functional models) -----------------------------------------------

#: The keys of a graph report that both sides produce.
GRAPH_COMPARED = (
    "names",
    "output_shapes",
    "params",
    "trainable",
    "non_trainable",
    "sublayer_names",
    "weight_shapes",
    "connected_to",
    "inputs",
    "outputs",
    "single_output",
    "total",
    "trainable_total",
    "summary",
)

#: The prefix of Keras's verdict on a model it builds but cannot call
#: (``first_call_error``).
FIRST_CALL = "FirstCall"

#: Refusals of the graph builder itself rather than of Keras: a reference
#: to no tensor (``KeyError``/``IndexError`` of the builder's lookups). The
#: engine words these its own way (the path of the reference); only the
#: verdict is compared.
BUILDER_ERRORS = ("KeyError: ", "IndexError: ")


#: The prefix of the verdict on a spec that seqlab refuses by design where
#: Keras builds it: a layer name given twice, one of them on a layer the
#: outputs do not reach (Keras checks names only in the model's graph). The
#: compact form cannot say which layer a reference to that name means, so
#: the worker's builder refuses it (``seqlab.errors.duplicate_name``) and the
#: engine must refuse it with the same words. Not a skip: an engine that
#: accepts such a spec disagrees.
BY_DESIGN = "RefusedBySeqlabByDesign"


def is_graph(spec: Mapping[str, Any]) -> bool:
    """Whether ``spec`` is the compact graph form (design §1)."""
    return "inputs" in spec


def _node_shapes(tensors: list[Any]) -> Shape | list[Shape]:
    shapes = [tuple(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else shapes


def _connected_to(model: Any, layer: Any) -> list[str]:
    """Every tensor of each of the layer's nodes in ``model``, as Keras's
    summary writes them (``summary_utils.get_connections``)."""
    relevant = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    out = []
    for node in layer._inbound_nodes:
        if id(node) not in relevant:
            continue
        for tensor in node.input_tensors:
            history = tensor._keras_history
            out.append(f"{history.operation.name}[{history.node_index}][{history.tensor_index}]")
    return out


def _trainable_total(model: Any) -> int:
    seen: set[int] = set()
    weights = []
    for w in model.trainable_weights:
        if id(w) not in seen:
            seen.add(id(w))
            weights.append(w)
    return _count(weights)


def graph_fields(model: Any) -> dict[str, Any]:
    """What Keras reports about a Functional model (``GRAPH_COMPARED`` and
    its ``to_json``).

    A layer's output shape is its last node's (a shared layer's last call,
    as the summary shows it): one shape, or a list for several outputs.
    """
    layers = model.layers
    outputs = model._outputs_struct
    return {
        "names": [layer.name for layer in layers],
        "output_shapes": [
            _node_shapes(layer._inbound_nodes[-1].output_tensors) for layer in layers
        ],  # noqa: E501
        "params": [layer.count_params() for layer in layers],
        "trainable": [_count(layer.trainable_weights) for layer in layers],
        "non_trainable": [_count(layer.non_trainable_weights) for layer in layers],
        "sublayer_names": [[s.name for s in _sublayers(layer)] for layer in layers],
        "weight_shapes": [_weights(layer) for layer in layers],
        "connected_to": [_connected_to(model, layer) for layer in layers],
        "inputs": [(t._keras_history.operation.name, tuple(t.shape)) for t in model.inputs],
        "outputs": [(t._keras_history.operation.name, tuple(t.shape)) for t in model.outputs],
        "single_output": not isinstance(outputs, list | tuple | dict),
        "total": model.count_params(),
        "trainable_total": _trainable_total(model),
        "summary": summary_text(model),
        "json": model.to_json(),
    }


#: Lengths tried for unknown dimensions when a graph is run: a model whose
#: windows and strides need a longer sequence than ``RUN_LENGTH`` is not
#: refused for that.
RUN_LENGTHS = (RUN_LENGTH, 64)


def zeros_for(spec: Mapping[str, Any], length: int = RUN_LENGTH) -> list[Any]:
    """A batch of zeros per input of a graph spec (unknown dims ``length``;
    the batch the inputs fix, else 2)."""
    import numpy as np

    batch = next((i["batch_size"] for i in spec["inputs"] if i.get("batch_size")), 2)
    return [
        np.zeros(
            (batch, *[length if d is None else d for d in entry["shape"]]),
            dtype=entry.get("dtype") or "float32",
        )
        for entry in spec["inputs"]
    ]


def _unknown_dims(spec: Mapping[str, Any]) -> bool:
    return any(d is None for entry in spec["inputs"] for d in entry["shape"])


def first_call_error(model: Any, spec: Mapping[str, Any]) -> str | None:
    """Why the built model fails on its first call; None if it runs.

    Keras builds some models it cannot run: an RNN's ``initial_state`` is
    never checked symbolically (count and sizes: keras-functional.md §2),
    Attention never checks that query and key sizes agree, TimeDistributed
    skips its layer's InputSpec. The model is called on zeros of its input
    shapes (eagerly, as ``predict`` runs the same ops), and each output's
    shape is compared with the shape the model declares. Unknown dimensions
    are ``RUN_LENGTHS[0]`` long and, where that fails, ``RUN_LENGTHS[1]``:
    the model is refused only if it fails on both.
    """
    failure = _call_once(model, zeros_for(spec))
    if failure is not None and _unknown_dims(spec):
        if _call_once(model, zeros_for(spec, RUN_LENGTHS[1])) is None:
            return None
    return failure


def _call_once(model: Any, xs: list[Any]) -> str | None:
    """Call ``model`` on ``xs``: the failure, or None."""
    import numpy as np

    try:
        declared = [tuple(t.shape) for t in model.outputs]
        y = model(xs[0] if len(xs) == 1 else xs, training=False)
        import keras

        actual = [np.asarray(o).shape for o in keras.tree.flatten(y)]
    except Exception as error:  # noqa: BLE001 - any failure counts
        return error_text(error)
    if len(actual) != len(declared) or any(
        len(a) != len(d) or any(dd not in (None, aa) for dd, aa in zip(d, a, strict=True))
        for a, d in zip(actual, declared, strict=False)
    ):
        return f"ShapeError: the model computes shapes {actual}, it declares {declared}"
    return None


@dataclass
class GraphBuild:
    """Keras on a graph spec: what it reports (``graph_fields``) or why it
    refuses to build it, and why the built model fails its first call."""

    report: dict[str, Any] | str
    first_call: str | None = None

    @property
    def verdict(self) -> dict[str, Any] | str:
        """The report, or the refusal (a first call's failure prefixed with
        ``FIRST_CALL``)."""
        if self.first_call is not None:
            return f"{FIRST_CALL} {self.first_call}"
        return self.report


def keras_graph_build(spec: Mapping[str, Any], *, run: bool = True) -> GraphBuild:
    """Build ``spec`` with the worker's builder in a fresh session and
    extract ``graph_fields``; with ``run``, call it once on zeros."""
    keras = import_keras()
    from worker.builder import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        try:
            model = build_model(spec, fresh_session=False)
        except SpecError as error:
            if DUPLICATE_BY_DESIGN in error.message:
                return GraphBuild(f"{BY_DESIGN} {error.message}")
            return GraphBuild(error_text(error))
        except Exception as error:  # noqa: BLE001 - any refusal counts
            return GraphBuild(error_text(error))
        report = graph_fields(model)
        return GraphBuild(report, first_call_error(model, spec) if run else None)


def keras_graph_report(spec: Mapping[str, Any], *, run: bool = True) -> dict[str, Any] | str:
    """What Keras says about a graph spec: ``graph_fields``, or the error
    text of building it, or (``run``) of its first call prefixed with
    ``FIRST_CALL``."""
    return keras_graph_build(spec, run=run).verdict


def keras_json_report(doc: str | Mapping[str, Any]) -> dict[str, Any] | str:
    """What Keras reports about the model ``model_from_json`` rebuilds."""
    import json

    keras = import_keras()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        try:
            model = keras.models.model_from_json(doc if isinstance(doc, str) else json.dumps(doc))
        except Exception as error:  # noqa: BLE001 - any refusal counts
            return error_text(error)
        return graph_fields(model)


def graph_report_fields(report: Any) -> dict[str, Any]:
    """The fields of ``graph_fields`` computed from a seqlab GraphReport."""
    fields = report_fields(report)
    fields.update(
        {
            "output_shapes": [_output(layer.output_shape) for layer in report.layers],
            "connected_to": [list(layer.connected_to) for layer in report.layers],
            "inputs": [(name, tuple(shape)) for name, shape in report.inputs],
            "outputs": [(name, _output(shape)) for name, shape in report.outputs],
            "single_output": report.single_output,
            "trainable_total": report.trainable_params,
        }
    )
    return fields


def _output(output: Any) -> Any:
    if isinstance(output, list):
        return [tuple(s) for s in output]
    return tuple(output)


def engine_graph_report(spec: Mapping[str, Any]) -> dict[str, Any] | str:
    """What seqlab says about a graph spec, in the form of ``graph_fields``."""
    try:
        return graph_report_fields(analyze(spec))
    except SpecError as error:
        return f"SpecError at {error.path or '<spec>'}: {error.message}"


def verdict_only(keras: str) -> bool:
    """Whether only the verdict of a Keras refusal can be compared: a first
    call's failure (TensorFlow's words), a builder lookup, or a Keras
    internal failure."""
    return (
        keras.startswith(FIRST_CALL)
        or keras.startswith(BUILDER_ERRORS)
        or keras_reason(keras).startswith(KERAS_INTERNAL)
    )


def compare_build(engine: dict[str, Any] | str, keras: GraphBuild) -> list[str]:
    """The differences between the engine's report and Keras's build.

    One first-call failure leaves the engine free: a model that runs but
    computes other shapes than it declares (MultiHeadAttention's scores
    are declared ``(B, H, Tq, Tq)`` and computed ``(B, H, Tq, Tv)``). The
    engine may refuse it, or describe it as Keras's summary does.
    """
    if (
        keras.first_call is not None
        and keras.first_call.startswith("ShapeError")
        and not isinstance(engine, str)
    ):
        return compare_graph(engine, keras.report)
    return compare_graph(engine, keras.verdict)


def compare_graph(engine: dict[str, Any] | str, keras: dict[str, Any] | str) -> list[str]:
    """The differences between a graph's two reports (empty: agree)."""
    if isinstance(keras, str) and keras.startswith(BY_DESIGN):
        if isinstance(engine, str) and DUPLICATE_BY_DESIGN in engine:
            return []
        return [f"refused by seqlab by design ({keras[:200]!r}); engine: {engine!r:.300}"]
    if isinstance(engine, str) and isinstance(keras, str):
        if verdict_only(keras) or not refusal_differs(engine, keras):
            return []
        return [f"refusal: engine {engine!r} / keras {keras_reason(keras)!r}"]
    return compare(engine, keras, keys=GRAPH_COMPARED)


# -- a disk cache of Keras's answers --------------------------------------------

#: Where Keras's answers on graphs are kept between test runs (git ignores
#: ``.pytest_cache``); ``SEQLAB_ORACLE_CACHE=0`` turns the cache off.
CACHE_DIR = Path(__file__).resolve().parent.parent / ".pytest_cache" / "seqlab-keras-graphs"

#: The sources Keras's answer depends on besides the spec and Keras itself:
#: the builder, this oracle, and the registry the builder reads.
_SOURCES = (
    "worker/builder.py",
    "tests/keras_oracle.py",
    "seqlab/registry.py",
    "seqlab/args.py",
    "seqlab/argspec.py",
)


@functools.cache
def _code_version() -> str:
    """A digest of Keras's version and of every source its answers depend on."""
    keras = import_keras()
    root = CACHE_DIR.parent.parent
    digest = hashlib.sha256(f"{keras.__version__} {keras.backend.backend()}".encode())
    layers = (str(p.relative_to(root)) for p in (root / "seqlab" / "layers").glob("*.py"))
    for path in sorted([*_SOURCES, *layers]):
        digest.update(path.encode())
        digest.update((root / path).read_bytes())
    return digest.hexdigest()


def cached(kind: str, payload: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept on disk under a digest of ``kind``, ``payload``
    (JSON-able) and ``_code_version()``."""
    if os.environ.get("SEQLAB_ORACLE_CACHE", "1") == "0":
        return compute()
    text = json.dumps([kind, payload, _code_version()], sort_keys=True)
    path = CACHE_DIR / f"{hashlib.sha256(text.encode()).hexdigest()}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        pass
    value = compute()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(value))
    partial.replace(path)  # atomic: a concurrent reader sees all or nothing
    return value


def cached_graph_build(spec: Mapping[str, Any]) -> GraphBuild:
    """``keras_graph_build(spec)`` through the disk cache."""
    return cached("graph_build", spec, lambda: keras_graph_build(spec))


def cached_json_report(doc: str) -> dict[str, Any] | str:
    """``keras_json_report(doc)`` through the disk cache."""
    return cached("json_report", doc, lambda: keras_json_report(doc))
