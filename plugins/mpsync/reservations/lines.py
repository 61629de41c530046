"""An order's lines and its state, from the payload each marketplace answers (orders/<marketplace>.py stores
the payload as read). The shapes are the published ones the adapters read (docs/orders.md):
- Yandex Market `GET /campaigns/{id}/orders`: items[].offerId, .count; status PROCESSING/DELIVERY/...;
- Ozon FBS `/v3/posting/fbs/list`: products[].offer_id, .quantity; status awaiting_packaging/delivering/...;
- Megamarket `order/get`: items[].offerId, .quantity (one item per unit); status NEW/CONFIRMED/.../*CANCEL*;
- Taobao `taobao.trades.sold.get`: orders.order[].outer_iid, .num; status WAIT_*/TRADE_*.
- Wildberries FBS `GET /api/v3/orders`: ONE unit per assembly order: article (the seller's vendorCode), price
  x100; its state from `POST /api/v3/orders/status` (supplierStatus, wbStatus; orders/wildberries.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

OPEN, SHIPPED, CANCELLED = "open", "shipped", "cancelled"


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    offer_id: str
    quantity: Decimal
    price: Decimal | None = None      # per unit, as the marketplace states it (for 1C's order document)


def _qty(value: Any) -> Decimal:
    try:
        q = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return q if q.is_finite() and q > 0 else Decimal(0)


def _price(value: Any) -> Decimal | None:
    # every adapter's line carries "price" (Ozon as a string); absent or junk: no price rather than a guess
    try:
        p = Decimal(str(value)) if value not in (None, "") else None
    except (InvalidOperation, ValueError):
        return None
    return p if p is not None and p.is_finite() and p >= 0 else None


def _lines(items: Any, offer_key: str, qty_key: str) -> list[OrderLine]:
    out: list[OrderLine] = []
    for n, it in enumerate(items if isinstance(items, list) else [], 1):
        if isinstance(it, dict) and it.get(offer_key) not in (None, ""):
            out.append(OrderLine(n, str(it[offer_key]), _qty(it.get(qty_key, 1)), _price(it.get("price"))))
    return out


def _yandex(p: dict) -> tuple[list[OrderLine], str]:
    status = str(p.get("status") or "").upper()
    state = CANCELLED if status.startswith("CANCELLED") else \
        SHIPPED if status in ("DELIVERY", "PICKUP", "DELIVERED") else OPEN
    return _lines(p.get("items"), "offerId", "count"), state


def _ozon(p: dict) -> tuple[list[OrderLine], str]:
    status = str(p.get("status") or "")
    state = CANCELLED if status.startswith("cancelled") else \
        SHIPPED if status in ("delivering", "delivered", "driver_pickup", "sent_by_seller", "arbitration") else OPEN
    return _lines(p.get("products"), "offer_id", "quantity"), state


def _megamarket(p: dict) -> tuple[list[OrderLine], str]:
    status = str(p.get("status") or "").upper()
    state = CANCELLED if "CANCEL" in status or status == "REJECTED" else \
        SHIPPED if status in ("SHIPPED", "DELIVERED", "CUSTOMER_RECEIVED") else OPEN
    return _lines(p.get("items"), "offerId", "quantity"), state


def _taobao(p: dict) -> tuple[list[OrderLine], str]:
    status = str(p.get("status") or "").upper()
    state = CANCELLED if status.startswith("TRADE_CLOSED") else \
        SHIPPED if status in ("WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED") else OPEN
    orders = (p.get("orders") or {}).get("order") if isinstance(p.get("orders"), dict) else p.get("orders")
    return _lines(orders, "outer_iid", "num"), state


def _wildberries(p: dict) -> tuple[list[OrderLine], str]:
    supplier, wb = str(p.get("supplierStatus") or ""), str(p.get("wbStatus") or "")
    state = CANCELLED if supplier in ("cancel", "cancel_carrier") or wb in (
        "canceled", "canceled_by_client", "declined_by_client", "defect", "canceled_by_carrier") else \
        SHIPPED if supplier == "complete" or wb in ("sorted", "sold", "ready_for_pickup", "postponed_delivery",
                                                     "accepted_by_carrier", "sent_to_carrier") else OPEN
    if p.get("article") in (None, ""):
        return [], state          # no article: nothing of ours to reserve
    price = _price(p.get("price"))
    return [OrderLine(1, str(p["article"]), Decimal(1), price / 100 if price is not None else None)], state


def _site(p: dict) -> tuple[list[OrderLine], str]:
    # WooCommerce REST v3 order: line_items[].sku, .quantity; status pending/processing/on-hold/completed/...
    status = str(p.get("status") or "")
    state = CANCELLED if status in ("cancelled", "refunded", "failed", "trash") else \
        SHIPPED if status == "completed" else OPEN
    return _lines(p.get("line_items"), "sku", "quantity"), state


READERS: dict[str, Callable[[dict], tuple[list[OrderLine], str]]] = {
    "yandex": _yandex, "ozon": _ozon, "megamarket": _megamarket, "taobao": _taobao, "site": _site,
    "wildberries": _wildberries}


def order_lines(marketplace: str, payload: dict) -> tuple[list[OrderLine], str]:
    """(lines, state) of one order version; an unknown marketplace reserves nothing."""
    reader = READERS.get(marketplace)
    return reader(payload) if reader and isinstance(payload, dict) else ([], OPEN)
