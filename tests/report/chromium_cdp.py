"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no
port, no network), for the index.html tests: open a page, collect every console error, uncaught
exception and failed load, read values from the page, take a screenshot.

Chosen over ``--dump-dom`` and grepping ``--enable-logging`` output because the protocol reports
each error as a structured event (``Runtime.exceptionThrown``, ``Runtime.consoleAPICalled``,
``Log.entryAdded``) whatever the browser's log format, and tells when the page has loaded.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


def chromium() -> str | None:
    """The browser's path, or None when it is not installed (the tests then skip)."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


class Browser:
    """One headless Chromium and one page (a tab) at ``width`` × ``height`` CSS pixels."""

    def __init__(self, width: int = 1280, height: int = 1100, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="harness-chromium-")
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        args = [*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        # the protocol pipe is the child's fd 3 (commands in) and fd 4 (replies out); bash, not sh: dash
        # cannot redirect from a descriptor above 9
        self.log = Path(self.profile) / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_child} 4>&{from_child}',
                                          chromium(), *args], pass_fds=(to_child, from_child),
                                         stdout=log, stderr=log)
        os.close(to_child), os.close(from_child)
        self._buf, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False}, session=True)

    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        reply = self.wait(lambda m, n=self._id: m.get("id") == n)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait(self, pred, timeout: float | None = None) -> dict:
        """The next message that ``pred`` accepts; every event read on the way is kept in ``events``."""
        end = time.monotonic() + (timeout or self.timeout)
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if pred(msg):
                    return msg
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium: no answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""
                raise RuntimeError(f"chromium closed the protocol pipe; its log ends:\n{tail}")
            self._buf += chunk

    def open(self, path: Path, fragment: str = "") -> float:
        """Load ``path`` (a local file) and wait for its load event; returns the seconds that took."""
        self.send("Page.navigate", {"url": "about:blank"}, session=True)  # so a new fragment loads anew
        self.wait(lambda m: m.get("method") == "Page.loadEventFired")
        self.events.clear()
        t0 = time.monotonic()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri() + fragment}, session=True)
        self.wait(lambda m: m.get("method") == "Page.loadEventFired")
        return time.monotonic() - t0

    def eval(self, expression: str):
        """``expression``'s value in the page (JSON-able values only)."""
        out = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def errors(self) -> list[str]:
        """Every uncaught exception, console error or warning, and browser log error (a failed image
        load among them) since the last :meth:`open`."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}".strip())
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                            for a in p.get("args", [])))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        Path(path).write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params, session=True)["data"]))
        return Path(path)

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 - a browser that will not close is ended: never left running
            self.proc.kill()
            self.proc.wait(10)
        finally:
            os.close(self._w), os.close(self._r)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
