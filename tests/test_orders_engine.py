"""Order sync rules (DOMAIN.md section 4): each test fails when its rule is broken.

Simulators are real HTTP servers on 127.0.0.1 with a virtual clock (reproducible by seed); the database is
the real embedded PostgreSQL. Where a rule is about what a naive strategy loses, the naive strategy runs
in the same test on an identical simulator (same seed) and must lose orders, so the test cannot pass vacuously.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from mpsync.orders import store
from mpsync.orders.engine import Strategy, SyncSettings, sync_account
from mpsync.orders.model import CREATED, UTC, ApiError, Order, OrderSyncError, Window
from mpsync.simulators.harness import FAST_SETTINGS, T0, compare, make_adapter, run_rounds, start_sim


def checkpoint(dsn, key):
    with psycopg.connect(dsn) as conn:
        return store.read_mark(conn, store.CHECKPOINT, key)


def test_backward_paging_of_a_desc_list_loses_nothing_forward_paging_does(exchange_dsn):
    kw = dict(rounds=6, creates=600, modifies=50, hostility={"churn_per_call": 1.5})
    good = run_rounds("taobao", exchange_dsn, seed=11, account="backward", **kw)
    naive = run_rounds("taobao", exchange_dsn, seed=11, account="forward",
                       strategy=Strategy(backward_paging=False, trust_paging=True), **kw)
    assert good.lost == 0 and good.stale == 0, good
    assert naive.lost > 0, naive


def test_overlapping_windows_lose_nothing_at_boundaries_01_windows_do(exchange_dsn):
    # many orders per second: the second after each ":00" boundary is where ":01" windows lose them
    settings = SyncSettings(window=timedelta(minutes=10), lookback=timedelta(minutes=5), margin=timedelta(minutes=2))
    kw = dict(rounds=5, creates=1500, modifies=100, settings=settings)
    good = run_rounds("yandex", exchange_dsn, seed=5, account="overlap", **kw)
    naive = run_rounds("yandex", exchange_dsn, seed=5, account="gaps", strategy=Strategy(overlap=False), **kw)
    assert good.lost == 0 and good.stale == 0, good
    assert naive.lost + naive.stale > 0, naive


def test_server_clock_not_local_clock_is_the_upper_bound(exchange_dsn):
    kw = dict(rounds=6, creates=300, modifies=200, skew=-1800)  # the marketplace's clock is 30 min behind ours
    good = run_rounds("taobao", exchange_dsn, seed=3, account="server", **kw)
    naive = run_rounds("taobao", exchange_dsn, seed=3, account="local", strategy=Strategy(server_clock=False), **kw)
    assert good.lost == 0 and good.stale == 0, good
    assert naive.lost + naive.stale > 0, naive


def test_checkpoint_commits_with_the_orders_a_killed_run_resumes(exchange_dsn):
    # runs an hour apart (a longer gap than the lookback): a lost window is not re-read by the overlap
    kw = dict(rounds=12, creates=400, modifies=100, p_kill=0.6, gap=3600)
    good = run_rounds("taobao", exchange_dsn, seed=8, account="together", **kw)
    naive = run_rounds("taobao", exchange_dsn, seed=8, account="before", strategy=Strategy(checkpoint_with_orders=False), **kw)
    assert good.failed_runs > 0 and good.lost == 0 and good.stale == 0, good
    assert naive.lost > 0, naive


def _one_run(kind, dsn, seed=1, account="main", settings=FAST_SETTINGS, creates=300, sim_kw=None, client_kw=None,
             strategy=Strategy()):
    sim = start_sim(kind, seed, **(sim_kw or {}))
    sim.store.activity(3600, creates=creates, modifies=creates // 3)
    adapter = make_adapter(kind, sim, account, strategy, **(client_kw or {}))
    return sim, adapter


def test_checkpoint_is_server_clock_minus_margin_never_past_the_run_start(exchange_dsn):
    # the marketplace's clock runs an hour AHEAD of ours: its Date header, not ours, bounds the window
    sim, adapter = _one_run("yandex", exchange_dsn, sim_kw={"skew": 3600})
    try:
        first = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        sim.store.activity(600, 20, 10)
        calls = sim.calls
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        # no clock probe: one call per window (and per window found too full), the first one's Date is "now"
        assert sim.calls - calls == report.windows + report.splits, (sim.calls - calls, report)
        assert report.checkpoint_after == report.server_start - FAST_SETTINGS.margin
        assert report.server_start > first.server_start
        assert abs((report.server_start - datetime.fromtimestamp(sim.clock.now(), UTC)).total_seconds()) < 60
        with psycopg.connect(exchange_dsn) as conn:
            newest = conn.execute("select max(modified_at) from marketplace_order").fetchone()[0]
        assert newest < report.server_start
    finally:
        sim.stop()


def test_a_failed_answer_advances_nothing(exchange_dsn):
    # HTTP 200 carrying an error, or a truncated body, on every call: nothing may be stored or advanced
    sim, adapter = _one_run("taobao", exchange_dsn, client_kw={"max_attempts": 3})
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        before = checkpoint(exchange_dsn, "taobao:main")
        sim.store.activity(600, 100, 100)
        sim.set_hostility(p_bad_body=1.0)
        with pytest.raises(ApiError, match="gave up"):
            sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert checkpoint(exchange_dsn, "taobao:main") == before
        with psycopg.connect(exchange_dsn) as conn:
            failures, error = conn.execute("select failures, last_error from sync where object_type = %s",
                                           (store.CHECKPOINT,)).fetchone()
        assert failures == 1 and "bad answer" in error
        # a flaky API (a third of the answers bad) still gets every order, none twice
        sim.set_hostility(p_bad_body=0.3)
        adapter.client.settings.max_attempts = 10
        sim.clock.advance(300)
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert compare(sim, exchange_dsn, "taobao", "main").lost == 0
    finally:
        sim.stop()


@pytest.mark.parametrize("kind", ["taobao", "megamarket"])
def test_windows_split_under_the_result_limit(exchange_dsn, kind):
    sim, adapter = _one_run(kind, exchange_dsn, creates=50, sim_kw={"result_limit": 150})
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        sim.store.burst(2000, 3600)            # a sale: 2,000 orders in an hour, many in the same second
        sim.clock.advance(300)
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert report.splits >= 10, report
        out = compare(sim, exchange_dsn, kind, "main")
        assert out.lost == 0 and out.stale == 0, out
        with psycopg.connect(exchange_dsn) as conn:
            biggest = conn.execute("select max(orders) from order_sync_window where mode = 'live'").fetchone()[0]
        assert biggest < 150
    finally:
        sim.stop()


def test_ids_first_then_details_in_batches(exchange_dsn):
    sim, adapter = _one_run("taobao", exchange_dsn, creates=0)
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        sim.store.activity(600, 450, 0)
        sim.clock.advance(300)
        calls = dict(sim.calls_by_path)
        adapter.client.calls = 0
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert report.orders == 450
        # no clock probe: page 1 of a window reaching past "now" (its Date is "now"; 450 > one page, so it is
        # planned again behind "now"), page 1 of that window (its total: the count), pages 5..2 (450 distinct
        # orders listed at or after the count prove it: no second count), 12 detail batches of <= 40
        assert adapter.client.calls == 1 + 1 + 4 + 12, adapter.client.calls
        assert sim.calls_by_path["/router/rest"] - calls["/router/rest"] == adapter.client.calls
    finally:
        sim.stop()


def test_rate_limits_retry_after_5xx_and_timeouts_are_survived(exchange_dsn):
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        import time
        time.sleep(seconds)

    sim, adapter = _one_run("yandex", exchange_dsn, creates=400, client_kw={"sleep": sleep, "timeout_seconds": 0.3,
                                                                          "max_attempts": 12},
                            sim_kw={"p_rate_limit": 0.25, "retry_after": 0.15, "p_5xx": 0.1, "p_slow": 0.05,
                                    "slow_seconds": 0.6})
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        sim.clock.advance(300)      # the last orders were inside the margin: the next run reads them
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        out = compare(sim, exchange_dsn, "yandex", "main")
        assert out.lost == 0 and out.stale == 0
        assert adapter.client.retries > 5
        assert sum(1 for s in slept if s >= 0.15) >= 3     # Retry-After of the 420s was honoured
    finally:
        sim.stop()


def test_calls_are_paced_per_account(exchange_dsn):
    import time

    sim, adapter = _one_run("yandex", exchange_dsn, creates=0, client_kw={"calls_per_second": 20})
    try:
        t = time.monotonic()
        for _ in range(11):
            adapter.server_now()
        assert time.monotonic() - t >= 0.5 - 0.02       # 11 calls at 20/s take at least 10 intervals
    finally:
        sim.stop()


def test_initial_sync_reads_three_months_by_creation_in_small_windows(exchange_dsn):
    sim = start_sim("taobao", 4, create_per_call=0.5)   # orders keep arriving while the initial sync runs
    try:
        sim.clock.advance(-120 * 86400)
        sim.store.activity(120 * 86400, creates=1200, modifies=0)
        old = [o for o in sim.store.orders.values() if o.created < sim.clock.now() - 91 * 86400]
        adapter = make_adapter("taobao", sim)
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert report.mode == "initial"
        with psycopg.connect(exchange_dsn) as conn:
            windows = conn.execute("select dimension, window_end - window_start from order_sync_window"
                                   " where mode = 'initial'").fetchall()
            ids = {r[0] for r in conn.execute("select order_id from marketplace_order")}
        assert {d for d, _ in windows} == {CREATED}
        assert max(length for _, length in windows) <= timedelta(days=1) and len(windows) >= 90
        assert not ids & {str(o.order_id) for o in old}       # older than 3 months: not read
        sim.set_hostility(create_per_call=0)
        sim.clock.advance(600)
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        recent = {k for k, o in sim.truth().items() if o.created >= sim.clock.now() - 90 * 86400 + 600}
        with psycopg.connect(exchange_dsn) as conn:
            ids = {r[0] for r in conn.execute("select order_id from marketplace_order")}
        assert recent <= ids          # including those created while the initial sync was running
    finally:
        sim.stop()


def test_resync_window_rereads_and_leaves_the_checkpoint(exchange_dsn):
    sim, adapter = _one_run("ozon", exchange_dsn)
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        before = checkpoint(exchange_dsn, "ozon:main")
        with psycopg.connect(exchange_dsn) as conn:
            conn.execute("delete from marketplace_order")
        sim.store.activity(3600, 100, 100)     # later changes, outside the re-sync window
        t = datetime.fromtimestamp(T0 + 3600, UTC)
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS, resync=Window(t - timedelta(hours=1), t))
        assert report.mode == "resync" and report.orders > 0
        assert checkpoint(exchange_dsn, "ozon:main") == before
        with psycopg.connect(exchange_dsn) as conn:
            outside = conn.execute("select count(*) from marketplace_order where modified_at >= %s", (t,)).fetchone()[0]
        assert outside == 0
    finally:
        sim.stop()


def test_upsert_keeps_the_newest_version(exchange_dsn):
    t = datetime(2026, 5, 1, tzinfo=UTC)
    with psycopg.connect(exchange_dsn) as conn:
        store.upsert_orders(conn, "ozon", "a", [Order("1", t + timedelta(minutes=5), "delivered", t, {"v": 2})])
        store.upsert_orders(conn, "ozon", "a", [Order("1", t, "awaiting_packaging", t, {"v": 1})])   # overlap re-read
        store.upsert_orders(conn, "ozon", "a", [Order("2", t, "new", t, {"v": 1})])
        store.upsert_orders(conn, "ozon", "a", [Order("2", t, "new", t, {"v": 1, "note": "same time, later read"})])
        rows = dict(conn.execute("select order_id, payload from marketplace_order order by 1").fetchall())
    assert rows == {"1": {"v": 2}, "2": {"v": 1, "note": "same time, later read"}}


def test_checkpoint_never_moves_backward(exchange_dsn):
    t = datetime(2026, 5, 1, tzinfo=UTC)
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        store.write_mark(conn, store.CHECKPOINT, "x:y", t)
        store.write_mark(conn, store.CHECKPOINT, "x:y", t - timedelta(hours=1))
        assert store.read_mark(conn, store.CHECKPOINT, "x:y") == t


@pytest.mark.parametrize("kind", ["yandex", "ozon", "megamarket"])
def test_hostile_rounds_lose_nothing(exchange_dsn, kind):
    out = run_rounds(kind, exchange_dsn, seed=21, rounds=5, creates=300, modifies=200, p_kill=0.3, history_days=5,
                     hostility={"churn_per_call": 1, "create_per_call": 0.5, "p_rate_limit": 0.05, "p_5xx": 0.05,
                                "p_bad_body": 0.03, "visibility_lag_ms": 30_000})
    assert out.lost == 0 and out.stale == 0, out


def test_ozon_reads_open_postings_every_run(exchange_dsn):
    sim, adapter = _one_run("ozon", exchange_dsn)
    try:
        report = sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        assert report.swept > 0 and sim.calls_by_path["/v4/posting/fbs/unfulfilled/list"] >= 1
    finally:
        sim.stop()


def test_megamarket_webhook_is_stored_before_the_ack_and_fetched_next_run(exchange_dsn):
    import requests

    from mpsync.orders.webhook import ACK, WebhookReceiver

    sim, adapter = _one_run("megamarket", exchange_dsn, creates=5)
    receiver = WebhookReceiver(exchange_dsn).start()
    try:
        # an order older than the sliding window: only the webhook names it
        o = sim.store.create(at=sim.clock.now() - 30 * 86400)
        resp = requests.post(f"{receiver.url}/megamarket/main/order/new", json=sim.webhook_body(o.order_id), timeout=5)
        assert resp.json() == ACK
        with psycopg.connect(exchange_dsn) as conn:
            assert conn.execute("select count(*) from order_webhook_inbox where processed_at is null").fetchone()[0] == 1
        sim.clock.advance(-29 * 86400)   # the account's first run starts after the order (initial: 3 days)
        sim.clock.advance(29 * 86400)
        sync_account(exchange_dsn, adapter, SyncSettings(initial_days=3, margin=timedelta(minutes=2)))
        with psycopg.connect(exchange_dsn) as conn:
            assert conn.execute("select count(*) from order_webhook_inbox where processed_at is null").fetchone()[0] == 0
            assert conn.execute("select 1 from marketplace_order where order_id = %s", (str(o.order_id),)).fetchone()
    finally:
        receiver.stop()
        sim.stop()


def test_orders_config_errors_name_the_key():
    from mpsync.orders.config import orders_config
    from mpsync.settings import ConfigError

    with pytest.raises(ConfigError, match=r"orders\.accounts\[1\]"):
        orders_config({"accounts": [{"marketplace": "ozon", "account": "a"}, {"marketplace": "wb", "account": "b"}]})
    with pytest.raises(ConfigError, match=r"orders\.lookback_minutes"):
        orders_config({"lookback_minutes": "ten"})
    with pytest.raises(ConfigError, match="duplicates"):
        orders_config({"accounts": [{"marketplace": "ozon", "account": "a"}] * 2})
    cfg = orders_config()       # the shipped config is valid
    assert cfg.by_marketplace(["ozon"])["ozon"] == ["ozon:main"]


# -- issue 15: no list's paging is trusted --------------------------------------------------------------------

UNSTABLE = dict(rounds=6, creates=500, modifies=300, gap=900, outage_rounds=2,
                hostility={"churn_per_call": 1.0, "create_per_call": 0.5})


@pytest.mark.parametrize("kind, naive", [
    ("yandex", Strategy(trust_paging=True)),
    ("ozon", Strategy(trust_paging=True)),
    ("taobao", Strategy(backward_paging=False, trust_paging=True)),   # its old naive way: page 1, 2, ...
])
def test_trusting_the_page_cursor_loses_orders_proven_windows_do_not(exchange_dsn, kind, naive):
    # offset-encoding tokens (page numbers), orders in the paged window changing between any two page
    # requests, new orders arriving, and a scheduler outage of 30 minutes in 15-minute rounds
    good = run_rounds(kind, exchange_dsn, seed=32, account="proven", **UNSTABLE)
    old = run_rounds(kind, exchange_dsn, seed=32, account="trusted", strategy=naive, **UNSTABLE)
    assert good.lost == 0 and good.stale == 0 and good.failed_runs == 0, good
    assert old.lost > 0, old


def test_the_offset_token_is_what_loses_orders_a_stable_cursor_does_not(exchange_dsn):
    stable = dict(UNSTABLE, hostility=dict(UNSTABLE["hostility"], stable_cursor=True))
    trusted = run_rounds("yandex", exchange_dsn, seed=32, account="stable", strategy=Strategy(trust_paging=True),
                         **stable)
    assert trusted.lost == 0 and trusted.stale == 0, trusted


def test_a_window_that_cannot_be_proven_holds_the_checkpoint_until_it_can(exchange_dsn):
    # 400 orders in ONE second: pages of them, and the API cannot split below a second; while orders in
    # it keep changing on every call, two reads never agree: the run fails and the checkpoint stays before it
    sim, adapter = _one_run("yandex", exchange_dsn, creates=20)
    try:
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        before = checkpoint(exchange_dsn, "yandex:main")
        sim.store.burst(400, 0.9)
        sim.clock.advance(600)
        sim.set_hostility(churn_per_call=2)
        with pytest.raises(OrderSyncError, match="kept changing while paged"):
            sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        stuck = checkpoint(exchange_dsn, "yandex:main")
        burst_at = min(o.created for o in sim.store.orders.values() if o.order_id > 0 and o.created > before.timestamp())
        assert before <= stuck <= datetime.fromtimestamp(burst_at, UTC)
        sim.set_hostility(churn_per_call=0)             # calm: two whole reads of that second agree
        sim.clock.advance(300)
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        out = compare(sim, exchange_dsn, "yandex", "main")
        assert out.lost == 0 and out.stale == 0, out
    finally:
        sim.stop()


def test_yandex_first_sync_reads_each_moscow_date_once(exchange_dsn):
    sim = start_sim("yandex", 6)
    try:
        sim.clock.advance(-10 * 86400)
        sim.store.activity(10 * 86400, creates=300, modifies=0)
        adapter = make_adapter("yandex", sim)
        report = sync_account(exchange_dsn, adapter, SyncSettings(initial_days=7))
        with psycopg.connect(exchange_dsn) as conn:
            ends = [r[0] for r in conn.execute("select window_end from order_sync_window where mode = 'initial'"
                                               " order by window_start")]
        # 7 days from a time of day: 8 windows, each inside one Moscow date (ends at 21:00 UTC but the last)
        assert len(ends) == 8 and all(e.hour == 21 and e.minute == 0 for e in ends[:-1]), ends
        assert report.api_calls <= 1 + 8 + 2      # the probe once per account, a date per call, retries spare
    finally:
        sim.stop()
