"""Screenshots of the Airflow UI for the operator guide (docs/operators.md), taken from the running demo.

    scripts/screenshots.sh            # installs Debian's chromium if missing, then runs this with the venv
    .venv/bin/python scripts/screenshots.py [--out docs/img] [--keep]

Starts the demo (LocalSystem: embedded PostgreSQL, FTP with the demo 1C drops, feeds, simulators, Airflow
standalone) in a temporary folder on free ports, waits until the catalog, stock and price imports have run,
then drives headless Chromium through its DevTools protocol over a pipe (`--remote-debugging-pipe`: no port,
no extra package). It logs in the way the Airflow UI itself does after the login form: the JWT from
`POST /auth/token` in the `_token` cookie. Pages:

    dag-list.png             the DAG list
    stock-import-fragments.png  a stock import run's mapped task, one named fragment per row
    price-trigger-form.png   the price import's trigger form (file, dry run)
    assets-graph.png         the catalog_changed asset: which imports produce it, which DAGs it starts

The demo config is the project's with small fragments (so the 36-row demo stock file shows several named
fragments) and quick sensors. Everything it started is stopped at the end (also on errors).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import yaml  # noqa: E402

from mpsync.local.system import LocalSystem, Ports  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1440, 900


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3: commands in, fd 4: events out;
    each message is JSON ended by a NUL byte)."""

    def __init__(self, profile: Path):
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
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None

    def call(self, method: str, params: dict | None = None, *, browser: bool = False, timeout: float = 60) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(f"{method}: no answer in {timeout:.0f}s")

    def _read(self) -> dict:
        while b"\0" not in self._buf:
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
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})

    @staticmethod
    def _field(label: str, selector: str) -> str:
        """JS: the `selector` element of the form field whose label starts with `label`."""
        # The last element (in document order) whose text starts with the label is the label itself.
        return (f"(() => {{ const label = [...document.querySelectorAll('[role=dialog] *')].filter(e => "
                f"e.textContent.trim().startsWith({json.dumps(label)})).pop(); "
                f"let n = label; while (n && !n.querySelector({json.dumps(selector)})) n = n.parentElement; "
                f"return n ? n.querySelector({json.dumps(selector)}) : null; }})()")

    def type_into_field(self, label: str, text: str) -> None:
        """Focus the field's input and type like a person (React sees real input events)."""
        if not self.evaluate(f"(() => {{ const el = {self._field(label, 'input')}; if (el) el.focus(); return !!el; }})()"):
            raise RuntimeError(f"no input for the field {label!r} in: "
                               + str(self.evaluate("document.querySelector('[role=dialog]')?.outerHTML.slice(0, 3000)")))
        self.call("Input.insertText", {"text": text})

    def switch_on(self, label: str) -> None:
        box = self._field(label, "input[type=checkbox]")
        if not self.evaluate(f"(() => {{ const b = {box}; if (b && !b.checked) b.click(); return !!b && b.checked; }})()"):
            raise RuntimeError(f"could not switch on {label!r}")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def wait_for(self, expression: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass                       # the page is being replaced
            time.sleep(0.5)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 400) : ''")
        raise TimeoutError(f"page never showed {what} in {timeout:.0f}s; it shows: {text!r}")

    def wait_for_text(self, *texts: str, timeout: float = 60) -> None:
        cond = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        self.wait_for(f"!!document.body && {cond}", " and ".join(repr(t) for t in texts), timeout)

    def click_text(self, tag: str, text: str) -> None:
        ok = self.evaluate(
            f"(() => {{ const el = [...document.querySelectorAll({json.dumps(tag)})]"
            f".find(e => e.innerText.trim() === {json.dumps(text)}); if (el) el.click(); return !!el; }})()")
        if not ok:
            raise RuntimeError(f"no <{tag}> with text {text!r} to click")

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


def demo_config(folder: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "include" / "config" / "mpsync.yaml").read_text(encoding="utf-8"))
    cfg["onec"].update(poke_seconds=10, stable_seconds=0, timeout_seconds=60)   # see tests/test_end_to_end.py
    cfg["stock_import"]["min_fragment_rows"] = 10       # 36 demo rows -> 4 named fragments
    cfg["prices"]["min_fragment_rows"] = 10
    cfg["orders"]["initial_days"] = 1
    path = folder / "mpsync-screenshots.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def wait_for_imports(system: LocalSystem, token: str, timeout: float = 600) -> str:
    """Until catalog, stock and price imports have each had a successful run; returns the stock run id."""
    deadline = time.monotonic() + timeout
    wanted = {"onec_catalog_import": "import_catalog", "onec_stock_import": "finish_stock_import",
              "onec_price_import": "finish_price_import"}
    done: dict[str, str] = {}
    while time.monotonic() < deadline:
        for dag_id, task_id in wanted.items():
            if dag_id in done:
                continue
            runs = system.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=50", token).json()["dag_runs"]
            for run in runs:
                if run["state"] == "failed":
                    raise RuntimeError(f"{dag_id} run {run['dag_run_id']} failed: see the Airflow UI / logs")
                if run["state"] != "success":
                    continue
                path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances/{task_id}"
                if system.api("GET", path, token).json().get("state") == "success":
                    done[dag_id] = run["dag_run_id"]
                    print(f"screenshots: {dag_id} run {run['dag_run_id']} imported", flush=True)
                    break
            if dag_id not in done and runs and all(r["state"] in ("success", "failed") for r in runs):
                # The scheduled run's sensor gave up before the demo drop: ask again.
                system.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", token, json={"logical_date": None})
        if len(done) == len(wanted):
            return done["onec_stock_import"]
        time.sleep(2)
    raise TimeoutError(f"imports not done in {timeout:.0f}s (done: {sorted(done)})")


def settle(system: LocalSystem, token: str, timeout: float = 240) -> None:
    """A calm picture: the freshness watcher re-run now that feeds exist, and no run left half-way."""
    run = system.api("POST", "/api/v2/dags/exchange_freshness/dagRuns", token,
                     json={"logical_date": None}).json()["dag_run_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = system.api("GET", f"/api/v2/dags/exchange_freshness/dagRuns/{quote(run, safe='')}",
                           token).json()["state"]
        busy = system.api("GET", "/api/v2/dags/~/dagRuns?state=running&state=queued&limit=50",
                          token).json()["total_entries"]
        if state in ("success", "failed") and not busy:
            print(f"screenshots: freshness watcher {state}; no run active", flush=True)
            return
        time.sleep(2)
    print("screenshots: runs still active; taking the pictures anyway", flush=True)


def take(system: LocalSystem, out: Path, stock_run: str, profile: Path) -> list[Path]:
    token = system.api_token()
    base = system.airflow_url
    assets = system.api("GET", "/api/v2/assets?limit=100", token).json()["assets"]
    asset = next(a for a in assets if a["name"] == "catalog_changed" or a["uri"].endswith("catalog_changed"))
    shots = []
    browser = Chromium(profile)
    try:
        browser.open_page()
        # The UI's login form stores the JWT in the `_token` cookie; the API server reads it from there.
        browser.call("Network.setCookie", {"name": "_token", "value": token, "url": base + "/", "path": "/"})

        browser.resize(1330)               # all seven DAG cards on one page
        browser.goto(f"{base}/dags")
        browser.wait_for_text("1C stock import", "1C price import", "Marketplace feeds", "Sync push")
        shots.append(browser.screenshot(out / "dag-list.png"))
        browser.resize(HEIGHT)

        browser.goto(f"{base}/dags/onec_stock_import/runs/{quote(stock_run, safe='')}/tasks/apply_stock_fragment/mapped")
        browser.wait_for_text("rows ", "Ostatki_MP_")
        shots.append(browser.screenshot(out / "stock-import-fragments.png"))

        browser.goto(f"{base}/dags/onec_price_import")
        browser.wait_for_text("1C price import", "Trigger")
        browser.click_text("button", "Trigger")
        browser.wait_for_text("Price file on the FTP", "Dry run")
        # Filled in as an operator would for a check: a file uploaded under a name the sensor ignores.
        browser.type_into_field("Price file on the FTP", "CHECK_prices.xlsx")
        browser.switch_on("Dry run")
        shots.append(browser.screenshot(out / "price-trigger-form.png"))

        browser.goto(f"{base}/assets/{asset['id']}")
        browser.wait_for_text("catalog_changed", "marketplace_feeds")
        shots.append(browser.screenshot(out / "assets-graph.png", settle=3))
    finally:
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--keep", action="store_true", help="keep the temporary demo folder (printed)")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: run scripts/screenshots.sh (installs Debian's chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mpsync-screenshots-"))
    # A busy 2-core machine answers the task processes' first API call slowly: wait for it, do not retry it.
    env = {"MPSYNC_CONFIG": str(demo_config(work)), "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30"}
    system = LocalSystem(work / "var", ports=Ports.free(), extra_env=env,
                         log=lambda line: print(line, flush=True))
    try:
        system.start(wait_timeout=420)
        stock_run = wait_for_imports(system, system.api_token())
        settle(system, system.api_token())
        for shot in take(system, args.out, stock_run, work / "chromium"):
            print(f"screenshots: {shot} ({shot.stat().st_size // 1024} KB)", flush=True)
    finally:
        system.stop()
        if args.keep:
            print(f"screenshots: demo folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
