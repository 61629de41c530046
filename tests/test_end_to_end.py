"""End to end: the DAGs as deployed, on the real Airflow 3 services (scheduler, dag-processor, api-server,
triggerer from `airflow standalone`, LocalExecutor), not `dag.test()`.

The run command's LocalSystem starts everything on free ports on 127.0.0.1 in a temporary folder: the embedded
PostgreSQL, the FTP seeded with the demo 1C catalog (stock and price follow once the catalog is imported), the
feeds server and the marketplace simulators (seeded here with orders). DAGs start unpaused, so the sensors
find the drops by themselves; then the test triggers through the REST API what operators trigger by hand
(a price check with the trigger form's file + dry run, the feeds, the order sync, the push, the freshness
watcher), waits for every run to succeed, and checks the exchange database, the feeds folder and the result
files on the FTP. Finally every process it started is stopped and its ports are free again.

Speed: a test config ($MPSYNC_CONFIG) makes the drop-folder sensors poke every 10 s with no upload-stability
wait, gives up on an empty folder after 60 s (a scheduled run sensing at a cron boundary must not hold the
hand-triggered ones back for long), and syncs one day of order history instead of 90.
"""

from __future__ import annotations

import dataclasses
import ftplib
import io
import shutil
import tempfile
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import psycopg
import pytest
import requests
import yaml
from lxml import etree

from mpsync import PROJECT_ROOT
from mpsync.local import demo
from mpsync.local.processes import port_open
from mpsync.local.system import LocalSystem, Ports
from mpsync.price_approval import APPLY, KEEP
from mpsync.results import read_result_xlsx
from mpsync.settings import load_settings

pytestmark = pytest.mark.slow

ORDER_SIMULATORS = ("ozon", "yandex", "megamarket", "woocommerce")     # modules of mpsync.simulators serving orders
MARKETPLACE_OF = {"woocommerce": "site"}                               # the website's orders: marketplace `site`
ORDERS_PER_MARKETPLACE = 5
CHECK_FILE = "CHECK_prices.xlsx"                         # never picked by the sensor (pattern MP_PRICE*)
FINISHED = {"success", "failed"}


# ---- the system ----------------------------------------------------------------------------------------

def _test_config(folder: Path) -> Path:
    cfg = yaml.safe_load((PROJECT_ROOT / "include" / "config" / "mpsync.yaml").read_text(encoding="utf-8"))
    # Not below ~10 s: a reschedule-mode sensor re-queued before the scheduler has handled its previous poke's
    # executor event is taken for a task that died (Airflow marks it up_for_retry, 30 s lost, more each time).
    cfg["onec"].update(poke_seconds=10, stable_seconds=0, timeout_seconds=60)
    cfg["orders"]["initial_days"] = 1
    # an order created during the test is read seconds later, not after the shipped 2-minute margin
    cfg["orders"]["margin_minutes"] = 0.05
    # One 1C warehouse sells on every channel: a sale anywhere must reduce what every other channel holds.
    cfg["warehouses"] = {"scheme": "common", "stock_columns": ["main"],
                         "list": [{"code": "main", "name": "Общий", "marketplaces": ["yandex", "ozon", "megamarket"]}]}
    subs = cfg["sync_push"]["subscribers"]
    for name in ("ozon_stock", "yandex_stock", "megamarket_stock"):
        subs[name]["enabled"] = True
    subs["ozon_stock"]["warehouse_ids"] = {"normal": 111, "kgt": 222}
    path = folder / "mpsync-e2e.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _seed_orders(system: LocalSystem, sold: tuple[str, int]) -> dict[str, set[str]]:
    """Orders created over the last three hours (older than the sync's margin) in each order simulator; the
    last Ozon order sells `sold` = (a demo article, units), which then reserves stock on the Ozon warehouse."""
    expected = {}
    for sim in system.started_simulators:
        module = sim.name.split(".", 1)[0]
        if module not in ORDER_SIMULATORS:
            continue
        server = sim.handle
        with server.lock:
            now = server.clock.now()
            for k in range(ORDERS_PER_MARKETPLACE):
                order = server.store.create(at=round(now - 3 * 3600 + k * 1800, 3))
                # goods the demo catalog does not have (SKU-...): cancelled, so no open order is of unknown
                # goods (a freshness finding) and only the sale below reserves
                order.status = "CANCELLED"
            if module == "ozon":
                order.items = [{"offerId": sold[0], "count": sold[1], "price": 1000}]
                order.status = "NEW"
            expected[MARKETPLACE_OF.get(module, module)] = set(server.truth())
    assert set(expected) == {MARKETPLACE_OF.get(m, m) for m in ORDER_SIMULATORS}, f"order simulators: {list(expected)}"
    return expected


class Airflow:
    """The REST API calls the test needs, with failures explained (task states and log tails)."""

    def __init__(self, system: LocalSystem):
        self.system = system
        self.token = system.api_token()

    def get(self, path: str) -> dict:
        r = self.system.api("GET", path, self.token)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        r = self.system.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", self.token,
                            json={"logical_date": None, "conf": conf or {}})
        assert r.status_code == 200, f"trigger {dag_id}: {r.status_code} {r.text[:500]}"
        return r.json()["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=500")[
            "task_instances"]

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        states = [ti["state"] for ti in self.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
        return states[0] if states else None

    def explain(self, dag_id: str, run_id: str) -> str:
        """Which tasks did not succeed, with the tail of their latest log."""
        lines = [f"{dag_id} run {run_id}:"]
        try:
            tis = self.task_instances(dag_id, run_id)
        except AssertionError as exc:
            return f"{lines[0]} task instances not readable: {exc}"
        for ti in sorted(tis, key=lambda t: (t["task_id"], t["map_index"])):
            label = ti["task_id"] + (f"[{ti.get('rendered_map_index') or ti['map_index']}]"
                                     if ti["map_index"] >= 0 else "")
            lines.append(f"  {label}: {ti['state']} (try {ti['try_number']})")
            if ti["state"] not in ("success", "skipped", None, "scheduled", "queued"):
                lines.append(_indent(self.log_tail(dag_id, run_id, ti["task_id"], ti["map_index"])))
                lines.append(_indent(self.services_said(ti.get("id"))))
        return "\n".join(lines)

    def log_tail(self, dag_id: str, run_id: str, task_id: str, map_index: int, chars: int = 2500) -> str:
        folder = self.system.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        logs = sorted(folder.glob("attempt=*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return f"(no log under {folder})"
        return f"{logs[-1]}:\n" + logs[-1].read_text(errors="replace")[-chars:]

    def services_said(self, ti_id: str | None, most: int = 12) -> str:
        """What the scheduler, API server and supervisors logged about one task instance (a task that returned
        and still failed was failed by them: a timed-out state update, a heartbeat)."""
        path = self.system.airflow_home / "standalone.log"
        if not ti_id or not path.exists():
            return "(no services log lines)"
        said = [ln for ln in path.read_text(errors="replace").splitlines() if ti_id in ln]
        return "services about this task instance:\n" + "\n".join(ln[:600] for ln in said[-most:])

    def wait_success(self, dag_id: str, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.run(dag_id, run_id)["state"]
            if state == "success":
                return self.run(dag_id, run_id)
            if state == "failed":
                pytest.fail(f"{dag_id} run {run_id} FAILED\n{self.explain(dag_id, run_id)}")
            time.sleep(1)
        # max_active_runs=1: another run of the DAG may have held this one back; show it too.
        others = [self.explain(dag_id, r["dag_run_id"]) for r in self.runs(dag_id)
                  if r["dag_run_id"] != run_id and r["state"] not in FINISHED]
        pytest.fail(f"{dag_id} run {run_id} not finished after {timeout:.0f}s (state {state})\n"
                    f"{self.explain(dag_id, run_id)}\n"
                    + "".join(f"--- other active run:\n{o}\n" for o in others)
                    + f"--- standalone.log tail:\n{self.system.airflow_log_tail(1500)}")

    def wait_for_import(self, dag_id: str, final_task: str, timeout: float, max_manual: int = 2) -> dict:
        """A run of an import DAG whose final task SUCCEEDED (a run whose sensor found nothing is skipped).

        The scheduled runs' sensors find the demo drops; if every run has ended without importing (a sensor
        gave up on a slow machine), a run is triggered by hand, whose sensor then finds the file."""
        deadline = time.monotonic() + timeout
        manual = 0
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            for run in runs:
                if run["state"] == "failed":
                    pytest.fail(f"{dag_id}: run {run['dag_run_id']} FAILED\n{self.explain(dag_id, run['dag_run_id'])}")
            for run in runs:
                if run["state"] == "success" and self.task_state(dag_id, run["dag_run_id"], final_task) == "success":
                    return run
            if runs and all(r["state"] in FINISHED for r in runs) and manual < max_manual:
                manual += 1
                self.trigger(dag_id)
            time.sleep(1)
        pytest.fail(f"{dag_id}: no run with {final_task} succeeded within {timeout:.0f}s\n"
                    + "\n".join(self.explain(dag_id, r["dag_run_id"]) for r in self.runs(dag_id)))

    def wait_for_run_of_type(self, dag_id: str, run_type: str, timeout: float) -> dict:
        """A successful run of this type (e.g. asset_triggered: the imports' `catalog_changed` reached it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id) if r["run_type"] == run_type]
            for run in runs:
                if run["state"] == "failed":
                    pytest.fail(f"{dag_id}: {run_type} run FAILED\n{self.explain(dag_id, run['dag_run_id'])}")
                if run["state"] == "success":
                    return run
            time.sleep(1)
        pytest.fail(f"{dag_id}: no successful {run_type} run within {timeout:.0f}s; runs: "
                    + str([(r['run_type'], r['state']) for r in self.runs(dag_id)]))


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _timed(label: str, timings: dict[str, float], t0: float) -> None:
    timings[label] = round(time.monotonic() - t0, 1)
    print(f"[e2e {timings[label]:6.1f}s] {label}", flush=True)


# ---- FTP -------------------------------------------------------------------------------------------------

def _ftp(system: LocalSystem) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", system.ports.ftp, timeout=30)
    ftp.login("onec", system.secrets()["ftp_password"])
    return ftp


def _upload(system: LocalSystem, local: Path, remote: str) -> None:
    with _ftp(system) as ftp, open(local, "rb") as fh:
        ftp.storbinary(f"STOR {remote}", fh)


def _download_results(system: LocalSystem, into: Path) -> dict[str, Path]:
    into.mkdir(parents=True, exist_ok=True)
    found = {}
    with _ftp(system) as ftp:
        for name, facts in ftp.mlsd("/1c/results", facts=["type"]):
            if facts.get("type") != "file":      # feeds/ holds the feed reports (checked elsewhere)
                continue
            buf = io.BytesIO()
            ftp.retrbinary(f"RETR /1c/results/{name}", buf.write)
            (into / name).write_bytes(buf.getvalue())
            found[name] = into / name
    return found


# ---- checks ------------------------------------------------------------------------------------------------

def _check_database(dsn: str, products: list[demo.DemoProduct], stock_columns: tuple[str, ...],
                    orders: dict[str, set[str]]) -> None:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select article, onec_code, name, brand, ean, size_class, active from product").fetchall()
        assert {r[0]: r[1:] for r in rows} == {
            p.article: (p.onec_code, p.name, p.brand, p.ean, p.size_class, True) for p in products}

        stock = {(a, w): q for a, w, q in conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)")}
        for p in products:
            for column, quantity in zip(stock_columns, p.stock):
                assert stock.get((p.article, column), Decimal(0)) == quantity, (p.article, column)
        assert sum(1 for v in stock.values() if v > 0) == sum(1 for p in products for q in p.stock if q > 0)

        prices = {a: (pr, old) for a, pr, old in conn.execute(
            "select p.article, pr.price, pr.old_price from price pr join product p using (product_id) "
            "where pr.price_list = 'default'")}
        # The dry run of the checked file changed nothing: the demo table's prices stand.
        assert prices == {p.article: (p.price, p.old_price) for p in products}

        got = {}
        for marketplace, account, order_id in conn.execute(
                "select marketplace, account, order_id from marketplace_order"):
            assert account == "main"
            got.setdefault(marketplace, set()).add(order_id)
        assert got == orders

        files = Counter(k for (k,) in conn.execute("select kind from import_file"))
        assert files["catalog"] == 1 and files["stock"] == 1 and files["price"] >= 1, files


def _channel_stock(cfg, p: demo.DemoProduct, channel: str, sold: tuple[str, int]) -> int:
    """What a channel may sell of a demo product: 1C stock of its warehouses less the Ozon order's units
    where that order reserves (the first warehouse serving Ozon)."""
    columns = cfg.stock_columns
    own = cfg.warehouses_for(channel) if channel != "site" else columns
    stock = sum(p.stock[columns.index(w)] for w in own)
    reserved = sold[1] if p.article == sold[0] and cfg.warehouses_for("ozon")[0] in own else 0
    return max(0, stock - reserved)


def _check_feeds(feeds_dir: Path, products: list[demo.DemoProduct], cfg, sold: tuple[str, int]) -> None:
    by_article = {p.article: p for p in products}
    by_yandex_id = {p.onec_code or p.article: p for p in products}
    offers = {}
    for name in ("yandex.xml", "ozon.xml", "ozon_kgt.xml", "megamarket.xml"):
        root = etree.parse(str(feeds_dir / name)).getroot()       # well-formed XML, or this raises
        assert root.tag == "yml_catalog", name
        offers[name] = root.findall("./shop/offers/offer")
    assert len(offers["yandex.xml"]) == len(products)
    assert len(offers["megamarket.xml"]) == len(products)
    for offer in offers["yandex.xml"]:
        p = by_yandex_id[offer.get("id")]        # Yandex knows goods by their 1C code, else the article
        assert Decimal(offer.findtext("price")) == p.price, p.article
        # the Ozon order reserves on the one common warehouse: Yandex offers less too (docs/reservations.md)
        assert int(offer.findtext("count")) == _channel_stock(cfg, p, "yandex", sold), p.article
    for name, size_class in (("ozon.xml", "normal"), ("ozon_kgt.xml", "kgt")):
        assert {o.get("id") for o in offers[name]} == {p.article for p in products if p.size_class == size_class}
        for offer in offers[name]:
            p = by_article[offer.get("id")]
            assert Decimal(offer.findtext("price")) == p.price, (name, p.article)
            want = _channel_stock(cfg, p, "ozon", sold)
            assert sum(int(o.get("instock")) for o in offer.iter("outlet")) == want, (name, p.article)


def _check_site_push(system: LocalSystem, products: list[demo.DemoProduct], sold: tuple[str, int]) -> None:
    """The website (its simulator) holds every product with its total stock less what the Ozon order
    reserved (the site sells from every warehouse); the sync table agrees."""
    site = next(s.handle for s in system.started_simulators if s.name == "push_site.site")
    with site.lock:
        state = {item["sku"]: item for item in site.state.values()}
    assert {a: state[a]["stock_quantity"] for a in state} == {
        p.article: max(0, sum(p.stock) - (sold[1] if p.article == sold[0] else 0)) for p in products}
    with psycopg.connect(system.exchange_dsn) as conn:
        confirmed, parked = conn.execute(
            "select count(*) filter (where sync_updated is not null), count(*) filter (where parked) "
            "from sync where subscriber = 'site'").fetchone()
    assert (confirmed, parked) == (len(products), 0)


def _check_results(files: dict[str, Path], held_article: str, changed: set[str]) -> None:
    kinds = {}
    for name, path in files.items():
        assert name.endswith(".xlsx"), name
        kinds[name.split(".xlsx.", 1)[0]] = result = read_result_xlsx(path)     # openpyxl reads it
        assert result["header"] and result["header"][-1] == "Статус", name
    stems = set(kinds)
    assert {demo.CATALOG_FILE.removesuffix(".xlsx"), demo.PRICE_FILE.removesuffix(".xlsx"),
            CHECK_FILE.removesuffix(".xlsx")} <= stems, sorted(files)
    assert any(s.startswith("Ostatki_MP_") for s in stems), sorted(files)
    assert any(".dry-run-" in n for n in files) and not any(n.startswith(CHECK_FILE + ".result-") for n in files)

    dry = kinds[CHECK_FILE.removesuffix(".xlsx")]
    article_at = dry["header"].index("Артикул")
    status = {row[article_at]: row[-1] for row in dry["rows"]}
    assert {a for a, s in status.items() if s == "будет применено"} == changed, status
    assert status[held_article].startswith("отложено"), status[held_article]
    assert all(s == "без изменений" for a, s in status.items() if a not in changed | {held_article})


# ---- closing the loop (issue 14): an order, 1C's exchange, 1C's next report ---------------------------------

# push simulator -> (channel, (offer id, stock quantity) of an accepted item; (None, None) for a price item)
STOCK_PUSHES: dict[str, tuple[str, Callable[[dict], tuple]]] = {
    "push_site.site": ("site", lambda i: (i.get("sku"), i.get("stock_quantity"))),
    "push_ozon.ozon": ("ozon", lambda i: (i.get("offer_id"), i.get("stock"))),
    "push_yandex.yandex": ("yandex", lambda i: (i.get("sku"), (i.get("items") or [{}])[0].get("count"))),
    "push_megamarket.megamarket": ("megamarket", lambda i: (i.get("offerId"), i.get("quantity"))),
}
NS = {"c": "urn:1C.ru:commerceml_2"}


def _received(system: LocalSystem) -> dict[str, list[tuple[str, int]]]:
    """Every stock quantity each channel's simulator accepted, in order, as (article, quantity)."""
    with psycopg.connect(system.exchange_dsn) as conn:
        article_of = {(mp, oid): a for mp, oid, a in conn.execute(
            "select oi.marketplace, oi.offer_id, p.article from offer_id oi join product p using (product_id)")}
    out: dict[str, list[tuple[str, int]]] = {}
    for sim in system.started_simulators:
        if sim.name not in STOCK_PUSHES:
            continue
        channel, read = STOCK_PUSHES[sim.name]
        with sim.handle.lock:
            items = [item for _, item in sim.handle.received]
        out[channel] = [(article_of.get((channel, str(o)), str(o)), int(q)) for o, q in map(read, items)
                        if o is not None and q is not None]
    assert set(out) == {c for c, _ in STOCK_PUSHES.values()}, f"push simulators: {sorted(out)}"
    return out


def _held(system: LocalSystem) -> dict[str, dict[str, int]]:
    return {channel: dict(seq) for channel, seq in _received(system).items()}       # the last value wins


def _wait_held(af: Airflow, system: LocalSystem, want: dict[str, int], timeout: float = 360) -> None:
    """Push runs until every channel holds `want` (article -> units) (Ozon takes a pair once per 30 s)."""
    deadline = time.monotonic() + timeout
    while True:
        held = _held(system)
        wrong = {ch: {a: h.get(a) for a, q in want.items() if h.get(a) != q} for ch, h in held.items()}
        wrong = {ch: w for ch, w in wrong.items() if w}
        if not wrong:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"channels do not hold {want} after {timeout:.0f}s: {wrong}")
        af.wait_success("sync_push", af.trigger("sync_push"), timeout=240)


def _wait_stock_file(af: Airflow, dsn: str, name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    af.trigger("onec_stock_import")
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("select status, message from import_file where name = %s", (name,)).fetchone()
        if row and row[0] in ("applied", "unchanged"):
            return
        assert not row or row[0] in ("received", "parsed"), f"{name}: {row}"
        runs = af.runs("onec_stock_import")
        if runs and all(r["state"] in FINISHED for r in runs):
            af.trigger("onec_stock_import")
        time.sleep(2)
    pytest.fail(f"{name} not applied within {timeout:.0f}s")


def _close_the_loop(af: Airflow, system: LocalSystem, own_dir: Path, products: list[demo.DemoProduct],
                    cfg, sold: tuple[str, int]) -> None:
    """An Ozon order made now reduces what every other channel holds and the next push does not undo it on
    Ozon; 1C takes the orders at /onec/exchange of the running API server; 1C's next report, made after
    that and counting the sales, is applied and the reservations end; no channel ever holds a sale twice."""
    from tests.onec_client import OneC

    base = {p.article: p.stock[0] for p in products}                  # the common warehouse's 1C stock
    want = {sold[0]: max(0, base[sold[0]] - sold[1])}
    _wait_held(af, system, want)                                       # the seeded order, on every channel

    # 1. an order made now on the Ozon simulator
    item = next(p for p in products if p.article != sold[0] and p.stock[0] >= 3)
    ozon = next(s.handle for s in system.started_simulators if s.name == "ozon.ozon")
    with ozon.lock:
        order = ozon.store.create()
        order.items = [{"offerId": item.article, "count": 1, "price": 500}]
    posting = f"{order.order_id}-0001-1"
    time.sleep(5)                                                      # past the order sync's margin (3 s)
    af.wait_success("order_sync", af.trigger("order_sync"), timeout=240)
    want[item.article] = base[item.article] - 1
    _wait_held(af, system, want)                       # the website, Yandex, Megamarket -- and Ozon itself
    mark = {ch: len(seq) for ch, seq in _received(system).items()}
    af.wait_success("sync_push", af.trigger("sync_push"), timeout=240)
    assert _held(system)["ozon"][item.article] == base[item.article] - 1     # not restored by the next push

    # 1b. Ozon's push of that posting reaches the running API server's /orders receiver (a sizing hint)
    push = {"message_type": "TYPE_NEW_POSTING", "posting_number": posting, "seller_id": 1, "warehouse_id": 1,
            "in_process_at": "2026-03-01T12:00:00Z", "products": []}
    answer = requests.post(f"{system.airflow_url}/orders/ozon/main/notification", json=push, timeout=30)
    assert (answer.status_code, answer.json()) == (200, {"result": True}), answer.text
    with psycopg.connect(system.exchange_dsn) as conn:
        assert conn.execute("select count(*) from order_webhook_inbox where marketplace = 'ozon'"
                            " and body->>'posting_number' = %s", (posting,)).fetchone()[0] == 1

    # 2. 1C takes the orders through the exchange on the running API server
    one_c = OneC(system.onec_exchange_url, "onec", system.secrets()["onec_exchange_password"])
    taken = {d.findtext("c:Номер", namespaces=NS) for d in etree.fromstring(one_c.exchange()).findall("c:Документ", NS)}
    assert {f"ozon:main:{posting}"} <= taken and any(n.startswith("site:main:") for n in taken), taken
    with psycopg.connect(system.exchange_dsn) as conn:
        acked = conn.execute("select acked_at from onec_order where marketplace = 'ozon' and order_id = %s",
                             (posting,)).fetchone()
        still = conn.execute("select count(*) from reservation where released_at is null and offer_id = any(%s)",
                             ([sold[0], item.article],)).fetchone()[0]
    assert acked and acked[0] is not None and still == 2      # taken, not yet in a report: still reserved
    assert all(_held(system)[ch][a] == q for ch in mark for a, q in want.items())

    # 3. 1C's next report, made after it took the orders, counts both sales
    time.sleep(2)
    made = datetime.now(cfg.onec_timezone).replace(tzinfo=None, microsecond=0)     # 1C's wall clock
    after = [dataclasses.replace(p, stock=(want.get(p.article, p.stock[0]),)) for p in products]
    name = f"Ostatki_MP_{made:%Y%m%d_%H%M%S}.xlsx"
    _upload(system, demo.write_stock_report(own_dir / name, after, made), f"/1c/stock/{name}")
    _wait_stock_file(af, system.exchange_dsn, name)
    with psycopg.connect(system.exchange_dsn) as conn:
        reasons = [r[0] for r in conn.execute(
            "select release_reason from reservation where offer_id = any(%s)", ([sold[0], item.article],))]
    assert len(reasons) == 2 and all((r or "").startswith("in 1C stock report") for r in reasons), reasons
    _wait_held(af, system, want)

    # At no moment did any channel hold a sale subtracted twice, nor Ozon its own sale restored.
    for channel, seq in _received(system).items():
        later = [q for a, q in seq[mark[channel]:] if a == item.article]
        assert all(q == want[item.article] for q in later), (channel, later)
        for article, least in want.items():
            sent = [q for a, q in seq if a == article]
            # zeros sent before the first stock report (goods from the catalog, stock not known yet) are not
            # a subtraction; from the first figure on, nothing below the single-subtracted one
            figures = sent[next((k for k, q in enumerate(sent) if q > 0), len(sent)):]
            assert all(q >= least for q in figures), (channel, article, sent)


def _approve_a_held_price(af: Airflow, system: LocalSystem, own_dir: Path, products: list[demo.DemoProduct],
                          held: demo.DemoProduct) -> None:
    """A price table whose one price tripled: held by the import, asked about in Airflow (Human-in-the-loop,
    "Required actions"), approved by the operator through the REST API the UI uses, then applied."""
    tripled = held.price * 3
    table = [dataclasses.replace(p, price=tripled, old_price=tripled) if p is held else p for p in products]
    local = demo.write_price_table(own_dir / "held" / demo.PRICE_FILE, table)
    _upload(system, local, f"/1c/price/{demo.PRICE_FILE}")
    asked = af.trigger("onec_price_import")
    af.wait_success("onec_price_import", asked, timeout=240)
    with psycopg.connect(system.exchange_dsn) as conn:
        holds = conn.execute("select p.article, h.price from price_hold h join product p using (product_id)"
                             " where h.decision is null").fetchall()
    assert [(a, float(q)) for a, q in holds] == [(held.article, float(tripled))], holds

    # The import's prices_held asset starts price_approvals; its `ask` task waits for a person.
    deadline, waiting = time.monotonic() + 240, None
    while time.monotonic() < deadline and waiting is None:
        for run in af.runs("price_approvals"):
            # Airflow 3.3 parks a Human-in-the-loop task as awaiting_input (earlier versions: deferred)
            if af.task_state("price_approvals", run["dag_run_id"], "ask") in ("awaiting_input", "deferred"):
                waiting = run["dag_run_id"]
        time.sleep(1)
    assert waiting, f"price_approvals never asked: {[(r['run_type'], r['state']) for r in af.runs('price_approvals')]}"
    path = f"/api/v2/dags/price_approvals/dagRuns/{quote(waiting, safe='')}/taskInstances/ask/-1/hitlDetails"
    detail = af.get(path)
    assert held.article in detail["body"] and detail["options"] == [APPLY, KEEP], detail
    r = system.api("PATCH", path, af.token, json={"chosen_options": [APPLY], "params_input": {"articles": ""}})
    assert r.status_code == 200, r.text
    af.wait_success("price_approvals", waiting, timeout=240)
    with psycopg.connect(system.exchange_dsn) as conn:
        price = conn.execute("select c.price from price c join product p using (product_id) where p.article = %s"
                             " and c.price_list = 'default'", (held.article,)).fetchone()[0]
        decision = conn.execute("select decision, decided_by from price_hold").fetchall()
    assert float(price) == float(tripled) and decision == [("applied", "admin")], (price, decision)
    with _ftp(system) as ftp:
        assert any(".decision-" in n for n in ftp.nlst("/1c/results")), ftp.nlst("/1c/results")


# ---- the test ------------------------------------------------------------------------------------------------

@pytest.fixture
def own_dir():
    """Not tmp_path: pytest sessions running side by side prune each other's numbered tmp folders."""
    path = Path(tempfile.mkdtemp(prefix="mpsync-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_end_to_end_on_real_airflow_services(own_dir, monkeypatch):
    from mpsync.settings import _cached

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    config = _test_config(own_dir)
    monkeypatch.setenv("MPSYNC_CONFIG", str(config))      # the demo drops are seeded for this config's columns
    _cached.cache_clear()
    cfg = load_settings(config)
    stock_columns = cfg.stock_columns
    products = demo.demo_products(warehouses=len(stock_columns))
    ports = Ports.free()
    system = LocalSystem(own_dir / "var", ports=ports, dags_paused_at_creation=False,
                         # a busy 2-core machine answers a task's first API call slowly: wait, do not retry
                         extra_env={"MPSYNC_CONFIG": str(config), "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30"},
                         log=lambda line: print(f"[system] {line}", flush=True))
    airflow_pid = None
    try:
        system.start_services()
        # an Ozon order: reserves 2 on the Ozon warehouse (the common one here), of goods 1C has 2 or more of
        sold = (next(p.article for p in products if p.stock[0] >= 2), 2)
        orders = _seed_orders(system, sold)  # before Airflow: the first scheduled order sync sees them
        system.start_airflow(wait_timeout=420)
        airflow_pid = system._airflow_proc.pid
        _timed("airflow healthy", timings, t0)
        af = Airflow(system)

        # 1. The sensors find the demo drops: catalog first, then stock and price (dropped after the catalog).
        af.wait_for_import("onec_catalog_import", "import_catalog", timeout=300)
        _timed("catalog imported", timings, t0)
        af.wait_for_import("onec_stock_import", "finish_stock_import", timeout=240)
        af.wait_for_import("onec_price_import", "finish_price_import", timeout=240)
        _timed("stock and price imported", timings, t0)
        # The imports' catalog_changed asset event starts the feeds and the push by itself.
        af.wait_for_run_of_type("marketplace_feeds", "asset_triggered", timeout=240)
        af.wait_for_run_of_type("sync_push", "asset_triggered", timeout=240)
        _timed("asset-triggered feeds and push succeeded", timings, t0)

        # 2. What operators trigger by hand. A price table to check before applying: uploaded under a name the
        # sensor ignores, run with the form's file + dry run.
        changed = {p.article for p in products[:4]}
        held = products[5]
        checked = [dataclasses.replace(p, price=(p.price * Decimal("1.05")).quantize(Decimal("1")))
                   if p.article in changed else
                   dataclasses.replace(p, price=p.price * 3, old_price=p.price * 3) if p is held else p
                   for p in products]
        local = demo.write_price_table(own_dir / CHECK_FILE, checked)
        _upload(system, local, f"/1c/price/{CHECK_FILE}")
        manual = {
            "onec_price_import": af.trigger("onec_price_import", {"file": CHECK_FILE, "dry_run": True}),
            "marketplace_feeds": af.trigger("marketplace_feeds"),
            "order_sync": af.trigger("order_sync"),
            "sync_push": af.trigger("sync_push"),
        }
        for dag_id, run_id in manual.items():
            af.wait_success(dag_id, run_id, timeout=240)
        _timed("hand-triggered runs succeeded", timings, t0)
        # Once more, now that the order sync has surely stored the orders: what is sold is not offered.
        for dag_id in ("sync_push", "marketplace_feeds"):
            af.wait_success(dag_id, af.trigger(dag_id), timeout=240)
        # Everything has just flowed, so the watcher finds stock, feeds and order checkpoints fresh.
        af.wait_success("exchange_freshness", af.trigger("exchange_freshness"), timeout=180)
        _timed("freshness watcher succeeded", timings, t0)

        # The stock import ran through its mapped fragments, named by the map_index_template.
        run = af.wait_for_import("onec_stock_import", "finish_stock_import", timeout=10)
        fragments = [ti for ti in af.task_instances("onec_stock_import", run["dag_run_id"])
                     if ti["task_id"] == "apply_stock_fragment"]
        assert fragments and all(ti["state"] == "success" and "Ostatki_MP_" in (ti["rendered_map_index"] or "")
                                 for ti in fragments), fragments

        # 3. What it all produced.
        _check_database(system.exchange_dsn, products, stock_columns, orders)
        _check_feeds(system.feeds_dir, products, cfg, sold)
        _check_results(_download_results(system, own_dir / "results"), held.article, changed)
        _check_site_push(system, products, sold)
        with _ftp(system) as ftp:
            assert ftp.nlst("/1c/stock") == [] and ftp.nlst("/1c/catalog") == []
            assert [n.rsplit("/", 1)[-1] for n in ftp.nlst("/1c/price")] == [CHECK_FILE]   # dry run: left there

        # Nothing the run started listens beyond this machine (Airflow's parts, PostgreSQL, FTP, feeds,
        # simulators): every listening socket is on 127.0.0.1 (issue 17).
        listening = system.listening()
        assert {ports.airflow, ports.postgres, ports.ftp, ports.feeds} <= {port for _, port, _ in listening}
        exposed = [entry for entry in listening if entry[0] != "127.0.0.1"]
        assert not exposed, f"listening beyond 127.0.0.1: {exposed}"

        # 4. The loop closed: an order now, 1C's exchange, 1C's next report (issue 14).
        _close_the_loop(af, system, own_dir, products, cfg, sold)
        _timed("order -> every channel -> 1C -> next report: numbers right throughout", timings, t0)

        # 5. A held price goes to a person, who approves it in Airflow (issue 19).
        _approve_a_held_price(af, system, own_dir, products, held)
        _timed("held price asked, approved, applied", timings, t0)
    finally:
        system.stop()
        _timed("stopped", timings, t0)
        log = system.airflow_home / "standalone.log"
        retries = log.read_text(errors="replace").count("Marking task as UP_FOR_RETRY") if log.exists() else 0
        print(f"[e2e] timings: {timings}; LocalSystem: {system.timings}; task retries: {retries}", flush=True)

    busy = [p for p in dataclasses.astuple(ports) if port_open(p)]
    assert not busy, f"ports still open after stop: {busy} of {ports}"
    if airflow_pid is not None:
        assert not _processes_with_home(system.airflow_home), "Airflow processes left running"


def _processes_with_home(home: Path) -> list[int]:
    """Live processes whose environment carries this AIRFLOW_HOME (all of ours, and only ours)."""
    marker = f"AIRFLOW_HOME={home}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
