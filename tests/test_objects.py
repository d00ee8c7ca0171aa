"""The Keras object descriptions (``seqlab.objects``) against Keras.

Parametrized over every allowlisted initializer, regularizer and
constraint class:

* the class and each alias are what Keras's ``get`` resolves;
* its config arguments are the keys of Keras's ``get_config`` and its
  constructor's arguments, with the registry's defaults; an argument the
  registry calls required is one ``from_config`` cannot do without;
* every kind of bad config the API refuses (a wrong type, a value out of
  the limits, not one of the choices, an unknown key), Keras refuses too:
  when the object is constructed, or when it is first applied to a weight.
  One exception, where seqlab is stricter: ``Constant.from_config`` reads
  ``config["value"]`` and ignores any other key; seqlab refuses unknown
  keys for every class alike (a misspelt key is a mistake either way).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras_oracle as oracle
import marshmallow as ma
import pytest

from modelspec.fields import object_config_schema
from seqlab.argspec import REQUIRED
from seqlab.argspec import Arg
from seqlab.argspec import Kind
from seqlab.objects import CONSTRAINT_CLASSES
from seqlab.objects import INITIALIZER_CLASSES
from seqlab.objects import REGULARIZER_CLASSES
from seqlab.objects import KerasClass

FAMILIES = {
    "initializers": INITIALIZER_CLASSES,
    "regularizers": REGULARIZER_CLASSES,
    "constraints": CONSTRAINT_CLASSES,
}
CLASSES = [(family, c) for family, classes in FAMILIES.items() for c in classes]
IDS = [c.name for _, c in CLASSES]
#: A value for a required argument (Constant's value).
SAMPLE = {"value": 0.5}


def keras_get(family: str, identifier: Any) -> Any:
    keras = oracle.import_keras()
    return getattr(keras, family).get(identifier)


def apply(family: str, obj: Any) -> Any:
    """Use the object on a (3, 4) float32 weight, as a layer would."""
    import numpy as np

    if family == "initializers":
        return obj((3, 4), dtype="float32")
    return obj(np.ones((3, 4), dtype="float32"))


def default_config(keras_class: KerasClass) -> dict[str, Any]:
    return {a.name: SAMPLE[a.name] if a.required else a.default for a in keras_class.args}


@pytest.mark.keras
@pytest.mark.parametrize(("family", "keras_class"), CLASSES, ids=IDS)
def test_names_and_aliases_are_the_keras_class(family: str, keras_class: KerasClass) -> None:
    config = default_config(keras_class)
    for name in (keras_class.name, *keras_class.aliases):
        obj = keras_get(family, {"class_name": name, "config": config})
        assert type(obj).__name__ == keras_class.name, name


@pytest.mark.keras
@pytest.mark.parametrize(("family", "keras_class"), CLASSES, ids=IDS)
def test_config_arguments_are_keras_arguments_with_keras_defaults(
    family: str, keras_class: KerasClass
) -> None:
    needs = {a.name: SAMPLE[a.name] for a in keras_class.args if a.required}
    cls = type(keras_get(family, {"class_name": keras_class.name, "config": needs}))
    params = inspect.signature(cls.__init__).parameters
    built = cls.from_config(default_config(keras_class))
    # Identity's get_config forgets its gain, yet from_config takes it.
    assert set(built.get_config()) <= {a.name for a in keras_class.args}
    for arg in keras_class.args:
        assert arg.name in params, arg.name
        if arg.required:
            # Only from_config requires it (Constant reads config["value"]).
            with pytest.raises(KeyError):
                cls.from_config({})
        else:
            assert params[arg.name].default == arg.default, arg.name
    apply(family, built)  # the defaults make a working object


def bad_values(arg: Arg) -> list[Any]:
    """Values of each kind the API refuses for ``arg``."""
    if arg.kind is Kind.FLOAT:
        values: list[Any] = ["x", [1, 2, 3]]
        if arg.minimum is not None:
            values.append(arg.minimum if arg.exclusive_minimum else arg.minimum - 1)
        return values
    if arg.kind is Kind.INT:
        return ["x", 1.5]
    if arg.kind is Kind.CHOICE:
        return ["nope"]
    if arg.kind is Kind.AXIS:
        return ["x", [0.5]]
    # Kind.NULL: unsupported by seqlab (Keras's fan axes), not a Keras refusal.
    return []


#: Refused by seqlab, ignored by Keras (see the module docstring).
STRICTER = {"Constant-bogus"}

BAD = [
    pytest.param(family, c, config, id=f"{c.name}-{key}")
    for family, c in CLASSES
    for key, config in [
        ("bogus", {**default_config(c), "bogus": 1}),
        *(
            (f"{a.name}={value!r}", {**default_config(c), a.name: value})
            for a in c.args
            for value in bad_values(a)
        ),
    ]
]


@pytest.mark.keras
@pytest.mark.parametrize(("family", "keras_class", "config"), BAD)
def test_bad_configs_are_refused_by_seqlab_and_by_keras(
    family: str, keras_class: KerasClass, config: dict[str, Any]
) -> None:
    with pytest.raises(ma.ValidationError):
        object_config_schema(keras_class.name).load(config)
    if f"{keras_class.name}-bogus" in STRICTER and "bogus" in config:
        return
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017 - any refusal
        warnings.simplefilter("ignore")
        apply(family, keras_get(family, {"class_name": keras_class.name, "config": config}))


@pytest.mark.parametrize(("family", "keras_class"), CLASSES, ids=IDS)
def test_default_configs_load(family: str, keras_class: KerasClass) -> None:
    config = default_config(keras_class)
    assert object_config_schema(keras_class.name).load(config) == config
    assert REQUIRED not in config.values()
