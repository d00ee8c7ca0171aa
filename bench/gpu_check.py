"""A short check of the worker's training path on a GPU host.

Not part of ``make bench`` (CI machines have no GPU). On a GPU host with
Keras and JAX installed: ``KERAS_BACKEND=jax python -m bench.gpu_check``.
It trains the three seed examples twice each (the second run warm, with
compiled steps cached) and a larger stacked LSTM, and prints the device,
timings and predictions. ``JAX_PLATFORMS=cpu`` gives the CPU figures of
the same run for comparison.
"""

from __future__ import annotations

import os
import random
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from seqlab import analyze  # noqa: E402
from seqlab.examples import EXAMPLES  # noqa: E402
from seqlab.examples import example_request  # noqa: E402
from worker import training  # noqa: E402
from worker.backend import configure_backend  # noqa: E402


def run(request: dict, label: str) -> dict:
    request["fit"].setdefault("shuffle", True)
    request["fit"].setdefault("validation_split", 0.0)
    expected = analyze(request["model"]).counts()
    start = time.perf_counter()
    result, model_file = training.train(
        request, expected=expected, on_progress=lambda _: None, should_stop=lambda: False
    )
    total = time.perf_counter() - start
    preds = result["predictions"]
    while isinstance(preds, list) and len(preds) == 1:
        preds = preds[0]
    shown = str([round(v, 2) if isinstance(v, float) else v for v in preds][:5])[:60]
    print(
        f"{label:28s} {result['device']:24s} total {total:6.2f} s  "
        f"build {result['timings']['build_seconds']:.2f}  "
        f"train {result['timings']['train_seconds']:.2f}  "
        f"loss {result['final_metrics']['loss']:.2e}  params {result['keras_params']:,}  "
        f"{shown}  model {len(model_file):,} B"
    )
    return result


def main() -> None:
    backend = configure_backend()
    import jax
    import keras

    print(f"keras {keras.__version__}, backend {backend}, jax {jax.__version__}, "
          f"devices {jax.devices()}")  # fmt: skip
    for name in EXAMPLES:
        for attempt in ("cold", "warm"):
            run(example_request(name), f"{name} ({attempt})")
    rng = random.Random(0)
    samples, steps, features = 256, 100, 32
    x = [[[rng.uniform(-1, 1) for _ in range(features)] for _ in range(steps)]
         for _ in range(samples)]  # fmt: skip
    y = [[sum(row[-1]) / features] for row in x]
    big = {
        "model": {
            "input_shape": [steps, features],
            "layers": [
                {"type": "LSTM", "units": 256, "return_sequences": True},
                {"type": "Bidirectional", "layer": {"type": "GRU", "units": 128}},
                {"type": "Dense", "units": 1},
            ],
        },
        "data": {"x": x, "y": y},
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 5, "batch_size": 32},
        "seed": 0,
    }
    for attempt in ("cold", "warm"):
        run(big, f"stacked LSTM/BiGRU ({attempt})")


if __name__ == "__main__":
    main()
