"""Sweeps: many variants of one train request, as plain data (no Flask, no Redis).

A sweep is a train request and ``vary``: dotted paths into that request,
each with a list of values; its trials are their cartesian product, in the
order the paths are given (the last path varies fastest, as in
``itertools.product``)::

    >>> [t.values for t in expand({"seed": 0}, {"seed": [0, 1], "fit.epochs": [5]})]
    [{'seed': 0, 'fit.epochs': 5}, {'seed': 1, 'fit.epochs': 5}]

Trials whose requests differ only in :data:`VECTOR_PATHS` (the seed and the
learning rate: values, not shapes) share a *structure*
(:func:`structure_key`): a worker trains them together, as one vectorized
program. The best trial is the one whose last logged ``objective`` is the
smallest (``mode`` ``min``) or largest (``max``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Where a path may point: the parts of a train request a trial may change.
#: The data is shared by every trial (stored once); ``example`` names the
#: preset the request starts from.
VARIABLE_ROOTS = ("model", "compile", "fit", "seed")
#: Paths whose values leave a model's shapes and program alone: trials that
#: differ only in these are trained together (:func:`structure_key`).
VECTOR_PATHS = ("seed", "compile.learning_rate")
#: The statuses a sweep can have (those of its trials, summed up by
#: :func:`sweep_status`).
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


class SweepError(ValueError):
    """A ``vary`` or ``objective`` the sweep cannot use.

    Args:
        message: the reason.
        path: the dotted path of the field in the sweep request
            (``vary.model.layers.9.units``).
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Trial:
    """One variant: its number, the values it takes (by path) and its
    train request (the base request with those values set)."""

    number: int
    values: dict[str, Any]
    request: dict[str, Any]


def check_vary(vary: Any, max_trials: int) -> dict[str, list[Any]]:
    """``vary`` as an object of paths to non-empty lists of JSON values,
    of at most ``max_trials`` combinations.

    :raise SweepError: naming the field and the reason.
    """
    if not isinstance(vary, Mapping) or not vary:
        raise SweepError("Must be an object of dotted paths, each with a list of values.", "vary")
    checked: dict[str, list[Any]] = {}
    for path, values in vary.items():
        field = f"vary.{path}"
        root = path.split(".", 1)[0]
        if root not in VARIABLE_ROOTS or path.endswith(".") or ".." in path:
            raise SweepError(
                f"Not a path a trial may change: it must start with one of "
                f"{', '.join(VARIABLE_ROOTS)} (the data is shared by every trial).",
                field,
            )
        if not isinstance(values, list) or not values:
            raise SweepError("Must be a non-empty list of values.", field)
        checked[path] = values
    count = math.prod(len(v) for v in checked.values())
    if count > max_trials:
        sizes = " × ".join(str(len(v)) for v in checked.values())
        sizes = f"{sizes} = {count:,}" if len(checked) > 1 else f"{count:,}"
        raise SweepError(
            f"The sweep has {sizes} trials, over the limit of {max_trials:,} (SEQLAB_MAX_TRIALS).",
            "vary",
        )
    return checked


def set_path(request: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted ``path`` of ``request``: a key of an object
    (created where the object lacks it), or the index of a list item that
    exists.

    :raise SweepError: where the path runs through a value that is neither
        (naming how far it got).
    """
    parts = path.split(".")
    node: Any = request
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the request"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SweepError(
                    f"{where} is a list of {len(node)} items: {part!r} is not the index of one.",
                    f"vary.{path}",
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
            if not last and key not in node:
                node[key] = {}
        else:
            raise SweepError(
                f"{where} is {json.dumps(node)}, not an object or a list.", f"vary.{path}"
            )
        if last:
            node[key] = copy.deepcopy(value)
        else:
            node = node[key]


def expand(base: Mapping[str, Any], vary: Mapping[str, Sequence[Any]]) -> list[Trial]:
    """The trials of ``vary`` (checked by :func:`check_vary`) over ``base``,
    a train request without its data; each its own deep copy."""
    paths = list(vary)
    trials = []
    for number, combination in enumerate(itertools.product(*(vary[p] for p in paths))):
        request = copy.deepcopy(dict(base))
        values = dict(zip(paths, combination, strict=True))
        for path, value in values.items():
            set_path(request, path, value)
        trials.append(Trial(number, values, request))
    return trials


def structure_key(request: Mapping[str, Any]) -> str:
    """What trials trained together share: their request, but for the
    values of :data:`VECTOR_PATHS` (as loaded: defaults filled)."""
    shared = {k: v for k, v in request.items() if k not in ("seed", "data", "validation")}
    shared["compile"] = {
        k: v for k, v in request.get("compile", {}).items() if k != "learning_rate"
    }
    return json.dumps(shared, sort_keys=True, separators=(",", ":"), default=str)


def groups(keys: Sequence[str]) -> list[list[int]]:
    """The trials (by number) of each structure, in order of first
    appearance, from each trial's :func:`structure_key`."""
    by_key: dict[str, list[int]] = {}
    for number, key in enumerate(keys):
        by_key.setdefault(key, []).append(number)
    return list(by_key.values())


def default_objective(logged: Sequence[str]) -> dict[str, str]:
    """The objective a request leaves out: the last ``val_loss`` where the
    fit logs one (``logged``: the names each epoch logs), else ``loss``;
    both minimized."""
    return {"metric": "val_loss" if "val_loss" in logged else "loss", "mode": "min"}


def best_trial(
    results: Mapping[int, Mapping[str, Any] | None], objective: Mapping[str, str]
) -> dict[str, Any] | None:
    """The best of the trials with a result (``final_metrics`` holding a
    finite value of the objective's metric): ``{"trial", "value", "metric",
    "mode"}``, the first trial winning a tie; None while no trial has one."""
    metric, mode = objective["metric"], objective["mode"]
    best: tuple[int, float] | None = None
    for number, result in sorted(results.items()):
        value = ((result or {}).get("final_metrics") or {}).get(metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        better = best is None or (value < best[1] if mode == "min" else value > best[1])
        if better:
            best = (number, float(value))
    if best is None:
        return None
    return {"trial": best[0], "value": best[1], "metric": metric, "mode": mode}


def sweep_status(statuses: Sequence[str]) -> str:
    """A sweep's status from its trials': ``running`` while any runs (or some
    have ended and others wait), ``queued`` while all wait; once all have
    ended, ``succeeded`` if all did, ``cancelled`` if any was cancelled,
    else ``failed``."""
    if all(s == "queued" for s in statuses):
        return "queued"
    if not all(s in TERMINAL for s in statuses):
        return "running"
    if all(s == "succeeded" for s in statuses):
        return "succeeded"
    return "cancelled" if "cancelled" in statuses else "failed"
