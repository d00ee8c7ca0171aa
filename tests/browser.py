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
        #: The same requests: their ``url``, ``method`` and ``headers``.
        self.sent: list[dict[str, Any]] = []
        #: The page's log: console errors, Content-Security-Policy refusals...
        self.log: list[str] = []
        #: What the page's scripts printed (console.error/warn...) and threw.
        self.console: list[str] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Log.enable")
        self.send("Runtime.enable")

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
                self.sent.append(answer["params"]["request"])
            elif event == "Log.entryAdded":
                entry = answer["params"]["entry"]
                self.log.append(f"{entry['level']}: {entry['text']}")
            elif event == "Runtime.consoleAPICalled":
                args = answer["params"]["args"]
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                self.console.append(f"{answer['params']['type']}: {text}")
            elif event == "Runtime.exceptionThrown":
                details = answer["params"]["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                self.console.append(f"exception: {text}")

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

    # --- helpers for tests that use a page as a person would ---------------

    def load(self, url: str, timeout: float = 30) -> None:
        """Navigate to ``url`` and wait until a new document has loaded (a
        URL that differs only in its fragment loads the document again)."""
        try:
            here = self.evaluate("window.__leaving = true, location.href.split('#')[0]")
        except RuntimeError:
            here = None
        if here == url.split("#")[0]:
            self.send("Page.navigate", url="about:blank")  # else only the fragment changes
        self.open(url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate("!window.__leaving && document.readyState === 'complete'"):
                    return
            except RuntimeError:
                pass  # the old document went away mid-question
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.05)

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """The first truthy value of a JavaScript expression, evaluated in
        the page every 50 ms; TimeoutError (with the last value) after
        ``timeout`` seconds."""
        script = f"""
        new Promise((resolve) => {{
          const end = Date.now() + {int(timeout * 1000)};
          (function look() {{
            let value;
            try {{ value = ({expression}); }} catch (error) {{ value = undefined; }}
            if (value || Date.now() > end) resolve({{done: Boolean(value), value}});
            else setTimeout(look, 50);
          }})();
        }})"""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = self.evaluate(script, timeout=timeout + 10)
                break
            except RuntimeError as error:
                # The page navigated mid-wait: ask the new one.
                gone = ("navigated", "context was destroyed", "Cannot find context")
                if not any(words in str(error) for words in gone) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if not answer["done"]:
            raise TimeoutError(f"{expression} is still {answer.get('value')!r}")
        return answer["value"]

    def type_into(self, selector: str, text: str) -> None:
        """Replace the value of an input or textarea as typing would: focus,
        select all, insert ``text`` (input events fire as for a person)."""
        found = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.focus(); el.select(); return true; })()"
        )
        if not found:
            raise LookupError(f"no {selector} on the page")
        if text:
            self.send("Input.insertText", text=text)
        else:
            self.send("Input.dispatchKeyEvent", type="keyDown", key="Delete", code="Delete",
                      windowsVirtualKeyCode=46)  # fmt: skip
            self.send("Input.dispatchKeyEvent", type="keyUp", key="Delete", code="Delete",
                      windowsVirtualKeyCode=46)  # fmt: skip

    def click(self, selector: str) -> None:
        """Click the element (a JavaScript click, as a keyboard activation is)."""
        if not self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        ):
            raise LookupError(f"no {selector} on the page")

    def set_viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Lay the page out at ``width`` × ``height`` CSS pixels (a phone's
        viewport with ``mobile``)."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)  # fmt: skip

    def capture(self, path: Path) -> None:
        """A PNG of the whole page (not only the viewport) at ``path``."""
        import base64

        metrics = self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                               "scale": 1})  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))

    def unnamed_controls(self) -> list[str]:
        """The page's form controls that have no accessible name, as
        Chromium computes it for assistive technology (labels,
        aria-label, aria-labelledby, a button's text...); [] is good."""
        roles = {"textbox", "spinbutton", "checkbox", "radio", "combobox", "button",
                 "listbox", "slider", "searchbox", "switch"}  # fmt: skip
        nodes = self.send("Accessibility.getFullAXTree")["nodes"]
        return [
            f"{node['role']['value']} (DOM node {node.get('backendDOMNodeId')})"
            for node in nodes
            if not node.get("ignored")
            and node.get("role", {}).get("value") in roles
            and not str(node.get("name", {}).get("value", "")).strip()
        ]
