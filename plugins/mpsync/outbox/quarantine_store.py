"""The price quarantine's SQL (migration 0026): what was read, what mpsync decided, what was confirmed.

Also the facts the decision needs (`facts`): for each quarantined offer id, our product, the price row the
Yandex price comes from (override list or default) with its provenance (the import that applied it and any
held-price decision for it), and the sync row of the Yandex price subscriber (what Yandex acknowledged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from mpsync.outbox.yandex_quarantine import QuarantinedOffer


@dataclass(frozen=True)
class OfferFacts:
    offer_id: str
    product_id: int | None
    article: str | None
    price_list: str | None          # the list the Yandex price comes from
    import_file_id: int | None      # the import that applied that price row (null: not an import)
    hold_decision: str | None       # a held price of that import for this row: 'applied' when a decision applied it
    decided_by: str | None          # who decided ('timeout' when nobody answered)
    acknowledged: str | None        # sync.sync_updated: the marker Yandex acknowledged last
    scanned: str | None             # sync.object_marker: the marker the last scan saw


_FACTS_SQL = """
select q.offer_id, p.product_id, p.article, pr.price_list, pr.import_file_id, h.decision, h.decided_by,
       s.sync_updated, s.object_marker
from unnest(%(offers)s::text[]) as q(offer_id)
left join offer_id oi on oi.marketplace = %(marketplace)s and oi.offer_id = q.offer_id
left join product p on p.product_id = oi.product_id
left join lateral (
    -- the row the push's price comes from: the override list when the product has one there, else default
    select x.price_list, x.import_file_id from price x
    where x.product_id = p.product_id and x.price_list in (%(price_list)s, 'default')
    order by (x.price_list = %(price_list)s) desc limit 1
) pr on true
left join price_hold h on h.import_file_id = pr.import_file_id and h.product_id = p.product_id
                      and h.price_list = pr.price_list
left join sync s on s.object_type = 'offer_price' and s.subscriber = %(subscriber)s and s.object_id = p.article
"""


def facts(conn: psycopg.Connection, offer_ids: list[str], *, marketplace: str, price_list: str,
          subscriber: str) -> dict[str, OfferFacts]:
    rows = conn.execute(_FACTS_SQL, {"offers": offer_ids, "marketplace": marketplace, "price_list": price_list,
                                     "subscriber": subscriber}).fetchall()
    return {r[0]: OfferFacts(*r) for r in rows}


def record_read(conn: psycopg.Connection, business: int, offers: list[QuarantinedOffer], complete: bool) -> None:
    """Upsert what the read listed; when the read was complete, what it no longer lists is gone. An offer that
    comes back, or whose quarantined price changed, starts afresh (no confirm failures, not confirmed)."""
    with conn.transaction():
        conn.execute(
            """insert into yandex_price_quarantine as t (business_id, offer_id, quarantine_price, verdicts)
               select %s, o.offer_id, o.price, o.verdicts
               from jsonb_to_recordset(%s) as o(offer_id text, price numeric, verdicts jsonb)
               on conflict (business_id, offer_id) do update set
                   first_seen_at = case when t.gone_at is not null then now() else t.first_seen_at end,
                   confirm_failures = case when t.gone_at is not null
                                                or t.quarantine_price is distinct from excluded.quarantine_price
                                           then 0 else t.confirm_failures end,
                   last_error = case when t.gone_at is not null
                                          or t.quarantine_price is distinct from excluded.quarantine_price
                                     then null else t.last_error end,
                   quarantine_price = excluded.quarantine_price, verdicts = excluded.verdicts,
                   seen_at = now(), gone_at = null""",
            (business, Jsonb([{"offer_id": o.offer_id, "price": str(o.price) if o.price is not None else None,
                               "verdicts": list(o.verdicts)} for o in offers])))
        if complete:
            conn.execute("update yandex_price_quarantine set gone_at = now() where business_id = %s"
                         " and gone_at is null and not (offer_id = any(%s::text[]))",
                         (business, [o.offer_id for o in offers]))
        conn.execute(
            """insert into yandex_price_quarantine_read (business_id, attempted_at, read_at, complete, offers, error)
               values (%s, now(), now(), %s, %s, null)
               on conflict (business_id) do update set attempted_at = now(), read_at = now(),
                   complete = excluded.complete, offers = excluded.offers, error = null""",
            (business, complete, len(offers)))


def mark_gone(conn: psycopg.Connection, business: int, offer_ids: list[str]) -> None:
    if offer_ids:
        conn.execute("update yandex_price_quarantine set gone_at = now() where business_id = %s and gone_at is null"
                     " and offer_id = any(%s::text[])", (business, offer_ids))


def record_read_failure(conn: psycopg.Connection, business: int, error: str) -> None:
    conn.execute(
        """insert into yandex_price_quarantine_read (business_id, attempted_at, error) values (%s, now(), %s)
           on conflict (business_id) do update set attempted_at = now(), error = excluded.error""",
        (business, error[:1000]))


def record_decisions(conn: psycopg.Connection, business: int,
                     decisions: list[tuple[str, int | None, str | None, Decimal | None, str, str]]) -> None:
    """(offer_id, product_id, article, price_sent, 'confirm'|'leave', reason) per listed offer."""
    conn.execute(
        """update yandex_price_quarantine t set product_id = d.product_id, article = d.article,
                  price_sent = d.price_sent, decision = d.decision, reason = d.reason
           from jsonb_to_recordset(%s) as d(offer_id text, product_id bigint, article text, price_sent numeric,
                                            decision text, reason text)
           where t.business_id = %s and t.offer_id = d.offer_id""",
        (Jsonb([{"offer_id": o, "product_id": p, "article": a, "price_sent": str(s) if s is not None else None,
                 "decision": d, "reason": r} for o, p, a, s, d, r in decisions]), business))


def record_confirmed(conn: psycopg.Connection, business: int, confirmed: dict[str, Decimal]) -> None:
    """Only after a confirm call answered OK: the price that call covered (the one re-read just before it)."""
    conn.execute(
        """update yandex_price_quarantine t set confirmed_price = c.price, confirmed_at = now(), last_error = null
           from jsonb_to_recordset(%s) as c(offer_id text, price numeric)
           where t.business_id = %s and t.offer_id = c.offer_id""",
        (Jsonb([{"offer_id": o, "price": str(p)} for o, p in confirmed.items()]), business))


def record_confirm_failure(conn: psycopg.Connection, business: int, offer_ids: list[str], error: str) -> None:
    conn.execute("update yandex_price_quarantine set confirm_failures = confirm_failures + 1, last_error = %s"
                 " where business_id = %s and offer_id = any(%s::text[])", (error[:1000], business, offer_ids))


_UNCONFIRMED = "gone_at is null and (confirmed_at is null or confirmed_price is distinct from quarantine_price)"


def left_count(conn: psycopg.Connection, business: int) -> int:
    return conn.execute(f"select count(*) from yandex_price_quarantine where business_id = %s and {_UNCONFIRMED}",
                        (business,)).fetchone()[0]


def unconfirmed(conn: psycopg.Connection, limit: int = 30) -> tuple[int, list[tuple]]:
    """Offers Yandex still lists (last complete read) that mpsync did not confirm at their current price."""
    where = _UNCONFIRMED
    total = conn.execute(f"select count(*) from yandex_price_quarantine where {where}").fetchone()[0]
    rows = conn.execute(
        f"""select business_id, offer_id, article, price_sent, quarantine_price, verdicts, reason, last_error,
                   first_seen_at
            from yandex_price_quarantine where {where} order by first_seen_at, business_id, offer_id limit %s""",
        (limit,)).fetchall()
    return total, rows


def read_failures(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select business_id, attempted_at, read_at, error from yandex_price_quarantine_read"
                        " where error is not null order by business_id").fetchall()


def verdict_text(verdicts) -> str:
    """The stored verdicts in one line (as yandex_quarantine.QuarantinedOffer.verdict_text)."""
    verdicts = json.loads(verdicts) if isinstance(verdicts, str) else verdicts or []
    return QuarantinedOffer("", None, tuple(verdicts)).verdict_text()


def findings(conn: psycopg.Connection, limit: int = 30) -> list:
    """The freshness check "quarantine": one finding per offer Yandex keeps in quarantine that mpsync did not
    confirm (article, the price mpsync sent, Yandex's verdict, why it was left), at most `limit` and one for the
    rest; and one per business whose last read of the list failed."""
    from mpsync.freshness_checks import Finding

    total, rows = unconfirmed(conn, limit)
    out = []
    for business, offer, article, sent, held, verdicts, reason, error, since in rows:
        why = (f"mpsync vouches for it ({reason}) but its confirm call failed: {error.splitlines()[0][:200]}"
               if error else f"left for a person: {reason or 'not judged yet'}")
        out.append(Finding(f"quarantine:{business}:{offer}", f"Yandex quarantine {article or offer}",
                           f"quarantine: Yandex hides {article or '?'} (offer {offer}, business {business}) since "
                           f"{since:%Y-%m-%d %H:%M %Z}: price sent {sent if sent is not None else '-'}, Yandex's "
                           f"verdict {verdict_text(verdicts)}; {why}. Confirm the price in the Yandex Market "
                           "cabinet if it is right, or send the right one in the price table"))
    if total > len(rows):
        out.append(Finding("quarantine:more", "Yandex quarantine (more)",
                           f"quarantine: {total - len(rows)} more offer(s) in Yandex's price quarantine not "
                           "confirmed by mpsync (select * from yandex_price_quarantine where gone_at is null)"))
    for business, attempted, read_at, error in read_failures(conn):
        out.append(Finding(f"quarantine:read:{business}", f"Yandex quarantine list {business}",
                           f"quarantine: the price quarantine of business {business} could not be read at "
                           f"{attempted:%Y-%m-%d %H:%M %Z} (last read {f'{read_at:%Y-%m-%d %H:%M %Z}' if read_at else 'never'}): "
                           f"{error.splitlines()[0][:200]}"))
    return out
