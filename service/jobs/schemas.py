"""Schemas of training jobs: the ``POST /train`` request and the job document."""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate

from jobs import settings
from modelspec.fields import FiniteFloat
from modelspec.fields import StrictBool
from modelspec.fields import StrictInt
from modelspec.model import load_model_spec
from seqlab import SpecError
from seqlab.examples import EXAMPLES
from seqlab.examples import example_request
from seqlab.memory import OPTIMIZERS

from ..datasets.domains import position

# What Keras accepts by name (`keras.optimizers.get`, `keras.losses.get`,
# metric names in `compile`), restricted to what suits sequence models.
LOSSES = (
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "huber",
    "log_cosh", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "kl_divergence", "poisson", "cosine_similarity",
    "hinge", "squared_hinge",
)  # fmt: skip
METRICS = (
    "mae", "mse", "mape", "msle", "mean_absolute_error", "mean_squared_error",
    "root_mean_squared_error", "accuracy", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "cosine_similarity", "log_cosh_error",
)  # fmt: skip
MAX_VALUES = 1_000_000
MAX_EPOCHS = 100_000
#: The largest finite float64; integers beyond it would be infinite in an array.
FLOAT64_MAX = sys.float_info.max


class Tensor(fields.Field):
    """A rectangular nested list of numbers, each within float64's range;
    loads as ``{"value": ..., "shape": [...], "flat": [...], "first_bool": i}``.

    ``flat`` is every number in order; ``first_bool`` the flat index of the
    first JSON ``true``/``false`` (or None): they are numbers only for a
    ``bool`` input, which ``check_data`` decides with the model at hand.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        shape = []
        probe = value
        while isinstance(probe, list):
            if not probe:
                raise ma.ValidationError("Must not contain empty lists.")
            shape.append(len(probe))
            probe = probe[0]
        if not shape:
            raise ma.ValidationError("Must be a (nested) list of numbers, samples first.")
        if math.prod(shape) > MAX_VALUES:
            raise ma.ValidationError(f"At most {MAX_VALUES:,} numbers.")
        level = [value]
        for depth, size in enumerate(shape):
            nxt = []
            for item in level:
                if not isinstance(item, list) or len(item) != size:
                    raise ma.ValidationError(
                        f"Must be rectangular: every list at depth {depth} must hold "
                        f"{size} items (the shape of the first is {shape})."
                    )
                nxt.extend(item)
            level = nxt
        first_bool = None
        for i, number in enumerate(level):
            if isinstance(number, bool):
                first_bool = i if first_bool is None else first_bool
            elif isinstance(number, int):
                # JSON allows integers of any size; the worker's arrays hold
                # at most float64 (math.isfinite would raise OverflowError).
                try:
                    float(number)
                except OverflowError:
                    digits = int(number.bit_length() * math.log10(2)) + 1
                    raise ma.ValidationError(
                        f"Must hold numbers within float64's range (±{FLOAT64_MAX:.4g}). "
                        f"Received: an integer of about {digits} digits at "
                        f"{position(i, shape)}."
                    ) from None
            elif not isinstance(number, float):
                raise ma.ValidationError(
                    f"Must hold numbers only. Received: {number!r} at {position(i, shape)}."
                )
            elif not math.isfinite(number):
                raise ma.ValidationError("Must hold finite numbers only.")
        return {"value": value, "shape": shape, "flat": level, "first_bool": first_bool}


#: Marshmallow's message for a missing required field, kept for x and y.
MISSING = "Missing data for required field."
#: At most this many arrays in a list or object of ``x``/``y`` (a graph
#: model's inputs or outputs; the graph form allows 64 inputs).
MAX_ARRAYS = 64


class Arrays(Tensor):
    """``x`` or ``y``: one array (a :class:`Tensor`), or, for a Functional
    model with several inputs or outputs, a list of arrays (in the model's
    order) or an object of arrays by input/output name.

    Which one a list is depends on the model (a list of two arrays of one
    shape is also one array), so it is decided once the model is known
    (``service/datasets/graph_checks.py``): a list loads as a Tensor when it is one,
    else as ``{"by_position": [Tensor, ...], "error": why it is not one
    array}`` when each item is an array; an object as ``{"by_name": {name:
    Tensor}}``.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, Mapping):
            if not 1 <= len(value) <= MAX_ARRAYS:
                raise ma.ValidationError(f"Must hold 1 to {MAX_ARRAYS} arrays by name.")
            return {"by_name": self._each(value.items())}
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ma.ValidationError as error:
            if not (
                isinstance(value, list)
                and 1 < len(value) <= MAX_ARRAYS
                and all(isinstance(v, list) for v in value)
            ):
                raise
            try:
                parts = self._each(enumerate(value))
            except ma.ValidationError:
                raise error from None
            return {"by_position": list(parts.values()), "error": error.messages}

    def _each(self, items: Any) -> dict[Any, Any]:
        """Each array loaded as a Tensor; errors keyed by name or position."""
        loaded, errors = {}, {}
        for key, item in items:
            try:
                loaded[key] = super()._deserialize(item, None, None)
            except ma.ValidationError as error:
                errors[str(key)] = error.messages
        if errors:
            raise ma.ValidationError(errors)
        return loaded


class DataSchema(ma.Schema):
    """Inline ``x`` and ``y``, or ``dataset``: the id of an uploaded one."""

    x = Arrays(
        metadata={
            "description": "Inputs, samples first: one array, or for a Functional model "
            "a list in its inputs' order or an object by input name."
        }
    )
    y = Arrays(
        metadata={
            "description": "Targets, samples first: one array, or for a Functional model "
            "a list in its outputs' order or an object by output name."
        }
    )
    dataset = fields.String(metadata={"description": "An uploaded dataset's id (POST /datasets)."})

    @ma.validates_schema
    def one_source(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Either x and y, or a dataset."""
        if "dataset" in data:
            if "x" in data or "y" in data:
                raise ma.ValidationError(
                    "Give either dataset or x and y, not both.", field_name="dataset"
                )
            return
        missing = {name: [MISSING] for name in ("x", "y") if name not in data}
        if missing:
            raise ma.ValidationError(missing)


class ValidationSchema(ma.Schema):
    """Validation data from an uploaded dataset (its ``x`` and ``y``)."""

    dataset = fields.String(
        required=True, metadata={"description": "An uploaded dataset's id (POST /datasets)."}
    )


class PerOutput(fields.Field):
    """One value, or (for a Functional model's outputs) a list of values in
    output order or an object by output name; each value loaded by ``inner``.
    How many and which names are checked against the model
    (``service/datasets/graph_checks.py``)."""

    def __init__(
        self, inner: fields.Field, *, listed: bool = True, alone: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.inner = inner
        #: A list holds one value per output (not so for metrics, whose
        #: one value is itself a list).
        self.listed = listed
        #: One value alone is accepted (for every output).
        self.alone = alone

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, Mapping):
            if not 1 <= len(value) <= MAX_ARRAYS:
                raise ma.ValidationError(f"Must hold 1 to {MAX_ARRAYS} values by output name.")
            return self._each(value.items(), dict)
        if isinstance(value, list) and self.listed:
            if not 1 <= len(value) <= MAX_ARRAYS:
                raise ma.ValidationError(f"Must hold 1 to {MAX_ARRAYS} values, one per output.")
            return self._each(enumerate(value), lambda pairs: [v for _, v in pairs])
        if not self.alone:
            raise ma.ValidationError("Must be a list in output order, or an object by output name.")
        return self.inner.deserialize(value)

    def _each(self, items: Any, make: Any) -> Any:
        loaded, errors = [], {}
        for key, item in items:
            try:
                loaded.append((key, self.inner.deserialize(item)))
            except ma.ValidationError as error:
                errors[key] = error.messages
        if errors:
            raise ma.ValidationError(errors)
        return make(loaded)


class CompileSchema(ma.Schema):
    optimizer = fields.String(load_default="adam", validate=validate.OneOf(OPTIMIZERS))
    loss = PerOutput(
        fields.String(validate=validate.OneOf(LOSSES)),
        load_default="mean_squared_error",
        metadata={"description": "One loss, or per output: a list or an object by name."},
    )
    loss_weights = PerOutput(
        FiniteFloat(validate=validate.Range(min=0)),
        alone=False,
        metadata={"description": "Per output: a list or an object by name (graphs)."},
    )
    metrics = PerOutput(
        fields.List(
            fields.String(validate=validate.OneOf(METRICS)),
            validate=validate.Length(max=8),
        ),
        listed=False,
        load_default=list,
        metadata={
            "description": "Metric names (for every output), or an object of lists by output name."
        },
    )
    learning_rate = FiniteFloat(
        load_default=None, allow_none=True, validate=validate.Range(0, 10, min_inclusive=False)
    )


def check_time_limit(seconds: int) -> None:
    """A job may ask for less time than the server's ``SEQLAB_JOB_TIME_LIMIT``, not more."""
    limit = settings.job_time_limit()
    if not 1 <= seconds <= limit:
        raise ma.ValidationError(
            f"Must be from 1 to {limit} (SEQLAB_JOB_TIME_LIMIT, this server's limit). "
            f"Received: {seconds}."
        )


class EarlyStoppingSchema(ma.Schema):
    """The arguments of Keras 3's ``keras.callbacks.EarlyStopping``, with its
    defaults (``verbose`` aside: the job reports instead). Where Keras takes
    anything (a negative ``min_delta``, which it makes positive; an unknown
    mode, which it warns about and reads as ``auto``), only the meaningful
    values are accepted. ``monitor`` is checked against the compiled loss
    and metrics by :meth:`TrainRequestSchema.check_monitor`."""

    monitor = fields.String(load_default="val_loss")
    min_delta = FiniteFloat(load_default=0.0, validate=validate.Range(min=0))
    patience = StrictInt(load_default=0, validate=validate.Range(0, MAX_EPOCHS))
    mode = fields.String(load_default="auto", validate=validate.OneOf(("auto", "min", "max")))
    baseline = FiniteFloat(load_default=None, allow_none=True)
    restore_best_weights = StrictBool(load_default=False)
    start_from_epoch = StrictInt(load_default=0, validate=validate.Range(0, MAX_EPOCHS))


def monitor_error(
    monitor: str, body: Mapping[str, Any], logged: list[str] | None = None
) -> str | None:
    """Why ``fit.early_stopping.monitor`` names nothing ``fit`` will log for
    this request, or None. Keras logs ``loss`` and each compiled metric under
    the name it was given, and the same with ``val_`` when there is
    validation data; any other name would warn at every epoch and never stop."""
    # ``logged``: a graph model's names (``service/datasets/graph_checks.history_names``).
    names = logged if logged is not None else ["loss", *body["compile"].get("metrics", [])]
    # Validation data: a split, or arrays of their own (a dataset's x_val and
    # y_val, or a validation dataset: in ``body["validation"]`` once resolved).
    validated = bool(body["fit"].get("validation_split")) or "validation" in body
    if monitor.startswith("val_") and monitor[4:] in names:
        if validated:
            return None
        return (
            f"{monitor!r} is a validation value, and this job has no validation data "
            "(fit.validation_split is 0, and no validation arrays): "
            f"monitor {monitor[4:]!r} instead, or validate."
        )
    if monitor in names:
        return None
    known = names + ([f"val_{name}" for name in names] if validated else [])
    return (
        f"Must be the loss or a compiled metric: one of {', '.join(known)}. Received: {monitor!r}."
    )


class FitSchema(ma.Schema):
    epochs = StrictInt(load_default=1, validate=validate.Range(1, MAX_EPOCHS))
    batch_size = StrictInt(load_default=32, validate=validate.Range(1, MAX_VALUES))
    shuffle = StrictBool(load_default=True)
    validation_split = FiniteFloat(
        load_default=0.0, validate=validate.Range(0, 1, max_inclusive=False)
    )
    time_limit_seconds = StrictInt(load_default=None, allow_none=True, validate=check_time_limit)
    early_stopping = fields.Nested(EarlyStoppingSchema, load_default=None, allow_none=True)
    store_predictions = StrictBool(
        load_default=True,
        metadata={
            "description": "Whether the job computes and keeps the trained model's outputs "
            "for the training inputs (GET /jobs/<id>/predictions), up to "
            "SEQLAB_MAX_PREDICTION_BYTES."
        },
    )


class ModelField(fields.Field):
    """A model in either ``POST /params`` form, loaded to the compact spec."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return load_model_spec(value)
        except SpecError as error:
            raise ma.ValidationError({error.path or "_schema": [error.message]}) from None


class TrainRequestSchema(ma.Schema):
    """``POST /train``: a model, its data, and how to compile and fit it."""

    model = ModelField(required=True)
    data = fields.Nested(DataSchema, required=True)
    validation = fields.Nested(ValidationSchema)
    compile = fields.Nested(CompileSchema, load_default=lambda: CompileSchema().load({}))
    fit = fields.Nested(FitSchema, load_default=lambda: FitSchema().load({}))
    seed = StrictInt(load_default=0, validate=validate.Range(0, 2**32 - 1))
    example = fields.String(validate=validate.OneOf(tuple(EXAMPLES)))

    @ma.pre_load
    def apply_example(self, body: Any, **kwargs: Any) -> Any:
        """``{"example": name, ...}``: the preset, with the request's fields
        replacing its ``model``/``data``/``seed`` and updating ``compile``/``fit``."""
        if not isinstance(body, Mapping) or not isinstance(body.get("example"), str):
            return body  # the field itself refuses a non-string example
        if body["example"] not in EXAMPLES:
            return body
        merged = example_request(body["example"])
        for key, value in body.items():
            if key in ("compile", "fit") and isinstance(value, Mapping):
                merged[key] = {**merged[key], **copy.deepcopy(dict(value))}
            else:
                merged[key] = copy.deepcopy(value)
        return merged

    @ma.validates_schema(skip_on_field_errors=True)
    def check_monitor(self, body: Mapping[str, Any], **kwargs: Any) -> None:
        """``fit.early_stopping.monitor`` names a value ``fit`` will log."""
        options = body["fit"].get("early_stopping")
        if not options or "dataset" in body["data"] or "inputs" in body["model"]:
            # On a dataset: once its arrays are known; a graph model's names
            # depend on its outputs (service/jobs/views.py).
            return
        error = monitor_error(options["monitor"], body)
        if error:
            raise ma.ValidationError({"fit": {"early_stopping": {"monitor": [error]}}})


train_request_schema = TrainRequestSchema()
