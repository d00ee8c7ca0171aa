"""The document of ``POST /params``, built from a request body: what the API
answers and what ``seqlab params`` prints offline, with no web server."""

from typing import Any

from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.cost import model_file_bytes
from seqlab.memory import train_memory
from seqlab.summary import CONSOLE_WIDTH
from seqlab.summary import PIPED_LINE_LENGTH

from .errors import ApiValidationError
from .model import load_model_spec


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
    try:
        spec = load_model_spec(body, strict=False)
        report = analyze(spec, strict=False)
    except SpecError as error:
        path = error.path or "body"
        raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None
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
