"""The ``error`` field of a job or of a prediction's answer: plain text."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def failure(kind: str, message: str, trace: str | None = None) -> dict[str, str]:
    """An ``error`` document, without the terminal colour codes that Keras's
    and rich's messages may carry."""
    error = {"type": kind, "message": _ANSI.sub("", message) or kind}
    if trace is not None:
        error["traceback"] = _ANSI.sub("", trace)
    return error
