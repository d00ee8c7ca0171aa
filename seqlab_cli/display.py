"""What a watcher shows on stderr while a job runs.

On a terminal a live progress bar (epoch, loss, ETA: rich); elsewhere (a
pipe, a CI log) one line per state change and a progress line at most
every :data:`LOG_EVERY_SECONDS`. Both are :class:`~seqlab_cli.follow.Listener`
objects, and context managers.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from .render import duration
from .render import number

#: Seconds between progress lines when stderr is not a terminal.
LOG_EVERY_SECONDS = 10.0


def status_line(job_id: str, event: dict[str, Any]) -> str:
    """``job <id> running (attempt 2)``, with the error of a failed job."""
    line = f"job {job_id} {event.get('status')}"
    if event.get("attempt", 1) > 1:
        line += f" (attempt {event['attempt']})"
    error = event.get("error")
    if isinstance(error, dict):
        line += f": {error.get('type', 'Error')}: {error.get('message', '')}"
    return line


def progress_fields(progress: dict[str, Any]) -> dict[str, str]:
    """The epoch, loss and ETA of a progress object, as text."""
    epochs = progress.get("epochs")
    loss = progress.get("loss")
    eta = progress.get("eta_seconds")
    return {
        "epoch": f"{progress.get('epoch', 0)}/{epochs if epochs is not None else '?'}",
        "loss": "-" if loss is None else number(loss),
        "eta": "-" if eta is None else duration(eta),
    }


class LineDisplay:
    """Lines on stderr: for pipes and logs."""

    def __init__(self, job_id: str, verbose: bool = False) -> None:
        self.job_id = job_id
        self.verbose = verbose
        self._last_line = 0.0

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def status(self, event: dict[str, Any]) -> None:
        click.echo(status_line(self.job_id, event), err=True)

    def progress(self, progress: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_line < LOG_EVERY_SECONDS:
            return
        self._last_line = now
        fields = progress_fields(progress)
        click.echo(f"  epoch {fields['epoch']}  loss {fields['loss']}  ETA {fields['eta']}",
                   err=True)  # fmt: skip

    def note(self, message: str) -> None:
        if self.verbose:
            click.echo(f"  ({message})", err=True)


class BarDisplay:
    """A live progress bar on a terminal's stderr (rich)."""

    def __init__(self, job_id: str, verbose: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn
        from rich.progress import Progress
        from rich.progress import TextColumn

        self.job_id = job_id
        self.verbose = verbose
        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=self.console,
        )
        self.task = self.bar.add_task("queued", total=None, epoch="-", loss="-", eta="-")

    def __enter__(self) -> BarDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def status(self, event: dict[str, Any]) -> None:
        status = event.get("status")
        self.bar.update(self.task, description=status)
        if status not in ("succeeded", "failed", "cancelled"):  # the results say how it ended
            self.console.print(status_line(self.job_id, event), markup=False, highlight=False)

    def progress(self, progress: dict[str, Any]) -> None:
        epochs = progress.get("epochs")
        done = progress.get("epoch", 0)
        steps = progress.get("steps_per_epoch")
        if steps and progress.get("step") and (epochs is None or done < epochs):
            done += progress["step"] / steps  # within the epoch under way
        self.bar.update(self.task, total=epochs, completed=done, **progress_fields(progress))

    def note(self, message: str) -> None:
        if self.verbose:
            self.console.print(f"  ({message})", markup=False, highlight=False)


def display_for(job_id: str, verbose: bool = False) -> LineDisplay | BarDisplay:
    """A progress bar when stderr is a terminal (and rich is installed), else lines."""
    if sys.stderr.isatty():
        try:
            return BarDisplay(job_id, verbose)
        except ImportError:
            pass
    return LineDisplay(job_id, verbose)
