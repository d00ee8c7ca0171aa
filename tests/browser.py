"""Headless Chromium for tests, with the standard library only.

Import as ``from browser import Browser`` (pytest puts ``tests/`` on
``sys.path``). :func:`chromium` finds Debian's ``chromium`` (``.ci/run``
installs it when missing). :class:`Browser` drives a page over the
DevTools protocol on a pipe (``--remote-debugging-pipe``: Chromium reads
commands on its fd 3 and writes answers and events on its fd 4, each a JSON
text ended by a NUL byte), and records every request the page makes.

Every host but 127.0.0.1 fails to resolve in it (``OFFLINE``), so that a
page that needs the internet breaks in the test as it would offline.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium() -> str | None:
    """The Chromium program, None if it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def flags(profile: Path) -> list[str]:
    """Headless, in a profile of its own, offline but for 127.0.0.1."""
    return [
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # tests run as root in CI
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        OFFLINE,
    ]


def screenshot(url: str, path: Path, profile: Path, size: tuple[int, int] = (1280, 1600)) -> None:
    """A PNG of the page at ``url`` once its scripts ran (up to 10 s)."""
    subprocess.run(
        [chromium(), *flags(profile), "--hide-scrollbars", "--virtual-time-budget=10000",
         f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


class Browser:
    """One headless Chromium and one page, driven over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()
        # Bash moves Chromium's ends to fds 3 and 4, where it looks for them,
        # from fds 10 and up, which no redirection can overwrite first (dash
        # takes one-digit fds only).
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
        os.close(to_browser_r)
        os.close(from_browser_w)
        script = f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]}'
        #: What Chromium printed, for a test that fails.
        self.stderr = profile.parent / "chromium.log"
        with open(self.stderr, "wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", script, chromium(), *flags(profile), "--remote-debugging-pipe"],
                pass_fds=ends,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for fd in ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        #: Every URL the page requested, in order.
        self.requests: list[str] = []
        #: The page's log: console errors, Content-Security-Policy refusals...
        self.log: list[str] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Log.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        os.close(self._out)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._in)

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send a command (to the page once attached); returns its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]  # type: ignore[no-any-return]
            event = answer.get("method")
            if event == "Network.requestWillBeSent":
                self.requests.append(answer["params"]["request"]["url"])
            elif event == "Log.entryAdded":
                entry = answer["params"]["entry"]
                self.log.append(f"{entry['level']}: {entry['text']}")

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def open(self, url: str) -> None:
        """Navigate the page to ``url``."""
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """The value of a JavaScript expression in the page (a promise is
        awaited); a JavaScript error is raised as a RuntimeError."""
        result = self.send(
            "Runtime.evaluate",
            timeout=timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details)
        return result["result"].get("value")
