"""The data and compile options of a ``POST /train`` request for a
Functional (graph) model, checked against the model before anything is
queued.

``data.x`` is one array (a model with one input), a list of arrays in the
model's input order, or an object of arrays by input name; ``data.y`` the
same by output (Keras's ``model.output_names``: the output layers' names).
``compile.loss`` is one loss (every output), a list or an object by output
name; ``compile.loss_weights`` a list or an object; ``compile.metrics`` one
list (every output) or an object of lists by output name. Each array is
checked against its input or output as ``data_checks`` checks a Sequential
model's, and the errors name the request's own place: ``data.x.source``
(by name), ``data.x.1`` (by position), ``data.x`` (one array).

Once checked, ``data.x``/``data.y`` hold ``{"parts", "paths", "names",
"value", "shape"}``: the arrays in the model's order, where each came from,
their names, the list of their values (what the worker trains on) and the
first array's shape (its samples).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelspec.errors import ApiValidationError
from seqlab.engine import ModelReport
from seqlab.fit import history_names as fit_history_names
from seqlab.fit import per_output
from seqlab.registry import format_output
from seqlab.registry import format_shape

from .checks import Errors
from .checks import check_tensor
from .checks import fits
from .checks import refuse_bool
from .checks import training_samples
from .domains import LOSS_DOMAINS
from .domains import SPARSE_LOSSES
from .domains import embedding_domain
from .domains import float_domain
from .domains import input_domain
from .domains import sparse_label_domain


def is_graph_report(report: ModelReport) -> bool:
    """Whether the engine's report is a Functional model's (a GraphReport)."""
    return hasattr(report, "rows")


def raise_errors(errors: Errors) -> None:
    """A 422 with every reason by field path, the first one in the detail."""
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)


def refuse_graph_forms(body: Mapping[str, Any]) -> None:
    """A Sequential model takes one array for ``x`` and ``y``, one loss, no
    loss weights and one list of metrics: the per-input and per-output forms
    are for Functional models."""
    errors: Errors = {}
    for path in ("data.x", "data.y", "validation.x", "validation.y"):
        group, key = path.split(".")
        value = (body.get(group) or {}).get(key)
        if isinstance(value, Mapping) and ("by_name" in value or "by_position" in value):
            # The Tensor field's own words where a list is not one array.
            errors[path] = tensor_error(value)
    options = body["compile"]
    if not isinstance(options["loss"], str):
        errors["compile.loss"] = ["A Sequential model has one output: give one loss."]
    if "loss_weights" in options:
        errors["compile.loss_weights"] = [
            "A Sequential model has one output: loss_weights are for a Functional "
            "model's several outputs."
        ]
    if isinstance(options.get("metrics"), Mapping):
        errors["compile.metrics"] = ["A Sequential model has one output: give a list of metrics."]
    raise_errors(errors)


def tensor_error(value: Mapping[str, Any]) -> list[str]:
    if "by_position" in value:
        messages = value["error"]
        return list(messages) if isinstance(messages, list) else [str(messages)]
    return ["Must be a (nested) list of numbers, samples first."]


def output_names(report: ModelReport) -> list[str]:
    """Keras's ``model.output_names``: each output's layer name."""
    return [name for name, _ in report.outputs]  # type: ignore[attr-defined]


def input_names(report: ModelReport) -> list[str]:
    """The model's input names, in its inputs' order."""
    return [name for name, _ in report.inputs]  # type: ignore[attr-defined]


def check_graph_request(report: ModelReport, body: dict[str, Any]) -> None:
    """Check a graph model's data and compile options, then put ``data.x``
    and ``data.y`` in the model's order (see the module's docstring).

    Raises:
        ApiValidationError: 422, with every reason by field path.
    """
    errors: Errors = {}
    ins, outs = input_names(report), output_names(report)
    check_compile(body["compile"], outs, errors)
    raise_errors(errors)
    data = body["data"]
    x = arrange(data["x"], "data.x", ins, "input", errors)
    y = arrange(data["y"], "data.y", outs, "output", errors)
    raise_errors(errors)
    assert x is not None and y is not None
    check_graph_shapes(report, body, x, y, errors)
    raise_errors(errors)
    check_graph_values(report, body, x, y, errors)
    raise_errors(errors)
    data["x"], data["y"] = arranged(x, ins), arranged(y, outs)


def arranged(parts: list[tuple[str, Mapping[str, Any]]], names: list[str]) -> dict[str, Any]:
    """The arrays of ``x`` or ``y`` as the rest of the request's path takes them."""
    return {
        "parts": [tensor for _, tensor in parts],
        "paths": [path for path, _ in parts],
        "names": names,
        "value": [tensor.get("value") for _, tensor in parts],
        "shape": parts[0][1]["shape"],
    }


def arrange(
    loaded: Mapping[str, Any], path: str, names: list[str], kind: str, errors: Errors
) -> list[tuple[str, Mapping[str, Any]]] | None:
    """``x`` or ``y`` as (request path, Tensor) pairs in the model's order, or
    None with the reason in ``errors``."""
    n = len(names)
    listing = ", ".join(names)
    expected = (
        f"the model has {n} {kind}s ({listing}): give a list of {n} arrays in this order, "
        f"or an object of arrays by {kind} name"
    )
    if "by_name" in loaded:
        given = loaded["by_name"]
        if len(set(names)) != n:
            errors[path] = [
                f"Two of the model's {kind}s share a name ({listing}: tensors of one layer); "
                "give a list in their order."
            ]
            return None
        before = len(errors)
        for key in given:
            if key not in names:
                errors[f"{path}.{key}"] = [
                    f"Unknown {kind} {key!r}: the model's {kind}s are {listing}."
                ]
        missing = ", ".join(repr(name) for name in names if name not in given)
        if missing:
            errors.setdefault(path, []).append(
                f"Missing {kind} {missing}: the model's {kind}s are {listing}."
            )
        if len(errors) > before:
            return None
        return [(f"{path}.{name}", given[name]) for name in names]
    if "by_position" in loaded:
        items = loaded["by_position"]
        if len(items) != n:
            what = "one array" if n == 1 else expected
            errors[path] = [f"Received a list of {len(items)} arrays, but {what}."]
            if n == 1:
                errors[path] = tensor_error(loaded)
            return None
        return [(f"{path}.{i}", item) for i, item in enumerate(items)]
    if n == 1:
        return [(path, loaded)]
    # One array for several inputs: Keras reads a list of arrays, so a list
    # whose items are arrays of one shape is one per input (or output).
    if loaded["shape"][0] != n or len(loaded["shape"]) < 2:
        errors[path] = [
            f"Received one array of shape {format_shape(tuple(loaded['shape']))}, but {expected}."
        ]
        return None
    return [(f"{path}.{i}", split(loaded, i, n)) for i in range(n)]


def split(loaded: Mapping[str, Any], i: int, n: int) -> dict[str, Any]:
    """Item ``i`` of an array of ``n`` items, as its own Tensor."""
    shape = loaded["shape"][1:]
    size = len(loaded["flat"]) // n
    flat = loaded["flat"][i * size : (i + 1) * size]
    first = next((j for j, v in enumerate(flat) if isinstance(v, bool)), None)
    return {"value": loaded["value"][i], "shape": shape, "flat": flat, "first_bool": first}


def check_compile(options: Mapping[str, Any], names: list[str], errors: Errors) -> None:
    """Losses, loss weights and metrics per output: as many as outputs, by
    the outputs' names."""
    listing = ", ".join(names)
    for key, what in (("loss", "losses"), ("loss_weights", "loss weights"), ("metrics", None)):
        value = options.get(key)
        path = f"compile.{key}"
        if isinstance(value, Mapping):
            if len(set(names)) != len(names):
                errors[path] = [
                    f"Two outputs share a name ({listing}: tensors of one layer); give a list."
                ]
                continue
            for name in value:
                if name not in names:
                    errors[f"{path}.{name}"] = [
                        f"Unknown output {name!r}: the model's outputs are {listing}."
                    ]
            missing = [n for n in names if n not in value]
            if missing and key == "loss":
                errors.setdefault(path, []).append(
                    f"Missing a loss for output {', '.join(map(repr, missing))}: every "
                    f"output needs one (the model's outputs are {listing})."
                )
        elif what and isinstance(value, list) and len(value) != len(names):
            errors[path] = [
                f"Received {len(value)} {what}, but the model has {len(names)} outputs "
                f"({listing}): give one per output, in this order."
            ]


def check_graph_shapes(
    report: ModelReport,
    body: Mapping[str, Any],
    x: list[tuple[str, Mapping[str, Any]]],
    y: list[tuple[str, Mapping[str, Any]]],
    errors: Errors,
) -> None:
    """Every array against its input or output; one sample count for all."""
    ins = report.inputs  # type: ignore[attr-defined]
    outs = report.outputs  # type: ignore[attr-defined]
    for (path, tensor), (name, shape) in zip(x, ins, strict=True):
        if not fits(tensor["shape"][1:], shape[1:]):
            errors[path] = [
                f"Shape {format_shape(tuple(tensor['shape']))} does not fit the model's "
                f"input {name!r} {format_shape(shape)}."
            ]
    names = [name for name, _ in outs]
    for i, ((path, tensor), (name, shape)) in enumerate(zip(y, outs, strict=True)):
        if isinstance(shape, list):  # pragma: no cover: an output is one tensor
            continue
        loss = per_output(body["compile"]["loss"], names, i)
        allowed = [shape[1:]]
        if loss in SPARSE_LOSSES:  # integer class labels, one per output position
            allowed = [shape[1:-1], (*shape[1:-1], 1)]
        if not any(fits(tensor["shape"][1:], s) for s in allowed):
            shapes = " or ".join(format_shape((None, *s)) for s in allowed)
            errors[path] = [
                f"Shape {format_shape(tuple(tensor['shape']))} does not fit the model's "
                f"output {name!r} {format_output(shape)} with loss {loss}: expected {shapes}."
            ]
    counts = {path: tensor["shape"][0] for path, tensor in (*x, *y)}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{path} {count}" for path, count in counts.items())
        errors.setdefault("data", []).append(
            f"Every array needs the same number of samples; received {listed}."
        )
    samples = x[0][1]["shape"][0]
    split_ = body["fit"]["validation_split"]
    if split_:
        train = training_samples(samples, split_)
        if not 0 < train < samples:
            errors["fit.validation_split"] = [
                f"With {samples} samples, validation_split={split_} keeps {train} for training "
                f"and {samples - train} for validation; Keras needs at least one of each."
            ]


def check_graph_values(
    report: ModelReport,
    body: Mapping[str, Any],
    x: list[tuple[str, Mapping[str, Any]]],
    y: list[tuple[str, Mapping[str, Any]]],
    errors: Errors,
) -> None:
    """Each input's values within its dtype's range and, where an Embedding
    reads an input directly, within its token ids; each output's targets
    within its loss's domain."""
    ins = input_names(report)
    dtypes = report.input_dtypes  # type: ignore[attr-defined]
    for (path, tensor), dtype in zip(x, dtypes, strict=True):
        if tensor["first_bool"] is not None and dtype != "bool":
            refuse_bool(errors, path, tensor, f"the model's input is {dtype}")
            continue
        check_tensor(errors, path, tensor, input_domain(dtype))
    for layer in report.layers:
        if layer.type != "Embedding":
            continue
        for ref in getattr(layer, "connected_to", []):
            name = ref.split("[", 1)[0]
            if name in ins and ref == f"{name}[0][0]":
                i = ins.index(name)
                path, tensor = x[i]
                if path not in errors:
                    where = f"layer {layer.name!r}"
                    domain = embedding_domain(layer.layer.config["input_dim"], dtypes[i], where)
                    check_tensor(errors, path, tensor, domain)
    outs = report.outputs  # type: ignore[attr-defined]
    names = [name for name, _ in outs]
    for i, ((path, tensor), (_, shape)) in enumerate(zip(y, outs, strict=True)):
        if tensor["first_bool"] is not None:
            refuse_bool(errors, path, tensor, "targets are float32")
            continue
        loss = per_output(body["compile"]["loss"], names, i)
        classes = shape[-1]
        if loss in SPARSE_LOSSES and classes is not None:
            check_tensor(errors, path, tensor, sparse_label_domain(classes, loss))
        else:
            check_tensor(
                errors, path, tensor, LOSS_DOMAINS.get(loss, float_domain("float32", "Targets"))
            )


def history_names(report: ModelReport, options: Mapping[str, Any]) -> list[str]:
    """The names ``fit`` logs for a graph model compiled with ``options``
    (:func:`seqlab.fit.history_names` of its outputs)."""
    return fit_history_names(output_names(report), options.get("metrics"))


def data_shapes(arrays: Mapping[str, Any]) -> Any:
    """The shapes a job record keeps of ``x`` or ``y``: one shape, or for a
    graph model's arrays an object of shapes by name (a list where two
    outputs share a name)."""
    if "parts" not in arrays:
        return arrays["shape"]
    shapes = [tensor["shape"] for tensor in arrays["parts"]]
    names = arrays["names"]
    if len(set(names)) == len(names):
        return dict(zip(names, shapes, strict=True))
    return shapes


def refuse_graph_datasets(report: ModelReport, body: Mapping[str, Any]) -> None:
    """An uploaded dataset holds one ``x`` and one ``y`` array: a Functional
    model with one input and one output trains on it, one with several
    inputs or outputs on inline data (a list or an object of arrays)."""
    single = len(input_names(report)) == 1 and len(output_names(report)) == 1
    if single:
        return
    errors: Errors = {}
    why = (
        "an uploaded dataset holds one x and one y array, and this model has "
        f"{len(input_names(report))} inputs and {len(output_names(report))} outputs"
    )
    if "dataset" in body["data"]:
        errors["data.dataset"] = [f"Give data.x and data.y inline: {why}."]
    if "validation" in body:
        errors["validation.dataset"] = [f"Validate with fit.validation_split: {why}."]
    raise_errors(errors)


def check_graph_validation(report: ModelReport, body: dict[str, Any]) -> None:
    """A dataset's validation arrays against a one-input, one-output graph
    model, as ``data`` is checked (errors under ``validation.x``/``.y``)."""
    if "validation" not in body:
        return
    errors: Errors = {}
    ins, outs = input_names(report), output_names(report)
    validation = body["validation"]
    x = arrange(validation["x"], "validation.x", ins, "input", errors)
    y = arrange(validation["y"], "validation.y", outs, "output", errors)
    raise_errors(errors)
    assert x is not None and y is not None
    pseudo = {**body, "fit": {**body["fit"], "validation_split": 0}}
    check_graph_shapes(report, pseudo, x, y, errors)
    raise_errors(errors)
    check_graph_values(report, pseudo, x, y, errors)
    raise_errors(errors)


def check_early_stopping_mode(report: ModelReport, body: Mapping[str, Any]) -> None:
    """With several outputs, Keras's ``EarlyStopping(mode="auto")`` finds the
    direction of ``loss`` and ``val_loss`` only: for a per-output name
    (``cls_loss``, ``val_reg_mae``) it raises when training starts ("Keras
    isn't able to automatically determine whether that metric should be
    maximized or minimized"), so the request is refused before queuing."""
    options = body["fit"].get("early_stopping")
    if not options or options["mode"] != "auto" or len(output_names(report)) < 2:
        return
    if options["monitor"] in ("loss", "val_loss"):
        return
    path = "fit.early_stopping.mode"
    raise_errors(
        {
            path: [
                f"Keras's EarlyStopping cannot tell whether {options['monitor']!r} should "
                "fall or rise (mode auto knows only loss and val_loss of a model with several "
                "outputs, and raises when training starts): set mode to min or max."
            ]
        }
    )
