"""Yandex's price quarantine after a Yandex price push (issue 20; docs/feeds.md "Yandex's price quarantine").

Yandex hides an offer whose price changed sharply (or is far below the market) until the seller confirms it.
After each push of the `yandex_prices` subscriber, `settle` reads the quarantine list of the connection's
business and confirms an offer only when all of these hold:
- the price Yandex quarantined is the price mpsync last sent for the offer, and nothing newer waits to go out
  (the current payload's marker is the one Yandex acknowledged): a newer price may have gone out or be due;
- that price passed mpsync's own guards (the price import applied it: no held price behind it), or a person
  approved it (price_hold decision 'applied', decided_by someone, not 'timeout');
- no verdict is LOW_PRICE_PROMO (that price is Yandex's promotion result, not one mpsync sent);
- just before the confirm call, Yandex still lists the offer at that price (the call itself takes no price).
Only a confirm call answered 200 with status OK marks offers confirmed; a failed one records the error and
the next run tries again. Everything else is left for a person and reported by the freshness check
"quarantine". Config: `sync_push.yandex.quarantine.confirm: auto | never` (default auto).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Callable

import psycopg

from mpsync.outbox import quarantine_store as qs
from mpsync.outbox.clients import ApiParams, RequestFailed, RequestRejected
from mpsync.outbox.config import SECTION, PushSettings, Subscriber
from mpsync.outbox.sources import ObjectSource, source_for
from mpsync.outbox.yandex_quarantine import (CONFIRM_LIMIT, ConfirmRefused, QuarantinedOffer, Retry,
                                             YandexQuarantineClient, read_all, still_listed)
from mpsync.settings import ConfigError, Settings

log = logging.getLogger(__name__)
CONFIRM_MODES = ("auto", "never")


@dataclass(frozen=True)
class QuarantineSettings:
    confirm: str = "auto"


def quarantine_settings(base: Settings) -> QuarantineSettings:
    raw = ((base.section(SECTION).get("yandex") or {}).get("quarantine")) or {}
    where = f"{base.source}: '{SECTION}.yandex.quarantine"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}' must be a mapping, e.g. {{confirm: auto}}")
    unknown = set(raw) - {"confirm"}
    if unknown:
        raise ConfigError(f"{where}' has unknown keys {sorted(unknown)}; known: ['confirm']")
    mode = str(raw.get("confirm", "auto"))
    if mode not in CONFIRM_MODES:
        raise ConfigError(f"{where}.confirm' must be one of {CONFIRM_MODES}, got {mode!r}")
    return QuarantineSettings(mode)


@dataclass
class QuarantineCounts:
    subscriber: str
    business_id: int | None = None
    listed: int = 0            # offers Yandex lists in quarantine (all passes)
    complete: bool = False     # the paging settled (else nothing is marked gone)
    passes: int = 0
    pages: int = 0
    to_confirm: int = 0        # offers mpsync vouches for
    confirmed: int = 0         # confirm calls answered OK for these
    confirm_failed: int = 0    # offers whose confirm call failed (retried next run)
    changed_meanwhile: int = 0 # no longer listed at the price read, just before the confirm: not confirmed
    left: int = 0              # still listed and not confirmed: the freshness check reports them
    read_error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        if self.read_error:
            return f"{self.subscriber}: price quarantine of business {self.business_id} not read: {self.read_error}"
        return (f"{self.subscriber}: price quarantine of business {self.business_id}: {self.listed} listed "
                f"({self.pages} page(s), {self.passes} pass(es){'' if self.complete else ', list still moving'}), "
                f"{self.confirmed} confirmed, {self.confirm_failed} confirm failed, "
                f"{self.changed_meanwhile} changed meanwhile, {self.left} left for a person")


def _person(decided_by: str | None) -> bool:
    return bool(decided_by) and decided_by != "timeout"


def judge(offer: QuarantinedOffer, f: qs.OfferFacts | None, current: tuple[str, dict] | None
          ) -> tuple[bool, Decimal | None, str]:
    """(confirm?, the price mpsync last sent, why). `current` is the offer's payload now: (marker, payload)."""
    if f is None or f.product_id is None:
        return False, None, "offer id not known to mpsync (not an offer it pushes)"
    sent = None
    if current is not None and f.acknowledged is not None and current[0] == f.acknowledged:
        sent = Decimal(str(current[1]["price"])).quantize(Decimal("0.01"))
    if sent is None:
        return False, None, ("mpsync has not sent a price for it" if f.acknowledged is None else
                             "its price changed since mpsync sent it (the newer one waits to go out)")
    if "LOW_PRICE_PROMO" in offer.verdict_types:
        return False, sent, "the quarantined price is Yandex's promotion result, not a price mpsync sent"
    if offer.price is None:
        return False, sent, "Yandex's answer gives no single rouble price to compare"
    if offer.price != sent:
        return False, sent, f"Yandex holds {offer.price}, but mpsync last sent {sent}"
    if f.import_file_id is None:
        return False, sent, "the price did not come through a price import (no guard checked it)"
    if f.hold_decision == "applied":
        if _person(f.decided_by):
            return True, sent, f"a held price approved by {f.decided_by}"
        return False, sent, "a held price applied when the question timed out, not approved by a person"
    if f.hold_decision is not None:
        return False, sent, f"the price row's held price was {f.hold_decision}"
    return True, sent, "passed the price guards"


def _current(conn: psycopg.Connection, source: ObjectSource, articles: list[str]) -> dict[str, tuple[str, dict]]:
    if not articles:
        return {}
    rows = conn.execute(source.sql("ids"), dict(source.params, ids=articles)).fetchall()
    return {oid: (marker, payload) for oid, marker, payload in rows}


def _decide(conn, sub: Subscriber, source: ObjectSource, business: int, offers: dict[str, QuarantinedOffer]
            ) -> dict[str, Decimal]:
    """Judge every listed offer and store the decisions; the offers to confirm with the price to confirm."""
    price_list = source.params.get("price_list") or sub.group
    facts = qs.facts(conn, list(offers), marketplace=sub.group, price_list=price_list, subscriber=sub.name)
    current = _current(conn, source, sorted({f.article for f in facts.values() if f.article}))
    decisions, chosen = [], {}
    for oid, offer in offers.items():
        f = facts.get(oid)
        ok, sent, why = judge(offer, f, current.get(f.article) if f and f.article else None)
        decisions.append((oid, f.product_id if f else None, f.article if f else None, sent,
                          "confirm" if ok else "leave", why))
        if ok:
            chosen[oid] = offer.price
    qs.record_decisions(conn, business, decisions)
    return chosen


def _confirm_chunk(client, conn, business: int, retry: Retry, chunk: dict[str, Decimal], c: QuarantineCounts) -> None:
    """Re-read the chunk's offers, confirm those still listed at the price decided on; record the outcome.
    A refused chunk is halved so that one offer Yandex will not confirm does not hold back the others."""
    now = still_listed(client, business, retry, list(chunk))
    ids = [o for o, price in chunk.items() if o in now and now[o].price == price]
    c.changed_meanwhile += len(chunk) - len(ids)
    # not listed any more (confirmed in the cabinet, repriced): gone; repriced ones are judged on the next run
    qs.mark_gone(conn, business, [o for o in chunk if o not in now])
    if not ids:
        return
    try:
        retry.call(client.confirm, business, ids)
    except (ConfirmRefused, RequestRejected) as exc:
        if len(ids) > 1:
            half = len(ids) // 2
            for part in (ids[:half], ids[half:]):
                _confirm_chunk(client, conn, business, retry, {o: chunk[o] for o in part}, c)
            return
        qs.record_confirm_failure(conn, business, ids, str(exc))
        c.confirm_failed += len(ids)
        log.warning("price quarantine: confirm of %s refused: %s", ids[0], exc)
        return
    except RequestFailed as exc:
        qs.record_confirm_failure(conn, business, ids, str(exc))
        c.confirm_failed += len(ids)
        raise
    qs.record_confirmed(conn, business, {o: chunk[o] for o in ids})
    c.confirmed += len(ids)


def settle(dsn: str, sub: Subscriber, api: ApiParams, cfg: PushSettings, base: Settings, *,
           settings: QuarantineSettings | None = None, sleep: Callable[[float], None] = time.sleep) -> QuarantineCounts:
    """Read the business's price quarantine, store it, confirm what mpsync vouches for. Never raises for
    Yandex's answers: a failed read or confirm is recorded (and reported by the freshness check)."""
    started = time.monotonic()
    qset = settings or quarantine_settings(base)
    c = QuarantineCounts(sub.name)
    business = api.extra.get("business_id")
    if not business:
        c.read_error = "connection has no extra 'business_id'"
        log.error("%s", c.line())
        return c
    c.business_id = business = int(business)
    retry = Retry(cfg.request_retries, cfg.request_retry_seconds, cfg.request_retry_max_seconds, sleep)
    client = YandexQuarantineClient(api, timeout=sub.timeout_seconds, calls_per_minute=sub.calls_per_minute)
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            try:
                read = read_all(client, business, retry)
            except (RequestFailed, RequestRejected) as exc:
                c.read_error = str(exc)
                qs.record_read_failure(conn, business, str(exc))
                log.error("%s", c.line())
                return c
            c.listed, c.complete, c.passes, c.pages = len(read.offers), read.complete, read.passes, read.pages
            qs.record_read(conn, business, list(read.offers.values()), read.complete)
            chosen = _decide(conn, sub, source_for(sub, base), business, read.offers) if read.offers else {}
            c.to_confirm = len(chosen) if qset.confirm == "auto" else 0
            items = list(chosen.items()) if qset.confirm == "auto" else []
            try:
                for i in range(0, len(items), CONFIRM_LIMIT):
                    _confirm_chunk(client, conn, business, retry, dict(items[i:i + CONFIRM_LIMIT]), c)
            except (RequestFailed, RequestRejected) as exc:
                # Yandex stopped answering: the rest waits for the next run, nothing is marked confirmed
                log.error("%s: price quarantine confirm stopped: %s", sub.name, exc)
            c.left = qs.left_count(conn, business)
    finally:
        client.close()
        c.seconds = time.monotonic() - started
    log.info("%s", c.line())
    return c
