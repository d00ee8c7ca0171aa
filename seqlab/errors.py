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
