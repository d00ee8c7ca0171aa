"""seqlab against real Keras on graphs (Functional models), in both forms.

The corpus (``tests/graph_corpus.py``: chains, encoder-decoders with
``initial_state``, attention, Transformer blocks, merges, Siamese encoders,
masks, several inputs and outputs; a third broken on purpose) is built with
Keras through the worker's builder (``keras_oracle.keras_graph_build``).
Keras's verdict is its build, and for a model it builds, its first call on
zeros: Keras never checks an RNN's ``initial_state`` (count, sizes) or
Attention's query/key sizes symbolically, and fails only when the model
runs; such a model is refused, as the worker could not train it.

For every spec the engine must refuse what Keras refuses, quoting Keras's
reason where Keras gives one at build time (``keras_oracle.compare_graph``:
a first call's failure, a reference to no tensor and Keras's internal
failures are compared on the verdict only), and otherwise report what Keras
reports: names in ``model.layers`` order, output shapes, per-layer counts,
the trainable split, weights, ``Connected to``, inputs and outputs, totals
and the ``model.summary()`` text. Then the same in the other request form:
``model.to_json()`` of the built model, read back as ``POST /params``
reads it (``modelspec.model.load_model_spec``: ``seqlab.from_keras_json``,
the schema, the ``build_config`` checks), as an object and as JSON text;
and the compact form through that schema too. Lastly every registered layer, from its
``example``, inside a one-layer Functional model, in both forms.

All disagreements are listed at once. These tests need Keras. Keras's
answers are kept on disk between runs (``keras_oracle.cached``: keyed by
the spec, Keras's version and the sources of the builder, the oracle and
the registry; ``SEQLAB_ORACLE_CACHE=0`` turns it off).
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import graph_corpus
import keras_oracle as oracle
import pytest
from marshmallow import ValidationError

from modelspec.model import load_model_spec
from seqlab import LAYERS
from seqlab import SpecError
from seqlab import analyze

#: Keys compared in the to_json form: all (names are explicit there).
JSON_KEYS = oracle.GRAPH_COMPARED


@dataclass
class GraphCase:
    index: int
    family: str
    #: How the spec was broken on purpose (None: meant to be valid).
    broke: str | None
    spec: dict[str, Any]
    keras: oracle.GraphBuild
    engine: dict[str, Any] | str
    differences: list[str]

    @property
    def built(self) -> bool:
        """Keras built the model (its first call may still fail)."""
        return not isinstance(self.keras.report, str)

    @property
    def valid(self) -> bool:
        """Keras built the model and it runs."""
        return self.built and self.keras.first_call is None


@pytest.fixture(scope="module")
def cases() -> list[GraphCase]:
    """Every corpus spec with both reports (built once for the module)."""
    out = []
    for i, (family, broke, spec) in enumerate(graph_corpus.generate_tagged()):
        keras = oracle.cached_graph_build(spec)
        engine = oracle.engine_report(spec)
        differences = oracle.compare_build(engine, keras)
        out.append(GraphCase(i, family, broke, spec, keras, engine, differences))
    return out


def describe(case: GraphCase, differences: list[str]) -> str:
    lines = [f"#{case.index} ({case.family}, {case.broke or 'valid'}) {json.dumps(case.spec)}"]
    lines += [f"    {d}" for d in differences]
    if isinstance(case.engine, str):
        lines.append(f"    engine: {case.engine}")
    verdict = case.keras.verdict
    if isinstance(verdict, str):
        lines.append(f"    keras: {verdict[:500]}")
    return "\n".join(lines)


def engine_of_json(doc: str, *, as_text: bool = False) -> dict[str, Any] | str:
    """The engine's report of a ``to_json`` document read as ``POST /params``
    reads it (``load_model_spec``: the reader, the schema and the
    ``build_config`` checks), as an object or (``as_text``) as the JSON
    text in a string."""
    try:
        spec = load_model_spec(doc if as_text else json.loads(doc))
    except SpecError as error:
        return f"SpecError at {error.path or '<spec>'} (reading to_json): {error.message}"
    except ValidationError as error:
        return f"ValidationError (reading to_json): {error.messages}"
    return oracle.engine_report(spec)


def engine_via_schema(spec: dict[str, Any]) -> dict[str, Any] | str:
    """The engine's report of a compact spec validated by the schema first,
    as ``POST /params`` does."""
    try:
        loaded = load_model_spec(copy.deepcopy(spec))
    except SpecError as error:
        return f"SpecError at {error.path or '<spec>'} (schema): {error.message}"
    except ValidationError as error:
        return f"ValidationError (schema): {error.messages}"
    return oracle.engine_report(loaded)


@pytest.mark.keras
@pytest.mark.slow
def test_engine_agrees_with_keras_on_graphs(cases: list[GraphCase]) -> None:
    mismatches = [c for c in cases if c.differences]
    report = "\n\n".join(describe(c, c.differences) for c in mismatches)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} graphs disagree:\n\n{report}"


@pytest.mark.keras
@pytest.mark.slow
def test_schema_passes_what_keras_builds(cases: list[GraphCase]) -> None:
    """The compact form through ``load_model_spec`` (the schema of
    ``POST /params``) then the engine: Keras's report for every model it
    accepts. A schema refusal of a model Keras accepts is a disagreement;
    for the others the engine's verdict is compared as above, a schema
    refusal counting as a refusal (its words are the schema's)."""
    failures = []
    for case in cases:
        engine = engine_via_schema(case.spec)
        if isinstance(engine, str) and engine.startswith("ValidationError"):
            if case.valid:
                failures.append(describe(case, [f"schema refuses it: {engine}"]))
            continue
        differences = oracle.compare_build(engine, case.keras)
        if differences and not case.differences:
            failures.append(describe(case, differences))
    assert not failures, f"{len(failures)} graphs differ:\n\n" + "\n\n".join(failures)


@pytest.fixture(scope="module")
def reloaded(cases: list[GraphCase]) -> dict[int, dict[str, Any] | str]:
    """Keras's report of ``model_from_json(model.to_json())`` for every
    model Keras built, by case index."""
    out = {}
    for case in cases:
        if case.built:
            assert isinstance(case.keras.report, dict)
            out[case.index] = oracle.cached_json_report(case.keras.report["json"])
    return out


def json_build(case: GraphCase, reloaded: dict[int, dict[str, Any] | str]) -> oracle.GraphBuild:
    """Keras's verdict on the to_json form: the reloaded model's report,
    and the first call's failure of the model it came from."""
    return oracle.GraphBuild(reloaded[case.index], case.keras.first_call)


@pytest.mark.keras
@pytest.mark.slow
def test_to_json_of_graphs_reads_back_the_same(
    cases: list[GraphCase], reloaded: dict[int, dict[str, Any] | str]
) -> None:
    """analyze(load_model_spec(model.to_json())) reports what Keras's
    ``model_from_json`` of it reports, and refuses the models Keras builds
    but cannot call."""
    failures = []
    for case in cases:
        if not case.built:
            continue
        assert isinstance(case.keras.report, dict)
        engine = engine_of_json(case.keras.report["json"], as_text=case.index % 2 == 1)
        differences = oracle.compare_build(engine, json_build(case, reloaded))
        if differences:
            failures.append(describe(case, differences))
    assert not failures, f"{len(failures)} to_json documents differ:\n\n" + "\n\n".join(failures)


#: What may differ between a model and Keras's reload of its to_json:
#: the automatic names of a layer's own sublayers (MultiHeadAttention's
#: ``softmax``/``dropout`` are named at its first call, after the layers
#: created before it in the original session, afresh in the reload).
RELOAD_MAY_DIFFER = ("sublayer_names",)


@pytest.mark.keras
@pytest.mark.slow
def test_keras_reloads_its_own_json_as_built(
    cases: list[GraphCase], reloaded: dict[int, dict[str, Any] | str]
) -> None:
    """The oracle's premise for the to_json form: Keras's reload of a built
    model's ``to_json`` gives the same report (names are explicit in the
    JSON, so a fresh session's counters do not matter) but for
    ``RELOAD_MAY_DIFFER``."""
    keys = tuple(k for k in JSON_KEYS if k not in RELOAD_MAY_DIFFER)
    failures = []
    for case in cases:
        if not case.valid:
            continue
        assert isinstance(case.keras.report, dict)
        differences = oracle.compare(reloaded[case.index], case.keras.report, keys=keys)
        if differences:
            failures.append(describe(case, differences))
    assert not failures, "\n\n".join(failures)


@pytest.mark.keras
@pytest.mark.slow
def test_graph_corpus_covers_the_families(cases: list[GraphCase]) -> None:
    """Every family valid and invalid; a third or so invalid; the first-call
    refusals present but few."""
    assert len(cases) >= 300
    invalid = sum(not c.valid for c in cases)
    assert 0.25 <= invalid / len(cases) <= 0.45, f"{invalid} of {len(cases)} invalid"
    valid = Counter(c.family for c in cases if c.valid)
    refused = Counter(c.family for c in cases if not c.valid)
    assert set(valid) == set(graph_corpus.FAMILIES), valid
    assert set(refused) == set(graph_corpus.FAMILIES), refused
    first_call = sum(c.built and not c.valid for c in cases)
    assert 3 <= first_call <= len(cases) // 8, first_call
    # Specs meant to be valid that Keras refuses show a generator bug.
    surprises = [c for c in cases if c.broke is None and not c.valid]
    assert len(surprises) <= len(cases) // 12, "\n\n".join(describe(c, []) for c in surprises)


def _entries(case: GraphCase) -> list[dict[str, Any]]:
    entries = []
    for entry in case.spec["layers"]:
        entries.append(entry)
        entries += [v for v in entry.values() if isinstance(v, dict) and "type" in v]
    return entries


@pytest.mark.keras
@pytest.mark.slow
def test_graph_corpus_varies_what_matters(cases: list[GraphCase]) -> None:
    """The layer types, call forms and options of the issue all occur in
    models Keras accepts."""
    valid = [c for c in cases if c.valid]
    entries = [e for c in valid for e in _entries(c)]
    types = Counter(e["type"] for e in entries if "type" in e)
    wanted = {
        "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
        "Attention", "AdditiveAttention", "MultiHeadAttention", "LayerNormalization",
        "Embedding", "Masking", "LSTM", "GRU", "SimpleRNN", "Bidirectional",
    }  # fmt: skip
    assert all(types[t] >= 2 for t in wanted), {t: types[t] for t in wanted}
    assert any("call" in e for e in entries), "no shared layer"
    assert any(e.get("initial_state") for e in entries), "no initial_state"
    assert any(e.get("use_causal_mask") for e in entries), "no causal mask"
    assert any(e.get("return_attention_scores") for e in entries), "no attention scores"
    assert any(isinstance(e.get("inputs"), dict) for e in entries), "no keyword MHA call"
    mha = [e for e in entries if e.get("type") == "MultiHeadAttention"]
    assert any(isinstance(e.get("inputs"), list) and len(e["inputs"]) == 3 for e in mha)
    assert any(e.get("mask_zero") for e in entries), "no mask_zero"
    assert any(e.get("trainable") is False for e in entries), "no frozen layer"
    assert len({e.get("dtype") for e in entries}) >= 4, "few dtype policies"
    assert any(len(c.spec["inputs"]) >= 3 for c in valid), "no three-input model"
    several = [c for c in valid if isinstance(c.spec.get("outputs"), list)]
    assert any(len(c.spec["outputs"]) >= 2 for c in several), "no several outputs"
    rows = [c for c in valid if "Connected to" in c.keras.report["summary"]]  # type: ignore[index]
    assert len(rows) >= len(valid) // 2, "few 4-column summaries"
    assert any("NotEqual" in c.keras.report["summary"] for c in valid), "no mask op rows"  # type: ignore[index]


@pytest.mark.keras
@pytest.mark.slow
def test_graph_corpus_breaks_graphs_in_every_way(cases: list[GraphCase]) -> None:
    """Each kind of breakage is drawn, and each leaves Keras refusing."""
    broken = Counter(c.broke for c in cases if c.broke)
    for kind in (
        "shapes", "key length", "state count", "state size", "dangling reference",
        "duplicate name", "bad output", "shared on another size", "residual size",
    ):  # fmt: skip
        assert broken[kind] >= 1, (kind, broken)
    accepted = [
        c
        for c in cases
        if c.broke and c.valid and c.broke not in ("sequential breaker", "one input")
    ]
    assert len(accepted) <= len(cases) // 25, "\n\n".join(describe(c, []) for c in accepted)


# -- every registered layer inside a graph -------------------------------------


def layer_graph(type_: str) -> dict[str, Any]:
    """A one-layer Functional model of ``type_`` from its ``example``."""
    cls = LAYERS[type_]
    args, shapes = cls.example
    form = getattr(cls, "call_form", "one")
    shapes = [shapes] if form == "one" else list(shapes)
    dtype = "int32" if type_ == "Embedding" else None
    inputs = [{"shape": list(s), **({"dtype": dtype} if dtype else {})} for s in shapes]
    names = ["input_layer"] + [f"input_layer_{i}" for i in range(1, len(shapes))]
    refs: Any = names[0] if form == "one" else names
    return {"inputs": inputs, "layers": [{"type": type_, **args, "inputs": refs}]}


@pytest.mark.keras
@pytest.mark.parametrize("type_", sorted(LAYERS))
def test_every_layer_in_a_graph_in_both_forms(type_: str) -> None:
    """Each layer's example in a Functional model: the compact form and the
    model's to_json read back both give Keras's report."""
    spec = layer_graph(type_)
    keras = oracle.keras_graph_build(spec)
    assert keras.first_call is None and isinstance(keras.report, dict), keras.verdict
    compact = oracle.compare_graph(oracle.engine_report(spec), keras.report)
    assert not compact, "\n".join(compact)
    from_json = oracle.compare_graph(engine_of_json(keras.report["json"]), keras.report)
    assert not from_json, "\n".join(from_json)
    schema = oracle.compare_graph(engine_via_schema(spec), keras.report)
    assert not schema, "\n".join(schema)


def keras_summary(spec: dict[str, Any], line_length: int) -> str:
    """Keras's ``model.summary(line_length=...)`` text of a graph spec."""
    import warnings

    keras = oracle.import_keras()
    from worker.builder import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        model = build_model(spec, fresh_session=False)
        return oracle.summary_text(model, line_length=line_length)


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("line_length", [44, 60, 90, 120, 200])
def test_summary_width_as_keras_prints_it(cases: list[GraphCase], line_length: int) -> None:
    """``render_summary(report, line_length)`` is ``model.summary(line_length)``
    for a sample of valid graphs of every family."""
    from seqlab import render_summary

    picked: dict[str, list[GraphCase]] = {}
    for case in cases:
        # Cases the engine already gets right at the default width.
        if case.valid and not case.differences and len(picked.setdefault(case.family, [])) < 3:
            picked[case.family].append(case)
    failures = []
    for case in (c for group in picked.values() for c in group):
        expected = oracle.cached(
            "summary",
            [case.spec, line_length],
            lambda spec=case.spec: keras_summary(spec, line_length),
        )
        try:
            text = render_summary(analyze(case.spec), line_length=line_length)
        except SpecError as error:
            text = f"refused: {error}"
        if text != expected:
            failures.append(describe(case, [f"--- engine\n{text}--- keras\n{expected}"]))
    assert not failures, "\n\n".join(failures)


# -- to_json documents edited: Keras's model_from_json against the reader ------

MUTATIONS = ("shuffle", "unknown layer", "tensor index", "unknown output", "input not an input")


def _history_refs(doc: dict[str, Any]) -> list[list[Any]]:
    """Every ``keras_history`` list of the document's inbound nodes."""
    out: list[list[Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                out.append(value["config"]["keras_history"])
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for layer in doc["config"]["layers"]:
        walk(layer.get("inbound_nodes", []))
    return out


def mutate(doc: dict[str, Any], kind: str, rng: random.Random) -> dict[str, Any] | None:
    """``doc`` edited as ``kind`` says (None where it does not apply):
    ``shuffle`` permutes ``config.layers`` (Keras recomputes the order: the
    same model); the others break a reference as a hand-edited document
    might (Keras refuses each: keras-functional.md §2)."""
    doc = copy.deepcopy(doc)
    config = doc["config"]
    if kind == "shuffle":
        rng.shuffle(config["layers"])
        return doc
    if kind in ("unknown layer", "tensor index"):
        refs = _history_refs(doc)
        if not refs:
            return None
        ref = rng.choice(refs)
        if kind == "unknown layer":
            ref[0] = "nope"
        else:
            ref[2] = 9
        return doc
    outputs = config["output_layers"]
    target = outputs if isinstance(outputs[0], str) else rng.choice(outputs)
    if kind == "unknown output":
        target[0] = "zzz"
        return doc
    inputs = {layer["name"] for layer in config["layers"] if layer["class_name"] == "InputLayer"}
    others = [layer["name"] for layer in config["layers"] if layer["name"] not in inputs]
    if not others:
        return None
    ins = config["input_layers"]
    (ins if isinstance(ins[0], str) else rng.choice(ins))[0] = rng.choice(others)
    return doc


@pytest.mark.keras
@pytest.mark.slow
def test_edited_to_json_documents_as_keras_reads_them(cases: list[GraphCase]) -> None:
    """Documents edited by hand: a shuffled layer list reads as the same
    model Keras rebuilds (names, order, counts, summary); a reference to no
    layer or tensor and an unknown output are refused, as
    ``model_from_json`` refuses them (verdicts compared: Keras's texts name
    Python objects); an input that is not an InputLayer is refused."""
    failures = []
    tried: Counter[str] = Counter()
    for case in cases:
        if not case.valid:
            continue
        assert isinstance(case.keras.report, dict)
        kind = MUTATIONS[case.index % len(MUTATIONS)]
        doc = mutate(json.loads(case.keras.report["json"]), kind, random.Random(case.index))
        if doc is None:
            continue
        tried[kind] += 1
        text = json.dumps(doc)
        keras = oracle.cached_json_report(text)
        engine = engine_of_json(text, as_text=True)
        if kind == "shuffle":
            differences = oracle.compare_graph(engine, keras)
        elif kind == "input not an input":
            # Keras refuses this, or cuts the graph at that tensor with an
            # InputLayer named after its process-wide tensor counter
            # (``keras_tensor_5CLONE``), which no request can reproduce:
            # the reader refuses it, on purpose.
            differences = [] if isinstance(engine, str) else ["accepted an input that is a layer"]
        elif isinstance(engine, str) != isinstance(keras, str):
            differences = [f"verdict: engine {engine!r:.300} / keras {keras!r:.300}"]
        else:
            differences = []
        if differences:
            failures.append(describe(case, [f"edited: {kind}", *differences]))
    assert all(tried[k] >= 5 for k in MUTATIONS), tried
    assert not failures, f"{len(failures)} edited documents differ:\n\n" + "\n\n".join(failures)


def test_graph_corpus_is_seeded() -> None:
    """The same seed gives the same specs; another seed others; each spec
    is drawn on its own, so a shorter corpus is a prefix of a longer one."""
    first = graph_corpus.generate(40, seed=7)
    assert first == graph_corpus.generate(40, seed=7)
    assert first != graph_corpus.generate(40, seed=8)
    assert graph_corpus.generate(60, seed=7)[:40] == first
    assert all("inputs" in spec and spec["layers"] for spec in first)


# -- models Keras builds but cannot call: counted, with warnings --------------------


def engine_lenient(spec: dict[str, Any]) -> tuple[dict[str, Any] | str, list[SpecError]]:
    """The engine's report of ``spec`` with ``analyze(strict=False)``, as
    ``POST /params`` answers it: its fields (or its refusal) and its
    first-call failures."""
    try:
        report = analyze(spec, strict=False)
    except SpecError as error:
        return f"SpecError at {error.path or '<spec>'}: {error.message}", []
    return oracle.graph_report_fields(report), report.first_call_failures


def fails_to_run(keras: oracle.GraphBuild) -> bool:
    """Keras built the model and its first call fails (not the one failure
    that leaves the engine free, a model that runs on other shapes than it
    declares: ``compare_build``)."""
    return (
        isinstance(keras.report, dict)
        and keras.first_call is not None
        and not keras.first_call.startswith("ShapeError")
    )


def warning_differences(case: GraphCase) -> list[str]:
    """How the engine's lenient answer on ``case`` departs from Keras: a
    model Keras builds but cannot call must be reported as Keras built it,
    with its first-call failures (the first one the strict refusal); any
    other must carry none, and one Keras refuses to build stays refused."""
    engine, failures = engine_lenient(case.spec)
    if fails_to_run(case.keras):
        if isinstance(engine, str):
            return [f"lenient refusal of a model Keras builds: {engine}"]
        out = oracle.compare_graph(engine, case.keras.report)
        if not failures:
            out.append("no warning on a model whose first call fails")
        elif case.engine != f"SpecError at {failures[0].path}: {failures[0].message}":
            out.append(f"the first warning {failures[0].message!r} is not the strict refusal")
        return out
    if failures:
        return [f"warnings on a model Keras does not build-and-fail: {failures[0].message}"]
    if isinstance(case.keras.report, str) and not isinstance(engine, str):
        return ["lenient acceptance of a model Keras refuses to build"]
    return []


@pytest.mark.keras
@pytest.mark.slow
def test_models_keras_builds_but_cannot_call_are_counted_with_warnings(
    cases: list[GraphCase],
) -> None:
    """``analyze(spec, strict=False)`` (``POST /params``) against Keras: for
    exactly the corpus models Keras builds and counts but whose first call
    fails, Keras's names, shapes, counts, Connected to and summary, with the
    failures as warnings; no warning on any other model, and a model Keras
    refuses to build refused as before."""
    failing = [c for c in cases if fails_to_run(c.keras)]
    assert len(failing) >= 10, len(failing)
    found = [(c, d) for c in cases for d in [warning_differences(c)] if d]
    assert not found, "\n\n".join(describe(c, d) for c, d in found)


@pytest.mark.keras
def test_the_warning_comparison_notices_what_it_compares() -> None:
    """A lenient answer that differs from Keras's build, lacks the warning,
    or warns on a model Keras runs, is reported."""
    spec = FOUND["Attention with a key of another length"]
    keras = oracle.cached_graph_build(spec)
    assert fails_to_run(keras), keras.verdict
    case = GraphCase(0, "found", None, spec, keras, oracle.engine_report(spec), [])
    assert warning_differences(case) == []
    runs = oracle.GraphBuild(keras.report, None)
    assert warning_differences(GraphCase(0, "found", None, spec, runs, case.engine, []))
    other = {**spec, "layers": [*spec["layers"][:1], {**spec["layers"][1], "units": 6},
                                spec["layers"][2]]}  # fmt: skip
    assert warning_differences(GraphCase(0, "found", None, other, keras, case.engine, []))


# -- POST /params's document ------------------------------------------------------


@pytest.mark.keras
@pytest.mark.slow
def test_params_document_of_graphs_is_keras_or_a_422(cases: list[GraphCase]) -> None:
    """``POST /params``'s computation (``modelspec.params.params_document``, minus
    HTTP) for every corpus spec in both forms: for a model Keras accepts and
    the engine agrees on, or one Keras builds and counts but cannot call,
    the answer carries Keras's names in ``model.layers`` order, counts,
    Connected to, inputs and outputs, totals and summary, and warnings
    exactly for the second kind; for any other, a 422
    (``ApiValidationError`` or the schema's ``ValidationError``), never
    another exception (a 500)."""
    from modelspec.errors import ApiValidationError
    from modelspec.params import params_document

    failures = []
    for case in cases:
        bodies: list[Any] = [copy.deepcopy(case.spec)]
        if case.built:
            bodies.append(case.keras.report["json"])  # type: ignore[index]
        answered = (case.valid or fails_to_run(case.keras)) and not case.differences
        for body in bodies:
            try:
                document = params_document(body)
            except (ApiValidationError, ValidationError) as error:
                if answered:
                    failures.append(describe(case, [f"422 for {type(body).__name__} body: "
                                                    f"{error}"]))  # fmt: skip
                continue
            except Exception as error:  # noqa: BLE001 - a 500: report it
                failures.append(describe(case, [f"500: {oracle.error_text(error)}"]))
                continue
            if not answered:
                continue
            if bool(document["warnings"]) != fails_to_run(case.keras):
                failures.append(describe(case, [f"warnings {document['warnings']}"]))
            keras = case.keras.report
            assert isinstance(keras, dict)
            layers = document["layers"]
            got = {
                "names": [layer["name"] for layer in layers],
                "params": [layer["params"] for layer in layers],
                "connected_to": [layer["connected_to"] for layer in layers],
                "inputs": [(i["name"], tuple(i["shape"])) for i in document["inputs"]],
                "outputs": [(o["name"], tuple(o["shape"])) for o in document["outputs"]],
                "total": document["total_params"],
                "trainable_total": document["trainable_params"],
                "summary": document["summary"],
            }
            differences = oracle.compare(got, keras, keys=tuple(got))
            if differences:
                failures.append(describe(case, [f"{type(body).__name__} body", *differences]))
    assert not failures, f"{len(failures)} answers differ:\n\n" + "\n\n".join(failures)


#: Finding 9: ``flatten`` twice, the Activation outside the model (the output
#: names the Flatten layer in Keras's builder, the Activation in a lookup by
#: the latest name: a reference cannot say which).
DUPLICATE_OUTSIDE: dict[str, Any] = {
    "inputs": [{"shape": [9], "dtype": "float16"}],
    "layers": [{"type": "Flatten"}, {"type": "Permute", "dims": [1]},
               {"type": "Activation", "activation": "relu", "name": "flatten"}],
    "outputs": ["flatten"],
}  # fmt: skip


# -- the disagreements found so far (prompts/oracle-findings.md), kept -----------

FOUND: dict[str, dict[str, Any]] = {
    "mask into a ConvLSTM1D that shortens the sequence": {
        "inputs": [{"shape": [1, 6, 7]}],
        "layers": [{"type": "Masking"}, {"type": "LayerNormalization"},
                   {"type": "ConvLSTM1D", "filters": 1, "kernel_size": [5]}],
    },
    "a Dropout after a MultiHeadAttention is dropout_1": {
        "inputs": [{"shape": [3, 6]}],
        "layers": [{"type": "MultiHeadAttention", "num_heads": 3, "key_dim": 3,
                    "inputs": ["input_layer", "input_layer"]},
                   {"type": "Dropout", "rate": 0.1},
                   {"type": "Add", "inputs": ["input_layer", "dropout_1"]}],
    },
    "a mask into MultiHeadAttention": {
        "inputs": [{"shape": [None], "dtype": "int32"}],
        "layers": [{"type": "Embedding", "input_dim": 7, "output_dim": 6, "mask_zero": True},
                   {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 6,
                    "inputs": ["embedding", "embedding"]},
                   {"type": "Dense", "units": 1}],
    },
    "AdditiveAttention with a query of another size": {
        "inputs": [{"shape": [8, 1]}, {"shape": [None, 3]}],
        "layers": [{"type": "Dense", "units": 3, "inputs": "input_layer_1"},
                   {"type": "Dense", "units": 6, "inputs": "input_layer"},
                   {"type": "AdditiveAttention", "inputs": ["dense_1", "dense"]}],
    },
    "Attention with a key of another length": {
        "inputs": [{"shape": [8, 5]}, {"shape": [11, 5]}],
        "layers": [{"type": "Dense", "units": 7, "inputs": "input_layer"},
                   {"type": "Dense", "units": 7, "inputs": "input_layer_1"},
                   {"type": "Attention", "inputs": ["dense", "dense", "dense_1"]}],
    },
    "MultiHeadAttention on one tensor": {
        "inputs": [{"shape": [5, 3]}],
        "layers": [{"type": "MultiHeadAttention", "num_heads": 1, "key_dim": 4,
                    "inputs": "input_layer"}],
    },
    "a float16 Masking (a Cast op)": {
        "inputs": [{"shape": [None, 2]}],
        "layers": [{"type": "Masking", "mask_value": -1.0, "dtype": "float16"},
                   {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
                   {"type": "LSTM", "units": 3}],
    },
    "float16 TimeDistributed then float32 under a mask": {
        "inputs": [{"shape": [8], "dtype": "int32"}],
        "layers": [{"type": "Embedding", "input_dim": 19, "output_dim": 4, "mask_zero": True},
                   {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2},
                    "dtype": "float16"},
                   {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
                   {"type": "GRU", "units": 4}],
    },
    "Bidirectional with a smaller backward layer": {
        "inputs": [{"shape": [5, 3]}],
        "layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 8},
                    "backward_layer": {"type": "LSTM", "units": 3, "go_backwards": True}},
                   {"type": "Dense", "units": 2}],
    },
    # Refused by seqlab by design (oracle.BY_DESIGN): Keras builds it, the
    # Activation named "flatten" being outside the model.
    "a duplicate name on a layer the outputs do not reach": DUPLICATE_OUTSIDE,
    "BatchNormalization(renorm=True)": {
        "inputs": [{"shape": [11, 6]}],
        "layers": [{"type": "BatchNormalization", "renorm": True}],
    },
}  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_disagreements_stay_fixed(name: str) -> None:
    """Each spec that once showed a disagreement, in the compact form and
    (where Keras builds it) the to_json form."""
    spec = FOUND[name]
    keras = oracle.cached_graph_build(spec)
    differences = oracle.compare_build(oracle.engine_report(spec), keras)
    if isinstance(keras.report, dict):
        engine = engine_of_json(keras.report["json"], as_text=True)
        reloaded = oracle.cached_json_report(keras.report["json"])
        differences += oracle.compare_build(engine, oracle.GraphBuild(reloaded, keras.first_call))
    assert not differences, "\n".join(differences)


@pytest.mark.keras
def test_the_comparison_notices_what_it_compares() -> None:
    """Every compared field, changed on the engine's side, is reported; a
    refusal against an acceptance too; a first call's failure is compared
    on the verdict only, a build refusal on Keras's reason."""
    spec = layer_graph("MultiHeadAttention")
    keras = oracle.cached_graph_build(spec)
    engine = oracle.engine_report(spec)
    assert isinstance(keras.report, dict) and isinstance(engine, dict)
    assert oracle.compare_build(engine, keras) == []
    for key in oracle.GRAPH_COMPARED:
        changed = {**engine, key: "something else"}
        assert [d for d in oracle.compare_build(changed, keras) if d.startswith(key)], key
    assert oracle.compare_build("SpecError at layers.0: no", keras)
    refused = oracle.GraphBuild("ValueError: Inputs have incompatible shapes. Received (5, 3)")
    assert oracle.compare_build("SpecError at layers.0: Inputs have incompatible shapes. "
                                "Received (5, 3) (a hint)", refused) == []  # fmt: skip
    assert oracle.compare_build("SpecError at layers.0: another reason", refused)
    assert oracle.compare_build(engine, refused)
    failed = oracle.GraphBuild(keras.report, "InvalidArgumentError: Incompatible shapes")
    assert oracle.compare_build("SpecError at layers.0: any words", failed) == []
    assert oracle.compare_build(engine, failed)


@pytest.mark.keras
def test_duplicate_names_outside_the_model_are_refused_by_design() -> None:
    """Keras builds a model with a duplicate name outside its graph; seqlab
    refuses it on purpose (README, Functional models), and the oracle names
    that exception: its verdict is ``BY_DESIGN``, which the engine's refusal
    meets and an acceptance does not."""
    keras = oracle.import_keras()
    keras.backend.clear_session()
    x = keras.Input((9,), dtype="float16")
    flat = keras.layers.Flatten()(x)
    keras.layers.Activation("relu", name="flatten")(keras.layers.Permute((1,))(flat))
    assert keras.Model(x, flat).count_params() == 0  # Keras builds it

    build = oracle.keras_graph_build(DUPLICATE_OUTSIDE)
    assert isinstance(build.report, str) and build.report.startswith(oracle.BY_DESIGN)
    engine = oracle.engine_report(DUPLICATE_OUTSIDE)
    assert isinstance(engine, str) and "seqlab refuses a layer name given twice" in engine
    assert oracle.compare_build(engine, build) == []
    first_only = {**DUPLICATE_OUTSIDE, "layers": DUPLICATE_OUTSIDE["layers"][:1]}
    accepted = oracle.engine_report(first_only)
    assert isinstance(accepted, dict)
    assert oracle.compare_build(accepted, build) != []
