"""Read ``model.to_json()`` of a Keras 3 Functional model into the compact graph form.

The reading follows Keras's own ``model_from_json``
(``keras/src/models/functional.py``, ``functional_from_config``):

* layers are looked up by their ``name``; every call (``inbound_nodes``) is
  replayed in Keras's order: repeated sweeps over the layer list, each layer
  calling its pending nodes in order until one refers to a call that does not
  exist yet. The compact entries come out in that order, so every reference
  is defined before it is used, and the ``n`` of ``"layer[n][t]"`` is the
  replayed call's number, as in Keras. A sweep that makes no progress (a
  cycle, a reference to a call that never happens) is Keras's "loops or
  disconnected nodes" error; an unknown layer is Keras's "Unknown layer".
* the ``shape`` and ``dtype`` stored in each ``__keras_tensor__`` are ignored,
  as Keras ignores them: shapes are recomputed by the engine.
* the kwargs Keras injects into a recorded call (``training``, and ``mask``:
  null or the mask that ``Embedding(mask_zero=True)`` or ``Masking`` made)
  are dropped; the engine derives masks again. The mask operations
  themselves (``NotEqual``, ``Any`` entries of module ``keras.src.ops.*``)
  are checked to be exactly those and dropped; any other operation
  (``a + b``, ``t[:, :3]``) is refused, naming it.
* ``build_config``: Keras builds each layer from it before wiring the graph,
  so where it disagrees with the shapes the graph feeds the layer, Keras's
  weights follow the ``build_config``, not the graph (an LSTM loaded with 234
  parameters instead of 218). seqlab refuses such a document instead, on
  purpose: :func:`check_build_configs` names the layer and both shapes.

Names are all explicit in ``to_json``, so the compact form keeps every one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import SpecError
from .keras_layer_json import convert_layer
from .registry import LAYERS

#: Keras's error when replaying nodes makes no progress (functional.py).
LOOPS = (
    "Invalid Functional model configuration. The graph of the Functional model either has "
    "loops or disconnected nodes. The following nodes failed to be resolved: "
)
#: Classes of a serialized model nested as a layer.
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: Keyword arguments that ``Layer.__call__`` records on its own.
INJECTED = frozenset({"training", "mask"})
#: The tensor keywords of a ``query_value_key`` call, in Keras's sorted order.
QVK = ("key", "query", "value")

Ref = tuple[str, int, int]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__"


def _history(value: Mapping[str, Any], path: str) -> Ref:
    """The ``keras_history`` of a serialized KerasTensor: (layer, node, tensor)."""
    config = value.get("config")
    history = config.get("keras_history") if isinstance(config, Mapping) else None
    if (
        not isinstance(history, list)
        or len(history) != 3
        or not isinstance(history[0], str)
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in history[1:])
    ):
        raise SpecError(
            "A __keras_tensor__ needs `config.keras_history`: [layer name, node index, "
            "tensor index].",
            path,
        )
    return history[0], history[1], history[2]


def _tensors(value: Any, path: str) -> list[tuple[str, Ref]]:
    """Every serialized KerasTensor in ``value`` with its path, in order."""
    if _is_tensor(value):
        return [(path, _history(value, path))]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _tensors(v, f"{path}.{i}")]
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in _tensors(v, f"{path}.{k}")]
    return []


def reference(ref: Ref) -> str:
    """A tensor as the compact form names it: ``lstm`` or ``lstm[0][1]``."""
    name, node, tensor = ref
    return name if node == tensor == 0 else f"{name}[{node}][{tensor}]"


class _Entry:
    """One member of ``config.layers``: a layer, an input or an operation."""

    def __init__(self, index: int, obj: Any) -> None:
        path = f"config.layers.{index}"
        if not isinstance(obj, Mapping) or not isinstance(obj.get("config"), Mapping):
            raise SpecError("Expected a serialized Keras layer.", path)
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError("Expected the layer's `name`, a string.", f"{path}.name")
        nodes = obj.get("inbound_nodes")
        if not isinstance(nodes, list):
            raise SpecError("Expected `inbound_nodes`, a list of calls.", f"{path}.inbound_nodes")
        class_name = obj.get("class_name")
        module = obj.get("module")
        self.index, self.obj, self.name, self.nodes, self.path = index, obj, name, nodes, path
        self.class_name = class_name if isinstance(class_name, str) else ""
        if isinstance(module, str) and module.startswith("keras.src.ops"):
            self.kind = "op"
        elif self.class_name == "InputLayer":
            self.kind = "input"
        elif self.class_name in MODEL_CLASSES:
            raise SpecError(
                f"Nested models are not supported: {name!r} is a {self.class_name}. "
                "Write its layers into the outer model instead.",
                path,
            )
        else:
            self.kind = "layer"
        config_name = obj["config"].get("name", name)
        if self.kind == "layer" and config_name != name:
            raise SpecError(
                f"The layer's `name` ({name!r}) and its `config.name` ({config_name!r}) differ.",
                f"{path}.config.name",
            )
        if self.kind == "input" and nodes:
            raise SpecError("An InputLayer has no inbound nodes.", f"{path}.inbound_nodes")

    def describe(self) -> str:
        """Keras's repr of the object, as its "failed to be resolved" error shows it."""
        built = self.kind == "op" or bool(self.obj.get("build_config"))
        return f"<{self.class_name} name={self.name}, built={built}>"


def _entries(config: Mapping[str, Any]) -> list[_Entry]:
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise SpecError("Expected `config.layers`, a list of layers.", "config.layers")
    entries = [_Entry(i, obj) for i, obj in enumerate(layers)]
    seen: dict[str, _Entry] = {}
    for entry in entries:
        if entry.name in seen:
            raise SpecError(
                f'The name "{entry.name}" is used 2 times in the model. '
                "All operation names should be unique.",
                f"{entry.path}.name",
            )
        seen[entry.name] = entry
    return entries


def _replay_order(entries: list[_Entry]) -> list[tuple[_Entry, int]]:
    """The calls in the order Keras replays them: ``(entry, node number)``.

    Keras sweeps the layer list; each layer calls its pending nodes in order
    and stops at the first whose inputs do not exist yet (an IndexError),
    to retry on the next sweep.
    """
    by_name = {e.name: e for e in entries}
    # An InputLayer's one node exists as soon as it is created.
    calls = {e.name: 1 if e.kind == "input" else 0 for e in entries}
    pending = {e.name: 0 for e in entries if e.nodes}
    order: list[tuple[_Entry, int]] = []

    def ready(entry: _Entry, k: int) -> bool:
        path = f"{entry.path}.inbound_nodes.{k}"
        node = entry.nodes[k]
        if not isinstance(node, Mapping):
            raise SpecError(
                'Expected a call: {"args": [...], "kwargs": {...}} (the list form of '
                "Keras 2 is not supported).",
                path,
            )
        for tensor_path, (name, n, t) in _tensors(node, path):
            if name not in by_name:
                raise SpecError(f"Unknown layer: {name}", tensor_path)
            source = by_name[name]
            if n >= calls[name] or (source.kind != "layer" and t > 0):
                return False
        return True

    while pending:
        progress = False
        for entry in entries:
            if entry.name not in pending:
                continue
            k = pending[entry.name]
            while k < len(entry.nodes) and ready(entry, k):
                order.append((entry, k))
                calls[entry.name] += 1
                k += 1
            if k > pending[entry.name]:
                progress = True
            if k == len(entry.nodes):
                del pending[entry.name]
            else:
                pending[entry.name] = k
        if not progress:
            failed = ", ".join(
                f"{by_name[name].describe()}: {by_name[name].nodes[k:]!r}"
                for name, k in pending.items()
            )
            first = next(iter(pending))
            raise SpecError(
                LOOPS + "{" + failed + "}",
                f"{by_name[first].path}.inbound_nodes.{pending[first]}",
            )
    return order


#: The operations Keras records to compute masks: Embedding's and Masking's
#: (``not_equal``, ``any``), and how merge and attention layers combine the
#: masks of their inputs (``logical_or`` chains; Concatenate's ``ones_like``,
#: ``zeros_like``, ``expand_dims``, ``concatenate`` and ``any``; Attention's
#: ``convert_to_tensor``).
MASK_OPS = frozenset({"NotEqual", "Any", "LogicalOr", "LogicalAnd", "ExpandDims", "ZerosLike",
                      "OnesLike", "Concatenate", "ConvertToTensor", "Cast"})  # fmt: skip


class _Masks:
    """The mask operations of the document, checked and resolved.

    The engine derives masks again from the layers, so the operations that
    compute them are dropped, provided they are only that: operations of
    :data:`MASK_OPS` used by nothing but ``mask`` arguments and each other,
    whose ``not_equal`` roots are those ``Embedding(mask_zero=True)`` (on its
    input, against 0) and ``Masking`` (against its ``mask_value``) make. A
    mask of any other origin is an explicit mask, which seqlab refuses.
    """

    def __init__(self, entries: list[_Entry], outputs: Any) -> None:
        self.by_name = {e.name: e for e in entries}
        # The input tensor of each call of each mask-making layer: (ref, value).
        self.makers: list[tuple[Ref, Any]] = []
        for e in entries:
            cfg = e.obj["config"]
            if e.kind == "layer" and e.class_name == "Embedding" and cfg.get("mask_zero") is True:
                self.makers += [(r, 0) for r in self._first_args(e)]
            elif e.kind == "layer" and e.class_name == "Masking":
                self.makers += [(r, cfg.get("mask_value", 0.0)) for r in self._first_args(e)]
        #: The operations used only to compute masks.
        self.mask_only = self._mask_only(entries, outputs)

    @staticmethod
    def _mask_only(entries: list[_Entry], outputs: Any) -> set[str]:
        ops = {e.name for e in entries if e.kind == "op" and e.class_name in MASK_OPS}
        # Who uses each operation: (user, whether as a mask argument).
        uses: dict[str, list[tuple[str, bool]]] = {}
        for e in entries:
            for k, node in enumerate(e.nodes):
                path = f"{e.path}.inbound_nodes.{k}"
                for where, (name, _, _) in _tensors(node, path):
                    as_mask = where.startswith(f"{path}.kwargs.mask")
                    uses.setdefault(name, []).append((e.name, as_mask))
        for value in outputs if isinstance(outputs, list) else []:
            if isinstance(value, list) and value and isinstance(value[0], str):
                uses.setdefault(value[0], []).append(("", False))
            elif isinstance(value, str):
                uses.setdefault(value, []).append(("", False))
        changed = True
        while changed:
            changed = False
            for name in list(ops):
                if any(not (as_mask or user in ops) for user, as_mask in uses.get(name, [])):
                    ops.discard(name)
                    changed = True
        return ops

    @staticmethod
    def _first_args(entry: _Entry) -> list[Ref]:
        refs = []
        for k, node in enumerate(entry.nodes):
            args = node.get("args") if isinstance(node, Mapping) else None
            if isinstance(args, list) and args and _is_tensor(args[0]):
                refs.append(_history(args[0], f"{entry.path}.inbound_nodes.{k}.args.0"))
        return refs

    def check_op(self, entry: _Entry) -> None:
        """Accept ``entry`` if it is one of the mask operations Keras makes, else refuse."""
        if entry.name in self.mask_only and self._root_ok(entry):
            return
        raise SpecError(
            f"Operation {entry.name!r} ({entry.class_name}, module "
            f"{entry.obj.get('module')!r}) is not supported: a Functional model may hold "
            "layers only, apart from the masks Keras computes (Embedding(mask_zero=True), "
            "Masking, and how merge and attention layers combine masks). Use a layer (Add, "
            "Concatenate, ...) instead of an operation on tensors.",
            entry.path,
        )

    def _root_ok(self, entry: _Entry) -> bool:
        """A ``not_equal`` must be Embedding's or Masking's: on the layer's
        input, against 0 or the ``mask_value``."""
        if entry.class_name != "NotEqual":
            return True
        nodes = entry.nodes
        node = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], Mapping) else {}
        args, kwargs = node.get("args"), node.get("kwargs")
        if set(entry.obj["config"]) - {"name"} or kwargs:
            return False
        if not (isinstance(args, list) and len(args) == 2 and _is_tensor(args[0])):
            return False
        if isinstance(args[1], bool):
            return False
        ref = _history(args[0], f"{entry.path}.inbound_nodes.0.args.0")
        # Masking of another dtype than its float input compares the input
        # cast to its compute dtype (Layer.__call__'s autocast): not_equal(cast(x)).
        cast = self.by_name.get(ref[0])
        if cast is not None and cast.kind == "op" and cast.class_name == "Cast":
            ref = self._cast_input(cast) or ref
        return any(source == ref and args[1] == value for source, value in self.makers)

    @staticmethod
    def _cast_input(entry: _Entry) -> Ref | None:
        """The tensor a ``cast`` op of one plain call casts, else None."""
        nodes = entry.nodes
        node = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], Mapping) else {}
        args, kwargs = node.get("args"), node.get("kwargs")
        if set(entry.obj["config"]) - {"name", "dtype"} or kwargs:
            return None
        if not (isinstance(args, list) and len(args) == 1 and _is_tensor(args[0])):
            return None
        return _history(args[0], f"{entry.path}.inbound_nodes.0.args.0")


def _call_form(class_name: str) -> str | None:
    """The registry's ``call_form``; None for a class seqlab does not know."""
    layer = LAYERS.get(class_name)
    return layer.call_form if layer is not None else None


def _call_args(class_name: str) -> set[str] | None:
    """The names of the registry's ``call_args``; None for an unknown class."""
    layer = LAYERS.get(class_name)
    return {a.name for a in layer.call_args} if layer is not None else None


def _convert_call(entry: _Entry, k: int, masks: _Masks) -> dict[str, Any]:
    """One recorded call → the compact entry's ``inputs`` and call options."""
    path = f"{entry.path}.inbound_nodes.{k}"
    node = entry.nodes[k]
    args, kwargs = node.get("args", []), node.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, Mapping):
        raise SpecError("Expected `args`, a list, and `kwargs`, an object.", path)
    out: dict[str, Any] = {}
    form = _call_form(entry.class_name)
    options = _call_args(entry.class_name)

    def one(value: Any, where: str) -> str:
        if not _is_tensor(value):
            raise SpecError(f"Expected a tensor. Received: {value!r}", where)
        return reference(_history(value, where))

    def many(value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            raise SpecError("Expected a list of tensors.", where)
        return [one(v, f"{where}.{i}") for i, v in enumerate(value)]

    # The call's structure decides the compact form; the schema then checks
    # it against the layer's ``call_form`` (a layer seqlab does not know is
    # refused there, by its type).
    keyword = {key: kwargs[key] for key in QVK if key in kwargs and form != "one"}
    # Keras orders a call's tensors positional first, then by sorted keyword:
    # mha(q, v, key=k) is mha(q, v, k), and mha(q, value=v) is mha(q, v).
    order = [*("query", "value", "key")[: len(args)], *sorted(keyword)]
    if keyword and args and order == ["query", "value", "key"][: len(order)]:
        tensors = [*args, *(keyword[key] for key in sorted(keyword))]
        where = [f"{path}.args.{i}" for i in range(len(args))]
        where += [f"{path}.kwargs.{key}" for key in sorted(keyword)]
        out["inputs"] = [one(v, w) for v, w in zip(tensors, where, strict=True)]
    elif keyword and args:
        raise SpecError(
            f"This call's tensors come in the order {', '.join(order)}, which neither the "
            "positional form (query, value, key) nor the keyword form (key, query, value) "
            "gives: pass them all by position or all by keyword.",
            path,
        )
    elif keyword:
        out["inputs"] = {key: one(v, f"{path}.kwargs.{key}") for key, v in keyword.items()}
    elif len(args) == 1 and isinstance(args[0], list) and form != "query_value_key":
        out["inputs"] = many(args[0], f"{path}.args.0")
    elif len(args) == 1:
        # A merge layer called on one tensor: the engine words Keras's refusal.
        out["inputs"] = one(args[0], f"{path}.args.0")
    elif 2 <= len(args) <= 3 and form != "one" and not isinstance(args[0], list):
        out["inputs"] = [one(v, f"{path}.args.{i}") for i, v in enumerate(args)]
    else:
        raise SpecError(
            f"Expected {entry.class_name}'s tensors as Keras calls it "
            f"({'query, value and optional key' if form == 'query_value_key' else 'one argument'})"
            f". Received {len(args)} positional argument(s).",
            f"{path}.args",
        )
    for key, value in kwargs.items():
        where = f"{path}.kwargs.{key}"
        if key in keyword:
            continue
        if key == "training" and not _tensors(value, where):
            # Injected, or the caller's literal: it changes no count or shape
            # (a Dropout called with training=True trains as any Dropout).
            continue
        if key == "mask":
            _check_mask(value, masks, where)
        elif key == "initial_state":
            states = value if isinstance(value, list) else [value]
            out["initial_state"] = [one(v, f"{where}.{i}") for i, v in enumerate(states)]
        elif options is None or key in options:
            if _tensors(value, where):
                raise SpecError(f"`{key}` takes a value, not a tensor.", where)
            out[key] = value
        elif key == "attention_mask" and value is None:
            continue
        else:
            raise SpecError(
                f"The call argument `{key}` of {entry.class_name} is not supported.", where
            )
    return out


def _check_mask(value: Any, masks: _Masks, where: str) -> None:
    """A recorded ``mask`` kwarg: null, or one Embedding/Masking made (dropped:
    the engine derives it again); an explicit mask tensor is refused."""
    if value is None:
        return
    if _is_tensor(value) and _history(value, where)[0] in masks.mask_only:
        return
    raise SpecError(
        "Explicit masks are not supported: masks come from Embedding(mask_zero=True) "
        "and Masking, as Keras propagates them.",
        where,
    )


def _input_spec(entry: _Entry) -> dict[str, Any]:
    cfg = entry.obj["config"]
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if not isinstance(shape, list) or not shape:
        raise SpecError("Expected `batch_shape`, a list.", f"{entry.path}.config.batch_shape")
    for flag in ("sparse", "ragged", "optional"):
        if cfg.get(flag):
            raise SpecError(f"{flag} inputs are not supported.", f"{entry.path}.config.{flag}")
    spec: dict[str, Any] = {"name": entry.name, "shape": shape[1:]}
    if shape[0] is not None:
        spec["batch_size"] = shape[0]
    if cfg.get("dtype") is not None:
        spec["dtype"] = cfg["dtype"]
    return spec


def _triple(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)


def _structure(value: Any, key: str) -> tuple[list[tuple[str, Ref]], bool]:
    """``input_layers``/``output_layers``: the tensors and whether it was a single one."""
    path = f"config.{key}"
    if _triple(value):
        items, single = [value], True
    elif isinstance(value, list) and value and all(_triple(v) for v in value):
        items, single = value, False
    elif isinstance(value, Mapping):
        raise SpecError(f"`{key}` as a dict is not supported: give a list.", path)
    else:
        raise SpecError(f"Expected `{key}`: [name, node, tensor] or a list of them.", path)
    out = []
    for i, (name, node, tensor) in enumerate(items):
        where = path if single else f"{path}.{i}"
        indices = (node, tensor)
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in indices):
            raise SpecError("Node and tensor indices must be integers from 0.", where)
        out.append((where, (name, node, tensor)))
    return out, single


def from_functional_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a serialized Functional model to the compact graph form.

    Raises:
        SpecError: where Keras's ``model_from_json`` would fail, with its
            words, or for what the compact form cannot express (nested
            models, operations on tensors, explicit masks), at the path in
            the document (``config.layers.3.inbound_nodes.0.args.0``).
    """
    config = doc.get("config")
    if not isinstance(config, Mapping):
        raise SpecError("Expected `config`, an object.", "config")
    entries = _entries(config)
    by_name = {e.name: e for e in entries}
    masks = _Masks(entries, config.get("output_layers"))
    order = _replay_order(entries)
    calls = {e.name: 1 if e.kind == "input" else 0 for e in entries}
    for entry, _ in order:
        calls[entry.name] += 1

    if "input_layers" not in config or "output_layers" not in config:
        raise SpecError("Expected `config.input_layers` and `config.output_layers`.", "config")
    inputs, _ = _structure(config["input_layers"], "input_layers")
    declared = []
    for where, (name, node, tensor) in inputs:
        if name not in by_name:
            raise SpecError(f"Internal error: could not find layer {name}.", where)
        if by_name[name].kind != "input" or node or tensor:
            raise SpecError(
                f"{name!r} is not an InputLayer: `input_layers` names the model's inputs.", where
            )
        declared.append(name)

    layers: list[dict[str, Any]] = []
    for entry, k in order:
        if entry.kind == "op":
            masks.check_op(entry)
            continue
        call = _convert_call(entry, k, masks)
        for tensor in _call_refs(call):
            source = by_name[tensor.partition("[")[0]]
            if source.kind == "input" and source.name not in declared:
                raise SpecError(
                    f"{source.name!r} is not connected to `inputs`: it is missing from "
                    "`config.input_layers`.",
                    f"{entry.path}.inbound_nodes.{k}",
                )
            if source.kind == "op":
                raise SpecError(
                    f"{source.name!r} ({source.class_name}) is an operation, not a layer: "
                    "only masks are supported as operations.",
                    f"{entry.path}.inbound_nodes.{k}",
                )
        if k == 0:
            layers.append({**convert_layer(entry.obj, entry.path), **call})
        else:
            layers.append({"call": entry.name, **call})

    outputs, single = _structure(config["output_layers"], "output_layers")
    refs = []
    for where, (name, node, tensor) in outputs:
        if name not in by_name:
            raise SpecError(f"Internal error: could not find layer {name}.", where)
        if node >= calls[name] or by_name[name].kind == "op":
            raise SpecError("list index out of range", where)
        refs.append(reference((name, node, tensor)))

    spec: dict[str, Any] = {}
    if isinstance(config.get("name"), str):
        spec["name"] = config["name"]
    spec["inputs"] = [_input_spec(by_name[name]) for name in declared]
    spec["layers"] = layers
    spec["outputs"] = refs[0] if single else refs
    return spec


def _call_refs(call: Mapping[str, Any]) -> list[str]:
    inputs = call.get("inputs")
    if isinstance(inputs, str):
        refs = [inputs]
    elif isinstance(inputs, Mapping):
        refs = list(inputs.values())
    else:
        refs = list(inputs or [])
    return refs + list(call.get("initial_state", []))


def build_configs(doc: Mapping[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """The shapes each layer of a Functional document says it was built on.

    ``{"input_shape": s}`` gives ``s`` (a shape, or a list of shapes for a
    merge or attention layer); MultiHeadAttention's ``shapes_dict`` gives
    ``[query, value(, key)]``; an RNN called with ``initial_state`` gives its
    ``sequences_shape`` (Keras's ``RNN.build`` ignores the states' shapes).
    Layers without a usable ``build_config`` are left out. Keyed by layer
    name: (the path of the ``build_config``, the shapes).
    """
    config = doc.get("config")
    layers = config.get("layers") if isinstance(config, Mapping) else None
    out: dict[str, tuple[str, list[Any]]] = {}
    for j, obj in enumerate(layers if isinstance(layers, list) else []):
        build = obj.get("build_config") if isinstance(obj, Mapping) else None
        if not isinstance(build, Mapping) or not isinstance(obj.get("name"), str):
            continue
        shapes = build.get("shapes_dict")
        path = f"config.layers.{j}.build_config"
        if isinstance(build.get("input_shape"), list):
            out[obj["name"]] = (f"{path}.input_shape", build["input_shape"])
        elif isinstance(shapes, Mapping) and "query_shape" in shapes:
            keys = ("query_shape", "value_shape", "key_shape")
            out[obj["name"]] = (f"{path}.shapes_dict", [shapes[k] for k in keys if k in shapes])
        elif isinstance(shapes, Mapping) and isinstance(shapes.get("sequences_shape"), list):
            out[obj["name"]] = (f"{path}.shapes_dict.sequences_shape", shapes["sequences_shape"])
    return out


def _nested(shape: Any) -> bool:
    """Whether ``shape`` is a list of shapes rather than one shape."""
    return isinstance(shape, list) and bool(shape) and all(isinstance(s, list) for s in shape)


def _same(built: Any, fed: Any) -> bool:
    """Whether a ``build_config`` shape and the graph's agree, batch aside
    (no weight depends on the batch size)."""
    if _nested(built) or _nested(fed):
        return (
            _nested(built)
            and _nested(fed)
            and len(built) == len(fed)
            and all(_same(b, f) for b, f in zip(built, fed, strict=True))
        )
    return isinstance(fed, list) and list(built[1:]) == list(fed[1:])


def check_build_configs(report: Any, built: Mapping[str, tuple[str, list[Any]]]) -> None:
    """Refuse a document whose ``build_config`` disagrees with its graph.

    Keras builds each layer's weights from its ``build_config`` before wiring
    the graph; where that gives other weights than the shapes the graph feeds
    the layer, Keras's model would count other parameters than the graph
    implies (or fail later). seqlab refuses such a document instead, naming
    the layer and both shapes. A ``build_config`` that gives the same weights
    (a layer first called outside the model, on another batch size or rank)
    is what Keras loads, and passes. ``report`` is the engine's ``GraphReport``.
    """
    for layer in report.layers:
        if layer.name not in built or layer.type == "InputLayer":
            continue
        path, shape = built[layer.name]
        fed = _as_lists(layer.input_shape)
        if _valid_shape(shape) and (_same(shape, fed) or _same_weights(layer.layer, shape, fed)):
            continue
        raise SpecError(
            f"The build_config of layer {layer.name!r} says it was built on input shape "
            f"{_show(shape)}, but the graph feeds it {_show(fed)}, which gives other weights. "
            "Keras would build its weights from the build_config; seqlab refuses the "
            "disagreement.",
            path,
        )


def _same_weights(layer: Any, built: Any, fed: Any) -> bool:
    weights = _weights(layer, built)
    return weights is not None and weights == _weights(layer, fed)


def _weights(layer: Any, shape: Any) -> list[tuple[int, ...]] | None:
    """The weight shapes ``layer`` builds on ``shape``; None if it cannot."""
    as_tuples = [tuple(s) for s in shape] if _nested(shape) else tuple(shape)
    try:
        return [w.shape for w in layer.build_weights(as_tuples)]
    except (ValueError, TypeError, IndexError, KeyError):  # SpecError is a ValueError
        return None


def _valid_shape(shape: Any) -> bool:
    """A shape (a list of ints or nulls) or a list of shapes."""
    if _nested(shape):
        return all(_valid_shape(s) for s in shape)
    return isinstance(shape, list) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape
    )


def _as_lists(shape: Any) -> Any:
    if isinstance(shape, tuple):
        return list(shape)
    if isinstance(shape, list):
        return [_as_lists(s) for s in shape]
    return shape


def _show(shape: Any) -> str:
    if not isinstance(shape, list):
        return repr(shape)[:80]
    if _nested(shape):
        return "[" + ", ".join(_show(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else repr(d)[:20] for d in shape) + ")"


#: Keras's duplicate-name error, naming the name.
_DUPLICATE = re.compile(r'\AThe name "(.+)" is used \d+ times in the model\.')


def with_session_names(spec: dict[str, Any], analyze: Any) -> tuple[dict[str, Any], Any]:
    """Analyze a spec read from ``to_json``, keeping Keras's session names.

    The compact form names mask operations afresh (``concatenate`` for the
    mask Concatenate computes), while the document names every layer
    explicitly; where a layer's stored name is the automatic one that
    operation would have taken (a ``concatenate`` layer, its mask operation
    ``concatenate_1`` in the session that wrote the document), the program
    with explicit names meets a duplicate name that Keras's session did not.
    Such layers are then left to the automatic names, and the result kept
    only if every layer ends up with its stored name.

    Returns the spec and ``analyze``'s report of it. Raises ``SpecError``.
    """
    try:
        return spec, analyze(spec)
    except SpecError as error:
        match = _DUPLICATE.match(error.message)
        if match is None:
            raise
        prefix = re.sub(r"_\d+\Z", "", match.group(1))
        auto = re.compile(rf"\A{re.escape(prefix)}(_\d+)?\Z")
        stored = [e["name"] for e in spec["layers"] if "name" in e and "type" in e]
        renamed = {
            **spec,
            "layers": [
                {k: v for k, v in e.items() if k != "name"}
                if "type" in e
                and auto.match(str(e.get("name", "")))
                and LAYERS[e["type"]].name_prefix() == prefix
                else e
                for e in spec["layers"]
            ],
        }
        try:
            report = analyze(renamed)
        except SpecError:
            raise error from None
        if not set(stored) <= {layer.name for layer in report.layers}:
            raise error from None
        return renamed, report
