"""Walk a graph (Functional) model spec the way Keras builds it, without Keras.

``analyze_graph(spec)`` runs the program a compact graph spec stands for
(``inputs…``, then for each entry ``layer = Cls(**args)`` and its call, or a
call of an earlier layer) as a fresh Keras session would: it names the
inputs, layers and mask ops, checks every call where Keras raises, builds
each layer on its first call (a shared layer holds one set of weights),
and then orders the model's operations as ``keras.Model(inputs, outputs)``
does (``ops/function.py``, ``map_graph``).

The request form is documented in the README (``"inputs"``, ``"layers"``,
``"outputs"``); the reference notes are ``keras-functional.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from .engine import LayerReport
from .engine import ModelReport
from .engine import Namer
from .engine import configure_layer
from .engine import report_layer
from .engine import shape_to_json
from .errors import SpecError
from .errors import duplicate_name
from .registry import COMPUTE_DTYPES
from .registry import Layer
from .registry import Output
from .registry import Shape
from .registry import format_shape
from .registry import to_snake_case

#: Keys a ``{"call": ...}`` entry may hold besides the layer's call_args.
_CALL_KEYS = frozenset({"call", "inputs", "initial_state"})
#: ``"lstm[0][1]"``: a layer's call number and output index.
_REF = re.compile(r"^(.*)\[(\d+)\]\[(\d+)\]$")
_MISSING: Any = object()


class InputLayer(Layer):
    """The layer ``keras.Input`` creates: no weights, its shape is the batch shape."""

    type = "InputLayer"

    def __init__(self, shape: Shape, dtype: str, name: str) -> None:
        super().__init__({"dtype": None, "trainable": True}, name)
        self.shape = shape
        self.input_dtype = dtype


class _Op:
    """One operation of the graph: an input, a layer object, or a mask op."""

    __slots__ = ("kind", "layer", "name", "nodes", "path", "report", "type")

    def __init__(self, kind: str, name: str, type_: str, path: str, layer: Layer | None) -> None:
        self.kind = kind  # "input" | "layer" | "op"
        self.name = name
        self.type = type_
        self.path = path  # the request field that created it
        self.layer = layer
        self.nodes: list[_Node] = []
        #: For a layer: its report, from its first call.
        self.report: LayerReport | None = None


class _Node:
    """One call of an operation: Keras's ``Node``."""

    __slots__ = ("index", "inputs", "op", "outputs", "shapes")

    def __init__(self, op: _Op, inputs: list[_Tensor], shapes: Any) -> None:
        self.op = op
        self.index = len(op.nodes)
        #: ``node.input_tensors``: positional tensors, then keyword ones by
        #: sorted keyword (masks included).
        self.inputs = inputs
        #: What the call was given (one shape or a list), for the reports.
        self.shapes = shapes
        self.outputs: list[_Tensor] = []
        op.nodes.append(self)


class _Tensor:
    """A symbolic tensor: its producer, shape, dtype and Keras mask."""

    __slots__ = ("dtype", "index", "mask", "node", "shape")

    def __init__(self, node: _Node, index: int, shape: Shape, dtype: str) -> None:
        self.node = node
        self.index = index
        self.shape = shape
        self.dtype = dtype
        self.mask: _Tensor | None = None

    @property
    def ref(self) -> str:
        """Keras's ``name[node_index][tensor_index]``."""
        return f"{self.node.op.name}[{self.node.index}][{self.index}]"


#: A summary row: name, class name, output shape, params, connected to.
Row = tuple[str, str, Output, int, list[str]]


@dataclass(slots=True)
class GraphReport(ModelReport):
    """A Functional model: ``layers`` in Keras's ``model.layers`` order
    (InputLayers included, a shared layer once), its inputs and outputs,
    and the summary's rows in ``model.operations`` order."""

    inputs: list[tuple[str, Shape]] = field(default_factory=list)
    outputs: list[tuple[str, Output]] = field(default_factory=list)
    single_input: bool = True
    single_output: bool = True
    rows: list[Row] = field(default_factory=list)
    #: ``single_input``: the model has one input; ``single_output``: its
    #: outputs were given as one reference, not a list (``keras.Model(x, y)``
    #: vs ``keras.Model(x, [y])``: to_json's ``output_layers`` and what
    #: predict returns follow it).
    #: Keras's check in ``summary_utils.py``: the 3-column layout.
    sequential_like: bool = False
    #: Each input's dtype, in ``inputs`` order.
    input_dtypes: list[str] = field(default_factory=list)
    #: Every call of a layer in the model, with the shapes of that call
    #: (what each call keeps for training), in ``model.layers`` order.
    calls: list[LayerReport] = field(default_factory=list, repr=False)

    @property
    def output_shape(self) -> Output:
        """Keras's ``model.output_shape``: one shape when the model has one
        output (given alone or in a list), else the list (``functional.py``)."""
        if len(self.outputs) == 1:
            return self.outputs[0][1]
        return [shape for _, shape in self.outputs]  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """Today's keys, plus ``inputs``, ``outputs`` and each layer's ``connected_to``."""
        out = ModelReport.to_dict(self)
        for entry, layer in zip(out["layers"], self.layers, strict=True):
            entry["connected_to"] = layer.connected_to.copy()
        out["inputs"] = [{"name": n, "shape": list(s)} for n, s in self.inputs]
        out["outputs"] = [{"name": n, "shape": shape_to_json(s)} for n, s in self.outputs]
        return out


def _keras_shape(shape: Shape) -> str:
    """A shape as Python prints a tuple, as Keras's messages quote it."""
    return str(tuple(shape))


class _Builder:
    """The state of one graph as its program runs."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.namer = Namer()
        self.by_name: dict[str, _Op] = {}
        self.inputs: list[_Tensor] = []
        #: Failures Keras meets only on the model's first call (fit or
        #: predict): (node, path, message), raised if the node is in the model.
        self.deferred: list[tuple[_Node, str, str]] = []
        #: Every operation, in the order the program made them.
        self.ops: list[_Op] = []

    def release(self) -> None:
        """Unlink the operations, nodes and tensors (an operation holds its
        nodes, each node its op; a node its outputs, each its node), so that
        they are freed as soon as the analysis ends rather than by the
        cyclic garbage collector, which would walk them all later."""
        for op in self.ops:
            for node in op.nodes:
                node.outputs = []
            op.nodes = []

    # -- the program -------------------------------------------------------

    def add_inputs(self) -> None:
        for k, item in enumerate(self.spec["inputs"]):
            name = item.get("name") or self.namer.auto("input_layer")
            shape: Shape = (item.get("batch_size"), *item["shape"])
            dtype = item.get("dtype") or "float32"
            layer = InputLayer(shape, dtype, name)
            op = _Op("input", name, "InputLayer", f"inputs.{k}.name", layer)
            self.ops.append(op)
            node = _Node(op, [], shape)
            node.outputs.append(_Tensor(node, 0, shape, dtype))
            self.by_name[name] = op
            self.inputs.append(node.outputs[0])

    def resolve(self, ref: Any, path: str, last: Any = None) -> _Tensor:
        """The tensor a reference names (``"x"``, ``"x[n][t]"``); ``path``
        names the reference in errors, followed by ``last`` when given
        (made only for an error)."""
        if ref.__class__ is str and not ref.endswith("]"):
            # The common case, a bare name: its first call's first output.
            op = self.by_name.get(ref)
            if op is not None and op.nodes and op.nodes[0].outputs:
                return op.nodes[0].outputs[0]
        if last is not None:
            path = f"{path}.{last}"
        if not isinstance(ref, str):
            raise SpecError(f"A tensor reference is a string; got {ref!r}.", path)
        match = _REF.match(ref)
        name, node_index, tensor_index = (
            (match[1], int(match[2]), int(match[3])) if match else (ref, 0, 0)
        )
        op = self.by_name.get(name)
        if op is None:
            raise SpecError(
                f"Unknown layer: {name} (the reference {ref!r} names no input or earlier layer).",
                path,
            )
        if node_index >= len(op.nodes):
            raise SpecError(
                f'Layer "{name}" has been called {len(op.nodes)} time(s) so far: '
                f"{ref!r} names call {node_index} (calls count from 0).",
                path,
            )
        outputs = op.nodes[node_index].outputs
        if tensor_index >= len(outputs):
            raise SpecError(
                f'Call {node_index} of layer "{name}" has {len(outputs)} output(s): '
                f"{ref!r} names output {tensor_index} (outputs count from 0).",
                path,
            )
        return outputs[tensor_index]

    def call_tensors(
        self, layer: Layer, entry: Mapping[str, Any], path: str, previous: _Tensor | None
    ) -> tuple[Any, list[_Tensor], list[_Tensor]]:
        """The call's tensors: (what the layer gets: one tensor or a list in
        call order, the flat list in call order, ``node.input_tensors`` order)."""
        refs = entry.get("inputs", _MISSING)
        ipath = f"{path}.inputs"
        if refs is _MISSING:
            if previous is None:
                raise SpecError(
                    "The first layer of a model with several inputs must name its `inputs`.",
                    ipath,
                )
            refs = None
        form = layer.call_form
        if refs.__class__ is dict or (
            refs.__class__ not in (str, list, type(None)) and isinstance(refs, Mapping)
        ):
            if form != "query_value_key":
                raise SpecError(
                    f"{layer.type} is called on one tensor or a list; only "
                    "MultiHeadAttention takes {query, value, key} by keyword.",
                    ipath,
                )
            unknown = set(refs) - {"query", "value", "key"}
            if unknown:
                raise SpecError(
                    f"TypeError: got an unexpected keyword argument {sorted(unknown)[0]!r}. "
                    "A keyword call names `query`, `value` and optionally `key`.",
                    ipath,
                )
            for required in ("query", "value"):
                if required not in refs:
                    raise SpecError(
                        f"missing a required argument: {required!r}. A "
                        f"{layer.type} call takes a query and a value (and optionally a key).",
                        ipath,
                    )
            named = {k: self.resolve(v, ipath, k) for k, v in refs.items()}
            flat = [named[k] for k in ("query", "value", "key") if k in named]
            return flat, flat, [named[k] for k in sorted(named)]
        if refs is None:
            tensor = previous
        elif isinstance(refs, str):
            tensor = self.resolve(refs, ipath)
        else:
            if not isinstance(refs, list) or not refs:
                raise SpecError("`inputs` is a reference or a non-empty list of them.", ipath)
            if form == "one":
                raise SpecError(
                    f'Layer "{layer.name}" ({layer.type}) is called on one tensor; '
                    f"got a list of {len(refs)}.",
                    ipath,
                )
            tensors = [self.resolve(r, ipath, j) for j, r in enumerate(refs)]
            if form == "query_value_key" and len(tensors) == 1:
                raise SpecError(
                    "missing a required argument: 'value'. "
                    f'Layer "{layer.name}" ({layer.type}) is called on a query and a value '
                    "(and optionally a key).",
                    ipath,
                )
            if form == "query_value_key" and len(tensors) > 3:
                # A fourth positional tensor would be Keras's `query_mask`.
                raise SpecError(
                    f'Layer "{layer.name}" ({layer.type}) takes at most 3 tensors '
                    f"(query, value, key); got {len(tensors)}.",
                    ipath,
                )
            return tensors, tensors, tensors
        assert tensor is not None
        if form == "query_value_key":
            raise SpecError(
                "missing a required argument: 'value'. "
                f'Layer "{layer.name}" ({layer.type}) is called on a query and a value '
                "(and optionally a key): give a list or an object of references.",
                ipath,
            )
        return tensor, [tensor], [tensor]

    def run_entry(self, i: int, entry: Mapping[str, Any], previous: _Tensor | None) -> _Node:
        path = f"layers.{i}"
        if "call" in entry:
            target = entry["call"]
            op = self.by_name.get(target) if isinstance(target, str) else None
            if op is None or op.kind != "layer":
                raise SpecError(
                    f"Unknown layer: {target} (a `call` entry names an earlier layer).",
                    f"{path}.call",
                )
            layer = op.layer
            assert layer is not None
            allowed = _CALL_KEYS | {a.name for a in layer.call_args}
            for key in entry:
                if key not in allowed:
                    raise SpecError(
                        "Unknown field: a `call` entry takes only `call`, `inputs`, "
                        "`initial_state` and the layer's call options.",
                        f"{path}.{key}",
                    )
        else:
            layer = configure_layer(entry, self.namer, path)
            if layer.name in self.by_name:
                raise duplicate_name(layer.name, f"{path}.name")
            op = _Op("layer", layer.name, layer.type, f"{path}.name", layer)
            self.ops.append(op)
            self.by_name[layer.name] = op
        form = layer.call_form
        refs = entry.get("inputs", _MISSING)
        # The common call, one tensor by name or the previous entry's output,
        # skips call_tensors' checks (it would take the same branch).
        if form == "one" and refs.__class__ is str:
            x = self.resolve(refs, path, "inputs")
            given: Any = x
            flat = ordered = [x]
        elif form == "one" and refs is _MISSING and previous is not None:
            x = given = previous
            flat = ordered = [x]
        else:
            given, flat, ordered = self.call_tensors(layer, entry, path, previous)
            x = flat[0]
        call_args = layer.call_args
        options = {a.name: entry.get(a.name, a.default) for a in call_args} if call_args else {}
        states = self.initial_state(layer, entry, path, x) if "initial_state" in entry else None
        shapes: Any = given.shape if given.__class__ is _Tensor else [t.shape for t in given]

        # Layer.__call__ casts float inputs of another dtype first (named ops;
        # only Masking's is kept, under its mask). Then the build.
        compute = COMPUTE_DTYPES.get(layer.config.get("dtype"), "float32")
        cast = (
            self.autocast(layer, flat, states, compute, path)
            # One input of the layer's dtype (the common call): nothing to cast.
            if layer.autocast and (states is not None or len(flat) > 1 or x.dtype != compute)
            else None
        )
        first = not op.nodes
        if first:
            for attr, prefix in layer.build_names:
                setattr(layer, attr, self.namer.auto(prefix))
        # An activation that cannot run: the layer builds, its call fails.
        found: list[SpecError] = []
        try:
            if not first:
                self.check_built(op, layer, shapes, path)
            output = layer.call_output(shapes, options)
            if first:
                op.report = report_layer(layer, shapes, output, found)
        except SpecError as error:
            raise error.at(path) from None

        # Keras records the input's mask as a `mask` keyword only for a call
        # of one tensor, no keywords, of the layer's own dtype. The outputs
        # have the layer's compute dtype, a wrapper's too (not its layer's):
        # TimeDistributed(Dense(2, dtype="float16")) gives float32 tensors.
        tensors = list(ordered)
        if states is not None:
            tensors += states
        elif layer.call_mask and x.mask is not None and x.dtype == compute:
            tensors.append(x.mask)
        node = _Node(op, tensors, shapes)
        if isinstance(output, list):
            node.outputs = [_Tensor(node, t, s, compute) for t, s in enumerate(output)]
        else:
            node.outputs = [_Tensor(node, 0, output, compute)]

        for error in found:
            moved = error.at(path)
            self.deferred.append((node, moved.path, moved.message))
        failure = layer.call_failure(shapes, options)
        if failure is None and x.mask is not None and layer.call_mask:
            # When the model runs, the mask reaches the call whatever the dtypes.
            failure = layer.mask_failure(x.shape, x.mask.shape)
        if failure is not None:
            self.deferred.append(
                (
                    node,
                    f"{path}.inputs",
                    f"{failure}. Keras builds the model, but it fails on its first call "
                    f'(fit or predict): layer "{layer.name}" ({layer.type}) on inputs '
                    f"{format_shape_any(shapes)}.",
                )
            )
        if not first:
            self.check_weights(op, layer, shapes, node, path)
        if states is not None:
            self.check_states(layer, shapes, states, node, path)

        # The output masks (Layer._set_mask_metadata with compute_mask).
        if form != "one":
            if layer.supports_masking:
                mask = self.combine_masks(layer, flat, path)
                if mask is not None:
                    node.outputs[0].mask = mask
        else:
            mask_ops = layer.mask_ops()
            if mask_ops:
                node.outputs[0].mask = self.make_mask(mask_ops, cast or x, path)
            elif x.mask is not None and layer.supports_masking:
                for t in node.outputs[: layer.mask_outputs()]:
                    t.mask = x.mask
        return node

    def add_op(self, kind: str, inputs: list[_Tensor], shape: Shape, path: str) -> _Tensor:
        """A non-layer op Keras creates on symbolic tensors (a mask op), named
        when it is created; returns its output."""
        op = _Op("op", self.namer.auto(_snake(kind)), kind, path, None)
        self.ops.append(op)
        node = _Node(op, inputs, [t.shape for t in inputs])
        node.outputs.append(_Tensor(node, 0, shape, "bool"))
        return node.outputs[0]

    def autocast(
        self,
        layer: Layer,
        flat: list[_Tensor],
        states: list[_Tensor] | None,
        compute: str,
        path: str,
    ) -> _Tensor | None:
        """Keras's ``convert_input``: each float input of a dtype other than
        the layer's compute dtype is cast by an ``ops.cast``, which takes the
        next ``cast`` name. Returns the first input's cast as an op when the
        layer computes a mask from it (Masking: ``not_equal(cast(x))``)."""
        if not layer.autocast:
            return None
        first: _Tensor | None = None
        for j, t in enumerate(flat if states is None else [*flat, *states]):
            if t.dtype == compute or "float" not in t.dtype:
                continue
            if j == 0 and layer.mask_ops():
                first = self.add_op("Cast", [t], t.shape, path)
                first.dtype = compute
            else:
                self.namer.auto("cast")
        return first

    def make_mask(self, kinds: tuple[str, ...], x: _Tensor, path: str) -> _Tensor:
        """Create the mask ops (named now, as Keras names them when the layer
        is called) on the layer's input; the last one's output is the mask."""
        tensor = x
        for kind in kinds:
            shape = tensor.shape if kind == "NotEqual" else tensor.shape[:-1]
            tensor = self.add_op(kind, [tensor], shape, path)
        return tensor

    def combine_masks(self, layer: Layer, inputs: list[_Tensor], path: str) -> _Tensor | None:
        """The output mask of a layer called on several tensors, with the ops
        its ``compute_mask`` creates (``Layer.mask_combine``)."""
        masks = [t.mask for t in inputs]
        rule = layer.mask_combine
        if rule == "query":
            return masks[0]
        if rule == "convert":
            m = masks[0]
            return None if m is None else self.add_op("ConvertToTensor", [m], m.shape, path)
        if rule == "or":
            if any(m is None for m in masks):
                return None
            out = masks[0]
            for m in masks[1:]:
                assert out is not None and m is not None
                out = self.add_op("LogicalOr", [out, m], _broadcast(out.shape, m.shape), path)
            return out
        if rule == "concatenate":
            if all(m is None for m in masks):
                return None
            parts: list[_Tensor] = []
            for x, m in zip(inputs, masks, strict=True):
                if m is None:
                    parts.append(self.add_op("OnesLike", [x], x.shape, path))
                elif len(m.shape) < len(x.shape):
                    e = self.add_op("ExpandDims", [m], (*m.shape, 1), path)
                    z = self.add_op("ZerosLike", [x], x.shape, path)
                    both = _broadcast(e.shape, z.shape)
                    parts.append(self.add_op("LogicalOr", [e, z], both, path))
                else:
                    parts.append(m)
            first = parts[0].shape
            axis = layer.config["axis"] % len(first)
            sizes = [p.shape[axis] for p in parts]
            total = None if None in sizes else sum(sizes)  # type: ignore[arg-type]
            joined = self.add_op(
                "Concatenate", parts, (*first[:axis], total, *first[axis + 1 :]), path
            )
            return self.add_op("Any", [joined], joined.shape[:-1], path)
        return None

    @staticmethod
    def compute_dtype(layer: Layer) -> str:
        return COMPUTE_DTYPES.get(layer.config.get("dtype"), "float32")

    def initial_state(
        self, layer: Layer, entry: Mapping[str, Any], path: str, x: _Tensor
    ) -> list[_Tensor] | None:
        refs = entry.get("initial_state")
        if refs is None:
            return None
        spath = f"{path}.initial_state"
        if layer.initial_state_shapes(x.shape) is None:
            raise SpecError(
                f"TypeError: {layer.type}.call() got an unexpected keyword argument "
                "'initial_state'",
                spath,
            )
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list):
            raise SpecError("`initial_state` is a list of references.", spath)
        return [self.resolve(r, spath, j) for j, r in enumerate(refs)]

    def check_built(self, op: _Op, layer: Layer, shape: Any, path: str) -> None:
        """A later call of a built layer: Keras's ``InputSpec`` after build."""
        if not isinstance(shape, tuple):
            return
        assert op.report is not None
        layer.check_input(shape)
        ndim, axes = layer.built_input_spec(op.report.input_shape)
        prefix = f"Input 0 with name 'None' of layer '{layer.name}' is incompatible with the layer:"
        if ndim is not None and len(shape) != ndim:
            raise SpecError(
                f"{prefix} expected ndim={ndim}, found ndim={len(shape)}. "
                f"Full shape received: {_keras_shape(shape)}"
            )
        for axis, value in axes.items():
            got = shape[axis] if -len(shape) <= axis < len(shape) else None
            if got is not None and got != value:
                raise SpecError(
                    f"{prefix} expected axis {axis} of input shape to have value "
                    f"{value}, but received input with shape {_keras_shape(shape)}"
                )

    def check_weights(self, op: _Op, layer: Layer, shape: Any, node: _Node, path: str) -> None:
        """A later call whose input would need other weights: Keras builds the
        graph, and the call fails when the model first runs."""
        assert op.report is not None
        try:
            wanted = [w.shape for w in layer.variables(shape)]
        except SpecError:
            wanted = None
        built = [w.shape for w in op.report.weights]
        if wanted == built:
            return
        self.deferred.append(
            (
                node,
                f"{path}.inputs",
                f'Layer "{layer.name}" ({layer.type}) was built on its first call, with '
                f"input shape {format_shape_any(op.report.input_shape)} and weights "
                f"{built}; this call's input {format_shape_any(shape)} would need "
                f"{wanted}. Keras builds the model, but it fails on its first call "
                "(fit or predict): a shared layer's calls must fit its weights.",
            )
        )

    def check_states(
        self, layer: Layer, shape: Shape, states: list[_Tensor], node: _Node, path: str
    ) -> None:
        """Keras builds any count and size of initial states; the model fails
        on its first call unless they fit the layer (checked with predict)."""
        needed = layer.initial_state_shapes(shape) or []
        got = [t.shape[1:] for t in states]
        n = len(needed)
        spath = f"{path}.initial_state"
        reason = None
        # GRU uses initial_state[0] alone (gru.py inner_loop): more are ignored.
        ignores_extra = layer.type == "GRU"
        if len(got) < n:
            reason = "IndexError: list index out of range"
        elif len(got) > n and not ignores_extra:
            reason = f"Too few leaves for PyTreeSpec; expected: {len(got)}, got: {n}."
        elif layer.type == "Bidirectional":
            half = len(got) // 2
            if half != n // 2:
                reason = "IndexError: list index out of range"
        if reason is None:
            for j, (g, w) in enumerate(zip(got, needed, strict=False)):
                if g != w:
                    spath = f"{spath}.{j}"
                    reason = (
                        f"Dimensions must be equal: state {j} has shape "
                        f"{format_shape((None, *g))}, the layer's is {format_shape((None, *w))}"
                    )
                    break
        if reason is None:
            return
        want = ", ".join(format_shape(s) for s in needed)
        self.deferred.append(
            (
                node,
                spath,
                f"{reason}. Keras builds the model, but it fails on its first call "
                f'(fit or predict): layer "{layer.name}" ({layer.type}) takes '
                f"initial_state as {n} tensor(s) of shape {want} (batch first); "
                f"received {len(got)}: " + ", ".join(format_shape(t.shape) for t in states) + ".",
            )
        )

    def run(self) -> tuple[Any, list[_Tensor]]:
        """Run the entries; return the model's outputs (a tensor or a list)."""
        self.add_inputs()
        previous = self.inputs[0] if len(self.inputs) == 1 else None
        node = None
        for i, entry in enumerate(self.spec["layers"]):
            node = self.run_entry(i, entry, previous)
            previous = node.outputs[0]
        assert node is not None
        refs = self.spec.get("outputs", _MISSING)
        if refs is _MISSING or refs is None:
            outs = node.outputs
            return (outs[0] if len(outs) == 1 else list(outs)), list(outs)
        if isinstance(refs, str):
            t = self.resolve(refs, "outputs")
            return t, [t]
        if not isinstance(refs, list) or not refs:
            raise SpecError(
                "`outputs` argument cannot be empty: give a reference or a list of them.",
                "outputs",
            )
        outs = [self.resolve(r, "outputs", k) for k, r in enumerate(refs)]
        return outs, outs


@functools.cache
def _snake(kind: str) -> str:
    """An op's name prefix: ``LogicalOr`` → ``logical_or``."""
    return to_snake_case(kind)


def _broadcast(a: Shape, b: Shape) -> Shape:
    """``keras.src.ops.operation_utils.broadcast_shapes``."""
    a_, b_ = list(a), list(b)
    if len(a_) > len(b_):
        b_ = [1] * (len(a_) - len(b_)) + b_
    if len(a_) < len(b_):
        a_ = [1] * (len(b_) - len(a_)) + a_
    out: list[int | None] = []
    for x, y in zip(a_, b_, strict=True):
        if x == 1:
            out.append(y)
        elif x is None:
            out.append(None if y == 1 else y)
        elif y in (1, None, x):
            out.append(x)
        else:
            raise SpecError(
                f"Cannot broadcast shape, the failure dim has value {x}, which cannot be "
                f"broadcasted to {y}. Input shapes are: {list(a)} and {list(b)}."
            )
    return tuple(out)


def format_shape_any(shape: Any) -> str:
    """One shape or a list of shapes, as Keras prints them."""
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    return format_shape(shape)


def _map_graph(
    inputs: list[_Tensor], outputs: list[_Tensor]
) -> tuple[list[_Op], dict[_Node, int], dict[_Op, int]]:
    """Keras's ``map_graph``: the operations in ``model.operations`` order,
    and each node's and operation's depth."""
    finished: set[_Node] = set()
    order: list[_Node] = []  # post-order: inputs to outputs
    indices: dict[_Op, int] = {}
    for output in outputs:
        if output.node in finished:
            continue
        # An iterative DFS (graphs may be 512 layers deep): the nodes on the
        # path, and for each the next of its inputs to visit.
        path = [output.node]
        nexts = [0]
        if output.node.op not in indices:
            indices[output.node.op] = len(indices)
        while path:
            node = path[-1]
            k = nexts[-1]
            if k < len(node.inputs):
                nexts[-1] = k + 1
                child = node.inputs[k].node
                if child in finished:
                    continue
                if child.op not in indices:
                    indices[child.op] = len(indices)
                path.append(child)
                nexts.append(0)
            else:
                path.pop()
                nexts.pop()
                finished.add(node)
                order.append(node)
    node_depth: dict[_Node, int] = {}
    op_depth: dict[_Op, int] = {}
    for node in reversed(order):
        op = node.op
        depth = node_depth.get(node, 0)
        above = op_depth.get(op, 0)
        if above > depth:
            depth = above
        op_depth[op] = depth
        node_depth[node] = depth
        depth += 1
        for t in node.inputs:
            parent = t.node
            # `finished` holds the nodes of `order`: the graph's.
            if parent in finished and node_depth.get(parent, 0) < depth:
                node_depth[parent] = depth
    for x in inputs:  # unused inputs
        if x.node.op not in op_depth:
            op_depth[x.node.op] = 0
            indices[x.node.op] = -1
            node_depth[x.node] = 0
    by_depth: dict[int, list[_Op]] = {}
    for op, depth in op_depth.items():
        by_depth.setdefault(depth, []).append(op)
    ops: list[_Op] = []
    for depth in sorted(by_depth, reverse=True):
        group = by_depth[depth]
        if len(group) > 1:
            group.sort(key=indices.__getitem__)
        ops += group
    return ops, node_depth, op_depth


def _sequential_like(node_depth: dict[_Node, int]) -> bool:
    """``summary_utils.py``: one node per depth, each with at most one input
    tensor, and no layer called twice in the model."""
    count = len(node_depth)
    if len(set(node_depth.values())) < count:
        return False  # two nodes at one depth
    for node in node_depth:
        if len(node.inputs) > 1:
            return False
    return len({node.op for node in node_depth}) == count


def analyze_graph(spec: Mapping[str, Any], *, strict: bool = True) -> GraphReport:
    """Analyze a graph (Functional) model spec as Keras 3 would build it.

    Args:
        spec: ``{"inputs": [...], "layers": [...], "outputs"?: ..., "name"?: str}``
            (the compact graph form), validated by the schema.
        strict: raise the first failure of the model's first call (Keras
            builds and counts the model, then fails when it runs); with
            False, report them in ``first_call_failures``.

    Returns:
        The report: layers in ``model.layers`` order, rows, inputs, outputs.

    Raises:
        SpecError: where Keras would refuse the model (or, ``strict``, fail on
            its first call); its ``path`` names the entry (``layers.2``), the
            input of a call (``layers.2.inputs.1``), ``initial_state`` or
            ``outputs.0``.

    >>> r = analyze_graph({"inputs": [{"shape": [7, 3]}], "layers": [
    ...     {"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}]})
    >>> [(x.name, x.output_shape, x.params) for x in r.layers]
    [('input_layer', (None, 7, 3), 0), ('lstm', (None, 5), 180), ('dense', (None, 1), 6)]
    """
    builder = _Builder(spec)
    try:
        return _analyze(builder, strict)
    finally:
        builder.release()


def _analyze(builder: _Builder, strict: bool) -> GraphReport:
    """``analyze_graph`` with its builder (which it then releases)."""
    spec = builder.spec
    structure, outputs = builder.run()
    inputs = builder.inputs
    ops, node_depth, _ = _map_graph(inputs, outputs)
    # Names must be unique among the model's operations (map_graph).
    names = [op.name for op in ops]
    if len(set(names)) < len(names):
        seen: set[str] = set()
        for op in ops:
            if op.name in seen:
                raise SpecError(
                    f'The name "{op.name}" is used {names.count(op.name)} times in the model. '
                    "All operation names should be unique.",
                    op.path,
                )
            seen.add(op.name)
    in_model = node_depth  # the model's nodes (a dict: membership only)
    failures = [
        SpecError(message, path) for node, path, message in builder.deferred if node in in_model
    ]
    if failures and strict:
        raise failures[0]

    reports: list[LayerReport] = []
    calls: list[LayerReport] = []
    rows: list[Row] = []
    for op in ops:
        kind = op.kind
        if kind == "input":
            shape = op.nodes[0].outputs[0].shape
            assert op.layer is not None
            report = LayerReport(op.name, "InputLayer", shape, [], op.layer, shape)
            reports.append(report)
            rows.append((op.name, "InputLayer", shape, 0, []))
            continue
        # An operation of the model with one node: that node is in the model.
        nodes = op.nodes if len(op.nodes) == 1 else [n for n in op.nodes if n in in_model]
        connected = [
            f"{t.node.op.name}[{t.node.index}][{t.index}]" for n in nodes for t in n.inputs
        ]
        if kind == "op":
            shape = op.nodes[0].outputs[0].shape
            rows.append((op.name, op.type, shape, 0, connected))
        else:
            report = op.report
            assert report is not None
            outs = op.nodes[-1].outputs  # the summary shows the last call's shapes
            report.output_shape = outs[0].shape if len(outs) == 1 else [t.shape for t in outs]
            report.connected_to = connected
            reports.append(report)
            rows.append((op.name, op.type, report.output_shape, report.params, connected))
            if len(op.nodes) == 1:
                calls.append(report)  # its one call: the report's own shapes
                continue
            shared = []
            for n in nodes:
                o = [t.shape for t in n.outputs]
                call = report.for_call(n.shapes, o[0] if len(o) == 1 else o)
                # Each call's own tensors (the layer's report lists every call's).
                call.connected_to = [t.ref for t in n.inputs]
                shared.append(call)
            calls += shared
            # A shared layer's multiply-accumulates: every call of it in the model.
            macs = [c.macs for c in shared]
            report._macs = None if None in macs else sum(macs)  # type: ignore[arg-type]
    input_shapes = [x.shape for x in inputs]
    single_input = len(inputs) == 1
    single_output = not isinstance(structure, list)
    return GraphReport(
        name=spec.get("name") or "functional",
        input_shape=input_shapes[0] if single_input else input_shapes,  # type: ignore[arg-type]
        layers=reports,
        first_call_failures=failures,
        inputs=[(x.node.op.name, x.shape) for x in inputs],
        outputs=[(t.node.op.name, t.shape) for t in outputs],
        single_input=single_input,
        single_output=single_output,
        rows=rows,
        sequential_like=_sequential_like(node_depth),
        input_dtypes=[x.dtype for x in inputs],
        calls=calls,
    )
