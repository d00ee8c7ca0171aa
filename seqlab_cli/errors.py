"""Exit statuses, and the errors that carry them to the shell."""

from __future__ import annotations

from typing import IO
from typing import Any

import click

#: The command did what was asked (and the job, if any, succeeded).
OK = 0
#: A job failed or was cancelled, or ``wait`` timed out.
JOB_FAILED = 1
#: Bad usage, or a request the server refused (4xx).
REFUSED = 2
#: The server could not be reached or answered 5xx.
UNREACHABLE = 3
#: Ctrl-C: 128 + SIGINT, as a shell reports it.
INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so that one error is one line."""
    return " ".join(str(text).split())


class CliError(click.ClickException):
    """An error that ends the command with ``exit_code``, printed on one
    line of stderr as ``seqlab: <message>``.

    :param document: the server's problem document, printed on stdout under
        ``--json`` (scripts can then read its ``errors``).
    """

    def __init__(self, message: str, exit_code: int, document: Any = None) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code
        self.document = document

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"seqlab: {self.format_message()}", err=True)


class ApiError(CliError):
    """The server answered with an error status (``status``), or is not there
    (``status`` None)."""

    def __init__(self, message: str, status: int | None, document: Any = None) -> None:
        code = REFUSED if status is not None and 400 <= status < 500 else UNREACHABLE
        super().__init__(message, code, document)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying while following a job: no answer, or a 5xx."""
        return self.status is None or self.status >= 500
