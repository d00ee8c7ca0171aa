"""Build the Keras model of a validated spec, through the registry.

The registry is the allowlist: only registered layer classes are looked up
in ``keras.layers``, only their registered arguments are passed, and Keras
objects (initializers, regularizers, constraints) come only as allowlisted
names or ``{"class_name", "config"}`` pairs. No Lambda, no custom objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from seqlab import LAYERS
from seqlab.argspec import Kind
from seqlab.errors import duplicate_name
from seqlab.registry import Layer

if TYPE_CHECKING:
    import keras


def build_layer(spec: Mapping[str, Any]) -> keras.Layer:
    """Instantiate one Keras layer; wrapped layers are built first, as in
    ``Bidirectional(LSTM(5))``, so Keras's automatic names match the engine's.

    Only the arguments present in ``spec`` are passed: the others take
    Keras's own defaults, which the tests hold equal to the registry's.
    """
    import keras

    layer_cls = LAYERS[spec["type"]]
    kwargs: dict[str, Any] = {}
    for arg in layer_cls.all_args():
        if arg.name not in spec:
            continue
        value = spec[arg.name]
        if arg.kind is Kind.LAYER and value is not None:
            value = build_layer(value)
        elif arg.kind is Kind.OBJECT and isinstance(value, Mapping):
            value = {"class_name": value["class_name"], "config": dict(value["config"])}
        kwargs[arg.name] = value
    if spec.get("name"):
        kwargs["name"] = spec["name"]
    return getattr(keras.layers, layer_cls.type)(**kwargs)


def build_model(spec: Mapping[str, Any], *, fresh_session: bool = True) -> keras.Model:
    """The Keras model of a validated spec: a ``keras.Sequential`` for the
    Sequential form, a Functional ``keras.Model`` for the graph form.

    With ``fresh_session`` (the default) Keras's global name counters are
    reset first, so layer names are those ``POST /params`` reports.
    """
    import keras

    if fresh_session:
        keras.backend.clear_session()
    if is_graph(spec):
        return GraphBuilder(spec).build()
    inputs = keras.Input(
        shape=tuple(spec["input_shape"]),
        batch_size=spec.get("batch_size"),
        dtype=spec.get("dtype") or "float32",
    )
    layers = [build_layer(layer) for layer in spec["layers"]]
    return keras.Sequential([inputs, *layers], name=spec.get("name"))


def is_graph(spec: Mapping[str, Any]) -> bool:
    """Whether ``spec`` is the compact graph form (a Functional model)."""
    return "inputs" in spec


def parse_ref(ref: str) -> tuple[str, int, int]:
    """Split a reference ``"name[call][tensor]"`` (or ``"name"``, which is
    ``"name[0][0]"``) into its layer name, call number and tensor index."""
    match = _REF.fullmatch(ref)
    if match is None or match.group(2) is None:
        return ref, 0, 0
    return match.group(1), int(match.group(2)), int(match.group(3))


_REF = re.compile(r"(.+?)(?:\[(\d+)\]\[(\d+)\])?")


class GraphBuilder:
    """Runs the program of a graph spec in Keras: the inputs, then each entry
    (construct the layer, then call it), then ``keras.Model(inputs, outputs)``.

    Names are Keras's own: a layer's name is read back from the constructed
    object, so the references of later entries resolve by the names a fresh
    Keras session gives, which are those ``POST /params`` reports.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        #: Layer (or input) name → the flattened output tensors of each call.
        self.calls: dict[str, list[list[Any]]] = {}
        #: Layer name → the layer object and its registry class, for
        #: ``{"call": name}`` entries.
        self.objects: dict[str, tuple[Any, type[Layer]]] = {}
        self.last: list[Any] = []
        #: The entry being applied (for the path of a refusal).
        self.index = 0

    def tensor(self, ref: str) -> Any:
        """The Keras tensor a reference names."""
        name, call, index = parse_ref(ref)
        return self.calls[name][call][index]

    def tensors(self, refs: Any) -> Any:
        """References resolved with their nesting kept (one, list or dict)."""
        if isinstance(refs, str):
            return self.tensor(refs)
        if isinstance(refs, Mapping):
            return {key: self.tensors(value) for key, value in refs.items()}
        return [self.tensors(ref) for ref in refs]

    def build(self) -> keras.Model:
        """Run the program and return the model."""
        import keras

        inputs = []
        for entry in self.spec["inputs"]:
            tensor = keras.Input(
                shape=tuple(entry["shape"]),
                batch_size=entry.get("batch_size"),
                dtype=entry.get("dtype") or "float32",
                name=entry.get("name"),
            )
            inputs.append(tensor)
            self.calls[tensor._keras_history[0].name] = [[tensor]]
        # With one input, the first entry may leave its ``inputs`` out.
        self.last = inputs if len(inputs) == 1 else []
        for index, entry in enumerate(self.spec["layers"]):
            self.index = index
            self.apply(entry)
        outputs = self.spec.get("outputs")
        if outputs is None:
            outputs = self.last[0] if len(self.last) == 1 else list(self.last)
        else:
            outputs = self.tensors(outputs)
        model_inputs = inputs[0] if len(inputs) == 1 else inputs
        return keras.Model(model_inputs, outputs, name=self.spec.get("name") or "functional")

    def apply(self, entry: Mapping[str, Any]) -> None:
        """One entry: construct the layer (or look up the shared one), call it."""
        import keras

        if "call" in entry:
            layer, layer_cls = self.objects[entry["call"]]
        else:
            layer, layer_cls = build_layer(entry), LAYERS[entry["type"]]
            if layer.name in self.calls or layer.name in self.objects:
                # As the engine: a reference could not say which layer it means.
                raise duplicate_name(layer.name, f"layers.{self.index}.name")
            self.objects[layer.name] = (layer, layer_cls)
        refs = entry.get("inputs")
        if refs is None:
            args: list[Any] = [self.last[0]]
            kwargs: dict[str, Any] = {}
        elif isinstance(refs, Mapping):
            # MultiHeadAttention(query=..., value=..., key=...): Keras orders
            # a keyword call's tensors by key, unlike a positional one.
            args, kwargs = [], self.tensors(refs)
        elif isinstance(refs, str):
            args, kwargs = [self.tensor(refs)], {}
        elif layer_cls.call_form == "query_value_key":
            args, kwargs = self.tensors(refs), {}
        else:
            args, kwargs = [self.tensors(refs)], {}
        if entry.get("initial_state") is not None:
            kwargs["initial_state"] = self.tensors(entry["initial_state"])
        for arg in layer_cls.call_args:
            if arg.name in entry:
                kwargs[arg.name] = entry[arg.name]
        outputs = keras.tree.flatten(layer(*args, **kwargs))
        self.calls.setdefault(layer.name, []).append(outputs)
        self.last = outputs
