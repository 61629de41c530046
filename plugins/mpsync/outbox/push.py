"""One push run for one subscriber: scan the source, then claim -> send -> apply answers, batch by batch.

The rules (DOMAIN.md section 3, docs/sync-push.md):
- success sets sync_updated to the marker the receiver ECHOED: an object changed in flight goes again;
- a per-item error counts a failure, keeps the message, retries with backoff, and parks at max_failures;
- a whole-request failure (timeout, 5xx, 429/420) retries the same batch and changes no row; when the
  retries are spent, the claims are released and SubscriberUnavailable is raised (the task fails, Airflow
  retries it later; other subscribers are separate tasks and carry on);
- a batch refused for its content without naming the item is split in halves until the item is found.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Callable

import psycopg

from mpsync.outbox import store
from mpsync.outbox.clients import ItemResult, OutboundItem, PushClient, RequestFailed, RequestRejected
from mpsync.outbox.config import PushSettings, Subscriber
from mpsync.outbox.sources import ObjectSource

log = logging.getLogger(__name__)


@dataclass
class PushCounts:
    """What one run did for one subscriber (task output and log line)."""

    subscriber: str
    scan_full: bool = False
    changed: int = 0           # objects the scan found changed (now pending)
    revived: int = 0           # parked objects that came back because they changed
    sent: int = 0              # objects handed to the receiver in answered requests
    acknowledged: int = 0      # objects the receiver confirmed (sync_updated := echoed marker)
    failed: int = 0            # per-item errors recorded (failures+1, retry later)
    deferred: int = 0          # per-item "not now" answers (the receiver's item rate limit): no failure counted
    parked: int = 0            # objects parked by this run (reached max_failures)
    parked_total: int = 0      # objects parked for this subscriber now (docs/sync-push.md: how to unpark)
    requests: int = 0
    request_failures: int = 0  # whole-request failures (each retried, no row changed)
    pending_due: int = 0       # still pending and due after the run (the run budget ran out)
    pending_waiting: int = 0   # pending, waiting for their retry time
    scan_seconds: float = 0.0
    db_seconds: float = 0.0    # time in database calls (scan excluded)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.subscriber}: changed {self.changed}, sent {self.sent}, acknowledged {self.acknowledged}, "
                f"failed {self.failed}, parked {self.parked} (parked now {self.parked_total}), "
                f"deferred {self.deferred}, requests {self.requests} ({self.request_failures} failed), "
                f"pending {self.pending_due} due + {self.pending_waiting} waiting")


class SubscriberUnavailable(Exception):
    """The receiver kept failing whole requests: nothing was changed; the task should fail and retry."""

    def __init__(self, message: str, counts: PushCounts):
        super().__init__(message)
        self.counts = counts


@dataclass
class _Run:
    conn: psycopg.Connection
    sub: Subscriber
    source: ObjectSource
    client: PushClient
    cfg: PushSettings
    token: str
    counts: PushCounts
    sleep: Callable[[float], None]
    ids_seen: set[str] = field(default_factory=set)

    def db(self, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.counts.db_seconds += time.perf_counter() - t


def push_subscriber(dsn: str, sub: Subscriber, source: ObjectSource, client: PushClient, cfg: PushSettings, *,
                    sleep: Callable[[float], None] = time.sleep, force_full_scan: bool = False,
                    max_batches: int | None = None) -> PushCounts:
    """Scan, then push this subscriber's delta until nothing is due or the run budget is spent."""
    started = time.monotonic()
    counts = PushCounts(subscriber=sub.name)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        source.prepare(conn)
        t = time.perf_counter()
        result = store.scan(conn, sub.name, source, lookback=timedelta(seconds=cfg.scan_lookback_seconds),
                            full_every=timedelta(hours=cfg.full_scan_hours), force_full=force_full_scan)
        counts.scan_seconds = time.perf_counter() - t
        counts.scan_full, counts.changed, counts.revived = result.full, result.marked, result.unparked
        log.info("%s: %s scan found %d changed object(s) in %.2fs%s", sub.name, "full" if result.full else "incremental",
                 result.marked, counts.scan_seconds, f", {result.unparked} parked object(s) revived" if result.unparked else "")
        run = _Run(conn, sub, source, client, cfg, uuid.uuid4().hex, counts, sleep)
        batches = 0
        try:
            while time.monotonic() - started < cfg.run_budget_seconds and (max_batches is None or batches < max_batches):
                ids = run.db(store.claim, conn, sub.name, sub.object_type, run.token, sub.batch_size,
                             lease=timedelta(seconds=cfg.claim_lease_seconds),
                             min_resend=timedelta(seconds=sub.min_resend_seconds), due_at=result.at)
                if not ids:
                    break
                batches += 1
                rows = run.db(store.fetch, conn, source, ids)
                found = {r[0] for r in rows}
                vanished = [i for i in ids if i not in found]
                run.db(store.settle_vanished, conn, sub.name, sub.object_type, run.token, vanished)
                items = [OutboundItem(oid, marker, payload) for oid, marker, payload in rows]
                if items:
                    _send(run, items)
        except SubscriberUnavailable:
            run.db(store.release, conn, sub.name, sub.object_type, run.token)
            _finish(run, started)
            raise
        except BaseException:
            run.db(store.release, conn, sub.name, sub.object_type, run.token)
            raise
        _finish(run, started)
    return counts


def _finish(run: _Run, started: float) -> None:
    c = run.counts
    c.pending_due, c.pending_waiting = run.db(store.pending, run.conn, run.sub.name, run.sub.object_type)
    c.parked_total, sample = store.parked(run.conn, run.sub.name, limit=10)
    c.seconds = time.monotonic() - started
    log.info("%s", c.line())
    if c.parked_total:
        log.warning("%s: %d object(s) parked; first: %s. Fix the data (they come back when they change) or unpark "
                    "them with the sync_push trigger form (docs/sync-push.md).", run.sub.name, c.parked_total,
                    "; ".join(f"{p['object_id']}: {p['last_error']}" for p in sample))


def _request(run: _Run, items: list[OutboundItem]) -> list[ItemResult]:
    """One batch, with retries of whole-request failures; raises SubscriberUnavailable when spent."""
    cfg, attempt = run.cfg, 0
    while True:
        run.counts.requests += 1
        try:
            return run.client.send(items)
        except RequestFailed as exc:
            run.counts.request_failures += 1
            attempt += 1
            if not exc.retryable or attempt > cfg.request_retries:
                log.error("%s: request failed, %d object(s) left unchanged for the next run: %s",
                          run.sub.name, len(items), exc)
                raise SubscriberUnavailable(f"{run.sub.name}: {exc}", run.counts) from exc
            pause = exc.retry_after if exc.retry_after is not None else cfg.request_retry_seconds * 2 ** (attempt - 1)
            pause = min(pause, cfg.request_retry_max_seconds)
            log.warning("%s: request failed (%s); retry %d/%d of the same batch in %.1fs",
                        run.sub.name, exc, attempt, cfg.request_retries, pause)
            run.sleep(pause)


def _send(run: _Run, items: list[OutboundItem]) -> None:
    try:
        results = _request(run, items)
    except RequestRejected as exc:
        if len(items) == 1:
            results = [ItemResult(items[0].object_id, None, str(exc))]
        else:
            # The receiver refused the batch without naming the item: halve until it is found.
            log.warning("%s: batch of %d refused (%s); splitting", run.sub.name, len(items), exc)
            half = len(items) // 2
            _send(run, items[:half])
            _send(run, items[half:])
            return
    run.counts.sent += len(items)
    sent = {it.object_id: it for it in items}
    acked, failed, answered = [], [], set()
    for r in results:
        it = sent.get(r.object_id)
        if it is None or r.object_id in answered:
            continue
        answered.add(r.object_id)
        if r.ok:
            # The receiver's echo, not our current value: a change made in flight stays pending.
            acked.append((r.object_id, r.echoed if r.echoed is not None else it.marker))
        else:
            failed.append((r.object_id, it.marker, r.error, r.retry_after))
    for oid, it in sent.items():
        if oid not in answered:
            failed.append((oid, it.marker, "no result for this item in the receiver's answer", None))
    n_acked = run.db(store.acknowledge, run.conn, run.sub.name, run.sub.object_type, run.token, acked)
    parked = run.db(store.record_failures, run.conn, run.sub.name, run.sub.object_type, run.token, failed,
                    max_failures=run.cfg.max_failures, retry_base=run.cfg.retry_base_seconds,
                    retry_max=run.cfg.retry_max_seconds)
    run.counts.acknowledged += n_acked
    run.counts.failed += sum(1 for f in failed if f[3] is None)
    run.counts.deferred += sum(1 for f in failed if f[3] is not None)
    run.counts.parked += len(parked)
    for oid, marker, message, retry_after in failed[:20]:
        if retry_after is None:
            log.warning("%s: %s failed: %s", run.sub.name, oid, message)
    if parked:
        log.error("%s: parked after %d failures: %s", run.sub.name, run.cfg.max_failures, ", ".join(parked[:50]))
