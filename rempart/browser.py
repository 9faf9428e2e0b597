"""A headless browser for the docs site's tests: Debian's chromium, driven over the DevTools protocol
on a pipe (``--remote-debugging-pipe``: JSON messages ended by a NUL byte on file descriptors 3 and 4),
so that no WebSocket library and no driver download is needed. Enough to open a page, wait for what its
scripts draw, read the DOM and take a screenshot."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, width: int = 1280, height: int = 900):
        binary = shutil.which("chromium")
        if not binary:
            raise BrowserError("chromium is missing: `make tools` installs Debian's chromium")
        self._profile = tempfile.mkdtemp(prefix="rempart-chromium-")
        ours_read, chrome_write = os.pipe()
        chrome_read, ours_write = os.pipe()
        # Chromium reads commands on its fd 3 and answers on its fd 4: bash puts the pipe's ends there
        # (moved above 9 first, so that they cannot be 3 or 4 already).
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (chrome_read, chrome_write)]
        os.close(chrome_read)
        os.close(chrome_write)
        arguments = ["--headless", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                     "--disable-extensions", "--disable-background-networking", "--disable-sync", "--no-sandbox",
                     f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"]
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{high[0]} 4>&{high[1]} {high[0]}<&- {high[1]}>&-', binary, *arguments],
            pass_fds=high, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for fd in high:
            os.close(fd)
        self._out, self._in = os.fdopen(ours_write, "wb"), os.fdopen(ours_read, "rb")
        self._next, self._buffer = 0, b""
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._in.fileno(), 65536)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        request = {"id": self._next, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        self._out.write(json.dumps(request).encode() + b"\0")
        self._out.flush()
        while True:
            answer = self._read()
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})

    def call(self, method: str, params: dict | None = None) -> dict:
        return self._call(method, params, self._session)

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout_s:.0f} s: {expression}")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        try:
            self._call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
