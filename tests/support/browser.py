"""Headless Chromium for the viewer tests, driven by the DevTools protocol over a pipe.

``--remote-debugging-pipe``: Chromium reads commands from fd 3 and writes answers and events to
fd 4, as JSON messages ending in a NUL byte — no port and no websocket library. WebGL runs on
SwiftShader (software), which is what ``--use-gl=swiftshader --enable-unsafe-swiftshader`` select;
``--no-sandbox`` because tests run as root.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-gl=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


#: ``CIM_TEST_SKIP_BROWSER=1`` skips the browser tests
SKIP_BROWSER = os.environ.get("CIM_TEST_SKIP_BROWSER") == "1"


def require_chromium(maplibre: bool = False) -> str:
    """Chromium's path for a browser test: skips under ``CIM_TEST_SKIP_BROWSER=1``, fails (with how
    to install it) when Chromium — or, with ``maplibre``, MapLibre GL JS — is missing."""
    import pytest

    if SKIP_BROWSER:
        pytest.skip("CIM_TEST_SKIP_BROWSER=1")
    path = find_chromium()
    if path is None:
        pytest.fail("chromium not found: ./scripts/test installs it (apt-get install --no-install-recommends chromium)")
    if maplibre:
        from ogcapi.viewer import INSTALL_HINT, maplibre_version

        if maplibre_version() is None:
            pytest.fail(INSTALL_HINT)
    return path


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number of 10 or more."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, width: int = 1200, height: int = 800) -> None:
        self.executable = executable
        self.size = (width, height)
        self.profile = tempfile.mkdtemp(prefix="cim-chromium-")
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._ids = iter(range(1, 1 << 30))
        self.session: str | None = None

    def __enter__(self) -> Chromium:
        to_child, self._write = os.pipe()  # commands: we write, Chromium reads on fd 3
        self._read, from_child = os.pipe()  # answers: Chromium writes on fd 4
        to_child, from_child = _high_fd(to_child), _high_fd(from_child)  # never 3 or 4 themselves
        width, height = self.size
        args = [self.executable, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "about:blank"]
        # bash puts the pipe ends on fds 3 and 4 for Chromium (no preexec_fn in a threaded process)
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{to_child} 4>&{from_child} {to_child}<&- {from_child}>&-', "chromium", *args],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(to_child)
        os.close(from_child)
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr or ()), daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})
        attached = self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.session = None
            self.call("Browser.close", timeout=10)
        except BrowserError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._write, self._read):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")[-2000:]

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile go to ``self.events``)."""
        mid = next(self._ids)
        message: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        try:
            os.write(self._write, json.dumps(message).encode() + b"\0")
        except OSError as exc:
            raise BrowserError(f"Chromium is gone ({exc}): {self.stderr_tail()}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise BrowserError(f"no answer to {method} in {timeout} s") from None
            if answer is None:
                raise BrowserError(f"Chromium closed the pipe during {method}: {self.stderr_tail()}")
            if answer.get("id") == mid:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer and len(self.events) < 1000:
                self.events.append(answer)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": "about:blank"})  # a hash-only change would not reload
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"navigating to {url}: {answer['errorText']}")

    def wait_for(self, expression: str, timeout: float = 180, interval: float = 0.5) -> Any:
        """Evaluate ``expression`` until it is truthy; its value, or BrowserError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout} s: {expression}")
            time.sleep(interval)

    def screenshot(self, path: Path) -> Path:
        """The page as a PNG at ``path``; also kept as a test artefact under ``$CIM_TEST_ARTEFACTS``
        (scripts/test: ``tests/artefacts/``), in a folder named after the test, when that is set."""
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"}, timeout=120)["data"])
        path.write_bytes(data)
        keep = os.environ.get("CIM_TEST_ARTEFACTS")
        if keep:
            test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
            folder = Path(keep) / re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).write_bytes(data)
        return path

    def page_errors(self) -> list[str]:
        """Uncaught exceptions and console errors seen so far."""
        out = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                out.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif event.get("method") == "Runtime.consoleAPICalled" and event["params"].get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in event["params"]["args"]))
        return out
