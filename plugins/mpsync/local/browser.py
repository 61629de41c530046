"""Headless Chromium driven through its DevTools protocol over a pipe, for what a person looks at: the browser
tests of the Airflow UI (tests/test_ui_in_browser.py) and the screenshots of the operator guide
(scripts/screenshots.py). `--remote-debugging-pipe` needs no port and no extra package: fd 3 carries
commands in, fd 4 replies and events out, each message JSON ended by a NUL byte.

Debian's package is the browser (`scripts/chromium.sh` installs it); `CHROMIUM` in the environment names
another binary.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

WIDTH, HEIGHT = 1440, 900


def chromium_path() -> str | None:
    """The browser binary: $CHROMIUM, else Debian's /usr/bin/chromium, else `chromium` on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class Chromium:
    """One headless Chromium with one page (`open_page`); every wait polls the page and, when it gives up,
    says what the page showed instead."""

    def __init__(self, profile: Path, *, binary: str | None = None, width: int = WIDTH, height: int = HEIGHT):
        binary = binary or chromium_path()
        if not binary:
            raise FileNotFoundError("chromium not found: run scripts/chromium.sh (installs Debian's chromium)")
        self.width, self.height = width, height
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Park the child's ends above 10 so dup2 onto 3/4 cannot overwrite one with the other.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},{height}",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None

    def __enter__(self) -> Chromium:
        self.open_page()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the protocol ----------------------------------------------------------------------------------

    def call(self, method: str, params: dict | None = None, *, browser: bool = False, timeout: float = 60) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise TimeoutError(f"{method}: no answer in {timeout:.0f}s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict | None:
        """The next message, or None at the deadline (a hung browser must not hang the caller)."""
        while b"\0" not in self._buf:
            if not select.select([self._from_child], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (did it crash?)")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.resize(self.height)

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    # --- what a person does ----------------------------------------------------------------------------

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def url(self) -> str:
        return self.evaluate("location.href")

    def text(self) -> str:
        """The page's visible text, as the person reads it."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, expression: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass                       # the page is being replaced
            time.sleep(0.3)
        raise TimeoutError(f"page never showed {what} in {timeout:.0f}s; {self.url()} shows: {self.text()[:600]!r}")

    def wait_for_text(self, *texts: str, timeout: float = 60) -> None:
        cond = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        self.wait_for(f"!!document.body && {cond}", " and ".join(repr(t) for t in texts), timeout)

    def click_text(self, tag: str, text: str) -> None:
        """Click the (first visible) `tag` element whose text is exactly `text`."""
        ok = self.evaluate(
            f"(() => {{ const el = [...document.querySelectorAll({json.dumps(tag)})]"
            f".find(e => e.offsetParent !== null && e.innerText.trim() === {json.dumps(text)}); "
            f"if (el) el.click(); return !!el; }})()")
        if not ok:
            raise RuntimeError(f"no <{tag}> with text {text!r} to click on {self.url()}: {self.text()[:600]!r}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the input and type like a person (React sees real input events)."""
        if not self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); "
                             f"if (el) el.focus(); return !!el; }})()"):
            raise RuntimeError(f"no {selector} to type into on {self.url()}: {self.text()[:600]!r}")
        self.call("Input.insertText", {"text": text})

    @staticmethod
    def _field(label: str, selector: str) -> str:
        """JS: the `selector` element of the dialog's form field whose label starts with `label`."""
        # The last element (in document order) whose text starts with the label is the label itself.
        return (f"(() => {{ const label = [...document.querySelectorAll('[role=dialog] *')].filter(e => "
                f"e.textContent.trim().startsWith({json.dumps(label)})).pop(); "
                f"let n = label; while (n && !n.querySelector({json.dumps(selector)})) n = n.parentElement; "
                f"return n ? n.querySelector({json.dumps(selector)}) : null; }})()")

    def type_into_field(self, label: str, text: str) -> None:
        """Type into the input of a dialog's form field named by its label."""
        if not self.evaluate(f"(() => {{ const el = {self._field(label, 'input')}; if (el) el.focus(); return !!el; }})()"):
            raise RuntimeError(f"no input for the field {label!r} in: "
                               + str(self.evaluate("document.querySelector('[role=dialog]')?.outerHTML.slice(0, 3000)")))
        self.call("Input.insertText", {"text": text})

    def switch_on(self, label: str) -> None:
        box = self._field(label, "input[type=checkbox]")
        if not self.evaluate(f"(() => {{ const b = {box}; if (b && !b.checked) b.click(); return !!b && b.checked; }})()"):
            raise RuntimeError(f"could not switch on {label!r}")

    def sign_in(self, base: str, user: str, password: str, next_path: str = "/") -> None:
        """Airflow's own login form (simple auth manager), filled in and sent as a person does; the form then
        goes to `next_path` with the session in its `_token` cookie."""
        self.goto(f"{base}/auth/login?next={quote(base + next_path, safe='')}")
        self.wait_for("!!document.querySelector('input[name=username]')", "the login form")
        self.type_into("input[name=username]", user)
        self.type_into("input[name=password]", password)
        self.click_text("button", "Sign in")
        self.wait_for(f"location.pathname === {json.dumps(next_path.split('?')[0])}", f"{next_path} after signing in")

    def answer_required_action(self, base: str, subject: str, option: str,
                               fields: dict[str, str] | None = None) -> list[list[str]]:
        """Answer a Human-in-the-loop question as an operator does in Airflow 3's UI: Browse > Required actions,
        the question by its subject, the form's fields (by param name) filled in, the option's button clicked.
        Returns the rows of the tables in the question's body as the page showed them."""
        self.goto(f"{base}/required_actions")
        self.wait_for_text(subject)
        self.click_text("a", subject)           # leads to the task instance's Required Action panel
        self.wait_for_text(option)
        body = self.evaluate("[...document.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.innerText.trim()))")
        for name, value in (fields or {}).items():
            self.type_into(f"input[name=element_{name}]", value)
        self.click_text("button", option)
        self.wait_for_text("response successful", timeout=30)
        return body

    def screenshot(self, path: Path, settle: float = 1.5) -> Path:
        time.sleep(settle)                 # let charts and fonts finish drawing
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True, timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
