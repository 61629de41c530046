"""Freshness: is data still flowing? Four checks over the exchange database and the feeds folder.

    stock   no stock file has arrived for `max_silence_minutes` of BUSINESS time (1C drops hourly
            07:30-22:00 Europe/Moscow); outside business hours nothing is checked
    feeds   a published feed file is older than `max_age_hours` (or missing)
    orders  an order account's checkpoint has not moved for `max_stall_minutes`
    parked  more than `max_objects` sync objects are parked
    held    prices a guard held wait for an operator's decision (price_approvals DAG, Required actions)
    quarantine  offers Yandex keeps in its price quarantine that mpsync did not confirm (issue 20)

Each check returns Findings (one line each, with a stable key). `evaluate()` runs them all and decides whether
to alert now: a stale thing is alerted when first seen and again every `realert_minutes` while it stays stale,
so a feed that is stale all night sends a few messages, not one every 15 minutes. That memory is kept in the
sync table (object_type 'freshness_alert', subscriber 'freshness'); a cleared finding forgets its row, so it
alerts at once if it comes back.

Configuration: `alerts.freshness` in include/config/mpsync.yaml; see docs/alerts.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from mpsync import db
from mpsync.settings import ConfigError, Settings, settings

ALERT_MARK = "freshness_alert"
ALERT_SUBSCRIBER = "freshness"
ORDER_CHECKPOINT = "order_checkpoint"      # mpsync.orders.store.CHECKPOINT (not imported: keep this module light)
ORDER_SUBSCRIBER = "order_sync"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# ---- configuration ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BusinessHours:
    start: time
    end: time
    days: frozenset[int]            # Monday = 0

    def is_open(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def opened_at(self, local: datetime) -> datetime:
        """Today's opening time (local), for a moment inside business hours."""
        return local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)


@dataclass(frozen=True)
class FreshnessSettings:
    tz: ZoneInfo
    realert: timedelta
    stock_max_silence: timedelta
    business_hours: BusinessHours
    feed_max_age: timedelta
    order_max_stall: timedelta
    parked_max: int
    enabled: frozenset[str] = frozenset(("stock", "feeds", "orders", "parked", "reservations"))   # `<check>.enabled: false`


def _minutes(d: dict, key: str, where: str, source, default: float, lo: float = 1) -> timedelta:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo:
        raise ConfigError(f"{source}: '{where}{key}' must be a number >= {lo}, got {value!r}")
    return timedelta(minutes=value)


def _section(d: dict, key: str, where: str, source) -> dict:
    value = d.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{where}{key}' must be a mapping, got {value!r}")
    return value


def _hhmm(d: dict, key: str, where: str, source, default: str) -> time:
    value = str(d.get(key, default))
    m = _HHMM.match(value)
    if not m:
        raise ConfigError(f"{source}: '{where}{key}' must be HH:MM (24 h), got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


def parse_freshness_settings(raw: dict[str, Any] | None, source, feeds_republish_hours: float | None = None
                             ) -> FreshnessSettings:
    """Validate `alerts.freshness`; `feeds_republish_hours` is feeds.max_age_hours (the feed age must exceed it)."""
    w = "alerts.freshness."
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: 'alerts.freshness' must be a mapping")
    tz_name = raw.get("timezone", "Europe/Moscow")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: '{w}timezone' is not a known time zone: {tz_name!r}") from None

    stock = _section(raw, "stock", w, source)
    bh = _section(stock, "business_hours", w + "stock.", source)
    bw = w + "stock.business_hours."
    start, end = _hhmm(bh, "start", bw, source, "07:30"), _hhmm(bh, "end", bw, source, "22:00")
    if end <= start:
        raise ConfigError(f"{source}: '{bw}end' must be after '{bw}start' (same day), got {start}..{end}")
    days = bh.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(str(x).lower() not in DAYS for x in days):
        raise ConfigError(f"{source}: '{bw}days' must be a non-empty list of {DAYS}, got {days!r}")

    feeds = _section(raw, "feeds", w, source)
    feed_hours = feeds.get("max_age_hours", 26)
    if isinstance(feed_hours, bool) or not isinstance(feed_hours, (int, float)) or feed_hours <= 0:
        raise ConfigError(f"{source}: '{w}feeds.max_age_hours' must be a positive number, got {feed_hours!r}")
    if feeds_republish_hours is not None and feed_hours <= feeds_republish_hours:
        # An unchanged feed is only rewritten every feeds.max_age_hours: a smaller limit alarms on healthy feeds.
        raise ConfigError(f"{source}: '{w}feeds.max_age_hours' ({feed_hours}) must exceed 'feeds.max_age_hours' "
                          f"({feeds_republish_hours}), the age at which an unchanged feed is re-dated")

    parked = _section(raw, "parked", w, source)
    parked_max = parked.get("max_objects", 0)
    if isinstance(parked_max, bool) or not isinstance(parked_max, int) or parked_max < 0:
        raise ConfigError(f"{source}: '{w}parked.max_objects' must be an integer >= 0, got {parked_max!r}")

    enabled = set()
    for check in ("stock", "feeds", "orders", "parked", "reservations", "held", "quarantine"):
        flag = _section(raw, check, w, source).get("enabled", True)
        if not isinstance(flag, bool):
            raise ConfigError(f"{source}: '{w}{check}.enabled' must be true or false, got {flag!r}")
        if flag:
            enabled.add(check)
    return FreshnessSettings(
        enabled=frozenset(enabled),
        tz=tz,
        realert=_minutes(raw, "realert_minutes", w, source, 120),
        stock_max_silence=_minutes(stock, "max_silence_minutes", w + "stock.", source, 90),
        business_hours=BusinessHours(start, end, frozenset(DAYS.index(str(x).lower()) for x in days)),
        feed_max_age=timedelta(hours=feed_hours),
        order_max_stall=_minutes(_section(raw, "orders", w, source), "max_stall_minutes", w + "orders.", source, 90),
        parked_max=parked_max,
    )


def freshness_settings(st: Settings | None = None) -> FreshnessSettings:
    st = st or settings()
    alerts = st.section("alerts")
    republish = (st.section("feeds") or {}).get("max_age_hours", 24)
    return parse_freshness_settings(alerts.get("freshness"), st.source,
                                    republish if isinstance(republish, (int, float)) else None)


# ---- findings --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    key: str            # stable identity across runs: "stock", "feed:ozon", "order:ozon:main", "parked"
    label: str          # short, for the summary line
    message: str        # one line an operator can act on


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def check_stock(conn: psycopg.Connection, cfg: FreshnessSettings, now: datetime) -> list[Finding]:
    """No stock file received for max_silence of business time. Silent outside business hours."""
    local = now.astimezone(cfg.tz)
    bh = cfg.business_hours
    if not bh.is_open(local):
        return []
    row = conn.execute(
        "select name, received_at, status from import_file where kind = 'stock' order by received_at desc limit 1"
    ).fetchone()
    opened = bh.opened_at(local)
    # Silence counts from the last file, or from today's opening when that is later (nights do not count), and
    # never from before the exchange database came into service (a first start is not 'silence').
    since = max(row[1] if row else opened, opened, in_service_since(conn))
    silence = now - since
    if silence <= cfg.stock_max_silence:
        return []
    last = f"last: {row[0]} received {_local(row[1], cfg.tz)}, {row[2]}" if row else "no stock file ever received"
    return [Finding("stock", "stock file",
                    f"stock: no stock file from 1C for {_age(silence)} of business hours "
                    f"(limit {_age(cfg.stock_max_silence)}; {last})")]


def in_service_since(conn: psycopg.Connection) -> datetime:
    """When the exchange database came into service: its first migration."""
    return conn.execute("select coalesce(min(applied_at), now()) from schema_migration").fetchone()[0]


def check_feeds(folder: Path, feeds: dict[str, str], cfg: FreshnessSettings, now: datetime,
                since: datetime | None = None) -> list[Finding]:
    """Published feed files (feed name -> file name in `folder`) older than the limit, or missing (once the
    system has been in service for longer than the limit: `since`)."""
    out = []
    for feed, file in sorted(feeds.items()):
        path = folder / file
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except FileNotFoundError:
            if since is not None and now - since <= cfg.feed_max_age:
                continue                        # a first start: the first feeds are still to come
            out.append(Finding(f"feed:{feed}", f"feed {feed}", f"feed {feed}: {path} is not published (missing)"))
            continue
        age = now - modified
        last = _last_feed_run(path)
        if age > cfg.feed_max_age:
            out.append(Finding(f"feed:{feed}", f"feed {feed}",
                               f"feed {feed}: {path} last published {_local(modified, cfg.tz)}, {_age(age)} ago "
                               f"(limit {_age(cfg.feed_max_age)}){_rejected_text(last)}"))
        elif last.get("status") == "refused":
            out.append(Finding(f"feed:{feed}:refused", f"feed {feed}",
                               f"feed {feed}: the last run was refused ({last.get('reason')}); the previous file "
                               f"stays{_rejected_text(last)}"))
    return out


def _last_feed_run(path: Path) -> dict:
    """The feed run's record beside the file (mpsync.feeds.publish writes `.<file>.json`)."""
    import json

    try:
        return json.loads(path.with_name(f".{path.name}.json").read_text(encoding="utf-8")).get("last_run") or {}
    except (OSError, ValueError):
        return {}


def _rejected_text(last: dict) -> str:
    by_rule = last.get("rejected_by_rule") or {}
    if not by_rule:
        return ""
    return "; left out by rule in the last run: " + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items()))


def check_orders(conn: psycopg.Connection, cfg: FreshnessSettings, now: datetime,
                 accounts: list[str] | None = None) -> list[Finding]:
    """Order account checkpoints ('<marketplace>:<account>') that have not moved for max_stall.

    `accounts`: the configured accounts (others' checkpoints are left over and ignored); None = all checkpoints.
    An account with no checkpoint yet (initial sync still running) is not judged here.
    """
    rows = conn.execute(
        "select object_id, sync_updated, synced_at, failures, last_error from sync"
        " where object_type = %s and subscriber = %s and sync_updated is not null and synced_at is not null"
        " order by object_id",
        (ORDER_CHECKPOINT, ORDER_SUBSCRIBER),
    ).fetchall()
    out = []
    for key, checkpoint, moved_at, failures, last_error in rows:
        if accounts is not None and key not in accounts:
            continue
        stalled = now - moved_at
        if stalled <= cfg.order_max_stall:
            continue
        why = f"; {failures} failed runs, last error: {last_error.splitlines()[0][:200]}" if last_error else ""
        out.append(Finding(f"order:{key}", f"order account {key}",
                           f"order account {key}: checkpoint {checkpoint} has not moved for {_age(stalled)} "
                           f"(since {_local(moved_at, cfg.tz)}; limit {_age(cfg.order_max_stall)}){why}"))
    return out


def check_reservations(conn: psycopg.Connection) -> list[Finding]:
    """Open orders with lines whose goods the catalog does not know: they reserve nothing (docs/reservations.md).
    One finding per order, so each order is alerted once when it appears (and re-alerted while it stays)."""
    rows = conn.execute("select marketplace, account, order_id, offer_ids from reservation_unknown"
                        " order by order_modified desc limit 50").fetchall()
    return [Finding(f"unknown:{mp}:{acc}:{oid}", f"order {mp}:{acc} {oid}",
                    f"order {mp}:{acc} {oid}: {', '.join(offers)} not in the catalog: reserves nothing for them")
            for mp, acc, oid, offers in rows]


def check_parked(conn: psycopg.Connection, cfg: FreshnessSettings) -> list[Finding]:
    """More parked sync objects than allowed (all subscribers together)."""
    rows = conn.execute(
        "select subscriber, object_type, count(*) from sync where parked group by 1, 2 order by 3 desc, 1, 2"
    ).fetchall()
    total = sum(r[2] for r in rows)
    if total <= cfg.parked_max:
        return []
    newest = conn.execute(
        "select subscriber, object_type, object_id, last_error from sync where parked"
        " order by parked_at desc nulls last limit 1"
    ).fetchone()
    per = ", ".join(f"{s}/{t} {n}" for s, t, n in rows)
    reason = newest[3].splitlines()[0][:200] if newest[3] else "no error recorded"
    return [Finding("parked", "parked objects",
                    f"parked: {total} sync objects parked (limit {cfg.parked_max}): {per}; newest "
                    f"{newest[0]}/{newest[1]} {newest[2]}: {reason}")]


def check_held(conn: psycopg.Connection) -> list[Finding]:
    """Held prices still undecided, one finding per price file: the operator is told once (and again every
    realert) that a decision waits in Airflow's Required actions, with the articles and prices."""
    rows = conn.execute(
        "select f.import_file_id, f.name, count(*), string_agg(p.article || ' ' || coalesce(h.current_price::text, '-')"
        " || ' -> ' || h.price::text, ', ' order by p.article) filter (where h.rn <= 5)"
        " from (select h.*, row_number() over (partition by h.import_file_id order by h.product_id) rn"
        "       from price_hold h where h.decision is null) h"
        " join import_file f using (import_file_id) join product p using (product_id)"
        " group by f.import_file_id, f.name order by f.import_file_id").fetchall()
    return [Finding(f"held:{file_id}", f"held prices of {name}",
                    f"held: {n} price(s) of {name} wait for a decision (Airflow: Required actions, DAG "
                    f"price_approvals): {sample}{', ...' if n > 5 else ''}")
            for file_id, name, n, sample in rows]


def check_quarantine(conn: psycopg.Connection) -> list[Finding]:
    """Offers in Yandex's price quarantine that mpsync did not confirm, one finding each (outbox.quarantine)."""
    from mpsync.outbox.quarantine_store import findings    # the outbox is heavy: loaded only when checked

    return findings(conn)


# ---- all checks, and whether to alert now -----------------------------------------------------------------

@dataclass
class Verdict:
    findings: list[Finding]
    alert: bool                                     # something is stale and due to be (re)alerted
    alerted_at: dict[str, datetime] = field(default_factory=dict)   # earlier alerts of still-stale things

    def summary(self) -> str:
        """First line: the count and what; then one line per finding (the alert's cause and details)."""
        if not self.findings:
            return "all fresh"
        labels = ", ".join(f.label for f in self.findings)
        head = f"{len(self.findings)} stale: {labels}"
        return "\n".join([head] + [f"- {f.message}" for f in self.findings])


def configured_order_accounts(st: Settings) -> list[str] | None:
    accounts = st.section("orders").get("accounts")
    if not isinstance(accounts, list):
        return None
    out = []
    for i, a in enumerate(accounts):
        if not isinstance(a, dict) or "marketplace" not in a or "account" not in a:
            raise ConfigError(f"{st.source}: 'orders.accounts[{i}]' needs marketplace and account")
        out.append(f"{a['marketplace']}:{a['account']}")
    return out


def enabled_feeds(st: Settings) -> tuple[Path, dict[str, str]]:
    """The feeds folder and the enabled feeds' file names, as the feeds module reads them."""
    from mpsync.feeds.config import feeds_config

    fc = feeds_config(st)
    files = {name: fs.file for name, fs in fc.feeds.items() if fs.enabled}
    if fc.store is not None:        # this worker's copy of the shared store: made current, times included
        for file in files.values():
            fc.store.pull(fc.folder, file)
    return fc.folder, files


def collect_findings(conn: psycopg.Connection, cfg: FreshnessSettings, now: datetime, *, feeds_folder: Path,
                     feeds: dict[str, str], order_accounts: list[str] | None) -> list[Finding]:
    on = cfg.enabled
    return ((check_stock(conn, cfg, now) if "stock" in on else [])
            + (check_feeds(feeds_folder, feeds, cfg, now, in_service_since(conn)) if "feeds" in on else [])
            + (check_orders(conn, cfg, now, order_accounts) if "orders" in on else [])
            + (check_parked(conn, cfg) if "parked" in on else [])
            + (check_reservations(conn) if "reservations" in on else [])
            + (check_held(conn) if "held" in on else [])
            + (check_quarantine(conn) if "quarantine" in on else []))


def decide(conn: psycopg.Connection, findings: list[Finding], cfg: FreshnessSettings, now: datetime) -> Verdict:
    """Alert when a stale thing is new, or was last alerted at least `realert` ago; remember what was alerted."""
    rows = conn.execute(
        "select object_id, synced_at from sync where object_type = %s and subscriber = %s for update",
        (ALERT_MARK, ALERT_SUBSCRIBER),
    ).fetchall()
    before = {k: t for k, t in rows}
    keys = [f.key for f in findings]
    conn.execute("delete from sync where object_type = %s and subscriber = %s and not (object_id = any(%s))",
                 (ALERT_MARK, ALERT_SUBSCRIBER, keys))
    due = [k for k in keys if k not in before or now - before[k] >= cfg.realert]
    if due:
        # All current findings go out in this one message, so all of them restart their re-alert clock.
        for k in keys:
            conn.execute(
                """insert into sync (object_type, object_id, subscriber, synced_at) values (%s, %s, %s, %s)
                   on conflict (object_type, object_id, subscriber) do update set synced_at = excluded.synced_at""",
                (ALERT_MARK, k, ALERT_SUBSCRIBER, now),
            )
    return Verdict(findings, bool(due), {k: before[k] for k in keys if k in before})


def evaluate(dsn: str, *, now: datetime | None = None, st: Settings | None = None) -> Verdict:
    """Run every check against the exchange DB and the feeds folder; decide whether to alert (one transaction)."""
    st = st or settings()
    cfg = freshness_settings(st)
    now = now or datetime.now(timezone.utc)
    folder, feeds = enabled_feeds(st) if "feeds" in cfg.enabled else (Path("."), {})
    with db.connect(dsn) as conn:
        findings = collect_findings(conn, cfg, now, feeds_folder=folder, feeds=feeds,
                                    order_accounts=configured_order_accounts(st))
        return decide(conn, findings, cfg, now)
