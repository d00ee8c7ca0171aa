"""A deterministic random corpus of Sequential model specs.

``generate(n, seed)`` returns ``n`` compact specs (the ``POST /params`` form)
of 1-5 layers. Layer types come from ``seqlab.LAYERS`` and argument values
from each layer's :class:`~seqlab.argspec.Arg` list (kind, bounds, choices,
nullable), so a newly registered layer is in the corpus without any change
here. A small table of sensible values for well-known argument names
(``units``, ``kernel_size``, ``target_shape`` ...) and a few cross-argument
fixes (``fit``) keep most stacks plausible; the current shape is tracked
with the engine's shape rules (``analyze`` of the stack so far), which is
only guidance: whether a spec is valid is decided by Keras in
``test_keras_oracle.py``.

About 30 % of the specs are broken on purpose (``BREAKERS``), in the ways
Keras refuses models at build time: an RNN on 2-D input, a layer after
``return_state``, a window longer than the sequence, a Reshape that does
not divide, groups that do not divide the channels, a stateful RNN without
a batch size, duplicate names, an inconsistent ``backward_layer`` ...

Spec ``i`` is built around the focus type
``SEQUENTIAL_TYPES[i % len(SEQUENTIAL_TYPES)]`` so that every type appears
often, valid and invalid. The layers called on several tensors (merging,
attention) belong to Functional models: the graph oracle covers them.
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seqlab import LAYERS
from seqlab import SpecError
from seqlab import analyze
from seqlab.args import DTYPE_POLICIES
from seqlab.argspec import Arg
from seqlab.argspec import Kind

#: The registered types the corpus draws: those a Sequential model can hold
#: (called on one tensor, ``call_form == "one"``). ReLU (issue 11) is left
#: out for now: a new type reshuffles every spec of the seeded corpus, and
#: the reshuffled corpus meets five disagreements of older layers
#: (TimeDistributed's rank check before Conv1D's groups and ConvLSTM1D's
#: kernel, a stateful RNN's batch check before an Identity initializer, a
#: Reshape after return_state) to be fixed first. tests/test_attention.py
#: compares ReLU with Keras meanwhile.
SEQUENTIAL_TYPES = tuple(t for t in sorted(LAYERS) if LAYERS[t].call_form == "one" and t != "ReLU")

#: The corpus the tests use.
DEFAULT_SIZE = 560
DEFAULT_SEED = 20260611
#: The share of specs broken on purpose (a few more turn out invalid).
INVALID_SHARE = 0.32

Shape = tuple[int | None, ...]
Spec = dict[str, Any]

#: Probability that an optional argument is set, by name; other optional
#: arguments are set with probability ``OTHER_ARG``.
EMPHASIS = {
    "return_sequences": 0.55,
    "return_state": 0.15,
    "use_bias": 0.25,
    "reset_after": 0.3,
    "merge_mode": 0.6,
    "padding": 0.5,
    "strides": 0.3,
    "dilation_rate": 0.25,
    "groups": 0.3,
    "center": 0.3,
    "scale": 0.3,
    "renorm": 0.25,
    "axis": 0.35,
    "keepdims": 0.3,
    "mask_zero": 0.3,
    "go_backwards": 0.15,
    "stateful": 0.15,
    "unroll": 0.1,
    "backward_layer": 0.2,
    "data_format": 0.12,
    "rms_scaling": 0.1,
    "pool_size": 0.6,
    "activation": 0.3,
    "noise_shape": 0.05,
}
OTHER_ARG = 0.06
#: Probability of ``trainable=False``, of an explicit name and of a dtype
#: policy (``DTYPE_POLICIES``) on a layer.
FROZEN = 0.1
NAMED = 0.1
POLICY = 0.12
#: Input ranks (batch included) a layer accepts beyond its ndim/min_ndim.
RANKS = {"Conv1D": (3,)}


def arg_names(type_: str) -> set[str]:
    return {a.name for a in LAYERS[type_].args}


def layer_args(type_: str) -> list[Arg]:
    """The arguments of kind LAYER (what makes a wrapper)."""
    return [a for a in LAYERS[type_].args if a.kind is Kind.LAYER]


def length_and_channel_axes(shape: Shape, spec: Spec) -> tuple[int, int]:
    """The (length, channels) axes of a convolution's or pooling's input."""
    rank = len(shape)
    if spec.get("data_format") == "channels_first":
        return rank - 1, rank - 2
    return rank - 2, rank - 1


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def shape_of(spec: Spec) -> Shape:
    """The model input shape, batch first."""
    return (spec.get("batch_size"), *spec["input_shape"])


def output_of(spec: Spec) -> Any:
    """The engine's output of the stack so far (a shape or a list of
    shapes); None where the engine refuses it."""
    if not spec["layers"]:
        return shape_of(spec)
    try:
        return analyze(spec).output_shape
    except SpecError:
        return None


def types_in(spec: Spec) -> set[str]:
    """Every layer type of ``spec``, wrapped ones included."""
    out: set[str] = set()

    def walk(layer: Spec) -> None:
        out.add(layer["type"])
        for arg in layer_args(layer["type"]):
            if isinstance(layer.get(arg.name), dict):
                walk(layer[arg.name])

    for layer in spec["layers"]:
        walk(layer)
    return out


class Gen:
    """Generates specs from a shared ``random.Random``."""

    def __init__(self, rng: random.Random, wrapped: Counter[tuple[str, str]] | None = None) -> None:
        self.rng = rng
        self.names: set[str] = set()
        #: How often each (wrapper, type) was drawn: wrappers take the rarest.
        self.wrapped: Counter[tuple[str, str]] = Counter() if wrapped is None else wrapped

    # -- shapes -----------------------------------------------------------

    def dims(self, rank: int, *, none_time: float = 0.15) -> list[int | None]:
        """Non-batch dims of an input of ``rank`` (batch included)."""
        dims: list[int | None] = [self.rng.randint(1, 12) for _ in range(rank - 1)]
        if rank >= 3 and self.rng.random() < none_time:
            dims[0] = None
        return dims

    def accepts(self, type_: str, shape: Any, *, depth: int = 0) -> bool:
        """Whether a valid ``type_`` layer can be generated on ``shape``."""
        if not isinstance(shape, tuple):
            return False
        cls = LAYERS[type_]
        rank = len(shape)
        if cls.ndim is not None and rank != cls.ndim:
            return False
        if cls.min_ndim is not None and rank < cls.min_ndim:
            return False
        if type_ in RANKS and rank not in RANKS[type_]:
            return False
        if type_ == "Embedding" and depth == 0:
            return False  # placed first, on int32 input, by ``valid_stack``
        if layer_args(type_):
            return depth < 2 and bool(self.inner_types(type_, shape, depth=depth))
        names = arg_names(type_)
        if {"kernel_size", "pool_size"} & names and None in shape[2:]:
            return False  # spatial and channel dims must be known
        if {"units", "axis"} & names:
            return shape[-1] is not None
        return True

    def inner_types(self, type_: str, shape: Shape, *, depth: int) -> list[str]:
        """The types a wrapper can hold on ``shape`` (its own input)."""
        arg = layer_args(type_)[0]
        inner = self.wrapped_shape(type_, shape)
        if inner is None:
            return []
        allowed = arg.layer_types or SEQUENTIAL_TYPES
        return [t for t in allowed if self.accepts(t, inner, depth=depth + 1)]

    @staticmethod
    def wrapped_shape(type_: str, shape: Shape) -> Shape | None:
        """The input shape a wrapper builds its layer on."""
        if type_ == "TimeDistributed":
            return (shape[0], *shape[2:]) if len(shape) >= 3 else None
        return shape

    def ranks_for(self, type_: str) -> list[int]:
        """Input ranks (batch included) on which ``type_`` can be valid."""
        ranks = [r for r in (2, 3, 4) if self.accepts(type_, (None, *[4] * (r - 1)))]
        return ranks or [3]

    # -- argument values --------------------------------------------------

    def value(self, arg: Arg, shape: Shape, spec: Spec, last: bool) -> Any:
        """A value for ``arg`` of a layer on ``shape``: sensible, else generic."""
        rng = self.rng
        sensible = SENSIBLE.get(arg.name)
        if sensible is not None and arg.kind is not Kind.LAYER:
            return sensible(self, arg, shape)
        if arg.kind is Kind.BOOL:
            # Mostly the other value than the default; sometimes the default,
            # given explicitly.
            return (rng.random() < 0.75) is not arg.default
        if arg.kind is Kind.INT:
            lo = int(arg.minimum if arg.minimum is not None else 0)
            hi = int(arg.maximum if arg.maximum is not None else lo + 7)
            return rng.randint(lo, hi)
        if arg.kind is Kind.FLOAT:
            lo = arg.minimum if arg.minimum is not None else 0.0
            hi = min(arg.maximum if arg.maximum is not None else lo + 1.0, lo + 1.0)
            v = round(rng.uniform(lo, hi), 3)
            return lo if arg.exclusive_maximum and v >= hi else v
        if arg.kind in (Kind.CHOICE, Kind.OBJECT):
            return rng.choice([*arg.choices, *([None] if arg.nullable else [])])
        if arg.kind is Kind.INT_TUPLE:
            lo = int(arg.minimum if arg.minimum is not None else 1)
            return [rng.randint(lo, lo + 2) for _ in range(arg.length or 1)]
        if arg.kind is Kind.INT_LIST:
            return [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
        if arg.kind is Kind.AXIS:
            return -1
        if arg.kind is Kind.LAYER:
            return self.inner(spec["type"], arg, shape, last)
        return arg.default  # Kind.NULL: null is the only accepted value

    def inner(self, wrapper: str, arg: Arg, shape: Shape, last: bool) -> Spec | None:
        """The nested layer of a wrapper (``fit`` sets a backward layer)."""
        if not arg.required:
            return None
        inner_shape = self.wrapped_shape(wrapper, shape) or (shape[0], 4)
        types = self.inner_types(wrapper, shape, depth=0)
        types = types or list(arg.layer_types or SEQUENTIAL_TYPES)
        fewest = min(self.wrapped[wrapper, t] for t in types)
        type_ = self.rng.choice([t for t in types if self.wrapped[wrapper, t] == fewest])
        self.wrapped[wrapper, type_] += 1
        # A layer that returns states cannot be TimeDistributed.
        last = last and wrapper != "TimeDistributed"
        return self.layer(type_, inner_shape, last=last, depth=1)

    # -- one layer ----------------------------------------------------------

    def layer(
        self, type_: str, shape: Shape, *, last: bool, depth: int = 0, valid: bool = True
    ) -> Spec:
        """A ``type_`` layer for input ``shape``; valid there if ``valid``."""
        rng = self.rng
        cls = LAYERS[type_]
        spec: Spec = {"type": type_}
        for arg in cls.args:
            if arg.kind is Kind.NULL:
                continue
            if arg.required or rng.random() < EMPHASIS.get(arg.name, OTHER_ARG):
                spec[arg.name] = self.value(arg, shape, spec, last)
        if any(a.name == "trainable" for a in cls.all_args()) and rng.random() < FROZEN:
            spec["trainable"] = False
        if rng.random() < NAMED:
            spec["name"] = self.fresh_name(type_)
        if rng.random() < POLICY:
            spec["dtype"] = rng.choice(DTYPE_POLICIES)
        if valid:
            self.fit(spec, shape, last=last)
        return spec

    def fresh_name(self, type_: str) -> str:
        """An explicit name no other explicit name of the spec has.

        ``lstm_3`` style names may still collide with automatic ones, as
        in Keras.
        """
        while True:
            stem = self.rng.choice(["my", "the", type_.lower(), "a_rather_long_layer_name_for"])
            name = f"{stem}_{self.rng.randint(0, 99)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def fit(self, spec: Spec, shape: Shape, *, last: bool) -> None:
        """Cross-argument fixes that make ``spec`` valid on ``shape``."""
        rng = self.rng
        if spec.get("return_state") and not last:
            del spec["return_state"]
        if spec.get("stateful") and shape[0] is None:
            del spec["stateful"]
        strides, dilation = spec.get("strides"), spec.get("dilation_rate")
        if strides and dilation and strides[0] > 1 and dilation[0] > 1:
            spec["dilation_rate"] = [1]
        if len(shape) >= 3 and ({"kernel_size", "pool_size"} & spec.keys()):
            length_axis, channel_axis = length_and_channel_axes(shape, spec)
            if "groups" in spec:
                spec["groups"] = rng.choice(divisors(shape[channel_axis] or 1))
                spec["filters"] = spec["groups"] * rng.randint(1, max(1, 8 // spec["groups"]))
            length = shape[length_axis]
            if length is not None and spec.get("padding", "valid") == "valid":
                key = "kernel_size" if "kernel_size" in spec else "pool_size"
                d = (spec.get("dilation_rate") or [1])[0] if key == "kernel_size" else 1
                if d * ((spec.get(key) or [2])[0] - 1) + 1 > length:
                    spec[key] = [rng.randint(1, length)]
                    if d * (spec[key][0] - 1) + 1 > length:
                        spec.pop("dilation_rate", None)
        if spec.get("backward_layer", 0) is None:
            spec["backward_layer"] = self.backward(spec["layer"])

    def backward(self, forward: Spec) -> Spec:
        """A backward layer consistent with ``forward`` (maybe other units)."""
        backward = copy.deepcopy(forward)
        backward.pop("name", None)
        backward["go_backwards"] = not forward.get("go_backwards", False)
        for key in ("units", "filters"):
            if key in backward and self.rng.random() < 0.5:
                backward[key] = self.rng.randint(1, 12)
        return backward

    # -- a stack ------------------------------------------------------------

    def start(self, rank: int, *, batch: float = 0.2) -> Spec:
        """An empty spec with an input of ``rank`` (batch included)."""
        rng = self.rng
        spec: Spec = {"input_shape": self.dims(rank), "dtype": "float32", "layers": []}
        if rng.random() < batch:
            spec["batch_size"] = rng.randint(1, 8)
        elif rng.random() < 0.5:
            spec["batch_size"] = None
        if rng.random() < 0.06:
            spec["dtype"] = rng.choice(["float64", "float16", "bfloat16"])
        if rng.random() < 0.05:
            spec["name"] = f"model_{rng.randint(0, 9)}"
        return spec

    def stack(self, focus: str, invalid: bool) -> Spec:
        """A spec around ``focus``: valid, or broken by one of ``BREAKERS``."""
        rng = self.rng
        if invalid:
            usable = [b for b in BREAKERS if b.applies(focus)]
            specific = [b for b in usable if not b.generic]
            generic = [b for b in usable if b.generic]
            pool = specific if specific and (rng.random() < 0.75 or not generic) else generic
            for breaker in rng.sample(pool, len(pool)):
                spec = breaker.make(self, focus)
                if spec is not None:
                    return spec
        return self.valid_stack(focus)

    def valid_stack(self, focus: str) -> Spec:
        """1-5 layers, ``focus`` among them, valid as far as the engine says."""
        rng = self.rng
        n = rng.randint(1, 5)
        at = 0 if focus == "Embedding" else rng.randint(0, n - 1)
        ranks = self.ranks_for(focus)
        if layer_args(focus):
            # Most layers want 3-D slices: wrappers get 4-D input more often,
            # and sometimes 5-D (TimeDistributed(ConvLSTM1D)).
            ranks += [4, 4] + [5] * self.accepts(focus, (None, 4, 4, 4, 4))
        spec = self.start(rng.choice(ranks))
        if focus == "Embedding" or (at > 0 and rng.random() < 0.1):
            spec["dtype"] = "int64" if rng.random() < 0.2 else "int32"
            spec["input_shape"] = self.dims(rng.choice([2, 2, 3]), none_time=0.3)
            spec["layers"].append(self.layer("Embedding", shape_of(spec), last=n == 1))
        placed = focus in types_in(spec)
        for i in range(len(spec["layers"]), n):
            shape = output_of(spec)
            if not isinstance(shape, tuple):
                break
            last = i == n - 1
            if not placed and i >= at and self.accepts(focus, shape):
                spec["layers"].append(self.layer(focus, shape, last=last))
                placed = True
            else:
                self.add_random(spec, shape, last=last, keep=None if placed else focus)
        if focus not in types_in(spec):
            # No shape on the way suited the focus: it alone, on its rank.
            spec = self.start(rng.choice(self.ranks_for(focus)))
            spec["layers"].append(self.layer(focus, shape_of(spec), last=True))
        return spec

    def add_random(self, spec: Spec, shape: Shape, *, last: bool, keep: str | None) -> None:
        """Append a random layer valid on ``shape`` that keeps ``keep`` placeable."""
        rng = self.rng
        types = [t for t in SEQUENTIAL_TYPES if self.accepts(t, shape)]
        for _ in range(8):
            layer = self.layer(rng.choice(types), shape, last=last)
            spec["layers"].append(layer)
            after = output_of(spec)
            if after is not None and (keep is None or self.accepts(keep, after)):
                return
            if after is None and rng.random() < 0.15:
                return  # keep the odd one the engine refuses: Keras decides
            spec["layers"].pop()
            self.names.discard(layer.get("name", ""))

    def prefix(self, rank: int, *, layers: int | None = None, batch: float = 0.2) -> Spec:
        """A valid stack of 0-2 layers whose output has ``rank``."""
        spec = self.start(rank, batch=batch)
        count = self.rng.randint(0, 2) if layers is None else layers
        for _ in range(count):
            shape = output_of(spec)
            types = [t for t in SEQUENTIAL_TYPES if self.accepts(t, shape)]
            for _ in range(8):
                spec["layers"].append(self.layer(self.rng.choice(types), shape, last=False))
                after = output_of(spec)
                if isinstance(after, tuple) and len(after) == rank:
                    break
                spec["layers"].pop()
        return spec

    def then(self, spec: Spec, *layers: Spec) -> Spec:
        """``spec`` with ``layers`` appended, and maybe a random one after."""
        spec["layers"].extend(layers)
        if self.rng.random() < 0.3 and len(spec["layers"]) < 5:
            shape = output_of(spec)
            if not isinstance(shape, tuple):
                shape = probe(3)
            types = [t for t in SEQUENTIAL_TYPES if self.accepts(t, shape)]
            spec["layers"].append(self.layer(self.rng.choice(types), shape, last=True))
        return spec


# -- sensible values for well-known argument names ---------------------------

Sensible = Callable[[Gen, Arg, Shape], Any]


def _reshape_target(gen: Gen, arg: Arg, shape: Shape) -> list[int]:
    rng = gen.rng
    rest = shape[1:]
    if None in rest:
        target = [-1, *(d for d in rest if d is not None)]
        rng.shuffle(target)
        return target
    left = math.prod(rest)  # type: ignore[arg-type]
    target = []
    for _ in range(rng.randint(0, 2)):
        d = rng.choice(divisors(left))
        target.append(d)
        left //= d
    target.append(left)
    rng.shuffle(target)
    if rng.random() < 0.4:
        target[rng.randrange(len(target))] = -1
    return target


def _permutation(gen: Gen, arg: Arg, shape: Shape) -> list[int]:
    dims = list(range(1, len(shape)))
    gen.rng.shuffle(dims)
    return dims


def _axis(gen: Gen, arg: Arg, shape: Shape) -> Any:
    """A known non-batch axis (or, for AXIS, maybe several), either sign."""
    rng = gen.rng
    rank = len(shape)
    known = [ax for ax in range(1, rank) if shape[ax] is not None] or [rank - 1]
    pick = [ax - rank if rng.random() < 0.5 else ax for ax in known]
    if arg.kind is Kind.AXIS and len(pick) > 1 and rng.random() < 0.5:
        return sorted(rng.sample(pick, rng.randint(1, len(pick))))
    return rng.choice(pick)


def _rate(gen: Gen, arg: Arg, shape: Shape) -> float:
    return round(gen.rng.uniform(0.0, 0.5), 2)


def _int(lo: int, hi: int) -> Sensible:
    return lambda gen, arg, shape: gen.rng.randint(lo, hi)


def _ints(lo: int, hi: int) -> Sensible:
    return lambda gen, arg, shape: [gen.rng.randint(lo, hi)]


def _activation(gen: Gen, arg: Arg, shape: Shape) -> Any:
    choices: list[Any] = ["relu", "tanh", "sigmoid", "linear", "softmax"]
    choices += arg.choices[:: max(1, len(arg.choices) // 6)]
    return gen.rng.choice([*choices, *([None] if arg.nullable else [])])


SENSIBLE: dict[str, Sensible] = {
    "units": _int(1, 16),
    "filters": _int(1, 8),
    "kernel_size": _ints(1, 5),
    "strides": _ints(1, 3),
    "dilation_rate": _ints(1, 3),
    "pool_size": _ints(1, 4),
    "groups": _int(1, 4),
    "rate": _rate,
    "dropout": _rate,
    "recurrent_dropout": _rate,
    "n": _int(1, 5),
    "input_dim": _int(2, 60),
    "output_dim": _int(1, 16),
    "target_shape": _reshape_target,
    "dims": _permutation,
    "axis": _axis,
    "noise_shape": lambda gen, arg, shape: [1] * len(shape),
    "seed": _int(0, 999),
    "activation": _activation,
    "mask_value": lambda gen, arg, shape: gen.rng.choice([0.0, -1.0, 0.5]),
}


# -- deliberate breakage ----------------------------------------------------


@dataclass(frozen=True)
class Breaker:
    """One way of making a spec that Keras refuses to build.

    ``make(gen, focus)`` returns the spec, or None where it does not apply
    to that draw. A generic breaker applies to any focus type; the others
    to the types ``applies`` accepts.
    """

    name: str
    make: Callable[[Gen, str], Spec | None]
    applies_to: Callable[[str], bool] | None = None

    @property
    def generic(self) -> bool:
        return self.applies_to is None

    def applies(self, focus: str) -> bool:
        return self.applies_to is None or self.applies_to(focus)


def having(*names: str, also: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """Applies to the types with all of ``names`` as arguments, and ``also``."""
    return lambda focus: focus in also or all(n in arg_names(focus) for n in names)


def of_types(*names: str) -> Callable[[str], bool]:
    return lambda focus: focus in names


RNNS = tuple(t for t in SEQUENTIAL_TYPES if "return_state" in arg_names(t))


def probe(rank: int) -> Shape:
    return (None, *[4] * (rank - 1))


def wrong_rank(gen: Gen, focus: str) -> Spec | None:
    """The focus on an input of a rank it refuses (LSTM on 2-D ...)."""
    good = gen.ranks_for(focus)
    bad = [r for r in (2, 3, 4) if r not in good]
    if focus in ("Permute", "Embedding") or not bad:
        return None
    spec = gen.prefix(gen.rng.choice(bad))
    return gen.then(spec, gen.layer(focus, probe(good[0]), last=True))


def after_several_outputs(gen: Gen, focus: str) -> Spec | None:
    """The focus after a layer that returns a list (return_state, merge None)."""
    if focus == "Embedding":
        return None
    spec = gen.prefix(3)
    shape = output_of(spec)
    if not isinstance(shape, tuple) or shape[-1] is None:
        return None
    choices = [t for t in (*RNNS, "Bidirectional") if gen.accepts(t, shape)]
    if not choices:
        return None
    several = gen.layer(gen.rng.choice(choices), shape, last=True)
    rnn = several["layer"] if several["type"] == "Bidirectional" else several
    if several["type"] == "Bidirectional" and gen.rng.random() < 0.5:
        several["merge_mode"] = None
    else:
        rnn["return_state"] = True
        if several.get("backward_layer"):
            several["backward_layer"]["return_state"] = True
    spec["layers"].append(several)
    out = output_of(spec)
    first = out[0] if isinstance(out, list) else probe(3)
    return gen.then(spec, gen.layer(focus, first, last=True))


def duplicate_name(gen: Gen, focus: str) -> Spec | None:
    """Two layers of one name: explicit twice, explicit vs automatic, or the
    InputLayer's ``input_layer``."""
    spec = gen.valid_stack(focus)
    layers = spec["layers"]
    try:
        names = [r.name for r in analyze(spec).layers]
    except SpecError:
        return None
    rng = gen.rng
    if len(layers) < 2 or rng.random() < 0.15:
        rng.choice(layers)["name"] = "input_layer"
        return spec
    i, j = sorted(rng.sample(range(len(layers)), 2))
    if rng.random() < 0.6:
        layers[j]["name"] = names[i]
    else:
        # What a later layer is called automatically, given to an earlier
        # one; the later name may then move on (explicit names do not
        # advance Keras's counters), or not.
        layers[i]["name"] = names[j]
    return spec


def stateful_without_batch(gen: Gen, focus: str) -> Spec | None:
    spec = gen.prefix(4 if focus == "ConvLSTM1D" else 3, batch=0.0)
    spec.pop("batch_size", None)
    shape = output_of(spec)
    if not gen.accepts(focus, shape):
        return None
    layer = gen.layer(focus, shape, last=True)
    (layer["layer"] if "layer" in layer else layer)["stateful"] = True
    if layer.get("backward_layer"):
        layer["backward_layer"]["stateful"] = True
    return gen.then(spec, layer)


def unroll_unknown_time(gen: Gen, focus: str) -> Spec | None:
    """``unroll=True`` with an unknown time length: Keras builds it (its
    ``RNN.call`` check only runs on a traced call)."""
    spec = gen.start(4 if focus == "ConvLSTM1D" else 3)
    spec["input_shape"][0] = None
    if not gen.accepts(focus, shape_of(spec)):
        return None
    layer = gen.layer(focus, shape_of(spec), last=True)
    (layer["layer"] if "layer" in layer else layer)["unroll"] = True
    return gen.then(spec, layer)


def shrink_to_zero(gen: Gen, focus: str) -> Spec | None:
    """A valid-padding window longer than the sequence."""
    spec = gen.start(LAYERS[focus].ndim or 3)
    spec["input_shape"] = [gen.rng.randint(1, 6) for _ in spec["input_shape"]]
    shape = shape_of(spec)
    layer = gen.layer(focus, shape, last=True)
    length = shape[length_and_channel_axes(shape, layer)[0]]
    assert length is not None
    key = "kernel_size" if "kernel_size" in layer else "pool_size"
    layer[key] = [length + gen.rng.randint(1, 3)]
    layer["padding"] = "valid"
    layer.pop("dilation_rate", None)
    return gen.then(spec, layer)


def strides_and_dilation(gen: Gen, focus: str) -> Spec | None:
    spec = gen.start(LAYERS[focus].ndim or 3)
    if not gen.accepts(focus, shape_of(spec)):
        return None
    layer = gen.layer(focus, shape_of(spec), last=True)
    layer["strides"] = [gen.rng.randint(2, 3)]
    layer["dilation_rate"] = [gen.rng.randint(2, 3)]
    return gen.then(spec, layer)


def bad_groups(gen: Gen, focus: str) -> Spec | None:
    """Groups that do not divide the input channels, or the filters."""
    rng = gen.rng
    spec = gen.prefix(3)
    shape = output_of(spec)
    if not gen.accepts(focus, shape):
        return None
    layer = gen.layer(focus, shape, last=True)
    layer.pop("data_format", None)
    channels = shape[-1]
    assert channels is not None
    if rng.random() < 0.5:
        layer["groups"] = next(g for g in range(2, channels + 3) if channels % g)
        layer["filters"] = layer["groups"] * rng.randint(1, 3)
    else:
        layer["groups"] = rng.choice([d for d in divisors(channels) if d > 1] or [2])
        layer["filters"] = layer["groups"] * rng.randint(1, 3) + 1
    return gen.then(spec, layer)


def bad_reshape(gen: Gen, focus: str) -> Spec | None:
    """A target that does not divide the size, two -1s, or a 0."""
    rng = gen.rng
    spec = gen.prefix(rng.choice([2, 3, 4]))
    shape = output_of(spec)
    if not isinstance(shape, tuple):
        return None
    rest = shape[1:]
    draw = rng.random()
    if draw < 0.2:
        target = [-1, -1, rng.randint(1, 3)]
    elif draw < 0.3:
        target = [0, -1]
    elif None in rest:
        return None
    else:
        size = math.prod(rest)  # type: ignore[arg-type]
        bad = next(d for d in range(2, size + 3) if size % d)
        target = [bad, -1] if rng.random() < 0.5 else [size + rng.randint(1, 3)]
        rng.shuffle(target)
    return gen.then(spec, {"type": "Reshape", "target_shape": target})


def bad_permute(gen: Gen, focus: str) -> Spec | None:
    """Dims of the wrong rank, or not a permutation."""
    rng = gen.rng
    rank = rng.choice([2, 3, 4])
    spec = gen.prefix(rank)
    if rng.random() < 0.6:
        dims = list(range(1, rng.choice([r for r in (1, 2, 3, 4) if r != rank - 1]) + 1))
        rng.shuffle(dims)
    else:
        dims = [1] * (rank - 1) if rank > 2 else [2]
    return gen.then(spec, {"type": "Permute", "dims": dims})


def bad_norm_axis(gen: Gen, focus: str) -> Spec | None:
    """An axis out of range, or one of unknown size."""
    rng = gen.rng
    rank = rng.choice([2, 3, 4])
    spec = gen.start(rank)
    layer = gen.layer(focus, shape_of(spec), last=True)
    if rank < 3 or rng.random() < 0.6:
        layer["axis"] = rng.choice([rank, rank + 1, -rank - 1, 0])
    else:
        spec["input_shape"][0] = None
        layer["axis"] = 1
    if LAYERS[focus].args and any(a.kind is Kind.AXIS for a in LAYERS[focus].args):
        if rng.random() < 0.3:
            layer["axis"] = [layer["axis"], -1]
    return gen.then(spec, layer)


def wrap_wrong_rank(gen: Gen, focus: str) -> Spec | None:
    """TimeDistributed on 2-D input, or of a layer refusing the slices' rank."""
    rng = gen.rng
    if rng.random() < 0.35:
        spec = gen.prefix(2)
        inner = gen.layer(
            rng.choice(["Dense", "Dropout", "Activation"]), output_of(spec), last=False
        )
        return gen.then(spec, {"type": focus, "layer": inner})
    rank = rng.choice([3, 4])
    spec = gen.prefix(rank)
    child = rank - 1
    refusing = [
        t
        for t in SEQUENTIAL_TYPES
        if not layer_args(t) and child not in gen.ranks_for(t) and t != "Embedding"
    ]
    inner_type = rng.choice(refusing)
    inner = gen.layer(inner_type, probe(gen.ranks_for(inner_type)[0]), last=False)
    return gen.then(spec, {"type": focus, "layer": inner})


def wrap_return_state(gen: Gen, focus: str) -> Spec | None:
    spec = gen.start(4)
    spec["input_shape"] = [d or 3 for d in spec["input_shape"]]
    inner = gen.layer(gen.rng.choice([t for t in RNNS if LAYERS[t].ndim == 3]), probe(3), last=True)
    inner["return_state"] = True
    return gen.then(spec, {"type": focus, "layer": inner})


def bidirectional_mismatch(gen: Gen, focus: str) -> Spec | None:
    """A backward layer that runs forwards too, or differs in a flag Keras
    wants equal; or a forward layer with go_backwards and no backward one."""
    rng = gen.rng
    spec = gen.prefix(3)
    shape = output_of(spec)
    if not gen.accepts(focus, shape):
        return None
    layer = gen.layer(focus, shape, last=True)
    forward = layer["layer"]
    if rng.random() < 0.2:
        forward["go_backwards"] = True
        layer.pop("backward_layer", None)
        return gen.then(spec, layer)
    backward = gen.backward(forward)
    flag = rng.choice(["go_backwards", "return_sequences", "return_state", "stateful"])
    backward[flag] = not backward.get(flag, False)
    layer["backward_layer"] = backward
    return gen.then(spec, layer)


def unknown_last_dim(gen: Gen, focus: str) -> Spec | None:
    """Flatten of an unknown length, then a layer needing its feature size."""
    spec = gen.start(3)
    spec["input_shape"][0] = None
    spec["layers"].append({"type": "Flatten"})
    return gen.then(spec, gen.layer(focus, probe(gen.ranks_for(focus)[0]), last=True))


def conv_on_4d(gen: Gen, focus: str) -> Spec | None:
    spec = gen.start(4)
    spec["input_shape"] = [d or 5 for d in spec["input_shape"]]
    return gen.then(spec, gen.layer(focus, (None, 8, 4), last=True))


def unknown_spatial_dim(gen: Gen, focus: str) -> Spec | None:
    spec = gen.start(4)
    spec["input_shape"][gen.rng.choice([1, 2])] = None
    return gen.then(spec, gen.layer(focus, (None, 4, 8, 4), last=True))


BREAKERS = [
    Breaker("wrong rank", wrong_rank),
    Breaker("after several outputs", after_several_outputs),
    Breaker("duplicate name", duplicate_name),
    Breaker(
        "stateful without batch_size",
        stateful_without_batch,
        having("stateful", also=("Bidirectional",)),
    ),
    Breaker(
        "unroll with unknown time", unroll_unknown_time, having("unroll", also=("Bidirectional",))
    ),
    Breaker(
        "window longer than the sequence",
        shrink_to_zero,
        lambda f: having("kernel_size")(f) or having("pool_size")(f),
    ),
    Breaker("strides and dilation", strides_and_dilation, having("strides", "dilation_rate")),
    Breaker("groups", bad_groups, having("groups")),
    Breaker("reshape", bad_reshape, of_types("Reshape")),
    Breaker("permute", bad_permute, of_types("Permute")),
    Breaker("normalization axis", bad_norm_axis, having("axis")),
    Breaker("TimeDistributed of the wrong rank", wrap_wrong_rank, of_types("TimeDistributed")),
    Breaker("TimeDistributed return_state", wrap_return_state, of_types("TimeDistributed")),
    Breaker("Bidirectional mismatch", bidirectional_mismatch, having("backward_layer")),
    Breaker("unknown last dim", unknown_last_dim, having("units")),
    Breaker("Conv1D on 4-D", conv_on_4d, of_types("Conv1D")),
    Breaker("unknown spatial dim", unknown_spatial_dim, of_types("ConvLSTM1D")),
]


def generate(n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Spec]:
    """``n`` specs, the same for the same ``n``, ``seed``, registry and engine."""
    rng = random.Random(seed)
    wrapped: Counter[tuple[str, str]] = Counter()
    focus_types = SEQUENTIAL_TYPES
    return [
        Gen(rng, wrapped).stack(focus_types[i % len(focus_types)], rng.random() < INVALID_SHARE)
        for i in range(n)
    ]
