"""Rules of Keras's ``fit`` that the API checks and the worker follows."""

from __future__ import annotations

import math


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
