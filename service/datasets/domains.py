"""The values a training tensor may hold, by input dtype, Embedding and loss.

The worker turns ``x`` into a NumPy array of the model's input dtype and
``y`` into float32 (``worker/training.py``). NumPy raises OverflowError for
an integer out of an integer dtype's range, truncates fractions without a
word, and rounds floats too large for a float dtype to inf; Keras then
trains on what is left. Each :class:`Domain` states a rule for people and
finds the first value that breaks it, in pure Python (the API process has
no NumPy): floats are rounded as NumPy rounds them, through ``struct``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

#: The smallest magnitude each float dtype rounds to inf (ties go to even,
#: which is inf here). bfloat16 arrays round through float32 first
#: (ml_dtypes), so its threshold sits half a float32 step lower.
OVERFLOW = {
    "float16": 65520.0,
    "bfloat16": 2.0**128 - 2.0**119 - 2.0**103,
    "float32": 2.0**128 - 2.0**103,
}
#: Every integer up to this magnitude is exact in the dtype.
EXACT_INTEGERS = {"float16": 2**11, "bfloat16": 2**8, "float32": 2**24}


def plain_number(value: Any) -> str:
    """A number as a message shows it: ``nan``, ``inf``, ``-inf``, ``1e+39``,
    ``3``, ``true``; never ``np.float64(nan)``, the repr of NumPy's scalars
    (an uploaded array's values are NumPy scalars until ``.item()``)."""
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        if getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
            return str(value)  # the shortest digits of its own precision
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def stored(value: float, dtype: str) -> float:
    """``value`` as an array of float ``dtype`` holds it (inf past its range)."""
    if abs(float(value)) >= OVERFLOW[dtype]:
        return math.copysign(math.inf, value)
    if dtype == "float16":
        return struct.unpack("e", struct.pack("e", value))[0]  # type: ignore[no-any-return]
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    if dtype == "bfloat16":  # the upper half of a float32, rounded half to even
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return struct.unpack("<f", struct.pack("<I", bits))[0]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Domain:
    """Which numbers a tensor may hold, and the rule said for people."""

    rule: str
    low: float = -math.inf
    high: float = math.inf
    integers: bool = False
    #: The float dtype the values are stored in, if any: they must stay
    #: finite and, when they are integers, exact.
    dtype: str | None = None
    #: Whether a fraction would be truncated (NumPy's int casts; not bool's).
    truncates: bool = True
    #: Values let through whatever the rule (a Masking layer's mask value).
    exempt: frozenset[float] = frozenset()
    #: Whether JSON integers must fit int64 (NumPy's bfloat16 conversion
    #: raises TypeError "expected number, got int" for larger ones).
    int64_integers: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` is allowed."""
        if value in self.exempt:
            return True
        if not self.low <= value <= self.high:
            return False
        if self.integers and isinstance(value, float) and not value.is_integer():
            return False
        if self.int64_integers and type(value) is int and not INT64[0] <= value <= INT64[1]:
            return False
        if self.dtype is None:
            return True
        if self.integers and abs(value) > EXACT_INTEGERS[self.dtype]:
            return stored(value, self.dtype) == value
        return abs(float(value)) < OVERFLOW[self.dtype]

    def first_outside(self, values: Sequence[float]) -> int | None:
        """The index of the first value not allowed, or None."""
        if not self.integers and not self.int64_integers:
            # Every rule but these is a range: the extremes decide.
            if self.holds(min(values)) and self.holds(max(values)):
                return None
        return next((i for i, v in enumerate(values) if not self.holds(v)), None)

    def why(self, value: float) -> str:
        """What the worker's array would make of a refused ``value``, if telling."""
        if not self.low <= value <= self.high:
            return ""
        if self.integers and isinstance(value, float) and not value.is_integer():
            return f" (it would be truncated to {math.trunc(value)})" if self.truncates else ""
        if self.int64_integers and type(value) is int and not INT64[0] <= value <= INT64[1]:
            return f" (write it as a float: {plain_number(float(value))})"
        if self.dtype is None:
            return ""
        return f" (it becomes {plain_number(stored(value, self.dtype))} in {self.dtype})"


def float_domain(dtype: str, what: str) -> Domain:
    """Finite once stored in float ``dtype``."""
    rule = (
        f"{what} are {dtype}: their magnitude must stay below {OVERFLOW[dtype]:.5g}, "
        "past which they become inf"
    )
    if dtype == "bfloat16":
        rule += ", and integers must fit int64 (NumPy converts no larger int to bfloat16)"
    return Domain(rule, dtype=dtype, int64_integers=dtype == "bfloat16")


def narrowest(dtypes: Sequence[tuple[str, str]], by: Mapping[str, float]) -> tuple[str, str]:
    """The first (place, dtype) of ``dtypes`` with the least ``by`` (float64
    has none: it narrows nothing)."""
    return min((item for item in dtypes if item[1] in by), key=lambda item: by[item[1]])


def input_domain(dtype: str, casts: Sequence[tuple[str, str]] = ()) -> Domain:
    """What ``x`` may hold for a model input of ``dtype`` whose float values
    the layers at ``casts`` (place, compute dtype) cast on their way in."""
    if dtype in OVERFLOW or dtype == "float64":
        # NumPy stores x in ``dtype``; Keras's array adapter casts every
        # float array to float32 (floatx); then each layer to its own dtype.
        place, narrow = narrowest([("input", dtype), ("input", "float32"), *casts], OVERFLOW)
        if place == "input" and narrow == dtype:
            return float_domain(dtype, "The model's inputs")
        why = (
            "Keras casts float inputs to float32 for training"
            if place == "input"
            else f"{place} computes in {narrow} and casts its inputs"
        )
        return Domain(
            f"{why}: their magnitude must stay below {OVERFLOW[narrow]:.5g}, past which "
            "they become inf",
            dtype=narrow,
            int64_integers=dtype == "bfloat16",
        )
    if dtype == "bool":
        return Domain(
            "A bool input takes 0 and 1 (or true and false); NumPy makes any other number true",
            0,
            1,
            integers=True,
            truncates=False,
        )
    if dtype == "uint8":
        return Domain("A uint8 input takes integers in [0, 255]", 0, 255, integers=True)
    if dtype in ("int32", "int64"):
        rule = f"An {dtype} input takes integers in [{INT32[0]}, {INT32[1]}]"
        if dtype == "int64":
            # jax_enable_x64 is off: JAX stores int64 arrays as int32, and
            # Keras's JAX backend hands them to the model wrapped around.
            rule += " (the JAX workers run without 64-bit integers and would wrap larger ones)"
        return Domain(rule, *INT32, integers=True)
    raise ValueError(f"No domain for input dtype {dtype!r}.")


def embedding_domain(
    input_dim: int,
    dtype: str,
    path: str,
    masked: frozenset[float] = frozenset(),
    casts: Sequence[tuple[str, str]] = (),
) -> Domain:
    """Token ids for an Embedding with ``input_dim`` rows, fed ``dtype`` values
    that the layers at ``casts`` cast on the way; ``masked`` values are let
    through (a Masking layer makes their steps 0)."""
    exact: str | None = None
    if dtype in OVERFLOW or dtype == "float64":  # float arrays reach Keras as float32
        _, exact = narrowest([("input", dtype), ("input", "float32"), *casts], EXACT_INTEGERS)
    return Domain(
        f"The Embedding at {path} takes integer token ids in [0, {input_dim}) (its input_dim); "
        "Keras casts other values to int32 and looks up the wrong rows, or none",
        0,
        input_dim - 1,
        integers=True,
        dtype=exact,
        exempt=masked,
    )


def sparse_label_domain(classes: int, loss: str) -> Domain:
    """Class labels for a sparse loss over ``classes`` outputs (y is float32)."""
    return Domain(
        f"{loss} takes integer class labels in [0, {classes}): the model's output has "
        f"{classes} classes",
        0,
        classes - 1,
        integers=True,
        dtype="float32",
    )


#: Losses whose targets have a domain that Keras does not check: it computes
#: a meaningless loss outside it, or changes the targets without a word.
#: Regression losses (mse, mae, huber, log_cosh, ...) take any target;
#: hinge losses any margin; poisson is left to the user.
LOSS_DOMAINS = {
    "binary_crossentropy": Domain(
        "binary_crossentropy takes targets in [0, 1] (probabilities); outside it Keras "
        "computes a meaningless cross-entropy, negative for some predictions",
        0,
        1,
    ),
    "categorical_crossentropy": Domain(
        "categorical_crossentropy takes targets in [0, 1] (probabilities); outside it "
        "Keras computes a meaningless cross-entropy, negative for some predictions",
        0,
        1,
    ),
    "kl_divergence": Domain(
        "kl_divergence takes targets in [0, 1] (probabilities); Keras clips others "
        "into [1e-07, 1] without a word",
        0,
        1,
    ),
    "mean_squared_logarithmic_error": Domain(
        "mean_squared_logarithmic_error takes targets of at least 0; Keras replaces "
        "negative ones with 1e-07 without a word",
        0,
        dtype="float32",
    ),
}


#: The losses that take integer class labels, one per output position.
SPARSE_LOSSES = ("sparse_categorical_crossentropy",)


def position(flat_index: int, shape: list[int]) -> str:
    """Where the ``flat_index``-th number of a tensor of ``shape`` is: ``[0][2]``."""
    index = []
    for size in reversed(shape):
        flat_index, i = divmod(flat_index, size)
        index.append(i)
    return "".join(f"[{i}]" for i in reversed(index))


def first_outside_array(domain: Domain, array: Any) -> tuple[int, float] | None:
    """The flat index and value of the first element of ``array`` outside
    ``domain``, or None: :meth:`Domain.first_outside` for NumPy arrays.

    Vectorized comparisons find every element that could break the rule
    (outside the range, a fraction where integers are due, past a float
    dtype's exact integers or its range); ``Domain.holds`` decides on those.
    """
    import numpy as np

    flat = array.reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.astype(np.int8)  # NumPy's casts of x make them 0 and 1
    # Floats compare with float64 bounds (NumPy promotes elementwise): a
    # bound past a float32 or float16 range would overflow in their dtype.
    typed = np.float64 if flat.dtype.kind == "f" else (lambda bound: bound)
    suspect = (flat < typed(domain.low)) | (flat > typed(domain.high))
    if domain.integers and flat.dtype.kind == "f":
        suspect |= flat != np.trunc(flat)
    if domain.dtype is not None:
        bound = (EXACT_INTEGERS if domain.integers else OVERFLOW).get(domain.dtype, math.inf)
        suspect |= np.abs(flat) >= typed(bound)
    if domain.int64_integers and flat.dtype == np.uint64:
        suspect |= flat > np.uint64(INT64[1])
    for i in np.flatnonzero(suspect):
        value = flat[i].item()
        if not domain.holds(value):
            return int(i), value
    return None
