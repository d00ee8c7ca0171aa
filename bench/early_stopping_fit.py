"""The fit of a seed-sized job with ``fit.early_stopping``: fused vs per epoch.

``python -m bench.early_stopping_fit [--quick]``: for each backend (JAX,
TensorFlow; each in a process of its own, as Keras binds its backend at
import), the seed examples with early stopping, fitted by the worker's
fused fit (``worker/fitting.py`` ``fit_fused``, what a job without
validation data runs) and by Keras's own ``fit`` epoch by epoch
(``fit_per_epoch``, what it ran before), alternately, from the same seed.
Each run times the fit phase alone (model built and compiled before the
clock starts; the first step's compile is inside it, as in a job). Prints
the medians side by side, the epochs run and the best epoch of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (example, its ``fit.early_stopping``): the seed programs' models, data
#: and epochs, stopping once the loss improves by less than ``min_delta``
#: for ``patience`` epochs, with the best epoch's weights restored (the
#: fused fit's costliest case: the weights are read at each improvement).
CASES = (
    (
        "one_to_one",
        {"monitor": "loss", "patience": 10, "min_delta": 1e-4, "restore_best_weights": True},
    ),
    (
        "many_to_one",
        {"monitor": "loss", "patience": 10, "min_delta": 1e-4, "restore_best_weights": True},
    ),
    ("many_to_many", {"monitor": "loss", "patience": 10, "min_delta": 1e-4}),
)


def fit_once(request: dict, fused: bool) -> tuple[float, int, int]:
    """Seconds of one fit, the epochs it ran and its best epoch (1-based)."""
    import keras

    from worker.builder import build_model
    from worker.fitting import early_stopping
    from worker.fitting import fit_fused
    from worker.fitting import fit_per_epoch
    from worker.graph_arrays import job_arrays
    from worker.monitor import Monitor
    from worker.training import compile_model
    from worker.training import steps_per_epoch

    keras.utils.set_random_seed(request.get("seed") or 0)
    model = build_model(request["model"])
    compile_model(model, request["compile"])
    x, y = job_arrays(request, model)
    fit_args = request["fit"]
    monitor = Monitor(
        epochs=fit_args["epochs"],
        steps_per_epoch=steps_per_epoch(request),
        on_progress=lambda _: None,
        should_stop=lambda: False,
    )
    stopper = early_stopping(fit_args["early_stopping"])
    options = {
        "batch_size": fit_args["batch_size"],
        "epochs": fit_args["epochs"],
        "shuffle": fit_args["shuffle"],
        "monitor": monitor,
    }
    start = time.perf_counter()
    if fused:
        fit_fused(model, x, y, stopper=stopper, **options)
    else:
        fit_per_epoch(model, x, y, None, callbacks=[stopper], **options)
    elapsed = time.perf_counter() - start
    keras.backend.clear_session()
    return elapsed, monitor.epochs_done, stopper.best_epoch + 1


def backend_run(runs: int) -> dict:
    """In this process (its backend already chosen): every case, ``runs``
    times each way, alternating."""
    import warnings

    from seqlab.examples import example_request

    warnings.simplefilter("ignore")
    out = {}
    for name, options in CASES:
        request = example_request(name)
        request["fit"].update(shuffle=True, validation_split=0.0, early_stopping=options)
        times: dict[str, list[float]] = {"fused": [], "per_epoch": []}
        epochs: dict[str, list[list[int]]] = {"fused": [], "per_epoch": []}
        for _ in range(runs):
            for way in ("fused", "per_epoch"):
                seconds, done, best = fit_once(request, way == "fused")
                times[way].append(seconds)
                epochs[way].append([done, best])
        out[name] = {"times": times, "epochs": epochs, "asked": request["fit"]["epochs"]}
    return out


def main(quick: bool = False) -> None:
    runs = 3 if quick else 5
    print("\nearly stopping, fit phase: fused vs Keras's fit epoch by epoch (same seed, shuffled)")
    for backend in ("jax", "tensorflow"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(
            [sys.executable, "-m", "bench.early_stopping_fit", "--child", str(runs)],
            capture_output=True, text=True, check=True, cwd=ROOT, env=env,
        )  # fmt: skip
        result = json.loads(done.stdout.splitlines()[-1])
        print(f"  {backend}:")
        for name, run in result.items():
            fused = statistics.median(run["times"]["fused"])
            per_epoch = statistics.median(run["times"]["per_epoch"])
            stops = {way: sorted({tuple(e) for e in run["epochs"][way]}) for way in run["epochs"]}
            print(
                f"    {name:13s} fused {fused:6.2f} s  per-epoch {per_epoch:6.2f} s  "
                f"({per_epoch / fused:4.1f}× faster; medians of {runs})  "
                f"epochs run, best: fused {stops['fused']} per-epoch {stops['per_epoch']} "
                f"of {run['asked']}"
            )
            for way in ("fused", "per_epoch"):
                print(f"      {way:9s} {[round(t, 2) for t in run['times'][way]]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        from worker.backend import configure_backend

        configure_backend()
        print(json.dumps(backend_run(int(sys.argv[2]))))
    else:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--quick", action="store_true", help="fewer runs")
        main(quick=parser.parse_args().quick)
