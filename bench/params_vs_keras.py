"""(a2) The app's uncached ``POST /params`` against a Keras build of the same model.

For every valid spec of the corpora (Sequential: ``tests/corpus.py``;
Functional: ``tests/graph_corpus.py``), the median time of one
``POST /params`` through the Flask app's WSGI callable, as gunicorn calls
it (the response cache off, ``PARAMS_CACHE_SIZE=0``: routing, the request
hooks, JSON parsing, validation, analysis, memory estimate, summary text,
JSON encoding), against building the model with Keras
(``worker.builder.build_model``) and calling ``count_params()``. Reported
as the median of the per-spec ratios; goal ≥ 100× for both kinds.

Then the graph schema's cost: each valid Sequential spec written as the
equivalent graph (an input, the same layers, each entry named and called
on the one before), ``load_model_spec`` of the graph against that of the
Sequential spec; goal: the median ratio within 2×.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
from collections.abc import Callable
from typing import Any

from . import goals
from .engine_vs_keras import keras_times
from .engine_vs_keras import per_call
from .engine_vs_keras import valid_specs

GOAL = 100
GRAPH_GOAL = 2.0


def wsgi_params(app: Any, spec: dict[str, Any]) -> Callable[[], bytes]:
    """One ``POST /params`` of ``spec`` through ``app``'s WSGI callable."""
    from werkzeug.test import EnvironBuilder

    body = json.dumps(spec).encode()
    environ = EnvironBuilder(
        path="/params", method="POST", data=body, content_type="application/json"
    ).get_environ()
    status: list[str] = []

    def start_response(code: str, headers: Any, exc_info: Any = None) -> None:
        status.append(code)

    def call() -> bytes:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        out = app(env, start_response)
        try:
            return b"".join(out)
        finally:
            out.close()

    call()
    if not status[-1].startswith("200"):
        raise RuntimeError(f"POST /params answered {status[-1]} for {spec}")
    return call


def uncached_app() -> Any:
    from service import create_app

    logging.disable(logging.WARNING)  # the open-API warning, once per app
    try:
        return create_app({"PARAMS_CACHE_SIZE": 0})
    finally:
        logging.disable(logging.NOTSET)


def app_times(specs: list[dict[str, Any]]) -> list[float]:
    """Median seconds of one uncached ``POST /params`` per spec."""
    app = uncached_app()
    return [per_call(wsgi_params(app, spec)) for spec in specs]


def as_graph(spec: dict[str, Any]) -> dict[str, Any]:
    """A Sequential spec as the equivalent compact graph."""
    model_input: dict[str, Any] = {"name": "x", "shape": spec["input_shape"]}
    for key in ("batch_size", "dtype"):
        if key in spec:
            model_input[key] = spec[key]
    entries, previous = [], "x"
    for i, layer in enumerate(spec["layers"]):
        name = layer.get("name", f"layer_{i}")
        entries.append({**layer, "name": name, "inputs": previous})
        previous = name
    return {"inputs": [model_input], "layers": entries, "outputs": previous}


def schema_times(specs: list[dict[str, Any]]) -> list[float]:
    from modelspec.model import load_model_spec

    return [per_call(lambda spec=spec: load_model_spec(spec, strict=False)) for spec in specs]


def ratio_line(label: str, kerases: list[float], apps: list[float]) -> float:
    ratios = [k / a for k, a in zip(kerases, apps, strict=True)]
    median = statistics.median(ratios)
    q = statistics.quantiles(ratios, n=4)
    print(
        f"    {label}: Keras median {statistics.median(kerases) * 1e3:6.2f} ms, "
        f"app median {statistics.median(apps) * 1e6:6.1f} µs; ratio Keras / app: "
        f"median {median:,.0f}× (quartiles {q[0]:,.0f}× – {q[2]:,.0f}×); "
        f"goal ≥ {GOAL}×: {'met' if median >= GOAL else 'NOT met'}"
    )
    return median


def main(quick: bool = False) -> None:
    from modelspec.model import load_model_spec
    from tests.corpus import generate
    from tests.graph_corpus import generate as generate_graphs

    specs = valid_specs(generate(120 if quick else 500, seed=0))
    graphs = valid_specs(generate_graphs(60 if quick else 240, seed=0))
    chains = []
    for spec in specs:
        graph = as_graph(spec)
        try:
            load_model_spec(graph, strict=False)
        except Exception:  # noqa: BLE001 (a chain the graph form refuses is left out)
            continue
        chains.append((spec, graph))

    # The app first, before Keras has run (its thread pools spin after each
    # build and would slow what is timed next; see engine_vs_keras).
    app = app_times(specs)
    graph_app = app_times(graphs)
    sequential_schema = schema_times([s for s, _ in chains])
    graph_schema = schema_times([g for _, g in chains])
    kerases = keras_times(specs)
    graph_kerases = keras_times(graphs)

    print(
        f"\n(a2) uncached POST /params through the app (WSGI, cache off) vs Keras build + "
        f"count_params(): {len(specs)} Sequential, {len(graphs)} Functional valid corpus specs"
    )
    sequential = ratio_line("Sequential", kerases, app)
    functional = ratio_line("Functional", graph_kerases, graph_app)
    schema_ratio = statistics.median(
        g / s for g, s in zip(graph_schema, sequential_schema, strict=True)
    )
    print(
        f"    graph schema: load_model_spec of {len(chains)} Sequential specs as graphs, "
        f"median {statistics.median(graph_schema) * 1e6:.1f} µs against "
        f"{statistics.median(sequential_schema) * 1e6:.1f} µs as Sequential; ratio "
        f"median {schema_ratio:.2f}× (goal ≤ {GRAPH_GOAL:.0f}×: "
        f"{'met' if schema_ratio <= GRAPH_GOAL else 'NOT met'})"
    )
    print(
        f"(a2) median ratio Keras / app: Sequential {sequential:,.0f}×, "
        f"Functional {functional:,.0f}× (goal ≥ {GOAL}× for both)"
    )
    for key, ratio, kerases_, apps in (
        ("params_sequential", sequential, kerases, app),
        ("params_functional", functional, graph_kerases, graph_app),
    ):
        goals.record(
            key,
            f"{ratio:,.0f}× (app median {statistics.median(apps) * 1e6:.0f} µs)",
            f"Keras build + count_params() median {statistics.median(kerases_) * 1e3:.1f} ms",
            ratio >= GOAL,
        )
    goals.record(
        "graph_schema",
        f"{schema_ratio:.2f}× (graph {statistics.median(graph_schema) * 1e6:.1f} µs)",
        f"as Sequential {statistics.median(sequential_schema) * 1e6:.1f} µs",
        schema_ratio <= GRAPH_GOAL,
    )


if __name__ == "__main__":
    main()
