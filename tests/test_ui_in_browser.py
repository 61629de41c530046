"""What a person does in the Airflow UI, done in a real browser (issue 19): headless Chromium (Debian's package,
driven by mpsync.local.browser) signs in through Airflow's own login form, then

- on the Exchange page reads the lists (a hostile article stays text) and clicks Unpark: the object is
  unparked in the exchange database;
- answers a held price's question in Airflow's "Required actions": the real price import holds prices, the
  price_approvals DAG runs under dag.test() against the metadata DB that Airflow's API app (under uvicorn on
  127.0.0.1) serves, its Human-in-the-loop task waits in awaiting_input until the browser's click answers it,
  then the held price is applied and the decision file on the FTP names who decided.
"""

from __future__ import annotations

import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests

from mpsync.local.browser import Chromium, chromium_path
from mpsync.price_approval import APPLY
from tests.imports.price.test_price_import import cfg, fetch_result, prices, result_files  # noqa: F401  (cfg: fixture)
from tests.test_exchange_page import airflow_server, seed_page, token  # noqa: F401  (airflow_server: fixture)
from tests.test_price_approval import held, import_with_holds

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "dags" / "price_approvals.py"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed by scripts/chromium.sh when missing (as ./test does). Skipped only when it
    is absent and cannot be installed (no root, no sudo, no network)."""
    path = chromium_path()
    if path is None:
        r = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, timeout=900)
        path = chromium_path()
        if path is None:
            pytest.skip(f"chromium is not installed and scripts/chromium.sh could not install it "
                        f"(exit {r.returncode}): {r.stderr.strip()[-300:]}")
    return path


@pytest.fixture
def browser(chromium, tmp_path):
    with Chromium(tmp_path / "chromium-profile", binary=chromium) as b:
        yield b
        try:
            b.screenshot(tmp_path / "last-page.png", settle=0)     # what the page showed last, for a failure
        except Exception:                                            # noqa: BLE001  (a dead browser: nothing to show)
            pass


def sign_in(browser: Chromium, server, user: str, next_path: str) -> None:
    browser.sign_in(server.base, user, server.passwords[user], next_path)


def test_exchange_page_unpark_in_the_browser(airflow_server, exchange_dsn, browser):
    seed_page(exchange_dsn)
    with psycopg.connect(exchange_dsn, autocommit=True) as c:
        c.execute("insert into sync (object_type, object_id, subscriber, object_marker, failed_marker, failures,"
                  " last_error, parked, parked_at) values ('stock_offer', 'A-78', 'site', 'm', 'm', 3,"
                  " 'HTTP 400: bad', true, now())")
    hostile = "<script>alert(1)</script>"
    sign_in(browser, airflow_server, "admin", f"/mpsync/exchange?article={quote(hostile)}")
    browser.wait_for_text("Exchange", "MP_STOCK.xlsx", "A-77", "A-78", hostile)
    # the hostile article searched for and found is shown as text, never run as a script
    assert not browser.evaluate("[...document.scripts].some(s => s.text.includes('alert(1)'))")

    row = ("[...document.querySelectorAll('tr')].find(r => r.innerText.includes('A-77'))")
    assert browser.evaluate(f"!!{row}.querySelector('button')"), "no Unpark button in A-77's row"
    browser.evaluate(f"{row}.querySelector('button').click()")
    browser.wait_for_text("Unparked 1 object")
    assert "A-77" not in browser.text() and "A-78" in browser.text()
    with psycopg.connect(exchange_dsn) as c:
        got = dict(c.execute("select object_id, parked from sync where object_id in ('A-77', 'A-78')").fetchall())
    assert got == {"A-77": False, "A-78": True}


def test_a_viewer_sees_the_parked_object_but_no_unpark_button(airflow_server, exchange_dsn, browser):
    seed_page(exchange_dsn)
    with psycopg.connect(exchange_dsn, autocommit=True) as c:     # a Yandex account whose cabinet has no URL yet
        c.execute("insert into sync (object_type, object_id, subscriber, sync_updated, synced_at)"
                  " values ('order_checkpoint', 'yandex:shop', 'order_sync', now()::text, now())")
        c.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, api_calls, notified)"
                  " values ('yandex', 'shop', 'live', 'modified', 12, 2, 0)")
    sign_in(browser, airflow_server, "viewer", "/mpsync/exchange")
    browser.wait_for_text("A-77")
    assert not browser.evaluate("[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Unpark')")
    cell = browser.evaluate("document.querySelector('[data-notifications]').innerText")
    assert cell.startswith("none in the last day") and "notification URL" in cell, cell


# --- a held price, decided in Airflow's Required actions -----------------------------------------------

def ask_state(server, admin: str) -> tuple[str | None, str | None]:
    """(run id, state) of price_approvals' ask task, as the REST API reports it."""
    runs = requests.get(f"{server.base}/api/v2/dags/price_approvals/dagRuns", timeout=30,
                        headers={"Authorization": f"Bearer {admin}"}).json().get("dag_runs", [])
    for run in runs:
        r = requests.get(f"{server.base}/api/v2/dags/price_approvals/dagRuns/{quote(run['dag_run_id'], safe='')}"
                         "/taskInstances/ask", headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        if r.status_code == 200:
            return run["dag_run_id"], r.json()["state"]
    return None, None


def give_up(server, admin: str, run_id: str | None) -> None:
    """Fail the run through the REST API, so that dag.test() returns after the browser failed."""
    if run_id:
        requests.patch(f"{server.base}/api/v2/dags/price_approvals/dagRuns/{quote(run_id, safe='')}",
                       json={"state": "failed"}, headers={"Authorization": f"Bearer {admin}"}, timeout=30)


def test_a_held_price_is_approved_in_the_browser(airflow_server, exchange_dsn, ftp_params, cfg, work_dir, tmp_path,
                                                 browser):
    from airflow.dag_processing.dagbag import DagBag

    import_with_holds(exchange_dsn, ftp_params, cfg, tmp_path)      # P-4 (below the floor) and P-5 (-90%) held
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    admin = token(airflow_server, "admin")
    report: dict = {}

    def answer_in_browser():
        run_id = None
        try:
            deadline, state = time.monotonic() + 60, None
            while time.monotonic() < deadline and state != "awaiting_input":
                run_id, state = ask_state(airflow_server, admin)
                time.sleep(0.5)
            assert state == "awaiting_input", f"the ask task never waited for a person: {run_id} {state}"
            report["before"] = prices(exchange_dsn)[("P-5", "default")][0]      # nothing applied unasked
            sign_in(browser, airflow_server, "admin", "/required_actions")
            report["body"] = browser.answer_required_action(
                airflow_server.base, "Held prices in MP_PRICE_1.xlsx: apply them or keep the current ones?", APPLY,
                {"articles": "P-5"})                                       # only the -90% one, on purpose
            report["answered"] = True
        except BaseException as e:      # noqa: BLE001  (the test reports it; dag.test() must not wait forever)
            report["error"] = e
            give_up(airflow_server, admin, run_id)

    # dag.test() in this (main) thread: the task runner installs signal handlers; the browser works beside it
    answerer = threading.Thread(target=answer_in_browser, name="operator-in-browser", daemon=True)
    answerer.start()
    run = bag.dags["price_approvals"].test()
    answerer.join(timeout=120)
    assert "error" not in report, report["error"]
    # the body: each held article, its current and held price, and the rule that held it (as recorded)
    with psycopg.connect(exchange_dsn) as conn:
        rules = dict(conn.execute("select p.article, trim(h.reason) from price_hold h join product p"
                                  " using (product_id)").fetchall())
    assert "-90%" in rules["P-5"] and "0.50" in rules["P-4"], rules
    assert ["P-5", "default", "1000.00", "100.00", rules["P-5"]] in report["body"], report["body"]
    assert ["P-4", "default", "400.00", "0.50", rules["P-4"]] in report["body"], report["body"]
    assert report.get("answered") and str(run.state) == "success", (report, run.state)

    assert report["before"] == Decimal("1000")
    # applied only where chosen: P-5 takes the held price, P-4 keeps the current one; both say who decided
    assert prices(exchange_dsn)[("P-5", "default")][0] == Decimal("100")
    assert prices(exchange_dsn)[("P-4", "default")][0] == Decimal("400")
    assert held(exchange_dsn) == [("P-4", Decimal("0.50"), Decimal("400.00"), "kept"),
                                  ("P-5", Decimal("100.00"), Decimal("1000.00"), "applied")]
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select distinct decided_by from price_hold").fetchall() == [("admin",)]
    # the staff's decision file on the FTP, beside the import's result
    decisions = [n for n in result_files(ftp_params) if ".decision-" in n]
    assert len(decisions) == 1, result_files(ftp_params)
    sheet = fetch_result(ftp_params, tmp_path, decisions[0])
    assert sheet["summary"]["Кто решил"] == "admin"
    assert [(r[0], r[-1]) for r in sheet["rows"]] == [("P-5", "применена"), ("P-4", "оставлена текущая")]
