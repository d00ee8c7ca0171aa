"""A small HTTP client for the seqlab API (standard library only).

Every failure becomes an :class:`~seqlab_cli.errors.ApiError`: a 4xx with
the problem's ``detail`` (exit status 2), a 5xx or no answer at all
(exit status 3).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import REFUSED
from .errors import ApiError
from .errors import CliError

#: ``--url`` when neither it nor ``SEQLAB_URL`` is given: ``make up``'s API.
DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds to wait for an ordinary answer (a POST /train with megabytes of data included).
TIMEOUT = 60.0
#: Seconds without a byte after which an event stream counts as dropped: the
#: server sends a keep-alive comment at least every 15 s.
STREAM_TIMEOUT = 45.0


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status, headers and body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body, parsed as JSON.

        :raise ApiError: (exit status 3) if it is not JSON: not a seqlab API.
        """
        try:
            return json.loads(self.body)
        except ValueError:
            start = self.body[:80].decode("utf-8", "replace")
            raise ApiError(f"HTTP {self.status} with a body that is not JSON: {start!r}",
                           None) from None  # fmt: skip


class Api:
    """The seqlab API at ``base_url``, with ``api_key`` sent as a Bearer token."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        """:raise CliError: (exit status 2) if ``base_url`` is not an http(s) URL."""
        try:
            parts = urllib.parse.urlsplit(base_url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # a bracket left open
            valid = False
        if not valid:
            raise CliError(f"Not an http(s) URL: {base_url!r}", REFUSED)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or None

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> urllib.request.Request:
        data = None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if isinstance(body, bytes):  # a file, as it is (POST /datasets)
            data = body
            all_headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            try:
                # NaN and infinity are not JSON: the server would refuse them as malformed.
                data = json.dumps(body, allow_nan=False).encode()
            except ValueError:
                raise CliError(
                    "The request holds NaN or infinity, which JSON cannot carry.", REFUSED
                ) from None
            all_headers["Content-Type"] = "application/json"
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(
            self.base_url + path, data=data, headers=all_headers, method=method
        )

    def open(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> http.client.HTTPResponse:
        """Send a request and return the open response of a 2xx answer.

        :raise ApiError: for an error status or no answer.
        """
        request = self._request(method, path, body, headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # type: ignore[no-any-return]
        except urllib.error.HTTPError as error:
            with error:
                try:
                    data = error.read()
                except (OSError, http.client.HTTPException):
                    data = b""
            raise problem_error(error.code, data) from None
        except (OSError, http.client.HTTPException) as error:
            # URLError (refused, no such host), timeouts, a connection reset.
            reason = getattr(error, "reason", error)
            raise ApiError(
                f"Cannot reach the seqlab API at {self.base_url}: {reason}", None
            ) from None

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """Send a request and read the whole answer.

        :raise ApiError: for an error status or no answer.
        """
        with self.open(method, path, body, headers) as response:
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise ApiError(
                    f"The answer from {self.base_url} broke off: {error}", None
                ) from None
            return Answer(response.status, response.headers, data)

    def get(self, path: str, **query: Any) -> Any:
        """``GET path?query`` and its JSON body."""
        params = {k: v for k, v in query.items() if v is not None}
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        return self.call("GET", path).json()


def problem_error(status: int, body: bytes) -> ApiError:
    """The error for an answer with ``status``: the problem's ``detail``
    when the body is a problem document, else the status and the body's start."""
    document = None
    try:
        document = json.loads(body)
    except ValueError:
        pass
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        detail = document["detail"]
    else:
        text = body.decode("utf-8", "replace").strip()[:200]
        detail = text or http.client.responses.get(status, "")
        document = None
    return ApiError(f"HTTP {status}: {detail}", status, document)


#: Tries of ``POST /train`` when no answer or a 5xx comes back, and the
#: seconds before each retry.
SUBMIT_RETRIES = (0.5, 1.0)


def submit(api: Api, request: dict[str, Any], path: str = "/train") -> dict[str, Any]:
    """``POST /train`` (or ``path``: ``/sweeps``) with an ``Idempotency-Key``
    of this invocation's own, sent again with the same key when no answer or
    a 5xx comes back (or a 409: the first try is still being queued): a
    retried submit is answered with the job of the first, never a second."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    for pause in (*SUBMIT_RETRIES, None):
        try:
            return api.call("POST", path, request, headers).json()  # type: ignore[no-any-return]
        except ApiError as error:
            if pause is None or not (error.transient or error.status == 409):
                raise
        time.sleep(pause)
    raise AssertionError("unreachable")
