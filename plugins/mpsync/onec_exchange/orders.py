"""Stored marketplace orders (as the order source yields them) -> OrderDoc, with the catalog's names and 1C Ид.

Lines and state come from mpsync.reservations.lines.order_lines (the same reading the reservations use), so
1C gets exactly the lines that reserve stock. Goods are found by article; Yandex also by the 1C
nomenclature code (it knows goods that have one by that code, DOMAIN.md section 2), as reservations do.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

from mpsync.onec_exchange.document import DocLine, OrderDoc
from mpsync.reservations.lines import CANCELLED, order_lines


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def shipment_date(marketplace: str, p: dict) -> date | None:
    """The date the seller must ship, where the marketplace's payload says it (published field names)."""
    raw: Any = None
    if marketplace == "yandex":       # delivery.shipments[].shipmentDate, "DD-MM-YYYY"
        shipments = (p.get("delivery") or {}).get("shipments") if isinstance(p.get("delivery"), dict) else None
        raw = shipments[0].get("shipmentDate") if isinstance(shipments, list) and shipments and \
            isinstance(shipments[0], dict) else None
        if isinstance(raw, str) and len(raw) == 10 and raw[2] == "-":
            raw = f"{raw[6:]}-{raw[3:5]}-{raw[:2]}"
    elif marketplace == "ozon":       # shipment_date, ISO date-time
        raw = p.get("shipment_date")
    elif marketplace == "megamarket":  # shippingDate / items[].shipping.shippingDate
        raw = p.get("shippingDate") or next(
            (it.get("shipping", {}).get("shippingDate") for it in p.get("items") or []
             if isinstance(it, dict) and isinstance(it.get("shipping"), dict)), None)
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _products(conn: psycopg.Connection, offers: set[str]) -> tuple[dict, dict]:
    """(article -> (onec_id, name), 1C code -> (article, onec_id, name)) for the offers named."""
    by_article, by_code = {}, {}
    if offers:
        for article, code, onec_id, name in conn.execute(
                "select article, onec_code, onec_id, name from product where article = any(%(o)s)"
                " or onec_code = any(%(o)s)", {"o": list(offers)}):
            if article in offers:
                by_article[article] = (onec_id, name)
            if code in offers:
                by_code.setdefault(code, (article, onec_id, name))
    return by_article, by_code


def order_docs(conn: psycopg.Connection, rows: tuple[tuple[str, str, dict], ...]) -> list[OrderDoc]:
    """The claimed rows as documents, in the order given."""
    parsed = []
    for oid, _marker, o in rows:
        payload = o.get("payload") or {}
        lines, state = order_lines(o["marketplace"], payload)
        parsed.append((oid, o, payload, lines, state))
    by_article, by_code = _products(conn, {ln.offer_id for *_, lines, _s in parsed for ln in lines})
    docs = []
    for oid, o, payload, lines, state in parsed:
        doc_lines = []
        for ln in lines:
            article, onec_id, name = ln.offer_id, None, None
            if ln.offer_id in by_article:
                onec_id, name = by_article[ln.offer_id]
            elif o["marketplace"] == "yandex" and ln.offer_id in by_code:
                article, onec_id, name = by_code[ln.offer_id]
            doc_lines.append(DocLine(article, name or article, ln.quantity, ln.price, onec_id))
        modified = _when(o.get("modified_at"))
        docs.append(OrderDoc(
            object_id=oid, marketplace=o["marketplace"], account=o["account"], order_id=o["order_id"],
            status=o.get("status"), created_at=_when(o.get("created_at")) or modified, modified_at=modified,
            cancelled=state == CANCELLED, shipment_date=shipment_date(o["marketplace"], payload),
            lines=tuple(doc_lines)))
    return docs
