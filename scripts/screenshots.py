"""Screenshots of the Airflow UI for the operator guide (docs/operators.md), taken from the running demo.

    scripts/screenshots.sh            # installs Debian's chromium if missing, then runs this with the venv
    .venv/bin/python scripts/screenshots.py [--out docs/img] [--keep]

Starts the demo (LocalSystem: embedded PostgreSQL, FTP with the demo 1C drops, feeds, simulators, Airflow
standalone) in a temporary folder on free ports, waits until the catalog, stock and price imports have run,
then drives headless Chromium (mpsync.local.browser: its DevTools protocol over a pipe, no port, no extra
package). It logs in the way the Airflow UI itself does after the login form: the JWT from
`POST /auth/token` in the `_token` cookie. Pages:

    dag-list.png             the DAG list
    stock-import-fragments.png  a stock import run's mapped task, one named fragment per row
    price-trigger-form.png   the price import's trigger form (file, dry run)
    assets-graph.png         the catalog_changed asset: which imports produce it, which DAGs it starts
    required-actions.png     Browse > Required actions: the held price's question waiting for a person
    held-price-question.png  the question itself: held article, current and held price, rule, the choices
    exchange-page.png        the Exchange page in Airflow's frame: last 1C files, rejected rows
    exchange-page-lists.png  the same page further down: parked objects, order accounts, feeds

For the held price, a price table with one price cut by 90% (a lost digit) is uploaded to the demo FTP and
the price import triggered by hand: the import holds that price and price_approvals asks about it. The
question is left unanswered (the pictures show it waiting).

The demo config is the project's with small fragments (so the 36-row demo stock file shows several named
fragments) and quick sensors. Everything it started is stopped at the end (also on errors).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import ftplib
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import yaml  # noqa: E402

from mpsync.local import demo  # noqa: E402
from mpsync.local.browser import HEIGHT, Chromium, chromium_path  # noqa: E402
from mpsync.local.system import LocalSystem, Ports  # noqa: E402


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


def hold_a_price(system: LocalSystem, token: str, timeout: float = 300) -> str:
    """Upload the demo price table with one price cut by 90% and trigger the price import by hand; returns
    the held article once price_approvals' ask task waits for a person."""
    products = demo.demo_products()
    held = products[0]
    cut = (held.price / 10).quantize(Decimal(1))          # -90%: held by prices.max_change_share (0.5)
    table = [dataclasses.replace(p, price=cut) if p is held else p for p in products]
    local = demo.write_price_table(Path(tempfile.mkdtemp(prefix="mpsync-held-")) / demo.PRICE_FILE, table)
    with ftplib.FTP() as ftp, open(local, "rb") as fh:
        ftp.connect("127.0.0.1", system.ports.ftp, timeout=30)
        ftp.login("onec", system.secrets()["ftp_password"])
        ftp.storbinary(f"STOR /{demo.PRICE_FOLDER}/{demo.PRICE_FILE}", fh)
    shutil.rmtree(local.parent, ignore_errors=True)
    system.api("POST", "/api/v2/dags/onec_price_import/dagRuns", token, json={"logical_date": None, "conf": {}})
    print(f"screenshots: {held.article} {held.price} -> {cut} uploaded; price import triggered", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in system.api("GET", "/api/v2/dags/price_approvals/dagRuns?limit=20", token).json()["dag_runs"]:
            path = f"/api/v2/dags/price_approvals/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances/ask"
            # Airflow 3.3 parks a Human-in-the-loop task as awaiting_input (earlier versions: deferred)
            if system.api("GET", path, token).json().get("state") in ("awaiting_input", "deferred"):
                print(f"screenshots: price_approvals {run['dag_run_id']} asks", flush=True)
                return held.article
        time.sleep(3)
    raise TimeoutError(f"price_approvals did not ask about {held.article} in {timeout:.0f}s")


def take_dag_pages(browser: Chromium, base: str, out: Path, stock_run: str, asset_id) -> list[Path]:
    shots = []
    browser.resize(1680)               # all ten DAG cards on one page
    browser.goto(f"{base}/dags")
    browser.wait_for_text("1C stock import", "1C price import", "Marketplace feeds", "Sync push",
                          "Held prices: apply or keep")
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

    browser.goto(f"{base}/assets/{asset_id}")
    browser.wait_for_text("catalog_changed", "marketplace_feeds")
    shots.append(browser.screenshot(out / "assets-graph.png", settle=3))
    return shots


def take_question(browser: Chromium, base: str, out: Path, article: str) -> list[Path]:
    """Required actions, then the question (the steps of Chromium.answer_required_action, without answering)."""
    from mpsync.price_approval import APPLY, KEEP

    subject = f"Held prices in {demo.PRICE_FILE}: apply them or keep the current ones?"
    browser.goto(f"{base}/required_actions")
    browser.wait_for_text(subject)
    shots = [browser.screenshot(out / "required-actions.png")]
    browser.click_text("a", subject)
    browser.wait_for_text(APPLY, KEEP, article)
    shots.append(browser.screenshot(out / "held-price-question.png"))
    return shots


def take_exchange_page(browser: Chromium, base: str, out: Path) -> list[Path]:
    """The page as the menu shows it (in Airflow's frame), then its lower lists from the page itself."""
    browser.goto(f"{base}/plugin/mpsync-exchange")
    frame = "(document.querySelector('iframe')?.contentDocument?.body?.innerText || '')"
    browser.wait_for(f"{frame}.includes('Last 1C files') && {frame}.includes('Order accounts')",
                     "the Exchange page in Airflow's frame")
    shots = [browser.screenshot(out / "exchange-page.png")]
    browser.goto(f"{base}/mpsync/exchange")
    browser.wait_for_text("Parked objects", "Order accounts", "Feeds")
    top = browser.evaluate("document.getElementById('parked').getBoundingClientRect().top + scrollY - 8")
    height = min(browser.evaluate("document.documentElement.scrollHeight") - top, 1600)
    time.sleep(1)
    data = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
        "x": 0, "y": top, "width": browser.width, "height": height, "scale": 1}})["data"]
    shots.append(out / "exchange-page-lists.png")
    shots[-1].write_bytes(base64.b64decode(data))
    return shots


def take(system: LocalSystem, out: Path, stock_run: str, profile: Path) -> list[Path]:
    token = system.api_token()
    base = system.airflow_url
    assets = system.api("GET", "/api/v2/assets?limit=100", token).json()["assets"]
    asset = next(a for a in assets if a["name"] == "catalog_changed" or a["uri"].endswith("catalog_changed"))
    browser = Chromium(profile)
    try:
        browser.open_page()
        # The UI's login form stores the JWT in the `_token` cookie; the API server reads it from there.
        browser.call("Network.setCookie", {"name": "_token", "value": token, "url": base + "/", "path": "/"})
        shots = take_dag_pages(browser, base, out, stock_run, asset["id"])
        # After the DAG list: a waiting question makes the freshness watcher's next run fail (as it should).
        article = hold_a_price(system, token)
        shots += take_question(browser, base, out, article)
        shots += take_exchange_page(browser, base, out)
    finally:
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--keep", action="store_true", help="keep the temporary demo folder (printed)")
    args = p.parse_args(argv)
    if not chromium_path():
        print("chromium not found: run scripts/screenshots.sh (installs Debian's chromium)", file=sys.stderr)
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
