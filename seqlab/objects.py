"""The Keras objects a layer argument may name: initializers, regularizers
and constraints, with their config arguments.

Each allowlisted class lists the arguments its ``from_config`` accepts (the
keys of its ``get_config``), with the Keras names, defaults and limits, and
the snake-case aliases ``keras.initializers.get`` and friends accept. The
API validates a ``{"class_name": ..., "config": {...}}`` against this, so a
config Keras would refuse is a 422 rather than a job that fails on the
worker; the tests construct every class in Keras from it.

Keras sources: ``keras/src/initializers/{constant,random}_initializers.py``,
``keras/src/regularizers/regularizers.py`` (``validate_float_arg``: finite,
non-negative) and ``keras/src/constraints/constraints.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .argspec import REQUIRED
from .argspec import Arg
from .argspec import Kind


@dataclass(frozen=True, slots=True)
class KerasClass:
    """One allowlisted Keras object class and its config arguments."""

    name: str
    args: tuple[Arg, ...] = ()
    #: Other names Keras's ``get`` accepts for the class.
    aliases: tuple[str, ...] = ()


def _number(name: str, default: float, **kw: object) -> Arg:
    return Arg(name, Kind.FLOAT, default, **kw)  # type: ignore[arg-type]


def _penalty(name: str, default: float) -> Arg:
    # validate_float_arg: a finite number >= 0; None means the default.
    return Arg(name, Kind.FLOAT, default, minimum=0.0, nullable=True)


_SEED = Arg("seed", Kind.INT, None, minimum=0, nullable=True)
#: Keras 3.15's fan axes of VarianceScaling: only their default, null.
_AXES = (Arg("input_axes", Kind.NULL, None, nullable=True),
         Arg("output_axes", Kind.NULL, None, nullable=True))  # fmt: skip
_FAN = (_SEED, *_AXES)


def _axis(default: int = 0) -> Arg:
    return Arg("axis", Kind.AXIS, default)


INITIALIZER_CLASSES = (
    # Constant.from_config reads config["value"]: it has no default there.
    KerasClass("Constant", (_number("value", REQUIRED),), ("constant",)),
    KerasClass("GlorotNormal", _FAN, ("glorot_normal",)),
    KerasClass("GlorotUniform", _FAN, ("glorot_uniform",)),
    KerasClass("HeNormal", _FAN, ("he_normal",)),
    KerasClass("HeUniform", _FAN, ("he_uniform",)),
    KerasClass("Identity", (_number("gain", 1.0),), ("identity",)),
    KerasClass("LecunNormal", _FAN, ("lecun_normal",)),
    KerasClass("LecunUniform", _FAN, ("lecun_uniform",)),
    KerasClass("Ones", (), ("one", "ones")),
    KerasClass("Orthogonal", (_number("gain", 1.0), _SEED), ("orthogonal",)),
    KerasClass(
        "RandomNormal",
        (_number("mean", 0.0), _number("stddev", 0.05), _SEED),
        ("normal", "random_normal"),
    ),
    KerasClass(
        "RandomUniform",
        (_number("minval", -0.05), _number("maxval", 0.05), _SEED),
        ("random_uniform", "uniform"),
    ),
    KerasClass(
        "TruncatedNormal",
        (_number("mean", 0.0), _number("stddev", 0.05), _SEED),
        ("truncated_normal",),
    ),
    KerasClass(
        "VarianceScaling",
        (
            _number("scale", 1.0, minimum=0.0, exclusive_minimum=True),
            Arg("mode", Kind.CHOICE, "fan_in", choices=("fan_in", "fan_out", "fan_avg")),
            Arg(
                "distribution",
                Kind.CHOICE,
                "truncated_normal",
                choices=("truncated_normal", "untruncated_normal", "uniform", "normal"),
            ),  # fmt: skip
            *_FAN,
        ),
        ("variance_scaling",),
    ),
    KerasClass("Zeros", (), ("zero", "zeros")),
)
REGULARIZER_CLASSES = (
    KerasClass("L1", (_penalty("l1", 0.01),), ("l1",)),
    KerasClass("L1L2", (_penalty("l1", 0.0), _penalty("l2", 0.0)), ("l1l2",)),
    KerasClass("L2", (_penalty("l2", 0.01),), ("l2",)),
    KerasClass(
        "OrthogonalRegularizer",
        (
            Arg("factor", Kind.FLOAT, 0.01, minimum=0.0),
            Arg("mode", Kind.CHOICE, "rows", choices=("rows", "columns")),
        ),
        ("orthogonal_regularizer",),
    ),
)
CONSTRAINT_CLASSES = (
    KerasClass("MaxNorm", (_number("max_value", 2), _axis()), ("max_norm",)),
    KerasClass(
        "MinMaxNorm",
        (_number("min_value", 0.0), _number("max_value", 1.0), _number("rate", 1.0), _axis()),
        ("min_max_norm",),
    ),
    KerasClass("NonNeg", (), ("non_neg",)),
    KerasClass("UnitNorm", (_axis(),), ("unit_norm",)),
)


def _names(classes: tuple[KerasClass, ...]) -> tuple[str, ...]:
    return tuple(sorted(n for c in classes for n in (c.name, *c.aliases)))


#: Every name an argument of each family accepts, class names and aliases.
INITIALIZERS = _names(INITIALIZER_CLASSES)
REGULARIZERS = _names(REGULARIZER_CLASSES)
CONSTRAINTS = _names(CONSTRAINT_CLASSES)

#: Each accepted name (class name or alias) → its class.
KERAS_CLASSES: dict[str, KerasClass] = {
    name: c
    for c in INITIALIZER_CLASSES + REGULARIZER_CLASSES + CONSTRAINT_CLASSES
    for name in (c.name, *c.aliases)
}
