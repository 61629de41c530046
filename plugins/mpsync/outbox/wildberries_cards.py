"""The seller's Wildberries cards -> `wildberries_card` (migration 0022): our article -> WB's nmID and chrtId.

`POST /content/v2/get/cards/list` (content-api host; WB OpenAPI specs/02-products.yaml): 100 cards a page
(`settings.cursor.limit`), the next page asked with the last answer's `cursor.updatedAt` and `cursor.nmID`,
done when `cursor.total` < limit. Cards carry `nmID`, `vendorCode` (the seller's article: ours) and
`sizes[].chrtID` with `sizes[].skus` (barcodes). Content category limit: 100 requests a minute.

The list is asked in ascending `updatedAt` order: a card edited while we page moves to the END of the list,
so it is read again later instead of being skipped. Rows not seen by a complete refresh are removed (the card
was deleted); an incomplete refresh removes nothing. A refresh runs before a push at most every
`cards_refresh_hours` (the mark is a `sync` row), and a card that appears or changes moves `changed_at`, which
the Wildberries push sources scan: the product is sent again with its new ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from mpsync.outbox.clients import ApiParams, RequestFailed
from mpsync.outbox.wildberries import CONTENT_LIMIT, WildberriesClient

log = logging.getLogger(__name__)
MARK_TYPE, MARK_SUBSCRIBER = "wildberries_cards", "wildberries"
PAGE = 100
MAX_PAGES = 20_000          # 2 million cards: far past any seller; a cursor that never ends fails the refresh


class CardsClient(WildberriesClient):
    category = "content"
    limit = CONTENT_LIMIT


@dataclass(frozen=True)
class CardsRefresh:
    account: str
    cards: int
    sizes: int
    changed: int
    removed: int
    requests: int


def _rows(cards: list) -> list[tuple[int, int, str, list[str]]]:
    rows = []
    for c in cards:
        if not isinstance(c, dict) or not c.get("nmID") or not c.get("vendorCode"):
            continue
        for s in c.get("sizes") or []:
            if isinstance(s, dict) and s.get("chrtID"):
                rows.append((int(s["chrtID"]), int(c["nmID"]), str(c["vendorCode"]),
                             [str(b) for b in (s.get("skus") or [])]))
    return rows


def _store(conn: psycopg.Connection, account: str, rows: list, started: datetime, complete: bool) -> tuple[int, int]:
    with conn.transaction():
        changed = 0
        if rows:
            changed = conn.execute(
                """
                with r as (select * from unnest(%(chrt)s::bigint[], %(nm)s::bigint[], %(vc)s::text[], %(bc)s::text[])
                                   as r(chrt_id, nm_id, vendor_code, codes)),
                w as (
                    insert into wildberries_card as c (account, chrt_id, nm_id, vendor_code, barcodes)
                    select %(acc)s, r.chrt_id, r.nm_id, r.vendor_code,
                           case when r.codes = '' then '{}'::text[] else string_to_array(r.codes, ' ') end
                    from r
                    on conflict (account, chrt_id) do update set
                        nm_id = excluded.nm_id, vendor_code = excluded.vendor_code, barcodes = excluded.barcodes,
                        seen_at = now(),
                        changed_at = case when (c.nm_id, c.vendor_code, c.barcodes)
                                               is distinct from (excluded.nm_id, excluded.vendor_code, excluded.barcodes)
                                          then now() else c.changed_at end
                    returning c.changed_at = now() as moved
                )
                select count(*) filter (where moved) from w
                """,
                {"acc": account, "chrt": [r[0] for r in rows], "nm": [r[1] for r in rows],
                 "vc": [r[2] for r in rows], "bc": [" ".join(r[3]) for r in rows]}).fetchone()[0]
        removed = 0
        if complete:
            removed = conn.execute("delete from wildberries_card where account = %s and seen_at < %s",
                                   (account, started)).rowcount
        conn.execute(
            "insert into sync (object_type, object_id, subscriber, sync_updated, synced_at) values (%s, %s, %s, %s, now())"
            " on conflict (object_type, object_id, subscriber) do update set sync_updated = excluded.sync_updated,"
            " synced_at = now()", (MARK_TYPE, account, MARK_SUBSCRIBER, started.isoformat()))
    return changed, removed


def refresh_cards(conn: psycopg.Connection, client: CardsClient, account: str) -> CardsRefresh:
    """Read every card (paged) and store its sizes; raises RequestFailed and stores nothing on a failed page."""
    started = conn.execute("select now()").fetchone()[0]
    cursor: dict = {"limit": PAGE}
    cards, calls0 = [], client.calls
    for _ in range(MAX_PAGES):
        body = {"settings": {"sort": {"ascending": True}, "cursor": cursor, "filter": {"withPhoto": -1}}}
        answer = client._json(client._wb("POST", "/content/v2/get/cards/list", body=body))
        page = answer.get("cards") if isinstance(answer, dict) else None
        got = answer.get("cursor") if isinstance(answer, dict) else None
        if not isinstance(page, list) or not isinstance(got, dict):
            raise RequestFailed(f"cards list: answer lacks cards[] or cursor: {str(answer)[:200]}")
        cards.extend(page)
        if int(got.get("total") or 0) < PAGE:
            break
        cursor = {"limit": PAGE, "updatedAt": got.get("updatedAt"), "nmID": got.get("nmID")}
    else:
        raise RequestFailed(f"cards list: more than {MAX_PAGES} pages; refresh abandoned, nothing removed")
    rows = list({r[0]: r for r in _rows(cards)}.values())    # a card read twice (moved while paging): once
    changed, removed = _store(conn, account, rows, started, complete=True)
    result = CardsRefresh(account, len({r[1] for r in rows}), len(rows), changed, removed, client.calls - calls0)
    log.info("wildberries cards of %s: %d card(s), %d size(s), %d new or changed, %d removed, %d request(s)",
             account, result.cards, result.sizes, changed, removed, result.requests)
    return result


def refresh_if_due(dsn: str, api: ApiParams, account: str, every_hours: float, *, force: bool = False,
                   timeout: float = 30) -> CardsRefresh | None:
    """Refresh the cards when the last refresh is older than `every_hours` (or never ran)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("select sync_updated from sync where object_type = %s and object_id = %s"
                           " and subscriber = %s", (MARK_TYPE, account, MARK_SUBSCRIBER)).fetchone()
        now = conn.execute("select now()").fetchone()[0]
        last = datetime.fromisoformat(row[0]) if row and row[0] else None
        if not force and last is not None and now - last < timedelta(hours=every_hours):
            return None
        client = CardsClient(api, timeout=timeout)
        try:
            return refresh_cards(conn, client, account)
        finally:
            client.close()
