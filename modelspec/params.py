"""The document of ``POST /params``, built from a request body: what the API
answers and what ``seqlab params`` prints offline, with no web server."""

from typing import Any

from seqlab import ModelReport
from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.cost import model_file_bytes
from seqlab.memory import train_memory
from seqlab.picture import render_svg
from seqlab.summary import CONSOLE_WIDTH
from seqlab.summary import PIPED_LINE_LENGTH

from .errors import ApiValidationError
from .model import load_model_spec


def model_report(body: object) -> tuple[dict[str, Any], ModelReport]:
    """The engine's spec and report of a request body (any form), as Keras
    counts the model (first-call failures in ``first_call_failures``).

    :raise marshmallow.ValidationError: for a body the schema refuses.
    :raise ApiValidationError: for a model Keras would refuse to build,
        naming the layer.
    """
    try:
        spec = load_model_spec(body, strict=False)
        return spec, analyze(spec, strict=False)
    except SpecError as error:
        path = error.path or "body"
        raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None


def params_picture(body: object) -> str:
    """The picture of ``POST /params`` with ``Accept: image/svg+xml`` (and
    of ``seqlab params --svg``): the model's graph as an SVG document, as
    Keras's ``plot_model(show_shapes=True)`` draws it.

    :raise marshmallow.ValidationError: for a body the schema refuses.
    :raise ApiValidationError: for a model Keras would refuse to build.
    """
    return render_svg(model_report(body)[1])


def params_document(
    body: object,
    batch_size: int | None = None,
    optimizer: str = "adam",
    line_length: int = PIPED_LINE_LENGTH,
) -> dict[str, Any]:
    """The document of ``POST /params`` for a request body (any form):
    the counts, the training memory estimate for ``batch_size`` and
    ``optimizer``, the summary ``line_length`` wide, and ``warnings``. The
    ``seqlab params`` command prints it too.

    A model that Keras builds and counts but that fails on its first call
    (``seqlab.analyze``'s ``strict=False``) is answered as Keras counts
    it, each failure a warning (``{"field", "message"}``: the field and
    the words of the 422 that ``POST /train`` gives it); ``warnings`` is
    an empty list for a model that runs.

    :raise marshmallow.ValidationError: for a body the schema refuses.
    :raise ApiValidationError: for a model Keras would refuse to build,
        naming the layer.
    """
    spec, report = model_report(body)
    memory = train_memory(report, batch_size, optimizer, spec.get("dtype"))
    return {
        **report.to_dict(),
        "train_memory_bytes": memory.total,
        "train_memory": memory.to_dict(),
        "model_file_bytes": model_file_bytes(report, optimizer),
        # As Keras prints it on a console at least that wide (COLUMNS), so
        # that a width over the piped console's 80 columns is not cut.
        "summary": render_summary(report, line_length, max(CONSOLE_WIDTH, line_length)),
        "warnings": [
            {"field": error.path or "body", "message": error.message}
            for error in report.first_call_failures
        ],
    }
