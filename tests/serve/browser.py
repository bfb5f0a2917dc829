"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): Debian's
chromium and nothing else, no websocket client and no browser download. Messages are JSON, each ended
by a NUL byte; Chromium reads commands on its fd 3 and writes replies and events on its fd 4."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900"]


class Browser:
    """One page in a headless Chromium: ``goto(url)``, ``js(expression)``, ``wait(expression)``, ``close()``."""

    def __init__(self, timeout: float = 60.0):
        self.timeout, self._id, self._buffer = timeout, 0, b""
        self._profile = tempfile.TemporaryDirectory()
        self._log = open(os.path.join(self._profile.name, "stderr.log"), "wb")  # noqa: SIM115 - closed in close()
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()
        # bash puts the two pipe ends on fds 3 and 4, where Chromium looks for them (dash, Debian's sh, takes
        # no fd numbers above 9, and a test process may well have its pipes there)
        script = f'exec "$0" "$@" 3<&{commands_in} 4>&{replies_out}'
        self.proc = subprocess.Popen(["bash", "-c", script, CHROMIUM, *FLAGS, f"--user-data-dir={self._profile.name}",
                                      "--remote-debugging-pipe", "about:blank"],
                                     pass_fds=(commands_in, replies_out), stdout=subprocess.DEVNULL, stderr=self._log)
        os.close(commands_in)
        os.close(replies_out)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command; return its result, skipping the events that arrive before it."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], self.timeout)
            chunk = os.read(self._replies, 1 << 16) if ready else b""
            if not chunk:
                with open(self._log.name, "rb") as log:  # its last words, without the D-Bus noise of a container
                    lines = [ln for ln in log.read().decode(errors="replace").splitlines() if "bus" not in ln.lower()]
                raise RuntimeError("chromium stopped answering: " + " | ".join(lines[-5:]))
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", self.session, url=url)

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        out = self.call("Runtime.evaluate", self.session, expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait(self, expression: str):
        """Poll until the expression is truthy (an error while the page loads counts as not yet); return its value."""
        deadline = time.monotonic() + self.timeout
        guarded = f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()"
        while not (value := self.js(guarded)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {expression}")
            time.sleep(0.05)
        return value

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._commands)
        os.close(self._replies)
        self._log.close()
        self._profile.cleanup()
