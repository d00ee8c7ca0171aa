"""Server-Sent Events: parse a ``text/event-stream`` and read one from the API.

The parser follows the WHATWG rules that matter here: ``field: value``
lines (one leading space dropped), ``data`` lines joined with newlines,
comment lines (``: keep-alive``) ignored, an event dispatched at a blank
line, the last ``id`` kept from event to event (what a reconnect sends
back as ``Last-Event-ID``) and ``retry`` read as milliseconds.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

from .client import STREAM_TIMEOUT
from .client import Api
from .errors import ApiError

#: What reading a stream raises when the connection drops or stalls.
DROPPED = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Event:
    """One dispatched event."""

    type: str
    data: str
    id: str | None


class EventParser:
    """Turns lines of a ``text/event-stream`` into :class:`Event` objects."""

    def __init__(self, last_id: str | None = None) -> None:
        #: The id of the last event seen (or given): send it back on reconnect.
        self.last_id = last_id
        #: The reconnection delay the server asked for, in milliseconds.
        self.retry_ms: int | None = None
        self._type = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """Take one line (its end of line stripped or not); return the event
        that a blank line completes, else None."""
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None  # an event without data is not dispatched
        return Event(kind or "message", "\n".join(data), self.last_id)

    def parse(self, lines: Iterable[str]) -> Iterator[Event]:
        """Every event of ``lines``; an unfinished last event is dropped."""
        for line in lines:
            event = self.feed(line)
            if event is not None:
                yield event


class NoStream(Exception):
    """The server answered, but not with an event stream (the route is not
    there, or answered an error): follow the job another way."""


def open_events(api: Api, job_id: str, parser: EventParser) -> Iterator[Event]:
    """The events of ``GET /jobs/<id>/events``, resumed after
    ``parser.last_id`` when there is one. Ends when the server closes the
    stream; raises one of :data:`DROPPED` when the connection breaks.

    :raise NoStream: for an answer that is not ``200 text/event-stream``
        (except a 401, whose :class:`~seqlab_cli.errors.ApiError` is raised:
        no other route would accept the key either).
    :raise ApiError: with no status, if the server cannot be reached.
    """
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if parser.last_id is not None:
        headers["Last-Event-ID"] = parser.last_id
    try:
        response = api.open("GET", f"/jobs/{job_id}/events", headers=headers,
                            timeout=STREAM_TIMEOUT)  # fmt: skip
    except ApiError as error:
        if error.status is None or error.status == 401:
            raise
        raise NoStream(str(error)) from None
    with response:
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200 or not content_type.startswith("text/event-stream"):
            raise NoStream(f"HTTP {response.status} {content_type}")
        for raw in response:
            event = parser.feed(raw.decode("utf-8", "replace"))
            if event is not None:
                yield event
