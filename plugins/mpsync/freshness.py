"""Freshness: is data still flowing? Checks over the exchange database and the feeds folder.

    stock   no stock file has arrived for `max_silence_minutes` of BUSINESS time (1C drops hourly
            07:30-22:00 Europe/Moscow); outside business hours nothing is checked
    feeds   a published feed file is older than `max_age_hours` (or missing)
    orders  an order account's checkpoint has not moved for `max_stall_minutes`
    notifications  a Yandex/Ozon account's notifications stopped: changes listed for `max_silence_minutes`,
            none notified, though notifications came the week before
    parked  more than `max_objects` sync objects are parked
    held    prices a guard held wait for an operator's decision (price_approvals DAG, Required actions)
    quarantine  offers Yandex keeps in its price quarantine that mpsync did not confirm (issue 20)

Each check (mpsync.freshness_checks) returns Findings (one line each, with a stable key). `evaluate()` runs them
all and decides whether to alert now: a stale thing is alerted when first seen and again every `realert_minutes`
while it stays stale, so a feed that is stale all night sends a few messages, not one every 15 minutes. That
memory is kept in the sync table (object_type 'freshness_alert', subscriber 'freshness'); a cleared finding
forgets its row, so it alerts at once if it comes back.

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
from mpsync.freshness_checks import (Finding, check_feeds, check_held, check_notifications, check_orders, check_parked,
                                     check_quarantine, check_reservations, check_stock, in_service_since)
from mpsync.settings import ConfigError, Settings, settings

ALERT_MARK = "freshness_alert"
ALERT_SUBSCRIBER = "freshness"
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
    # what `<check>.enabled: false` switched off is not here
    enabled: frozenset[str] = frozenset(("stock", "feeds", "orders", "notifications", "parked", "reservations"))
    notice_max_silence: timedelta = timedelta(hours=2)


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
    for check in ("stock", "feeds", "orders", "notifications", "parked", "reservations", "held", "quarantine"):
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
        notice_max_silence=_minutes(_section(raw, "notifications", w, source), "max_silence_minutes",
                                    w + "notifications.", source, 120, lo=30),
    )


def freshness_settings(st: Settings | None = None) -> FreshnessSettings:
    st = st or settings()
    alerts = st.section("alerts")
    republish = (st.section("feeds") or {}).get("max_age_hours", 24)
    return parse_freshness_settings(alerts.get("freshness"), st.source,
                                    republish if isinstance(republish, (int, float)) else None)


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
            + (check_notifications(conn, cfg, now, order_accounts) if "notifications" in on else [])
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
