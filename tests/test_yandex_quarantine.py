"""Yandex's price quarantine after the price push (issue 20), on the real PostgreSQL and the Yandex simulator
over HTTP on 127.0.0.1: what mpsync confirms, what it leaves for a person, and the freshness finding."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import psycopg
import pytest
import requests

from mpsync import price_approval
from mpsync.freshness_checks import check_quarantine
from mpsync.outbox.clients import ApiParams
from mpsync.outbox.quarantine import QuarantineSettings, quarantine_settings, settle
from mpsync.settings import ConfigError, settings
from mpsync.simulators.push_yandex import start_yandex_simulator
from tests.test_sync_push import make_cfg, run

BUSINESS = 2002


@pytest.fixture
def yandex():
    sim = start_yandex_simulator()
    yield sim
    sim.stop()


def seed(dsn: str, n: int = 3) -> None:
    """n products at 100 from a price import (A0001 is known to Yandex by its 1C code, as in the feed)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("insert into product (article, name, onec_code) select 'A' || lpad(i::text, 4, '0'),"
                     " 'Item ' || i, case when i = 1 then '00000000001' end from generate_series(1, %s) i", (n,))
        fid = _import_file(conn, "PRICE_0.xlsx")
        conn.execute("insert into price (product_id, price, import_file_id) select product_id, 100, %s from product",
                     (fid,))


def _import_file(conn, name: str) -> int:
    return conn.execute("insert into import_file (kind, ftp_path, name, size, status) values"
                        " ('price', '/1c/price/' || %s, %s, 1, 'applied') returning import_file_id",
                        (name, name)).fetchone()[0]


def import_prices(dsn: str, prices: dict[str, float], name: str = "PRICE_1.xlsx") -> int:
    """A price file applied by the import (the guards passed these): price rows carry its import_file_id."""
    with psycopg.connect(dsn) as conn:
        fid = _import_file(conn, name)
        for article, price in prices.items():
            conn.execute("update price set price = %s, updated_at = now(), import_file_id = %s from product p"
                         " where p.product_id = price.product_id and p.article = %s", (price, fid, article))
    return fid


def hold_prices(dsn: str, prices: dict[str, float], name: str = "PRICE_2.xlsx") -> int:
    """A price file whose prices the guards held (what price_approval.record_holds leaves): not applied."""
    with psycopg.connect(dsn) as conn:
        fid = _import_file(conn, name)
        for article, price in prices.items():
            conn.execute("insert into price_hold (import_file_id, product_id, price_list, price, current_price, reason)"
                         " select %s, p.product_id, 'default', %s, pr.price, ' +200%% vs the current price'"
                         " from product p join price pr on pr.product_id = p.product_id and pr.price_list = 'default'"
                         " where p.article = %s", (fid, price, article))
    return fid


def push(dsn, cfg, sim):
    counts = run(dsn, cfg, "yandex_price", sim)
    assert counts.request_failures == 0 or counts.acknowledged
    return counts


def quarantine(dsn, cfg, sim, confirm: str = "auto"):
    api = ApiParams(sim.url, "client", "secret", {"campaign_id": 1001, "business_id": BUSINESS})
    return settle(dsn, cfg.subscriber("yandex_price"), api, cfg, settings(),
                  settings=QuarantineSettings(confirm), sleep=lambda s: None)


def stored(dsn) -> dict[str, tuple]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select offer_id, article, quarantine_price, price_sent, decision, reason, confirmed_price,"
                            " confirm_failures, last_error, gone_at is not null from yandex_price_quarantine").fetchall()
    return {r[0]: r[1:] for r in rows}


def findings(dsn):
    with psycopg.connect(dsn) as conn:
        return check_quarantine(conn)


def test_a_price_the_guards_let_through_is_confirmed_one_applied_on_timeout_is_left(exchange_dsn, yandex):
    seed(exchange_dsn)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)                      # Yandex shows 100 for all: nothing quarantined
    assert yandex.quarantine == {}
    import_prices(exchange_dsn, {"A0001": 300})          # a sharp change the guards let through (within the share)
    fid = hold_prices(exchange_dsn, {"A0002": 300})
    price_approval.decide(exchange_dsn, fid, True, None, "timeout")   # nobody answered; on_timeout: apply
    push(exchange_dsn, cfg, yandex)
    assert set(yandex.quarantine) == {"00000000001", "A0002"}

    c = quarantine(exchange_dsn, cfg, yandex)
    assert (c.listed, c.confirmed, c.left, c.complete) == (2, 1, 1, True)
    assert yandex.confirmed == ["00000000001"]
    assert set(yandex.quarantine) == {"A0002"} and yandex.valid_price["00000000001"] == 300
    rows = stored(exchange_dsn)
    assert rows["00000000001"][:6] == ("A0001", Decimal("300.00"), Decimal("300.00"), "confirm",
                                       "passed the price guards", Decimal("300.00"))
    assert rows["A0002"][3:6] == ("leave", "a held price applied when the question timed out, not approved by a "
                                  "person", None)
    [f] = findings(exchange_dsn)
    assert f.key == f"quarantine:{BUSINESS}:A0002"
    assert "A0002" in f.message and "price sent 300.00" in f.message
    assert "PRICE_CHANGE 300 (last valid 100)" in f.message and "timed out" in f.message

    # confirm: never reads and reports, and confirms nothing
    import_prices(exchange_dsn, {"A0003": 400}, "PRICE_3.xlsx")
    push(exchange_dsn, cfg, yandex)
    yandex.confirmed.clear()
    c = quarantine(exchange_dsn, cfg, yandex, confirm="never")
    assert yandex.confirmed == [] and c.left == 2 and "A0003" in yandex.quarantine
    assert {f.key for f in findings(exchange_dsn)} == {f"quarantine:{BUSINESS}:A0002", f"quarantine:{BUSINESS}:A0003"}


def test_a_held_price_a_person_approved_is_confirmed(exchange_dsn, yandex):
    seed(exchange_dsn)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)
    fid = hold_prices(exchange_dsn, {"A0002": 300, "A0003": 30})
    assert price_approval.decide(exchange_dsn, fid, True, ["A0002", "A0003"], "operator.ivanova")["applied"] == 2
    push(exchange_dsn, cfg, yandex)
    assert set(yandex.quarantine) == {"A0002", "A0003"}

    c = quarantine(exchange_dsn, cfg, yandex)
    assert sorted(yandex.confirmed) == ["A0002", "A0003"] and c.confirmed == 2 and yandex.quarantine == {}
    assert stored(exchange_dsn)["A0002"][4] == "a held price approved by operator.ivanova"
    assert findings(exchange_dsn) == []


def test_a_price_other_than_the_one_last_sent_is_never_confirmed(exchange_dsn, yandex):
    seed(exchange_dsn)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)
    import_prices(exchange_dsn, {"A0002": 300})
    push(exchange_dsn, cfg, yandex)
    # a newer price (within the guards) arrives before the quarantine is read: Yandex still holds 300
    import_prices(exchange_dsn, {"A0002": 310}, "PRICE_2.xlsx")
    quarantine(exchange_dsn, cfg, yandex)
    assert yandex.confirmed == [] and yandex.quarantine["A0002"]["currentPrice"]["value"] == 300
    assert stored(exchange_dsn)["A0002"][3:5] == ("leave", "its price changed since mpsync sent it (the newer one "
                                                  "waits to go out)")
    # it goes out; Yandex lists a price mpsync did not send (a stale list, the cabinet): not that one either
    push(exchange_dsn, cfg, yandex)
    yandex.quarantine_offer("A0002", 300, last_valid=100)
    quarantine(exchange_dsn, cfg, yandex)
    assert yandex.confirmed == []
    assert stored(exchange_dsn)["A0002"][2:5] == (Decimal("310.00"), "leave", "Yandex holds 300.00, but mpsync last "
                                                  "sent 310.00")
    # a price set in the cabinet that mpsync has in its table but never sent: not mpsync's to confirm
    import_prices(exchange_dsn, {"A0003": 500}, "PRICE_3.xlsx")
    yandex.quarantine_offer("A0003", 500, last_valid=100)
    # Yandex reprices A0002 between the read and the confirm: the re-read just before the call catches it
    yandex.reprice("A0002", 310)
    yandex.after_page = lambda n: n == 1 and yandex.quarantine_offer("A0002", 999, last_valid=100)
    c = quarantine(exchange_dsn, cfg, yandex)
    assert yandex.confirmed == [] and c.changed_meanwhile == 1
    assert stored(exchange_dsn)["A0003"][2:5] == (None, "leave", "its price changed since mpsync sent it (the newer "
                                                  "one waits to go out)")
    assert yandex.quarantine["A0002"]["currentPrice"]["value"] == 999
    yandex.after_page = None
    yandex.reprice("A0002", 310)                          # back to what mpsync sent: now it is confirmed
    quarantine(exchange_dsn, cfg, yandex)
    assert yandex.confirmed == ["A0002"] and stored(exchange_dsn)["A0002"][5] == Decimal("310.00")


def test_a_promotion_price_and_a_price_no_import_checked_are_left(exchange_dsn, yandex):
    seed(exchange_dsn)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)
    import_prices(exchange_dsn, {"A0003": 300})
    with psycopg.connect(exchange_dsn) as conn:          # written by hand in SQL: no guard saw it
        conn.execute("update price set price = 300, updated_at = now(), import_file_id = null from product p"
                     " where p.product_id = price.product_id and p.article = 'A0002'")
    push(exchange_dsn, cfg, yandex)
    # Yandex's verdict on A0003 is about the price after its promotions (the same number, by chance)
    yandex.quarantine_offer("A0003", 300, verdict="LOW_PRICE_PROMO", min_price=350)
    c = quarantine(exchange_dsn, cfg, yandex)
    assert yandex.confirmed == [] and c.left == 2
    rows = stored(exchange_dsn)
    assert rows["A0002"][4] == "the price did not come through a price import (no guard checked it)"
    assert rows["A0003"][4] == "the quarantined price is Yandex's promotion result, not a price mpsync sent"
    assert any("LOW_PRICE_PROMO 300 (market minimum 350)" in f.message for f in findings(exchange_dsn))


def test_a_failed_confirm_confirms_nothing_and_is_retried_next_run(exchange_dsn, yandex):
    seed(exchange_dsn)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)
    import_prices(exchange_dsn, {"A0002": 300})
    push(exchange_dsn, cfg, yandex)

    yandex.confirm_faults.append("error_200")           # 200, but status ERROR: not confirmed
    c = quarantine(exchange_dsn, cfg, yandex)
    assert (c.confirmed, c.confirm_failed) == (0, 1) and "A0002" in yandex.quarantine
    row = stored(exchange_dsn)["A0002"]
    assert row[5:8] == (None, 1, row[7]) and "INTERNAL_ERROR" in row[7]
    [f] = findings(exchange_dsn)
    assert "its confirm call failed" in f.message and "INTERNAL_ERROR" in f.message

    yandex.confirm_faults.extend([500, 500, 500])       # Yandex down for the whole run (3 attempts)
    c = quarantine(exchange_dsn, cfg, yandex)
    assert c.confirmed == 0 and stored(exchange_dsn)["A0002"][5:7] == (None, 2)
    yandex.confirm_faults.append(423)
    quarantine(exchange_dsn, cfg, yandex)
    assert stored(exchange_dsn)["A0002"][5:7] == (None, 3) and yandex.confirmed == []

    yandex.queue_fault(status=420, retry_after=0)       # the list rate limited once, then the confirm: retried
    yandex.confirm_faults.append(420)
    c = quarantine(exchange_dsn, cfg, yandex)
    assert c.confirmed == 1 and yandex.confirmed == ["A0002"] and findings(exchange_dsn) == []
    assert stored(exchange_dsn)["A0002"][5:8] == (Decimal("300.00"), 3, None)
    assert [r["status"] for r in yandex.requests[-5:]] == [420, 200, 200, 420, 200]

    # the next read no longer lists it: gone. A read that fails is a finding of its own.
    quarantine(exchange_dsn, cfg, yandex)
    assert stored(exchange_dsn)["A0002"][8] is True
    yandex.queue_fault(status=503, times=3)
    c = quarantine(exchange_dsn, cfg, yandex)
    assert c.read_error and "503" in c.read_error
    [f] = findings(exchange_dsn)
    assert f.key == f"quarantine:read:{BUSINESS}" and "could not be read" in f.message


def test_unstable_paging_loses_no_quarantined_offer(exchange_dsn, yandex):
    n = 450
    seed(exchange_dsn, n)
    cfg = make_cfg()
    push(exchange_dsn, cfg, yandex)
    import_prices(exchange_dsn, {f"A{i:04d}": 300 for i in range(1, n + 1)})
    push(exchange_dsn, cfg, yandex)
    assert len(yandex.quarantine) == n
    listed = sorted(yandex.quarantine)
    people = listed[:60]                  # confirmed by a person in the cabinet while mpsync pages

    def meanwhile(page):
        if page == 1:
            for offer in people:
                yandex.release(offer)     # the rest of the list moves up: the next page skips 60 offers
        if page == 2:
            yandex.quarantine_offer("0-FOREIGN", 77, last_valid=10)   # sorts first: the rest moves down

    yandex.short_pages = True             # pages shorter than the limit, with more to come
    yandex.trailing_empty_page = True     # and a token that leads to an empty page
    yandex.after_page = meanwhile
    c = quarantine(exchange_dsn, cfg, yandex)
    assert c.passes >= 2 and c.complete
    assert set(yandex.quarantine) == {"0-FOREIGN"}                # every offer of ours confirmed
    assert sorted(yandex.confirmed) == sorted(set(listed) - set(people))
    rows = stored(exchange_dsn)
    assert rows["0-FOREIGN"][3:5] == ("leave", "offer id not known to mpsync (not an offer it pushes)")
    assert [f.key for f in findings(exchange_dsn)] == [f"quarantine:{BUSINESS}:0-FOREIGN"]
    # the requests stayed within the spec: pages of at most 200, confirms of at most 200 ids
    assert all("limit=200" in r["path"] for r in yandex.requests if "price-quarantine?" in r["path"])
    assert max(len(r["keys"]) for r in yandex.requests if r["path"].endswith("/confirm")) <= 200


def test_the_simulator_holds_to_the_spec_and_the_config_names_its_key(yandex):
    url = f"{yandex.url}/v2/businesses/{BUSINESS}/price-quarantine"
    h = {"Api-Key": "k"}
    assert requests.post(url + "?limit=201", json={}, headers=h).status_code == 400
    assert requests.post(url, headers=h).status_code == 400                        # the body is required
    assert requests.post(url, json={"offerIds": ["a"], "tags": ["x"]}, headers=h).status_code == 400
    assert requests.post(url + "?pageToken=bogus", json={}, headers=h).status_code == 400
    assert requests.post(url, json={}, headers=h).json() == {"status": "OK", "result": {"offers": []}}
    assert requests.post(url + "/confirm", json={"offerIds": []}, headers=h).status_code == 400
    assert requests.post(url + "/confirm", json={"offerIds": ["a"]}).status_code == 401
    base = settings()
    bad = dataclasses.replace(base, raw={**base.raw, "sync_push": {"yandex": {"quarantine": {"confirm": "yes"}}}})
    with pytest.raises(ConfigError, match=r"sync_push.yandex.quarantine.confirm"):
        quarantine_settings(bad)
    assert quarantine_settings(base).confirm == "auto"


def test_the_sync_push_dag_reads_the_quarantine_after_the_yandex_price_push(tmp_path, monkeypatch, airflow_db,
                                                                            exchange_dsn, yandex):
    import json
    from datetime import timedelta
    from pathlib import Path

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from mpsync.settings import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["sync_push"]["subscribers"]["site"]["enabled"] = False
    raw["sync_push"]["subscribers"]["yandex_price"]["enabled"] = True
    raw["sync_push"]["subscribers"]["yandex_price"]["calls_per_minute"] = 600   # the real pacing (20) waits 3 s a call
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_YANDEX_MARKET_API", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": yandex.port, "password": "key",
         "extra": {"campaign_id": 1001, "business_id": BUSINESS}}))
    seed(exchange_dsn)
    import_prices(exchange_dsn, {"A0001": 300})
    yandex.valid_price.update({"00000000001": 100, "A0002": 100, "A0003": 100})    # what Yandex showed before

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags" / "sync_push.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["sync_push"]
    for t in dag.tasks:
        t.retry_delay = timedelta(seconds=0)
    run_ = dag.test()
    assert str(run_.state) == "success", run_.state
    assert yandex.confirmed == ["00000000001"] and yandex.quarantine == {}
    assert stored(exchange_dsn)["00000000001"][5] == Decimal("300.00")

    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        ti = s.query(TaskInstance).filter(TaskInstance.run_id == run_.run_id, TaskInstance.task_id == "push_to_yandex"
                                          ).one()
        out = ti.xcom_pull(task_ids="push_to_yandex", map_indexes=0)
    assert out["acknowledged"] == 3 and out["quarantine"]["confirmed"] == 1 and out["quarantine"]["left"] == 0
