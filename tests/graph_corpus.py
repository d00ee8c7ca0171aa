"""A deterministic random corpus of graph (Functional) model specs.

``generate(n, seed)`` returns ``n`` specs in the compact graph form (design
§1 of issue 11: ``inputs``, ``layers`` entries applied to references,
``{"call": ...}`` entries for shared layers, ``outputs``); ``generate_tagged``
returns them with the family and, for a spec broken on purpose, how it was
broken. The families are the model kinds people build with the Functional
API:

* ``chain``: a Sequential stack of ``tests/corpus.py`` written as a graph
  (every single-input layer of the registry, valid or broken as there);
* ``encoder_decoder``: an RNN encoder (LSTM/GRU/SimpleRNN, or Bidirectional)
  whose states start a decoder (``initial_state``), with or without
  attention over the encoder's outputs;
* ``attention``: Attention / AdditiveAttention / MultiHeadAttention over
  encoder outputs (causal mask, ``return_attention_scores``, key given or
  not, positional or keyword call);
* ``transformer``: MHA + Add + LayerNormalization + Dense feed-forward;
* ``merge``: two or three sequences merged (Concatenate, Add, Subtract,
  Multiply, Average, Maximum, Minimum, Dot), broadcasting included;
* ``siamese``: an encoder shared by two inputs (``{"call": ...}``);
* ``mask``: Embedding(mask_zero=True) or Masking feeding mask consumers;
* ``multi_io``: several inputs and output heads (an intermediate tensor or
  an input among the outputs, an unused input).

Frozen layers (``trainable: false``), dtype policies and explicit names are
sprinkled over all of them. About a third of the specs are broken on
purpose (``BREAKERS`` plus each family's own: shape mismatches in merges,
Dot axes, MHA key/value, wrong initial_state count or size, dangling
references, duplicate names, outputs that name no tensor). As in
``corpus.py``, the generator does not decide validity: Keras does, in
``test_graph_oracle.py``.

The generator needs neither Keras nor the graph engine: references use the
automatic names a fresh Keras session gives (``Names`` mirrors Keras's
counters: explicit names do not advance them, a wrapped layer is
constructed before its wrapper).
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

try:
    import corpus
except ImportError:  # imported as tests.graph_corpus (the benchmarks)
    from tests import corpus

from seqlab import LAYERS
from seqlab.args import DTYPE_POLICIES
from seqlab.registry import to_snake_case

#: The corpus the tests use.
DEFAULT_SIZE = 320
DEFAULT_SEED = 20261127
#: The share of specs broken on purpose (a few more turn out invalid).
INVALID_SHARE = 0.3

#: Per-layer probabilities of ``trainable: false``, a dtype policy and an
#: explicit name.
FROZEN = 0.1
POLICY = 0.08
NAMED = 0.1

Spec = dict[str, Any]
Dims = tuple[int | None, ...]

RNN_TYPES = ("LSTM", "GRU", "SimpleRNN")
#: How many states each recurrent type takes and returns.
STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}
ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
MERGES = (*ELEMENTWISE, "Concatenate", "Dot")


class Graph:
    """One graph under construction: inputs, entries, and Keras's names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.spec: Spec = {"inputs": [], "layers": []}
        self.counts: Counter[str] = Counter()
        #: Every name in the spec (explicit or automatic), in creation order.
        self.names: list[str] = []

    # -- names ------------------------------------------------------------

    def auto(self, type_: str) -> str:
        prefix = to_snake_case(type_)
        n = self.counts[prefix]
        self.counts[prefix] += 1
        return f"{prefix}_{n}" if n else prefix

    def name_layer(self, layer: Spec) -> str:
        """The layer's name, wrapped layers named first as Keras constructs
        them (``Bidirectional(LSTM(...))`` builds the LSTM first)."""
        for key in ("layer", "backward_layer"):
            if isinstance(layer.get(key), dict):
                self.name_layer(layer[key])
        name = layer.get("name") or self.auto(layer["type"])
        return name

    def explicit(self, stem: str) -> str:
        while True:
            name = f"{stem}_{self.rng.randint(0, 99)}"
            if name not in self.names:
                return name

    # -- building ---------------------------------------------------------

    def input(self, dims: list[int | None], dtype: str | None = None, *, name: str = "") -> str:
        """Declare an input; returns its reference."""
        entry: Spec = {"shape": list(dims)}
        if dtype:
            entry["dtype"] = dtype
        if name or self.rng.random() < 0.25:
            entry["name"] = name or self.explicit(self.rng.choice(["source", "target", "x", "in"]))
        out = entry.get("name") or self.auto("InputLayer")
        self.spec["inputs"].append(entry)
        self.names.append(out)
        return out

    def add(self, type_: str, inputs: Any = None, *, decorate: bool = True, **args: Any) -> str:
        """Create and call a layer; returns its name (its reference)."""
        entry: Spec = {"type": type_, **args}
        if decorate:
            self.decorate(entry)
        if inputs is not None:
            entry["inputs"] = inputs
        name = self.name_layer(entry)
        self.called(type_)
        self.spec["layers"].append(entry)
        self.names.append(name)
        return name

    def called(self, type_: str) -> None:
        """Counters a layer's first call takes: MultiHeadAttention builds a
        ``Softmax`` and a ``Dropout`` layer of automatic names then."""
        if type_ == "MultiHeadAttention":
            self.auto("Softmax")
            self.auto("Dropout")

    def call(self, layer: str, inputs: Any, **options: Any) -> None:
        """Call an earlier layer again (a shared layer)."""
        self.spec["layers"].append({"call": layer, "inputs": inputs, **options})

    def decorate(self, entry: Spec) -> None:
        """Maybe freeze the layer, give it a dtype policy or a name."""
        rng = self.rng
        if rng.random() < FROZEN:
            entry["trainable"] = False
        if rng.random() < POLICY:
            entry["dtype"] = rng.choice(DTYPE_POLICIES)
        if rng.random() < NAMED and "name" not in entry:
            entry["name"] = self.explicit(rng.choice(["my", "enc", "dec", "head", "block"]))

    def outputs(self, refs: Any) -> Spec:
        self.spec["outputs"] = refs
        return self.spec

    # -- helpers ------------------------------------------------------------

    def length(self, none: float = 0.12) -> int | None:
        return None if self.rng.random() < none else self.rng.randint(2, 8)

    def dim(self, lo: int = 1, hi: int = 8) -> int:
        return self.rng.randint(lo, hi)

    def rnn(self, type_: str, units: int, **args: Any) -> Spec:
        """A recurrent layer's arguments (a few optional ones at random)."""
        rng = self.rng
        layer: Spec = {"type": type_, "units": units, **args}
        if rng.random() < 0.15:
            layer["activation"] = rng.choice(["relu", "sigmoid", "tanh"])
        if rng.random() < 0.1:
            layer["use_bias"] = False
        if type_ == "GRU" and rng.random() < 0.25:
            layer["reset_after"] = False
        return layer

    def head(self, ref: str, *, pool: float = 0.4) -> str:
        """A small output head on a sequence: maybe pooled, then Dense."""
        rng = self.rng
        if rng.random() < pool:
            ref = self.add(rng.choice(["GlobalAveragePooling1D", "GlobalMaxPooling1D"]), ref)
        activation = rng.choice([None, "softmax", "sigmoid", "linear"])
        args = {"units": self.dim(1, 6)}
        if activation:
            args["activation"] = activation
        return self.add("Dense", ref, **args)


def _sequence_encoder(g: Graph, ref: str, features: int | None) -> tuple[str, int]:
    """Maybe a Dense/LSTM/GRU/Conv1D over ``ref``; returns (ref, features)."""
    rng = g.rng
    draw = rng.random()
    if draw < 0.3:
        return ref, features or 4
    units = g.dim(2, 8)
    if draw < 0.55:
        return g.add("Dense", ref, units=units), units
    if draw < 0.85:
        return g.add(rng.choice(RNN_TYPES), ref, units=units, return_sequences=True), units
    conv = g.add("Conv1D", ref, filters=units, kernel_size=[rng.randint(1, 3)], padding="same")
    return conv, units


# -- families ---------------------------------------------------------------


class ChainGen(corpus.Gen):
    """``corpus.Gen`` restricted to layers called on one tensor."""

    def accepts(self, type_: str, shape: Any, *, depth: int = 0) -> bool:
        if getattr(LAYERS[type_], "call_form", "one") != "one":
            return False
        return super().accepts(type_, shape, depth=depth)


def chain(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """A Sequential corpus stack as a graph: one input, no references."""
    one = sorted(t for t in LAYERS if getattr(LAYERS[t], "call_form", "one") == "one")
    gen = ChainGen(rng)
    seq = gen.stack(rng.choice(one), broken)
    entry: Spec = {"shape": seq["input_shape"]}
    for key in ("batch_size", "dtype"):
        if key in seq:
            entry[key] = seq[key]
    spec: Spec = {"inputs": [entry], "layers": seq["layers"]}
    if "name" in seq:
        spec["name"] = seq["name"]
    if rng.random() < 0.3 and spec["layers"]:
        # The outputs written out: the last layer by its name is what
        # omitting them means; a list keeps a one-element list.
        last = all_names(spec)[-1]
        spec["outputs"] = last if rng.random() < 0.5 else [last]
    return spec, "sequential breaker" if broken else None


def encoder_decoder(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """An encoder's states start a decoder; maybe attention over the
    encoder's outputs."""
    g = Graph(rng)
    enc_type = rng.choice(RNN_TYPES)
    dec_type = enc_type if rng.random() < 0.85 else rng.choice(RNN_TYPES)
    units = g.dim(2, 8)
    attend = rng.random() < 0.35
    embed = rng.random() < 0.2
    if embed:
        vocab = g.dim(5, 20)
        src = g.input([g.length(0.2)], "int32")
        tgt = g.input([g.length(0.2)], "int32")
        src_x = g.add("Embedding", src, input_dim=vocab, output_dim=g.dim(2, 6),
                      mask_zero=rng.random() < 0.5)  # fmt: skip
        tgt_x = g.add("Embedding", tgt, input_dim=vocab, output_dim=g.dim(2, 6),
                      mask_zero=rng.random() < 0.5)  # fmt: skip
    else:
        src = src_x = g.input([g.length(), g.dim(1, 6)])
        tgt = tgt_x = g.input([g.length(), g.dim(1, 6)])
    bidi = rng.random() < 0.25
    enc_layer = g.rnn(enc_type, units, return_state=True)
    if attend:
        enc_layer["return_sequences"] = True
    n = STATES[enc_type]
    broke = None
    if bidi:
        merge = rng.choice(["concat", "sum", "mul", "ave"])
        enc = g.add("Bidirectional", src_x, layer=enc_layer, merge_mode=merge)
        # Outputs: 0 the merged output, then forward states, then backward.
        forward = [f"{enc}[0][{1 + i}]" for i in range(n)]
        backward = [f"{enc}[0][{1 + n + i}]" for i in range(n)]
        if rng.random() < 0.5:
            dec_layer = g.rnn(dec_type, units, return_sequences=True)
            states = forward + backward
            # The same merge on both sides, so attention's sizes agree.
            dec_args: Spec = {"layer": dec_layer, "merge_mode": merge}
            dec_kind = "Bidirectional"
        else:
            if attend and merge == "concat":
                # A one-way decoder attends over a 2u-wide encoder: its
                # query would be u wide, which Keras fails at run time.
                enc_entry = g.spec["layers"][-1]
                enc_entry["merge_mode"] = merge = "sum"
            states, dec_kind, dec_args = forward, dec_type, {}
            dec_args.update(g.rnn(dec_type, units, return_sequences=True))
            dec_args.pop("type")
    else:
        enc = g.add(enc_type, src_x, **{k: v for k, v in enc_layer.items() if k != "type"})
        states = [f"{enc}[0][{1 + i}]" for i in range(n)]
        dec_kind = dec_type
        dec_args = g.rnn(dec_type, units, return_sequences=True)
        dec_args.pop("type")
    if STATES[dec_type] != STATES[enc_type]:
        broke = "state count"  # an LSTM's two states to a GRU, or one to an LSTM
    if broken:
        broke = rng.choice(["state count", "state size", "state size"])
        if broke == "state count":
            states = states[:-1] if len(states) > 1 and rng.random() < 0.6 else [*states, states[0]]
        else:
            target = dec_args["layer"] if dec_kind == "Bidirectional" else dec_args
            target["units"] = units + rng.randint(1, 3)
    dec = g.add(dec_kind, tgt_x, initial_state=states, **dec_args)
    out = dec
    if attend:
        kind = rng.choice(["Attention", "AdditiveAttention"])
        att = g.add(kind, [dec, f"{enc}[0][0]" if rng.random() < 0.5 else enc])
        out = g.add("Concatenate", [dec, att])
    if rng.random() < 0.3:
        out = g.add("TimeDistributed", out, layer={"type": "Dense", "units": g.dim(1, 6)})
    else:
        out = g.head(out, pool=0.15)
    g.outputs(out if rng.random() < 0.7 else [out])
    return g.spec, broke


def _attention_call(
    g: Graph, kind: str, q: str, v: str, k: str | None, *, keyword: bool
) -> tuple[Any, Spec]:
    """The inputs and call options of an attention layer's call."""
    rng = g.rng
    options: Spec = {}
    if rng.random() < 0.3:
        options["use_causal_mask"] = rng.random() < 0.8
    if rng.random() < 0.3:
        options["return_attention_scores"] = True
    if kind == "MultiHeadAttention" and keyword:
        inputs: Any = {"query": q, "value": v}
        if k:
            inputs["key"] = k
    else:
        inputs = [q, v, *([k] if k else [])]
    return inputs, options


def _attention_args(g: Graph, kind: str) -> Spec:
    rng = g.rng
    args: Spec = {}
    if kind == "MultiHeadAttention":
        args["num_heads"] = g.dim(1, 3)
        args["key_dim"] = g.dim(1, 6)
        if rng.random() < 0.3:
            args["value_dim"] = g.dim(1, 6)
        if rng.random() < 0.2:
            args["output_shape"] = g.dim(1, 6)
        if rng.random() < 0.2:
            args["use_bias"] = False
        if rng.random() < 0.15:
            args["dropout"] = 0.1
    elif kind == "Attention":
        if rng.random() < 0.4:
            args["use_scale"] = True
        if rng.random() < 0.3:
            args["score_mode"] = "concat"
        if rng.random() < 0.1:
            args["dropout"] = 0.2
    else:
        if rng.random() < 0.4:
            args["use_scale"] = False
    return args


def attention(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """A decoder sequence attends over an encoder's outputs."""
    g = Graph(rng)
    kind = rng.choice(
        ["Attention", "AdditiveAttention", "MultiHeadAttention"] + ["MultiHeadAttention"]
    )
    tq, tv = g.length(), g.length()
    q_in = g.input([tq, g.dim(1, 6)])
    v_in = g.input([tv, g.dim(1, 6)]) if rng.random() < 0.75 else q_in
    d = g.dim(2, 8)
    # Same feature size on both sides unless the layer allows otherwise.
    # Attention and AdditiveAttention need the query's size to be the
    # key's (checked only when the model runs): project it.
    project = kind != "MultiHeadAttention" or rng.random() < 0.6
    q = g.add("Dense", q_in, units=d) if project else q_in
    if rng.random() < 0.5:
        v = g.add(rng.choice(RNN_TYPES), v_in, units=d, return_sequences=True)
    else:
        v = g.add("Dense", v_in, units=d)
    k = None
    if rng.random() < 0.35:
        k_units = d if kind != "MultiHeadAttention" else g.dim(2, 8)
        k = g.add("Dense", v_in if v_in != q_in else v, units=k_units)
    broke = None
    if broken:
        broke = rng.choice(
            ["key length", "query size", "not a list"]
            if kind != "MultiHeadAttention"
            else ["key length", "key length", "one tensor"]
        )
        if broke == "key length":
            value_length = tq if v_in == q_in else tv
            other = g.input([(value_length or 5) + rng.randint(1, 3), g.dim(1, 6)])
            k = g.add("Dense", other, units=d)
        elif broke == "query size":
            q = g.add("Dense", q_in, units=d + rng.randint(1, 3))
    keyword = kind == "MultiHeadAttention" and rng.random() < 0.5
    inputs, options = _attention_call(g, kind, q, v, k, keyword=keyword)
    if broke in ("not a list", "one tensor"):
        inputs = q
    att = g.add(kind, inputs, **_attention_args(g, kind), **options)
    outs: list[str] = []
    if options.get("return_attention_scores") and rng.random() < 0.5:
        outs.append(f"{att}[0][1]")
    body = att
    if rng.random() < 0.4:
        body = g.add("Concatenate", [q, att]) if kind != "MultiHeadAttention" else body
    outs.insert(0, g.head(body))
    g.outputs(outs[0] if len(outs) == 1 and rng.random() < 0.5 else outs)
    return g.spec, broke


def transformer(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """A Transformer encoder block: self-attention, residual Add and
    LayerNormalization, a Dense feed-forward, and a head."""
    g = Graph(rng)
    t = g.length(0.15)
    if rng.random() < 0.3:
        x_in = g.input([t], "int32")
        d = g.dim(2, 8)
        x = g.add("Embedding", x_in, input_dim=g.dim(5, 30), output_dim=d)
    else:
        d = g.dim(2, 8)
        x = g.input([t, d])
    heads, key_dim = g.dim(1, 3), g.dim(1, 6)
    call_inputs: Any = [x, x] if rng.random() < 0.6 else {"query": x, "value": x}
    options: Spec = {}
    if rng.random() < 0.4:
        options["use_causal_mask"] = True
    a = g.add("MultiHeadAttention", call_inputs, num_heads=heads, key_dim=key_dim, **options)
    if rng.random() < 0.3:
        a = g.add("Dropout", a, rate=0.1)
    x1 = g.add("Add", [x, a])
    x1 = g.add("LayerNormalization", x1, **({"epsilon": 1e-6} if rng.random() < 0.5 else {}))
    f = g.add("Dense", x1, units=g.dim(4, 16), activation="relu")
    back = d
    broke = None
    if broken:
        broke = "residual size"
        back = d + rng.randint(1, 3)
    f = g.add("Dense", f, units=back)
    x2 = g.add("Add", [x1, f])
    x2 = g.add("LayerNormalization", x2)
    if rng.random() < 0.6:
        g.outputs(g.head(x2, pool=0.9))
    else:
        g.outputs(x2)
    return g.spec, broke


def _broadcastable(g: Graph, dims: list[int | None]) -> list[int | None]:
    """A shape that broadcasts with ``dims`` in Keras's merge rules."""
    rng = g.rng
    other = list(dims)
    draw = rng.random()
    if draw < 0.4:
        return other
    if draw < 0.6 and len(other) > 1:
        return other[1:]  # shorter: right-aligned
    i = rng.randrange(len(other))
    other[i] = 1
    return other


def _mismatch(
    g: Graph, kind: str, shapes: list[list[int | None]], args: Spec
) -> list[list[int | None]]:
    """``shapes`` changed so that ``kind`` refuses them: elementwise, two
    sizes neither 1 nor equal; Concatenate, a dim off its axis; Dot, the
    contracted sizes."""
    first = [d if d is None else max(d, 2) for d in shapes[0]]
    first[-1] = first[-1] or 3
    other = list(first)
    grow = g.rng.randint(1, 3)
    rank = len(first) + 1
    if kind == "Concatenate":
        axis = args.get("axis", -1) % rank
        free = [i for i in range(len(first)) if i != axis - 1]
        if not free:
            return [first, [first[0] + grow]]  # rank 2: a rank mismatch
        i = g.rng.choice(free)
        other[i] = (other[i] or 4) + grow
    elif kind == "Dot":
        axes = args["axes"]
        a0, a1 = (axes, axes) if isinstance(axes, int) else axes
        a1 = a1 % rank
        if first[(a0 % rank) - 1] is None:
            first[(a0 % rank) - 1] = 3
        other = list(first)
        other[a1 - 1] = (first[(a0 % rank) - 1] or 3) + grow
    else:
        other[-1] = first[-1] + grow
    return [first, other, *shapes[2:]]


def merge(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """Two or three sequences merged into one prediction."""
    g = Graph(rng)
    kind = rng.choice(MERGES)
    t, f = g.length(), g.dim(1, 6)
    rank = rng.choice([1, 2, 2])
    base: list[int | None] = [t, f] if rank == 2 else [f]
    broke = None
    encode = rng.random() < 0.3 and rank == 2
    args: Spec = {}
    if kind == "Dot":
        second = list(base)
        if rank == 2:
            axes = rng.choice([1, 2, -1, [1, 1], [2, 2], [1, 2], [2, 1]])
            if axes == [1, 2] or axes == [2, 1]:
                second = [base[1], base[0]] if axes == [2, 1] else [base[1], base[0]]
        else:
            axes = rng.choice([1, -1])
        args["axes"] = axes
        if rng.random() < 0.3:
            args["normalize"] = True
        shapes = [base, second]
        encode = False
    elif kind == "Concatenate":
        axis = rng.choice([-1, -1, 1, 2]) if rank == 2 else -1
        if axis != -1:
            args["axis"] = axis
        a2 = list(base)
        moving = rank if axis in (-1, rank) else axis
        if a2[moving - 1] is not None:
            a2[moving - 1] = g.dim()
        shapes = [base, a2] + ([list(base)] if rng.random() < 0.2 else [])
        encode = encode and axis in (-1, 2)
    else:
        shapes = [base, _broadcastable(g, base)]
        if kind != "Subtract" and rng.random() < 0.25:
            shapes.append(list(base))
    if broken:
        broke = rng.choice(["shapes", "shapes", "count"])
        if broke == "count":
            if kind in ("Subtract", "Dot"):
                shapes.append(list(shapes[0]))
            else:
                shapes = shapes[:1]
                broke = "one input"  # a one-element list: accepted by Keras
        else:
            shapes = _mismatch(g, kind, shapes, args)
            encode = False
    refs = []
    for dims in shapes:
        ref = g.input(dims)
        if encode and len(dims) == 2:
            ref, _ = _sequence_encoder(g, ref, dims[-1])
        refs.append(ref)
    if encode:
        # Encoders may have changed the feature sizes: make them equal.
        units = g.dim(2, 6)
        refs = [g.add("Dense", r, units=units) for r in refs]
    if rng.random() < 0.15:
        # A fixed batch size on every input; or, broken, two sizes
        # (Keras: "Cannot merge tensors with different batch sizes").
        batch = g.dim(1, 8)
        for k, entry in enumerate(g.spec["inputs"]):
            entry["batch_size"] = batch + (k if broken and broke != "one input" else 0)
        if broken and broke != "one input" and len(g.spec["inputs"]) > 1:
            broke = "batch sizes"
    m = g.add(kind, refs, **args)
    if rng.random() < 0.5:
        g.outputs(g.head(m, pool=0.0))
    else:
        g.outputs(m)
    return g.spec, broke


def siamese(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """One encoder applied to two inputs (shared weights), then compared;
    sometimes a triplet (three inputs, three calls), sometimes inputs of
    other lengths (a shared layer's summary shape is its last call's)."""
    g = Graph(rng)
    t, f = g.length(), g.dim(1, 6)
    embed = rng.random() < 0.2
    triplet = rng.random() < 0.25
    lengths = [t] + [t if rng.random() < 0.6 else g.length() for _ in range(2 if triplet else 1)]
    if embed:
        ins = [g.input([n], "int32") for n in lengths]
    else:
        ins = [g.input([n, f]) for n in lengths]
        if broken:
            g.spec["inputs"][1]["shape"] = [lengths[1], f + rng.randint(1, 3)]
    broke = "shared on another size" if broken and not embed else None
    chain_: list[str] = []
    a = ins[0]
    if embed:
        emb = g.add("Embedding", a, input_dim=g.dim(5, 30), output_dim=g.dim(2, 6),
                    mask_zero=rng.random() < 0.4)  # fmt: skip
        chain_.append(emb)
        a = emb
    draw = rng.random()
    units = g.dim(2, 8)
    if draw < 0.3:
        enc = g.add(rng.choice(RNN_TYPES), a, units=units)
    elif draw < 0.5:
        enc = g.add("Bidirectional", a, layer=g.rnn(rng.choice(RNN_TYPES), units))
    elif draw < 0.75:
        enc = g.add("Dense", a, units=units, activation="relu")
        chain_.append(enc)
        enc = g.add("GlobalMaxPooling1D", enc)
    else:
        enc = g.add("Conv1D", a, filters=units, kernel_size=[1], activation="relu")
        chain_.append(enc)
        enc = g.add("GlobalAveragePooling1D", enc)
    chain_.append(enc)
    encoded = [f"{enc}[0][0]" if rng.random() < 0.5 else enc]
    for call, x in enumerate(ins[1:], start=1):
        for layer in chain_:
            g.call(layer, x)
            x = f"{layer}[{call}][0]"
        encoded.append(x)
    if broken and embed:
        # Compare the first call with a call that does not exist.
        broke = "call number"
        encoded[1] = f"{enc}[{len(ins)}][0]"
    kind = rng.choice(["Subtract", "Concatenate", "Dot", "Multiply", "Add", "Maximum", "Minimum"])
    args: Spec = {"axes": 1, "normalize": True} if kind == "Dot" else {}
    if triplet:
        # The anchor's distance to the positive and to the negative.
        pos = g.add(kind, [encoded[0], encoded[1]], **args)
        neg = g.add(kind, [encoded[0], encoded[2]], **args)
        m = g.add("Concatenate", [pos, neg])
    else:
        m = g.add(kind, encoded, **args)
    g.outputs(g.add("Dense", m, units=1, activation="sigmoid"))
    return g.spec, broke


MASK_PASSING = ("Dropout", "Dense", "LayerNormalization", "Activation", "TimeDistributed")
MASK_CONSUMERS = (
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Bidirectional",
    "GlobalAveragePooling1D",
    "BatchNormalization",
    "Attention",
    "MultiHeadAttention",
    "TimeDistributed",
)


def mask(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """A mask from Embedding(mask_zero=True) or Masking flows to consumers."""
    g = Graph(rng)
    t = g.length(0.3)
    if rng.random() < 0.55:
        x_in = g.input([t], rng.choice(["int32", "int32", "int64"]))
        x = g.add("Embedding", x_in, input_dim=g.dim(5, 30), output_dim=g.dim(2, 6),
                  mask_zero=True)  # fmt: skip
    else:
        x_in = g.input([t, g.dim(1, 6)])
        x = g.add("Masking", x_in, **({"mask_value": -1.0} if rng.random() < 0.3 else {}))
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(MASK_PASSING)
        if kind == "Dropout":
            x = g.add(kind, x, rate=0.1)
        elif kind == "Dense":
            x = g.add(kind, x, units=g.dim(2, 6))
        elif kind == "Activation":
            x = g.add(kind, x, activation="relu")
        elif kind == "TimeDistributed":
            x = g.add(kind, x, layer={"type": "Dense", "units": g.dim(2, 6)})
        else:
            x = g.add(kind, x)
    consumer = rng.choice(MASK_CONSUMERS)
    units = g.dim(2, 6)
    if consumer in RNN_TYPES:
        y = g.add(consumer, x, units=units, return_sequences=rng.random() < 0.3)
    elif consumer == "Bidirectional":
        y = g.add(consumer, x, layer=g.rnn(rng.choice(RNN_TYPES), units))
    elif consumer == "Attention":
        y = g.add(consumer, [x, x])
    elif consumer == "MultiHeadAttention":
        y = g.add(consumer, [x, x], num_heads=2, key_dim=units)
    elif consumer == "TimeDistributed":
        y = g.add(consumer, x, layer={"type": "Dense", "units": units})
    else:
        y = g.add(consumer, x)
    broke = None
    if broken:
        broke = "dangling reference"
        y = "nope_" + y
    g.outputs(g.head(y, pool=0.0) if rng.random() < 0.6 else y)
    return g.spec, broke


def multi_io(rng: random.Random, broken: bool) -> tuple[Spec, str | None]:
    """Several inputs, branches merged, several output heads."""
    g = Graph(rng)
    n = rng.randint(2, 3)
    t = g.length()
    refs = []
    for _ in range(n):
        ref = g.input([t, g.dim(1, 6)])
        refs.append(ref)
    units = g.dim(2, 6)
    encoded = [g.add(rng.choice(["Dense", "LSTM", "GRU"]), r, units=units,
                     **({} if rng.random() < 0.5 else {})) for r in refs]  # fmt: skip
    # Dense keeps the sequence; the RNNs return a vector: bring all to one.
    vectors = []
    for e, entry in zip(encoded, g.spec["layers"][-n:], strict=True):
        vectors.append(g.add("GlobalAveragePooling1D", e) if entry["type"] == "Dense" else e)
    if rng.random() < 0.2:
        g.input([g.dim(1, 4)])  # an input no layer uses
    merged = g.add(rng.choice(["Concatenate", "Add", "Average", "Maximum", "Minimum"]), vectors)
    heads = [g.add("Dense", merged, units=g.dim(1, 5)) for _ in range(rng.randint(1, 3))]
    outs: list[str] = list(heads)
    if rng.random() < 0.3:
        outs.append(vectors[0])  # an intermediate tensor
    if rng.random() < 0.15:
        outs.append(refs[0])  # an input as an output
    if rng.random() < 0.1:
        outs.append(outs[0])  # one tensor twice
    rng.shuffle(outs)
    broke = None
    if broken:
        broke = rng.choice(["unknown output", "output index"])
        if broke == "unknown output":
            outs.append("nowhere")
        else:
            outs[0] = f"{heads[0]}[0][3]"
    g.outputs(outs)
    return g.spec, broke


FAMILIES: dict[str, Callable[[random.Random, bool], tuple[Spec, str | None]]] = {
    "chain": chain,
    "encoder_decoder": encoder_decoder,
    "attention": attention,
    "transformer": transformer,
    "merge": merge,
    "siamese": siamese,
    "mask": mask,
    "multi_io": multi_io,
}

#: How often each family is drawn.
WEIGHTS = {
    "chain": 3,
    "encoder_decoder": 3,
    "attention": 3,
    "transformer": 2,
    "merge": 3,
    "siamese": 2,
    "mask": 2,
    "multi_io": 2,
}


# -- generic breakage --------------------------------------------------------


def references(spec: Spec) -> list[tuple[Spec, str]]:
    """(entry, key) of every entry's ``inputs`` that is a plain reference."""
    out = []
    for entry in spec["layers"]:
        if isinstance(entry.get("inputs"), str):
            out.append((entry, "inputs"))
    return out


def all_names(spec: Spec) -> list[str]:
    """The names the spec gives explicitly or Keras gives automatically
    (replaying ``Graph``'s naming)."""
    g = Graph(random.Random(0))
    names = [i.get("name") or g.auto("InputLayer") for i in spec["inputs"]]
    for entry in spec["layers"]:
        if "type" in entry:
            names.append(g.name_layer(entry))
            g.called(entry["type"])
    return names


def dangling(rng: random.Random, spec: Spec) -> str | None:
    """A reference to a layer that does not exist, or comes later."""
    refs = references(spec)
    if not refs:
        return None
    entry, key = rng.choice(refs)
    names = all_names(spec)
    creating = [e for e in spec["layers"] if "type" in e]
    later = []
    if "type" in entry:
        later = names[len(spec["inputs"]) + creating.index(entry) + 1 :]
    entry[key] = rng.choice(later) if later and rng.random() < 0.5 else "missing_layer"
    return "dangling reference"


def duplicate(rng: random.Random, spec: Spec) -> str | None:
    """A layer given the name of another (or of an input)."""
    creating = [e for e in spec["layers"] if "type" in e]
    names = all_names(spec)
    if len(names) < 2 or not creating:
        return None
    entry = rng.choice(creating)
    own = names[len(spec["inputs"]) + [e for e in spec["layers"] if "type" in e].index(entry)]
    others = [n for n in names if n != own]
    if not others:
        return None
    entry["name"] = rng.choice(others)
    return "duplicate name"


def bad_output(rng: random.Random, spec: Spec) -> str | None:
    """An output naming no tensor: an unknown name, a tensor index past
    the layer's outputs, or a call that never happened."""
    names = all_names(spec)[len(spec["inputs"]) :]
    if not names:
        return None
    name = rng.choice(names)
    spec["outputs"] = rng.choice(["unknown_output", f"{name}[0][7]", f"{name}[3][0]"])
    return "bad output"


def missing_first_inputs(rng: random.Random, spec: Spec) -> str | None:
    """The first entry without ``inputs`` when the model has several."""
    if len(spec["inputs"]) < 2 or "inputs" not in spec["layers"][0]:
        return None
    del spec["layers"][0]["inputs"]
    return "first entry without inputs"


BREAKERS = (dangling, duplicate, bad_output, missing_first_inputs)


def generate_tagged(
    n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED
) -> list[tuple[str, str | None, Spec]]:
    """``n`` (family, how broken or None, spec), the same for the same
    arguments and registry."""
    families = [f for f, w in WEIGHTS.items() for _ in range(w)]
    out = []
    for i in range(n):
        family = families[i % len(families)]
        # Each spec draws from its own generator, so that one family's draws
        # (the chains' depend on the registry) do not move the others.
        rng = random.Random(seed * 1_000_003 + i)
        broken = rng.random() < INVALID_SHARE
        generic = broken and family != "chain" and rng.random() < 0.35
        spec, broke = FAMILIES[family](rng, broken and not generic)
        if generic:
            for breaker in rng.sample(BREAKERS, len(BREAKERS)):
                broke = breaker(rng, spec)
                if broke:
                    break
        if rng.random() < 0.06 and "name" not in spec:
            spec["name"] = f"model_{rng.randint(0, 9)}"
        out.append((family, broke, copy.deepcopy(spec)))
    return out


def generate(n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Spec]:
    """``n`` graph specs (see the module docstring)."""
    return [spec for _, _, spec in generate_tagged(n, seed)]


def families_of(tagged: list[tuple[str, str | None, Spec]]) -> Counter[str]:
    return Counter(f for f, _, _ in tagged)
