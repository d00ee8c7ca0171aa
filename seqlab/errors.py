"""The one exception the engine raises."""

from __future__ import annotations


class SpecError(ValueError):
    """A model spec that Keras would refuse to build.

    Args:
        message: the reason, worded after the Keras error where there is one.
        path: the dotted path of the offending field in the request, e.g.
            ``layers.2`` or ``layers.1.layer.units``; empty for the whole spec.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, prefix: str) -> SpecError:
        """Return this error with its path moved under ``prefix``."""
        path = f"{prefix}.{self.path}" if self.path else prefix
        return SpecError(self.message, path)


#: The words that mark seqlab's own refusal of a name given twice in a graph
#: (see :func:`duplicate_name`).
DUPLICATE_BY_DESIGN = "seqlab refuses a layer name given twice anywhere in a graph"


def duplicate_name(name: str, path: str) -> SpecError:
    """The refusal of a layer (or input) name that an earlier one has.

    Keras checks names only among the layers the outputs reach, so it builds
    a model with a duplicate name on a layer outside it; seqlab refuses it on
    purpose, in the engine and the worker's builder alike: a reference to
    that name could not say which layer it means. Keras's words come first
    (they are Keras's reason where both layers are in the model).
    """
    return SpecError(
        f'The name "{name}" is used 2 times in the model. All operation names should be '
        f"unique. {DUPLICATE_BY_DESIGN}, even on a layer the outputs do not reach (Keras "
        "builds that model): a reference could not say which layer it means.",
        path,
    )
