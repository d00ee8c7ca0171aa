"""Watch a ``fit``: per-epoch history, progress, cancel checks, NaN detection.

Pure Python; the Keras callback that feeds it lives in :mod:`worker.fitting`.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

#: At most this many history points; longer jobs report means over blocks.
MAX_HISTORY = 1000
#: Seconds between progress reports and cancel checks, whatever an epoch lasts.
CHECK_INTERVAL = 0.5
#: Seconds between snapshots of the history so far (up to MAX_HISTORY points
#: a metric, so written less often than the progress).
HISTORY_INTERVAL = 2.0


def rss_bytes() -> int:
    """This process's resident memory now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def history_block(epochs: int) -> int:
    """Epochs per history point: 1 up to ``MAX_HISTORY`` epochs."""
    return max(1, math.ceil(epochs / MAX_HISTORY))


class BlockHistory:
    """Per-epoch values, kept as means over blocks of ``block`` epochs.

    Memory stays within ``MAX_HISTORY`` points per metric however many
    epochs run; the last point may cover fewer epochs (a cancelled job).
    """

    def __init__(self, block: int) -> None:
        self.block = block
        self.points: dict[str, list[float]] = {}
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, logs: Mapping[str, float]) -> None:
        """One epoch's values."""
        for name, value in logs.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        if self._count == self.block:
            self._flush()

    def _flush(self) -> None:
        for name, total in self._sums.items():
            self.points.setdefault(name, []).append(total / self._count)
        self._sums, self._count = {}, 0

    def snapshot(self) -> dict[str, list[float | None]]:
        """Every point so far, the partial last block's mean included,
        without closing that block (non-finite values as None)."""
        points = {name: list(values) for name, values in self.points.items()}
        for name, total in self._sums.items():
            points.setdefault(name, []).append(total / self._count)
        return json_safe(points)

    def result(self) -> dict[str, list[float | None]]:
        """Every point, the partial last block included (non-finite values,
        a NaN validation loss say, as None: JSON has no NaN)."""
        if self._count:
            self._flush()
        return json_safe(self.points)


def finite_or_none(value: float) -> float | None:
    """``value``, or None where it is NaN or infinite (JSON has neither)."""
    return value if math.isfinite(value) else None


def json_safe(points: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """Per-metric values with the non-finite ones as None."""
    return {name: [finite_or_none(v) for v in values] for name, values in points.items()}


class Monitor:
    """What a training job reports while Keras fits its model.

    Args:
        epochs: the epochs asked for.
        steps_per_epoch: optimizer steps in one epoch.
        on_progress: called with ``{"epoch", "epochs", "step",
            "steps_per_epoch", "loss", "metrics", "eta_seconds"}`` at most
            every ``CHECK_INTERVAL`` seconds, and at the end (``eta_seconds``:
            None until it can be told, see :meth:`eta`); ``metrics``
            holds the last completed epoch's loss and metrics, named as in
            the history (``{}`` before the first epoch ends; null for a
            value that is not finite, which JSON cannot carry).
        should_stop: polled as often; True cancels the job.
        deadline: a ``time.monotonic()`` past which training stops, with
            ``stopped_by`` ``"time_limit"`` (the job's time limit).
        on_history: called with ``{"history", "history_block",
            "epochs_completed"}`` (the history so far, as the result will
            hold it) at a check once an epoch has ended since the last call,
            at most every ``HISTORY_INTERVAL`` seconds.
    """

    def __init__(
        self,
        *,
        epochs: int,
        steps_per_epoch: int,
        on_progress: Callable[[dict[str, Any]], None],
        should_stop: Callable[[], bool],
        deadline: float | None = None,
        on_history: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.deadline = deadline
        self.on_history = on_history
        self.history = BlockHistory(history_block(epochs))
        self.epochs_done = 0
        #: The last completed epoch's own values (not a block mean).
        self.last_epoch: dict[str, float] = {}
        #: Why training must stop: "cancelled", "time_limit", or a failure's reason.
        self.stopped_by: str | None = None
        #: The most resident memory seen at a check while training.
        self.peak_rss_bytes = rss_bytes()
        self._started = time.monotonic()
        self._last_check = self._started
        # The first epoch's point is sent at the first check after it.
        self._last_history = -math.inf
        self._history_epochs = 0
        #: When the ETA's clock started, and the steps done then: the first
        #: epoch's end (see :meth:`eta`); None before.
        self._timed_from: tuple[float, int] | None = None

    @property
    def stop(self) -> bool:
        """Whether training must stop now."""
        return self.stopped_by is not None

    def epoch_end(self, logs: Mapping[str, Any]) -> None:
        """An epoch ended with these (Keras's own per-epoch) values."""
        self.record_epoch(logs)
        if not self.stop:
            self.epochs_checked()

    def record_epoch(self, logs: Mapping[str, Any]) -> None:
        """An epoch's values, recorded without a check (several epochs that
        ran at once, then :meth:`epochs_checked`); a loss that is not
        finite stops training here."""
        values = {name: float(value) for name, value in logs.items()}
        self.epochs_done += 1
        self.last_epoch = values
        if self._timed_from is None:
            self._timed_from = (time.monotonic(), self.epochs_done * self.steps_per_epoch)
        self.history.add(values)
        loss = values.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.stopped_by = f"The loss became {loss} at epoch {self.epochs_done}."

    def epochs_checked(self) -> None:
        """The check after the epochs recorded so far (at the last epoch, always)."""
        self.check(step=0, force=self.epochs_done == self.epochs)

    def step_end(self, step: int, logs: Mapping[str, Any]) -> None:
        """Step ``step`` (0-based, within its epoch) ended; ``logs`` hold the
        epoch's running values. Checks in only every ``CHECK_INTERVAL``."""
        if time.monotonic() - self._last_check < CHECK_INTERVAL:
            return
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_by = (
                f"The loss became {float(loss)} at epoch {self.epochs_done + 1}, step {step + 1}."
            )
            return
        self.check(step=step + 1)

    def check(self, step: int, force: bool = False) -> None:
        """Report progress and poll for a cancel and the time limit, if it is time."""
        now = time.monotonic()
        if not force and now - self._last_check < CHECK_INTERVAL:
            return
        self._last_check = now
        steps_left = self._report(now, step)
        if steps_left and self.should_stop():
            self.stopped_by = "cancelled"
        elif steps_left and self.deadline is not None and now >= self.deadline:
            self.stopped_by = "time_limit"

    def ended_early(self) -> None:
        """Training ended before its epochs on its own (Keras's
        ``EarlyStopping``): report the last epoch now, as the last epoch of
        a full run is reported, with nothing left to wait for."""
        self._last_check = time.monotonic()
        self._report(self._last_check, step=0, steps_left=0)

    def _report(self, now: float, step: int, steps_left: int | None = None) -> int:
        """Send the progress (and the history when due); the steps left."""
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss_bytes())
        steps_done = self.epochs_done * self.steps_per_epoch + step
        if steps_left is None:
            steps_left = self.epochs * self.steps_per_epoch - steps_done
        self.on_progress(
            {
                "epoch": self.epochs_done,
                "epochs": self.epochs,
                "step": step,
                "steps_per_epoch": self.steps_per_epoch,
                "loss": self.last_epoch.get("loss"),
                "metrics": {name: finite_or_none(v) for name, v in self.last_epoch.items()},
                "eta_seconds": self.eta(now, steps_done, steps_left),
            }
        )
        self._send_history(now)
        return steps_left

    def eta(self, now: float, steps_done: int, steps_left: int) -> float | None:
        """Seconds left at the pace of the epochs after the first, None until
        a whole one has been timed; 0 when no step is left.

        The first epoch's time is left out: it holds every one-off cost (the
        train step compiled at its first step, the validation step at its
        end), seconds that a rate counted from the start would multiply by
        every step left (a 16 s job once read 6:59:54 at its first report).
        """
        if steps_left <= 0:
            return 0.0
        if self._timed_from is None:
            return None
        since, steps_then = self._timed_from
        timed = steps_done - steps_then
        if timed < self.steps_per_epoch:
            return None
        return round((now - since) / timed * steps_left, 3)

    def _send_history(self, now: float) -> None:
        if self.on_history is None or self.epochs_done == self._history_epochs:
            return
        if now - self._last_history < HISTORY_INTERVAL:
            return
        self._last_history, self._history_epochs = now, self.epochs_done
        self.on_history(
            {
                "history": self.history.snapshot(),
                "history_block": self.history.block,
                "epochs_completed": self.epochs_done,
            }
        )
