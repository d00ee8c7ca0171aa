"""Rules of Keras's ``fit`` that the API checks and the worker follows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any


def split_samples(samples: int, validation_split: float) -> tuple[int, int]:
    """``(training, validation)`` sample counts for ``validation_split``.

    Keras trains on the first ``floor(samples * (1 - split))`` samples and
    validates on the rest (``keras/src/trainers/data_adapters/array_slicing.py``,
    ``train_validation_split``).

    >>> split_samples(5, 0.4)
    (3, 2)
    """
    if not validation_split:
        return samples, 0
    train = math.floor(samples * (1.0 - validation_split))
    return train, samples - train


def per_output(value: Any, names: Sequence[str], index: int, *, listed: bool = True) -> Any:
    """Output ``index``'s setting: one value for all, a list (``listed``: a
    list is per output, as for losses, not for metrics), or by name."""
    if isinstance(value, Mapping):
        return value.get(names[index])
    if isinstance(value, list) and listed:
        return value[index]
    return value


def history_names(output_names: Sequence[str], metrics: Any) -> list[str]:
    """The names ``fit`` logs each epoch (before ``val_``'s) for a model with
    these outputs compiled with ``metrics``: ``loss``, and with several
    outputs each output's ``<name>_loss`` and ``<name>_<metric>`` (Keras 3's
    names), else each metric's own name.

    >>> history_names(["dense"], ["mae"])
    ['loss', 'mae']
    >>> history_names(["a", "b"], {"a": ["mae"]})
    ['loss', 'a_loss', 'b_loss', 'a_mae']
    """
    metrics = metrics or []
    if len(output_names) == 1:
        return ["loss", *(per_output(metrics, output_names, 0, listed=False) or [])]
    logged = ["loss", *(f"{name}_loss" for name in output_names)]
    for i, name in enumerate(output_names):
        own = per_output(metrics, output_names, i, listed=False) or []
        logged += [f"{name}_{m}" for m in own]
    return logged
