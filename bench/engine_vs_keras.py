"""(a) The engine's time per spec against Keras building the same model.

For every valid spec of the test corpus: the median time of
``seqlab.analyze`` (and of the whole ``POST /params`` computation:
schema load, analysis, summary text, JSON) against building the model with
Keras (``worker.builder.build_model``, session cleared outside the timer)
and calling ``count_params()``. Reported as the median of the per-spec
ratios, so that one slow spec cannot move it.

The same for Functional models: the valid graphs of the graph corpus
(``tests/graph_corpus.py``: encoder-decoders, attention, Transformer
blocks, merges, Siamese encoders, masks, several inputs and outputs), the
engine against Keras building the same ``keras.Model``, in the same run;
both medians are printed side by side at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from modelspec.model import load_model_spec  # noqa: E402
from modelspec.model import model_spec_schema  # noqa: E402
from seqlab import SpecError  # noqa: E402
from seqlab import analyze  # noqa: E402
from seqlab import render_summary  # noqa: E402
from tests.corpus import generate  # noqa: E402
from tests.graph_corpus import generate as generate_graphs  # noqa: E402

GOAL = 1000


def per_call(fn: Callable[[], object], budget: float = 0.02) -> float:
    """Median seconds per call over five timed batches of about ``budget``."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / once))
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def full_request(spec: dict) -> str:
    """What POST /params computes for a body, minus HTTP (and the memory
    estimate). A graph goes through ``load_model_spec``'s graph schema; a
    Sequential spec through its schema as before."""
    loaded = load_model_spec(spec) if "inputs" in spec else model_spec_schema.load(spec)
    report = analyze(loaded)
    return json.dumps({**report.to_dict(), "summary": render_summary(report)})


def valid_specs(specs: list[dict]) -> list[dict]:
    """The specs the engine accepts (Keras accepts the same: the oracle
    tests hold them equal)."""
    out = []
    for spec in specs:
        try:
            analyze(spec)
        except SpecError:
            continue
        out.append(spec)
    return out


def keras_times(specs: list[dict]) -> list[float]:
    """Median of three Keras builds + ``count_params()`` per spec."""
    import keras

    from worker.builder import build_model

    out = []
    for spec in specs:
        runs = []
        for _ in range(3):
            keras.backend.clear_session()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                build_model(spec, fresh_session=False).count_params()
                runs.append(time.perf_counter() - start)
        out.append(statistics.median(runs))
    return out


def report(
    title: str, specs: list[dict], engine: list[float], whole: list[float], kerases: list[float]
) -> float:
    """Print one comparison; returns the median ratio Keras / analyze."""
    import keras

    ratio = [k / e for k, e in zip(kerases, engine, strict=True)]
    ratio_whole = [k / w for k, w in zip(kerases, whole, strict=True)]
    us = 1e6
    print(f"\n{title}, {len(specs)} valid corpus specs")
    print(
        f"    Keras ({keras.backend.backend()} backend, keras {keras.__version__}): "
        f"median {statistics.median(kerases) * 1e3:8.2f} ms per spec"
    )
    print(
        f"    seqlab.analyze:                median "
        f"{statistics.median(engine) * us:8.1f} µs per spec"
    )
    print(
        f"    full /params computation:      median "
        f"{statistics.median(whole) * us:8.1f} µs per spec"
    )
    q = statistics.quantiles(ratio, n=4)
    print(
        f"    ratio Keras / analyze: median {statistics.median(ratio):,.0f}× "
        f"(quartiles {q[0]:,.0f}× – {q[2]:,.0f}×); goal ≥ {GOAL:,}×: "
        f"{'met' if statistics.median(ratio) >= GOAL else 'NOT met'}"
    )
    print(f"    ratio Keras / full computation: median {statistics.median(ratio_whole):,.0f}×")
    return statistics.median(ratio)


def main(quick: bool = False) -> None:
    specs = valid_specs(generate(120 if quick else 500, seed=0))
    graphs = valid_specs(generate_graphs(60 if quick else 240, seed=0))

    # The engine is timed first, for every spec, before Keras has run: once
    # TensorFlow has run, its thread pools spin on the second core for a
    # while after each build and would slow whatever is timed next.
    engine = [per_call(lambda spec=spec: analyze(spec)) for spec in specs]
    whole = [per_call(lambda spec=spec: full_request(spec)) for spec in specs]
    graph_engine = [per_call(lambda spec=spec: analyze(spec)) for spec in graphs]
    graph_whole = [per_call(lambda spec=spec: full_request(spec)) for spec in graphs]
    kerases = keras_times(specs)
    graph_kerases = keras_times(graphs)

    sequential = report(
        "(a) engine vs Keras build + count_params(), Sequential", specs, engine, whole, kerases
    )
    if not graphs:
        print("\n(a) Functional: the engine accepts none of the graph corpus")
        return
    functional = report(
        "(a) engine vs Keras build + count_params(), Functional",
        graphs,
        graph_engine,
        graph_whole,
        graph_kerases,
    )
    print(
        f"\n(a) median ratio Keras / analyze: Sequential {sequential:,.0f}×, "
        f"Functional {functional:,.0f}× (goal ≥ {GOAL:,}× for both)"
    )


if __name__ == "__main__":
    main()
