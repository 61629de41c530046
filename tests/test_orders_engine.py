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
from tests.simulators.harness import FAST_SETTINGS, T0, compare, make_adapter, run_rounds, start_sim


def checkpoint(dsn, key):
    with psycopg.connect(dsn) as conn:
        return store.read_mark(conn, store.CHECKPOINT, key)


def test_backward_paging_of_a_desc_list_loses_nothing_forward_paging_does(exchange_dsn):
    kw = dict(rounds=6, creates=600, modifies=50, hostility={"churn_per_call": 1.5})
    good = run_rounds("taobao", exchange_dsn, seed=11, account="backward", **kw)
    naive = run_rounds("taobao", exchange_dsn, seed=11, account="forward", strategy=Strategy(backward_paging=False), **kw)
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
