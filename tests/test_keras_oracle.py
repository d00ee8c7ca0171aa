"""seqlab against real Keras: a random corpus, the to_json form, the seed
article's models, and the Keras-verified golden table.

The corpus (``tests/corpus.py``) is built with Keras through the worker's
builder (``tests/keras_oracle.py``); for every spec the engine must refuse
exactly what Keras refuses to build, and otherwise report what Keras
reports: names, output shapes, per-layer counts and trainable split,
weights (their dtypes included), totals and the ``model.summary()`` text.
A refusal must quote Keras 3.15's reason word for word
(``keras_oracle.refusal_differs``): only the exception type, Keras's
``Exception encountered when calling ...`` frame and argument dump, the
``Inputs received: [<KerasTensor ...>]`` list and TensorFlow's NodeDef
lines are normalised away, and the engine may add a hint after the quote.
Where Keras fails internally instead of giving a reason (an ``IndexError``,
a variable of unknown shape, ``Cannot convert '2' to a shape`` ...:
``keras_oracle.KERAS_INTERNAL``), only the verdict is compared and the
engine gives its own reason. All disagreements are listed at once.

One kind of disagreement is tolerated, and counted: the engine refuses a
model that Keras's symbolic build accepts but that Keras cannot then run
as it describes it (``keras_oracle.keras_run_error``), e.g. TimeDistributed
of a layer given the wrong rank, which Keras builds without checking that
layer's InputSpec. The worker could not train those either.

These tests need Keras (the ``worker`` extra); they fail, not skip,
without it. The golden table needs only the engine.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import corpus
import keras_oracle as oracle
import pytest
from specs import MANY_TO_MANY
from specs import MANY_TO_ONE
from specs import ONE_TO_ONE
from specs import POLICY_SPEC

from seqlab import LAYERS
from seqlab import SpecError
from seqlab import analyze
from seqlab import from_keras_json
from seqlab import render_summary
from seqlab.args import DTYPE_POLICIES

#: Keys compared for the to_json round trip (everything the summary shows).
JSON_KEYS = oracle.COMPARED


@dataclass
class Case:
    index: int
    spec: dict[str, Any]
    keras: dict[str, Any] | str
    engine: dict[str, Any] | str
    #: "agree", "build-only" (tolerated, see the module docstring) or
    #: "mismatch".
    status: str
    differences: list[str]
    run_error: str | None = None

    @property
    def keras_valid(self) -> bool:
        return not isinstance(self.keras, str)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    """Every corpus spec with both reports (built once for the module)."""
    out = []
    for i, spec in enumerate(corpus.generate()):
        keras = oracle.keras_report(spec)
        engine = oracle.engine_report(spec)
        differences = oracle.compare(engine, keras)
        status, run_error = "agree", None
        if differences:
            status = "mismatch"
            if isinstance(engine, str) and not isinstance(keras, str):
                run_error = oracle.keras_run_error(spec)
                if run_error is not None:
                    status = "build-only"
        out.append(Case(i, spec, keras, engine, status, differences, run_error))
    return out


def describe(case: Case, differences: list[str]) -> str:
    lines = [f"#{case.index} {json.dumps(case.spec)}"]
    lines += [f"    {d}" for d in differences]
    if isinstance(case.engine, str):
        lines.append(f"    engine: {case.engine}")
    if isinstance(case.keras, str):
        lines.append(f"    keras: {case.keras[:500]}")
    return "\n".join(lines)


@pytest.mark.keras
@pytest.mark.slow
def test_engine_agrees_with_keras_on_the_corpus(cases: list[Case]) -> None:
    mismatches = [c for c in cases if c.status == "mismatch"]
    report = "\n\n".join(describe(c, c.differences) for c in mismatches)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} specs disagree:\n\n{report}"


@pytest.mark.keras
@pytest.mark.slow
def test_tolerated_refusals_are_models_keras_cannot_run(cases: list[Case]) -> None:
    """The tolerated disagreements stay a small, explained minority."""
    build_only = [c for c in cases if c.status == "build-only"]
    assert all(c.run_error for c in build_only)
    assert len(build_only) <= len(cases) // 50, "\n\n".join(
        describe(c, [f"keras cannot run it: {c.run_error}"]) for c in build_only
    )


@pytest.mark.keras
@pytest.mark.slow
def test_corpus_covers_every_layer_valid_and_invalid(cases: list[Case]) -> None:
    assert len(cases) >= 500
    invalid = sum(not c.keras_valid for c in cases)
    assert 0.25 <= invalid / len(cases) <= 0.35, f"{invalid} of {len(cases)} invalid"
    valid_types: Counter[str] = Counter()
    invalid_types: Counter[str] = Counter()
    for case in cases:
        for type_ in corpus.types_in(case.spec):
            (valid_types if case.keras_valid else invalid_types)[type_] += 1
    types = corpus.SEQUENTIAL_TYPES
    rare = {t: valid_types[t] + invalid_types[t] for t in types}
    assert all(n >= 5 for n in rare.values()), rare
    one_sided = [t for t in types if not valid_types[t] or not invalid_types[t]]
    assert len(one_sided) <= len(types) // 10, one_sided


@pytest.mark.keras
@pytest.mark.slow
def test_corpus_varies_what_matters(cases: list[Case]) -> None:
    """The arguments that change shapes and counts all occur."""
    layers = [
        layer
        for case in cases
        for top in case.spec["layers"]
        for layer in (top, *(v for v in top.values() if isinstance(v, dict)))
    ]

    def values(type_: str, arg: str) -> set[Any]:
        """The values ``arg`` takes in the corpus, its default included."""
        default = next(a.default for a in LAYERS[type_].all_args() if a.name == arg)
        return {json.dumps(layer.get(arg, default)) for layer in layers if layer["type"] == type_}

    assert {'"concat"', '"sum"', '"mul"', '"ave"', "null"} <= values("Bidirectional", "merge_mode")
    assert {'"valid"', '"same"', '"causal"'} <= values("Conv1D", "padding")
    assert {"true", "false"} <= values("GRU", "reset_after")
    assert {"true", "false"} <= values("BatchNormalization", "renorm")
    wrapped = {
        top["layer"]["type"]
        for case in cases
        for top in case.spec["layers"]
        if top["type"] == "TimeDistributed"
    }
    types = set(corpus.SEQUENTIAL_TYPES)
    assert wrapped == types, sorted(types - wrapped)
    specs = [c.spec for c in cases]
    assert any(s.get("batch_size") for s in specs)
    assert any(s["dtype"] == "int32" for s in specs)
    assert any(None in s["input_shape"] for s in specs)
    assert {len(s["input_shape"]) for s in specs} >= {1, 2, 3}
    assert any(layer.get("trainable") is False for layer in layers)
    assert any("name" in layer for layer in layers)
    policies = {layer.get("dtype") for layer in layers}
    assert set(DTYPE_POLICIES) <= policies, policies
    wrapped_policies = {
        top[key].get("dtype") for top in layers for key in ("layer", "backward_layer")
        if isinstance(top.get(key), dict)
    }  # fmt: skip
    assert {"float64", "float16"} <= wrapped_policies, wrapped_policies


@pytest.mark.keras
@pytest.mark.slow
def test_to_json_of_valid_models_reads_back_the_same(cases: list[Case]) -> None:
    """analyze(from_keras_json(model.to_json())) reports what Keras reports."""
    failures = []
    for case in cases:
        if not case.keras_valid or case.status == "build-only":
            continue
        assert isinstance(case.keras, dict)
        try:
            spec = from_keras_json(json.loads(case.keras["json"]))
            engine = oracle.report_fields(analyze(spec))
        except SpecError as error:
            failures.append(describe(case, [f"to_json refused: {error.path}: {error.message}"]))
            continue
        differences = oracle.compare(engine, {k: case.keras[k] for k in JSON_KEYS})
        if differences:
            failures.append(describe(case, differences))
    assert not failures, f"{len(failures)} to_json documents differ:\n\n" + "\n\n".join(failures)


@pytest.mark.keras
@pytest.mark.slow
def test_to_json_of_invalid_models_is_refused_by_both(cases: list[Case]) -> None:
    """The serialized (unbuilt) layers of a refused spec: both refuse them."""
    failures = []
    for case in cases:
        if case.keras_valid:
            continue
        doc = oracle.unbuilt_model_json(case.spec)
        problems = []
        try:
            analyze(from_keras_json(doc))
            problems.append("the engine accepts the to_json form")
        except SpecError:
            pass
        try:
            oracle.keras_loads(doc)
            problems.append("keras.models.model_from_json accepts it")
        except Exception:  # noqa: BLE001 - any refusal counts
            pass
        if problems:
            failures.append(describe(case, [*problems, f"json: {json.dumps(doc)[:2000]}"]))
    assert not failures, f"{len(failures)} refused specs:\n\n" + "\n\n".join(failures)


# -- the seed article --------------------------------------------------------

SEED_MODELS = {
    # name: (spec, output shapes in Keras 3, params by layer)
    "one_to_one": (ONE_TO_ONE, [(None, 5), (None, 1)], [140, 6]),
    "many_to_one": (MANY_TO_ONE, [(None, 5), (None, 5)], [140, 30]),
    "many_to_many": (MANY_TO_MANY, [(None, 5, 5), (None, 5, 1)], [140, 6]),
}


def article_model(name: str) -> Any:
    """The article's model, built the article's way (``Sequential().add``
    with ``input_shape=`` on the first layer)."""
    keras = oracle.import_keras()
    from keras.layers import LSTM
    from keras.layers import Dense
    from keras.layers import TimeDistributed
    from keras.models import Sequential

    keras.backend.clear_session(free_memory=False)
    length = 5
    model = Sequential()
    if name == "one_to_one":
        model.add(LSTM(length, input_shape=(1, 1)))
        model.add(Dense(1))
    elif name == "many_to_one":
        model.add(LSTM(length, input_shape=(length, 1)))
        model.add(Dense(length))
    else:
        model.add(LSTM(length, input_shape=(length, 1), return_sequences=True))
        model.add(TimeDistributed(Dense(1)))
    return model


@pytest.mark.keras
@pytest.mark.parametrize("name", SEED_MODELS)
def test_seed_article_models(name: str) -> None:
    spec, shapes, params = SEED_MODELS[name]
    report = analyze(spec)
    assert [layer.output_shape for layer in report.layers] == shapes
    assert [layer.params for layer in report.layers] == params
    assert report.total_params == report.trainable_params == sum(params)
    # Keras 3, built through the worker and as the article's script does.
    keras = oracle.keras_report(spec)
    assert isinstance(keras, dict)
    assert oracle.compare(oracle.report_fields(report), keras) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # input_shape= on a layer warns
        model = article_model(name)
        assert oracle.summary_text(model) == render_summary(report)
        assert model.count_params() == sum(params)


def test_seed_article_totals() -> None:
    """146, 170, 146; the first LSTM is (None, 5) in Keras, not the article's
    (None, 1, 5)."""
    totals = {name: analyze(spec).total_params for name, (spec, _, _) in SEED_MODELS.items()}
    assert totals == {"one_to_one": 146, "many_to_one": 170, "many_to_many": 146}
    first = analyze(ONE_TO_ONE)
    assert first.layers[0].output_shape == (None, 5)


# -- the golden table (keras-params.md §7, Keras-verified) -------------------

N = None
LSTM5 = {"type": "LSTM", "units": 5}
BI = "Bidirectional"
GOLDEN: list[tuple[str, dict[str, Any], tuple[Any, ...], Any, int, int, int]] = [
    # (row, layer, input without batch, output, params, trainable, non-trainable)
    ("LSTM(5)", LSTM5, (1, 1), (N, 5), 140, 140, 0),
    ("LSTM(5) seq", {**LSTM5, "return_sequences": True}, (10, 3), (N, 10, 5), 180, 180, 0),
    ("LSTM(5) state", {**LSTM5, "return_state": True}, (10, 3), [(N, 5)] * 3, 180, 180, 0),
    (
        "LSTM(5) seq+state",
        {**LSTM5, "return_sequences": True, "return_state": True},
        (10, 3),
        [(N, 10, 5), (N, 5), (N, 5)],
        180,
        180,
        0,
    ),
    ("LSTM(5) use_bias=False", {**LSTM5, "use_bias": False}, (10, 3), (N, 5), 160, 160, 0),
    ("LSTM(64) in 32", {"type": "LSTM", "units": 64}, (N, 32), (N, 64), 24832, 24832, 0),
    ("GRU(5)", {"type": "GRU", "units": 5}, (10, 3), (N, 5), 150, 150, 0),
    (
        "GRU(5) reset_after=False",
        {"type": "GRU", "units": 5, "reset_after": False},
        (10, 3),
        (N, 5),
        135,
        135,
        0,
    ),
    (
        "GRU(5) use_bias=False",
        {"type": "GRU", "units": 5, "use_bias": False},
        (10, 3),
        (N, 5),
        120,
        120,
        0,
    ),
    (
        "GRU(5) state",
        {"type": "GRU", "units": 5, "return_sequences": True, "return_state": True},
        (10, 3),
        [(N, 10, 5), (N, 5)],
        150,
        150,
        0,
    ),
    ("SimpleRNN(5)", {"type": "SimpleRNN", "units": 5}, (10, 3), (N, 5), 45, 45, 0),
    (
        "SimpleRNN(5) state",
        {"type": "SimpleRNN", "units": 5, "return_state": True},
        (10, 3),
        [(N, 5), (N, 5)],
        45,
        45,
        0,
    ),
    ("Bi(LSTM(5)) concat", {"type": BI, "layer": LSTM5}, (10, 3), (N, 10), 360, 360, 0),
    (
        "Bi(LSTM(5),seq) sum",
        {"type": BI, "layer": {**LSTM5, "return_sequences": True}, "merge_mode": "sum"},
        (10, 3),
        (N, 10, 5),
        360,
        360,
        0,
    ),
    (
        "Bi(LSTM(5)) mul",
        {"type": BI, "layer": LSTM5, "merge_mode": "mul"},
        (10, 3),
        (N, 5),
        360,
        360,
        0,
    ),
    (
        "Bi(LSTM(5)) ave",
        {"type": BI, "layer": LSTM5, "merge_mode": "ave"},
        (10, 3),
        (N, 5),
        360,
        360,
        0,
    ),
    (
        "Bi(LSTM(5),seq) None",
        {"type": BI, "layer": {**LSTM5, "return_sequences": True}, "merge_mode": None},
        (10, 3),
        [(N, 10, 5), (N, 10, 5)],
        360,
        360,
        0,
    ),
    (
        "Bi(LSTM(5),state) concat",
        {"type": BI, "layer": {**LSTM5, "return_state": True}},
        (10, 3),
        [(N, 10), (N, 5), (N, 5), (N, 5), (N, 5)],
        360,
        360,
        0,
    ),
    (
        "Bi(LSTM(5),state) None",
        {"type": BI, "layer": {**LSTM5, "return_state": True}, "merge_mode": None},
        (10, 3),
        [(N, 5)] * 6,
        360,
        360,
        0,
    ),
    (
        "Bi(GRU(5))",
        {"type": BI, "layer": {"type": "GRU", "units": 5}},
        (10, 3),
        (N, 10),
        300,
        300,
        0,
    ),
    (
        "Bi(LSTM(5), backward=LSTM(7))",
        {
            "type": BI,
            "layer": LSTM5,
            "backward_layer": {"type": "LSTM", "units": 7, "go_backwards": True},
        },
        (10, 3),
        (N, 10),
        488,
        488,
        0,
    ),
    (
        "TD(Dense(1))",
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
        (5, 5),
        (N, 5, 1),
        6,
        6,
        0,
    ),
    (
        "TD(Dense(4)) on 4D",
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 4}},
        (5, 6, 3),
        (N, 5, 6, 4),
        16,
        16,
        0,
    ),
    (
        "TD(Conv1D(8,3))",
        {"type": "TimeDistributed", "layer": {"type": "Conv1D", "filters": 8, "kernel_size": 3}},
        (5, 20, 3),
        (N, 5, 18, 8),
        80,
        80,
        0,
    ),
    ("Dense(4) 2D", {"type": "Dense", "units": 4}, (3,), (N, 4), 16, 16, 0),
    ("Dense(4) 4D", {"type": "Dense", "units": 4}, (7, 10, 3), (N, 7, 10, 4), 16, 16, 0),
    (
        "Dense(4) nobias",
        {"type": "Dense", "units": 4, "use_bias": False},
        (10, 3),
        (N, 10, 4),
        12,
        12,
        0,
    ),
    (
        "Embedding(1000,64,mask_zero)",
        {"type": "Embedding", "input_dim": 1000, "output_dim": 64, "mask_zero": True},
        (N,),
        (N, N, 64),
        64000,
        64000,
        0,
    ),
    (
        "Embedding 2D input",
        {"type": "Embedding", "input_dim": 100, "output_dim": 8},
        (4, 5),
        (N, 4, 5, 8),
        800,
        800,
        0,
    ),
    (
        "Conv1D(8,3) valid",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3},
        (20, 4),
        (N, 18, 8),
        104,
        104,
        0,
    ),
    (
        "Conv1D(8,3) causal",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "padding": "causal"},
        (20, 4),
        (N, 20, 8),
        104,
        104,
        0,
    ),
    (
        "Conv1D(8,3) strides2 same",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        (20, 4),
        (N, 10, 8),
        104,
        104,
        0,
    ),
    (
        "Conv1D(8,3) dil2 valid",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "dilation_rate": 2},
        (20, 4),
        (N, 16, 8),
        104,
        104,
        0,
    ),
    (
        "Conv1D(8,3) groups2",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "groups": 2},
        (20, 4),
        (N, 18, 8),
        56,
        56,
        0,
    ),
    (
        "Conv1D(8,3) None len",
        {"type": "Conv1D", "filters": 8, "kernel_size": 3},
        (N, 4),
        (N, N, 8),
        104,
        104,
        0,
    ),
    (
        "Conv1D(8,4) strides3 valid",
        {"type": "Conv1D", "filters": 8, "kernel_size": 4, "strides": 3},
        (21, 4),
        (N, 6, 8),
        136,
        136,
        0,
    ),
    ("MaxPooling1D()", {"type": "MaxPooling1D"}, (21, 4), (N, 10, 4), 0, 0, 0),
    (
        "MaxPooling1D(3,2,same)",
        {"type": "MaxPooling1D", "pool_size": 3, "strides": 2, "padding": "same"},
        (21, 4),
        (N, 11, 4),
        0,
        0,
        0,
    ),
    (
        "AveragePooling1D(3)",
        {"type": "AveragePooling1D", "pool_size": 3},
        (20, 4),
        (N, 6, 4),
        0,
        0,
        0,
    ),
    (
        "GlobalAveragePooling1D keepdims",
        {"type": "GlobalAveragePooling1D", "keepdims": True},
        (20, 4),
        (N, 1, 4),
        0,
        0,
        0,
    ),
    ("GlobalMaxPooling1D", {"type": "GlobalMaxPooling1D"}, (20, 4), (N, 4), 0, 0, 0),
    ("Flatten None", {"type": "Flatten"}, (N, 4), (N, N), 0, 0, 0),
    ("RepeatVector(3)", {"type": "RepeatVector", "n": 3}, (4,), (N, 3, 4), 0, 0, 0),
    ("Reshape((5,-1))", {"type": "Reshape", "target_shape": [5, -1]}, (20, 4), (N, 5, 16), 0, 0, 0),
    (
        "Reshape((-1,2)) None",
        {"type": "Reshape", "target_shape": [-1, 2]},
        (N, 4),
        (N, N, 2),
        0,
        0,
        0,
    ),
    ("Permute((2,1))", {"type": "Permute", "dims": [2, 1]}, (20, 4), (N, 4, 20), 0, 0, 0),
    (
        "SpatialDropout1D(0.2)",
        {"type": "SpatialDropout1D", "rate": 0.2},
        (20, 4),
        (N, 20, 4),
        0,
        0,
        0,
    ),
    ("BatchNormalization 3D", {"type": "BatchNormalization"}, (20, 4), (N, 20, 4), 16, 8, 8),
    (
        "BatchNormalization center=F scale=F",
        {"type": "BatchNormalization", "center": False, "scale": False},
        (4,),
        (N, 4),
        8,
        0,
        8,
    ),
    (
        "BatchNormalization renorm",
        {"type": "BatchNormalization", "renorm": True},
        (4,),
        (N, 4),
        28,
        8,
        20,
    ),
    ("LayerNormalization", {"type": "LayerNormalization"}, (20, 4), (N, 20, 4), 8, 8, 0),
    (
        "LayerNormalization axis=[1,2]",
        {"type": "LayerNormalization", "axis": [1, 2]},
        (20, 4),
        (N, 20, 4),
        160,
        160,
        0,
    ),
    (
        "ConvLSTM1D(8,3)",
        {"type": "ConvLSTM1D", "filters": 8, "kernel_size": 3},
        (5, 20, 4),
        (N, 18, 8),
        1184,
        1184,
        0,
    ),
    (
        "ConvLSTM1D(8,3) state",
        {"type": "ConvLSTM1D", "filters": 8, "kernel_size": 3, "return_state": True},
        (5, 20, 4),
        [(N, 18, 8)] * 3,
        1184,
        1184,
        0,
    ),
]


@pytest.mark.parametrize(
    ("layer", "input_shape", "output", "params", "trainable", "non_trainable"),
    [row[1:] for row in GOLDEN],
    ids=[row[0] for row in GOLDEN],
)
def test_golden_table(
    layer: dict[str, Any],
    input_shape: tuple[Any, ...],
    output: Any,
    params: int,
    trainable: int,
    non_trainable: int,
) -> None:
    """keras-params.md §7 rows: the engine alone, Keras-verified numbers."""
    report = analyze({"input_shape": list(input_shape), "layers": [layer]}).layers[0]
    assert report.output_shape == output
    assert (report.params, report.trainable_params, report.non_trainable_params) == (
        params,
        trainable,
        non_trainable,
    )


def test_golden_stateful_batch() -> None:
    """``LSTM stateful batch 4``: every shape shows the fixed batch."""
    report = analyze(
        {"input_shape": [10, 3], "batch_size": 4, "layers": [{**LSTM5, "stateful": True}]}
    )
    assert (report.layers[0].output_shape, report.total_params) == ((4, 5), 180)


def test_golden_frozen_layer_footer() -> None:
    """§2.1: a frozen LSTM(8) on 3 features, then Dense(1): 9 and 384."""
    report = analyze(
        {
            "input_shape": [10, 3],
            "layers": [
                {"type": "LSTM", "units": 8, "trainable": False},
                {"type": "Dense", "units": 1},
            ],
        }
    )
    footer = render_summary(report).splitlines()[-2:]
    assert footer == [" Trainable params: 9 (36.00 B)", " Non-trainable params: 384 (1.50 KB)"]


def test_golden_rows_cover_every_layer_type() -> None:
    covered = set()
    for _, layer, *_ in GOLDEN:
        covered.add(layer["type"])
        covered.update(v["type"] for v in layer.values() if isinstance(v, dict))
    # Weightless per-element layers aside; the layers of several tensors
    # have their own tests (test_merging.py, test_attention.py).
    weightless = {"Dropout", "Activation", "Masking", "Embedding", "ReLU"}
    assert covered >= set(corpus.SEQUENTIAL_TYPES) - weightless


# -- layer dtype policies -----------------------------------------------------


def test_layer_dtype_policies_set_the_bytes() -> None:
    report = analyze(POLICY_SPEC)
    assert (report.total_params, report.param_bytes) == (64, 60 * 8 + 4 * 2)
    assert render_summary(report).splitlines()[-3:] == [
        " Total params: 64 (488.00 B)",
        " Trainable params: 64 (488.00 B)",
        " Non-trainable params: 0 (0.00 B)",
    ]
    assert [w.dtype for layer in report.layers for w in layer.weights] == [
        "float64", "float64", "float64", "bfloat16", "bfloat16"
    ]  # fmt: skip


@pytest.mark.keras
def test_layer_dtype_policies_as_keras_builds_and_serializes_them() -> None:
    """The summary and each variable's dtype, built by the worker's builder,
    and the same read back from ``model.to_json()``."""
    keras = oracle.keras_report(POLICY_SPEC)
    assert isinstance(keras, dict), keras
    assert keras["summary"].splitlines()[-3] == " Total params: 64 (488.00 B)"
    assert oracle.compare(oracle.engine_report(POLICY_SPEC), keras) == []
    from_json = oracle.report_fields(analyze(from_keras_json(json.loads(keras["json"]))))
    assert oracle.compare(from_json, keras) == []


@pytest.mark.keras
def test_built_variables_have_the_engines_dtypes() -> None:
    """Every policy, on plain and wrapped layers, frozen and mixed: the
    model ``worker.builder.build_model`` makes has each variable in the
    dtype the engine reports."""
    spec = {
        "input_shape": [6, 4],
        "layers": [
            {
                "type": "Bidirectional",
                "dtype": "float64",  # does not reach the wrapped layers
                "layer": {"type": "GRU", "units": 2, "return_sequences": True, "dtype": "float16"},
                "backward_layer": {"type": "GRU", "units": 2, "return_sequences": True,
                                   "go_backwards": True, "dtype": "mixed_bfloat16"},
            },
            {"type": "BatchNormalization", "dtype": "bfloat16", "trainable": False},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3},
             "dtype": "float64"},
            {"type": "Conv1D", "filters": 2, "kernel_size": 2, "dtype": "mixed_float16"},
            {"type": "Dense", "units": 1, "dtype": "float64"},
        ],
    }  # fmt: skip
    from worker.builder import build_model

    oracle.import_keras()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(spec)
    built = [(v.path.split("/", 1)[1], str(v.dtype)) for v in model.weights]
    report = analyze(spec)
    engine = [(f"{layer.name}/{w.name}", w.dtype) for layer in report.layers for w in layer.weights]
    # Keras's paths name the RNN cell (gru/gru_cell/kernel); the engine's do not.
    assert [(p.replace("_cell", "").replace("/gru/", "/"), d) for p, d in built] == [
        (p.replace("/gru/", "/"), d) for p, d in engine
    ]
    assert {d for _, d in built} == {"float16", "float32", "bfloat16", "float64"}
    assert oracle.summary_text(model) == render_summary(report)


# -- long names in the summary ------------------------------------------------

LONG_NAMES = [
    # (model name, first layer's name): up to the 128 characters the API allows.
    (None, "a" * 31),
    (None, "b" * 32),
    ("m" * 71, "c" * 40),
    ("m" * 72, "d" * 128),
    ("m" * 78, "e_" * 40),
    ("m" * 79, "f" * 29 + ".x"),
    ("m" * 128, "g-" * 64),
]


@pytest.mark.keras
@pytest.mark.parametrize(("model_name", "layer_name"), LONG_NAMES)
def test_long_names_print_as_in_keras(model_name: str | None, layer_name: str) -> None:
    """Keras's rich table cuts a name longer than its column with ``…``
    and the console wraps and folds a long model name at 80 columns."""
    spec: dict[str, Any] = {
        "input_shape": [5, 3],
        "layers": [
            {"type": "Dense", "units": 2, "name": layer_name},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 4, "name": "x" * 60}},
        ],
    }
    if model_name:
        spec["name"] = model_name
    keras = oracle.keras_report(spec)
    assert isinstance(keras, dict), keras
    assert render_summary(analyze(spec)) == keras["summary"]


# -- activations Keras builds but cannot run -----------------------------------

RUN_FAILURES = [
    ({"type": "Dense", "units": 3, "activation": "glu"}, "layers.0.activation",
     "axis size must be divisible by 2. Received: x.shape=(None, 5, 3) with axis=-1"),
    ({"type": "Activation", "activation": "threshold"}, "layers.0.activation",
     "threshold() missing 2 required positional arguments: 'threshold' and 'default_value'"),
    ({"type": "Conv1D", "filters": 3, "kernel_size": 2, "activation": "threshold"},
     "layers.0.activation", "threshold() missing 2 required positional arguments"),
    ({"type": "LSTM", "units": 4, "recurrent_activation": "glu"},
     "layers.0.recurrent_activation", "halves the last axis"),
    ({"type": "GRU", "units": 4, "activation": "glu"}, "layers.0.activation",
     "halves the last axis"),
]  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize(("layer", "path", "reason"), RUN_FAILURES)
def test_activations_keras_cannot_run_are_refused(layer: dict, path: str, reason: str) -> None:
    spec = {"input_shape": [5, 3], "layers": [layer]}
    with pytest.raises(SpecError) as info:
        analyze(spec)
    assert (info.value.path, reason in info.value.message) == (path, True)
    assert isinstance(oracle.keras_report(spec), dict)  # Keras builds it ...
    assert oracle.keras_run_error(spec)  # ... and fails on its first call


#: Sequential models whose mask a layer cannot take: Keras builds them, and
#: the first call fails.
MASK_FAILURES = [
    ({"input_shape": [1, 6, 7], "layers": [
        {"type": "Masking"}, {"type": "LayerNormalization"},
        {"type": "ConvLSTM1D", "filters": 1, "kernel_size": [5]}]}, "layers.2"),
]  # fmt: skip


def lenient_fields(spec: dict[str, Any]) -> tuple[dict[str, Any], list[SpecError]]:
    """``analyze(spec, strict=False)`` (``POST /params``) in the oracle's
    form, and its first-call failures."""
    report = analyze(spec, strict=False)
    return oracle.report_fields(report), report.first_call_failures


@pytest.mark.keras
@pytest.mark.parametrize(
    ("spec", "path"),
    [({"input_shape": [5, 3], "layers": [layer, {"type": "Dense", "units": 2}]}, path)
     for layer, path, _ in RUN_FAILURES] + MASK_FAILURES,
)  # fmt: skip
def test_models_keras_cannot_run_are_counted_as_keras_builds_them(
    spec: dict[str, Any], path: str
) -> None:
    """Without ``strict`` the engine reports what Keras's built model says
    (names, shapes, counts, weights, summary), with the strict refusal as
    its first first-call failure."""
    with pytest.raises(SpecError) as info:
        analyze(spec)
    engine, failures = lenient_fields(spec)
    assert [(f.path, f.message) for f in failures[:1]] == [(info.value.path, info.value.message)]
    assert info.value.path.startswith(path)
    keras = oracle.keras_report(spec)
    assert oracle.compare(engine, keras) == []
    assert oracle.keras_run_error(spec)


@pytest.mark.keras
@pytest.mark.slow
def test_corpus_models_answered_with_warnings_are_built_by_keras_and_fail_to_run() -> None:
    """Every corpus spec the engine answers with first-call failures: Keras
    builds it as the engine reports it, and cannot run it (the converse,
    that the engine refuses no such model it could report, is the
    ``build-only`` count of the corpus test)."""
    found = []
    warned = 0
    for i, spec in enumerate(corpus.generate()):
        try:
            engine, failures = lenient_fields(spec)
        except SpecError:
            continue
        if not failures:
            continue
        warned += 1
        keras = oracle.keras_report(spec)
        differences = oracle.compare(engine, keras)
        if not differences and not oracle.keras_run_error(spec):
            differences = ["Keras runs it"]
        if differences:
            found.append(f"#{i} {json.dumps(spec)}\n    " + "\n    ".join(differences))
    assert warned >= 1
    assert not found, "\n\n".join(found)


@pytest.mark.keras
def test_glu_on_an_even_size_runs() -> None:
    spec = {"input_shape": [5, 3], "layers": [{"type": "Dense", "units": 4, "activation": "glu"}]}
    assert analyze(spec).layers[0].output_shape == (None, 5, 4)
    assert isinstance(oracle.keras_report(spec), dict)
