"""Check a ``POST /train`` request's data against its model, before anything
is queued.

Each rule refuses what Keras, given the same arrays, would fail on in the
worker or, worse, silently train on after changing it: shapes, sample
counts for stateful models, the values each input dtype and loss can take,
Embedding token ids, and Dropout noise shapes. ``tests/test_checks.py``
runs every refused case through real Keras to show what it would do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from modelspec.errors import ApiValidationError
from seqlab import ModelReport
from seqlab import SpecError
from seqlab import analyze
from seqlab.engine import LayerReport
from seqlab.registry import COMPUTE_DTYPES
from seqlab.registry import format_shape

from .domains import LOSS_DOMAINS
from .domains import SPARSE_LOSSES
from .domains import Domain
from .domains import embedding_domain
from .domains import float_domain
from .domains import input_domain
from .domains import plain_number
from .domains import position
from .domains import sparse_label_domain

Errors = dict[str, list[str]]

#: Layers whose output holds their input's values, rearranged or repeated:
#: an Embedding after them looks up the ids of ``x`` itself. (Masking and
#: Dropout also pass values on, with exceptions: see ``_embedding_inputs``.)
PASSES_VALUES = ("Reshape", "Permute", "Flatten", "RepeatVector")
DROPOUTS = ("Dropout", "SpatialDropout1D")


def check_data(report: ModelReport, request: Mapping[str, Any], *, values: bool = True) -> None:
    """Refuse data that does not fit the model, before anything is queued.

    ``x`` must be ``(samples, *input_shape)``, ``y`` ``(samples,
    *output_shape)`` (or the integer-label shape for sparse losses), with
    the same number of samples; then the values, the sample counts and
    batch sizes, and the Dropout noise shapes must be what Keras needs.
    ``values`` false skips the values (every one of them is read): a sweep
    checks them once per model structure, whose trials share the data.

    Raises:
        ApiValidationError: 422, with every reason by field path.
    """
    if isinstance(report.output_shape, list):
        raise ApiValidationError(
            "model: a model with several outputs (return_state, merge_mode null) "
            "cannot be trained here; end it with a single-output layer.",
            {"model.layers": ["The last layer returns several tensors."]},
        )
    errors: Errors = {}
    check_shapes(report, request, errors)
    if not errors:
        if values:
            check_values(report, request, errors)
        check_stateful_batches(report, request, errors)
        check_noise_shapes(report, request, errors)
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)


def fits(actual: list[int], expected: tuple[int | None, ...]) -> bool:
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )


def check_shapes(report: ModelReport, request: Mapping[str, Any], errors: Errors) -> None:
    """``x`` and ``y`` against the model's input and output, and the split."""
    x, y = request["data"]["x"]["shape"], request["data"]["y"]["shape"]
    model_in = report.input_shape[1:]
    output = report.output_shape
    if not fits(x[1:], model_in):
        errors["data.x"] = [
            f"Shape {format_shape(tuple(x))} does not fit the model's input "
            f"{format_shape((None, *model_in))}."
        ]
    model_out = output[1:]
    loss = request["compile"]["loss"]
    allowed = [model_out]
    if loss in SPARSE_LOSSES:  # integer class labels, one per output position
        allowed = [model_out[:-1], (*model_out[:-1], 1)]
    if not any(fits(y[1:], shape) for shape in allowed):
        shapes = " or ".join(format_shape((None, *s)) for s in allowed)
        errors["data.y"] = [
            f"Shape {format_shape(tuple(y))} does not fit the model's output "
            f"{format_shape(output)} "  # type: ignore[arg-type]
            f"with loss {loss}: expected {shapes}."
        ]
    if x[0] != y[0]:
        errors.setdefault("data", []).append(
            f"x has {x[0]} samples but y has {y[0]}: every input needs a target."
        )
    split = request["fit"]["validation_split"]
    if split:
        train = training_samples(x[0], split)
        if not 0 < train < x[0]:
            errors["fit.validation_split"] = [
                f"With {x[0]} samples, validation_split={split} keeps {train} for training "
                f"and {x[0] - train} for validation; Keras needs at least one of each."
            ]


def training_samples(samples: int, validation_split: float) -> int:
    """How many samples Keras trains on; it validates on the rest (the last)."""
    if not validation_split:
        return samples
    return math.floor(samples * (1.0 - validation_split))


# -- values ---------------------------------------------------------------


def check_values(report: ModelReport, request: Mapping[str, Any], errors: Errors) -> None:
    """Every value of ``x`` and ``y`` within what its dtype, the model's
    Embeddings and the loss take."""
    spec, data = request["model"], request["data"]
    x, y = data["x"], data["y"]
    if y["first_bool"] is not None:
        refuse_bool(errors, "data.y", y, "targets are float32")
    check_input_values(report, spec.get("dtype") or "float32", "data.x", x, errors)
    if errors:
        return
    loss = request["compile"]["loss"]
    classes = report.output_shape[-1]
    if loss in SPARSE_LOSSES and classes is not None:
        check_tensor(errors, "data.y", y, sparse_label_domain(classes, loss))  # type: ignore[arg-type]
    else:
        check_tensor(
            errors, "data.y", y, LOSS_DOMAINS.get(loss, float_domain("float32", "Targets"))
        )


def check_input_values(
    report: ModelReport,
    dtype: str,
    path: str,
    x: Mapping[str, Any],
    errors: Errors,
    *,
    training: bool = True,
) -> None:
    """Every value of the input ``x`` (at ``path``) within what the model's
    input ``dtype`` and its Embeddings take; the inputs of ``POST /train``
    and of predictions alike. ``training``: a Dropout before an Embedding
    scales the ids while training only."""
    if x["first_bool"] is not None and dtype != "bool":
        refuse_bool(errors, path, x, f"the model's input is {dtype}")
        return
    casts = _float_casts(report) if dtype.startswith(("float", "bfloat")) else []
    check_tensor(errors, path, x, input_domain(dtype, casts))
    for where, layer, dropout, masked in _embedding_inputs(report):
        if dropout is not None and training:
            rate, kind = dropout
            errors[rate] = [
                f"A {kind} before the Embedding at {where} scales "
                "the token ids by 1 / (1 - rate) while training (Dropout.call), so the "
                "Embedding would look up other rows than x names; put it after the Embedding."
            ]
            continue
        input_dim = layer.layer.config["input_dim"]
        # Both walks stop at the first Embedding: every cast comes before it.
        check_tensor(errors, path, x, embedding_domain(input_dim, dtype, where, masked, casts))


def refuse_bool(errors: Errors, path: str, tensor: Mapping[str, Any], why: str) -> None:
    where = position(tensor["first_bool"], tensor["shape"])
    value = "true" if tensor["flat"][tensor["first_bool"]] else "false"
    errors[path] = [
        f"true and false are taken only for a bool input ({why}): send numbers. "
        f"{path}{where} is {value}."
    ]


def check_tensor(errors: Errors, path: str, tensor: Mapping[str, Any], domain: Domain) -> None:
    """File the first value outside ``domain`` under ``path``."""
    if "array" in tensor:  # an uploaded dataset's NumPy array (service/datasets/views.py)
        from .domains import first_outside_array

        found = first_outside_array(domain, tensor["array"])
    else:
        i = domain.first_outside(tensor["flat"])
        found = None if i is None else (i, tensor["flat"][i])
    if found is not None:
        i, value = found
        where = position(i, tensor["shape"])
        errors.setdefault(path, []).append(
            f"{domain.rule}. {path}{where} is {plain_number(value)}{domain.why(value)}."
        )


def _embedding_inputs(
    report: ModelReport,
) -> Iterator[tuple[str, LayerReport, tuple[str, str] | None, frozenset[float]]]:
    """Each Embedding that looks up the values of ``x`` themselves: its path
    and report, the path of the rate and the type of a dropout layer on
    the way (else None), and
    the mask values of Maskings on the way.

    The walk follows ``x`` through layers that only move values around (and
    into TimeDistributed, which feeds its layer each step's values) and
    stops at the first layer that computes new values, Embeddings included.
    """
    dropout: tuple[str, str] | None = None
    masked: frozenset[float] = frozenset()
    for i, top in enumerate(report.layers):
        layer, path = top, f"model.layers.{i}"
        while layer.type == "TimeDistributed":
            layer, path = layer.sublayers[0], f"{path}.layer"
        config = layer.layer.config
        if layer.type == "Embedding":
            yield path, layer, dropout, masked
            return
        if layer.type in DROPOUTS:
            # Inference passes x on; training scales what it keeps.
            if 0 < config["rate"] and dropout is None:
                dropout = (f"{path}.rate", layer.type)
        elif layer.type == "Masking":
            # Masked steps reach the Embedding as 0s. Which steps are masked
            # depends on whole steps; a mask value is let through anywhere.
            masked |= {config["mask_value"]}
        elif layer.type == "Activation" and config["activation"] == "linear":
            pass
        elif layer.type not in PASSES_VALUES:
            return


def _float_casts(report: ModelReport) -> list[tuple[str, str]]:
    """The compute dtypes that float values of ``x`` are cast to on their way
    in, with the layer that casts: each layer casts its floating inputs
    (``DTypePolicy.convert_input``, autocast), the Embedding excepted
    (``autocast = False``), up to the first layer that computes new values.
    """
    casts = []
    for i, top in enumerate(report.layers):
        layer, path = top, f"model.layers.{i}"
        while True:
            if layer.type == "Embedding":
                return casts
            policy = layer.layer.config.get("dtype")
            casts.append((path, COMPUTE_DTYPES[policy]))
            if layer.type != "TimeDistributed":
                break
            layer, path = layer.sublayers[0], f"{path}.layer"
        config = layer.layer.config
        passes = layer.type in (*PASSES_VALUES, *DROPOUTS, "Masking") or (
            layer.type == "Activation" and config["activation"] == "linear"
        )
        if not passes:
            return casts
    return casts


# -- sample counts and batch sizes -----------------------------------------


def _walk(layers: list[LayerReport]) -> Iterator[tuple[str, LayerReport]]:
    """Every layer report with its request path, wrapped layers included
    (a Bidirectional's backward copy shares its forward layer's settings)."""
    for i, top in enumerate(layers):
        layer, path = top, f"model.layers.{i}"
        yield path, layer
        while layer.sublayers:
            layer, path = layer.sublayers[0], f"{path}.layer"
            yield path, layer


def check_stateful_batches(report: ModelReport, request: Mapping[str, Any], errors: Errors) -> None:
    """A stateful model trains and predicts in batches of exactly its ``batch_size``.

    Its layers keep one state per batch row (``RNN.call`` raises "If an RNN
    is stateful, the batch size of the input sequences must be the same as
    the batch size of the initial state"): ``fit.batch_size`` must be the
    model's, and the training and validation samples each a multiple of it.
    """
    stateful = next(
        (path for path, layer in _walk(report.layers)
         if layer.layer.config.get("stateful")),
        None,
    )  # fmt: skip
    if stateful is None:
        return
    batch = report.input_shape[0]
    fit = request["fit"]
    samples = request["data"]["x"]["shape"][0]
    train = training_samples(samples, fit["validation_split"])
    why = f"{stateful} is stateful: the model runs on batches of exactly its batch_size {batch}"
    if fit["batch_size"] != batch:
        errors["fit.batch_size"] = [
            f"{why}; fit.batch_size is {fit['batch_size']}. Set fit.batch_size to {batch}."
        ]
    if train % batch or (samples - train) % batch:
        if samples == train:
            errors.setdefault("data.x", []).append(
                f"{why}, so the number of samples must be a multiple of {batch}; "
                f"data.x has {samples}."
            )
        else:
            errors["fit.validation_split"] = [
                f"{why}, so the training and the validation samples must each be a "
                f"multiple of {batch}; validation_split={fit['validation_split']} splits "
                f"{samples} samples into {train} and {samples - train}."
            ]


# -- Dropout noise shapes ---------------------------------------------------


def check_noise_shapes(report: ModelReport, request: Mapping[str, Any], errors: Errors) -> None:
    """Each Dropout's ``noise_shape`` must broadcast to its input in training.

    Keras draws the keep/drop mask in ``noise_shape`` and broadcasts it to
    the input when it is called (``backend.random.dropout``), not when the
    model is built: ``/params`` takes any ``noise_shape``, as Keras's
    ``model.summary()`` does. Aligned on the right, each of its dimensions
    must be 1 or the input's; the batch one 1 or every batch size of the
    training run (the last batch may be short).
    """
    dropouts = [
        (path, layer)
        for path, layer in _walk(report.layers)
        if layer.type == "Dropout"
        and layer.layer.config["noise_shape"] is not None
        and 0 < layer.layer.config["rate"] < 1  # Keras skips the mask otherwise
    ]
    if not dropouts:
        return
    x_shape = request["data"]["x"]["shape"]
    if None in report.input_shape[1:]:
        # Unknown lengths take the data's: the layers' inputs on this x.
        try:
            concrete = analyze({**request["model"], "input_shape": x_shape[1:]})
        except SpecError:
            return  # Keras fails on this x too, but that is not this check's to say
        inputs = {path: layer.input_shape for path, layer in _walk(concrete.layers)}
    else:
        inputs = {path: layer.input_shape for path, layer in dropouts}
    fit = request["fit"]
    samples = x_shape[0]
    train = training_samples(samples, fit["validation_split"])
    batches = sorted({min(fit["batch_size"], train), train % fit["batch_size"]} - {0}, reverse=True)
    for path, layer in dropouts:
        noise = layer.layer.config["noise_shape"]
        shape = inputs[path]
        problem = _noise_problem(noise, shape, batches)
        if problem:
            errors[f"{path}.noise_shape"] = [
                f"noise_shape {format_shape(tuple(noise))} does not broadcast to the "
                f"layer's input {format_shape(shape)}: {problem}. Keras raises when "
                "the Dropout is called in training."
            ]


def _noise_problem(noise: list[int], shape: tuple[int | None, ...], batches: list[int]) -> str:
    """Why a mask of shape ``noise`` does not broadcast to ``shape``, or ''."""
    if len(noise) > len(shape):
        return f"it has {len(noise)} dimensions, the input {len(shape)}"
    for axis in range(-len(noise), 0):
        n, d = noise[axis], shape[axis]
        if n == 1:
            continue
        if axis == -len(shape):  # the batch
            if any(b != n for b in batches):
                sizes = " and ".join(map(str, batches))
                return (
                    f"its batch dimension {n} is neither 1 nor every training batch size ({sizes})"
                )
        elif n != d:
            return f"dimension {n} is neither 1 nor the input's {d}"
    return ""
