"""Ozon Seller API simulator: `POST /v4/posting/fbs/list` and `POST /v4/posting/fbs/unfulfilled/list`.

Headers Client-Id + Api-Key. fbs/list: `filter.since`/`filter.to` (creation time, required, <= 1 year),
`filter.last_changed_status_date{from,to}` (the only change-time filter; both inclusive here),
`limit` 1..100, `cursor` -> {"result": {"postings": [...], "cursor": "...", "has_next": bool}}.
unfulfilled/list returns the open postings the same way. Errors {code, message, details}.

What Ozon's documentation guarantees, and what it does not (an adversary, not a mirror):
- guaranteed: `limit` <= 100; `has_next` tells whether there is more; `cursor` is what to send for it;
  `since`/`to` by creation (<= 1 year); `last_changed_status_date` filters by the last STATUS change.
- NOT guaranteed, so played against the client: the cursor's stability -- by default it encodes an OFFSET
  (`Hostility.stable_cursor=True`: a keyset cursor); a snapshot across pages: postings in the window change
  between any two page requests and leave it; late visibility of a change (`visibility_lag_ms`); a sort
  order (posting id here); a count (none). The filter's ends are inclusive here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from mpsync.simulators.base import SimServer, parse_epoch as _dt

STATUS = {"NEW": "awaiting_packaging", "PAID": "awaiting_packaging", "PACKED": "awaiting_deliver",
          "SHIPPED": "delivering", "DELIVERED": "delivered", "CANCELLED": "cancelled"}
OPEN = {"awaiting_packaging", "awaiting_deliver"}


def _error(code, message):
    return {"code": code, "message": message, "details": []}


class OzonSimulator(SimServer):
    client_id = "ozon-client"
    api_key = "ozon-key"

    def rate_limited(self):
        return 429, _error(8, "You have reached request rate limit per second"), {}

    def bad_body(self):
        return b'{"result": {"postings": [{"posting_num'

    def handle_api(self, method, path, query, body, headers):
        if headers.get("Client-Id") != self.client_id or headers.get("Api-Key") != self.api_key:
            return 403, _error(7, "Invalid Api-Key or Client-Id")
        now = self.clock.now()
        f = body.get("filter") or {}
        limit = body.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return 400, _error(3, "limit must be 1..100")
        if path == "/v4/posting/fbs/list":
            since, to = _dt(f.get("since")), _dt(f.get("to"))
            if since is None or to is None or to < since or to - since > 366 * 86400:
                return 400, _error(3, "filter.since and filter.to are required, <= 1 year apart")
            lc = f.get("last_changed_status_date")
            if lc:
                lo, hi = _dt(lc.get("from")), _dt(lc.get("to"))
                if lo is None or hi is None:
                    return 400, _error(3, "last_changed_status_date needs from and to")
                match = [v for v in self.store.views_in("modified", lo, hi, now=now) if since <= v.created <= to]
            else:
                match = self.store.views_in("created", since, to, now=now)
        elif path == "/v4/posting/fbs/unfulfilled/list":
            match = [v for v in self.store.views(now) if STATUS[v.status] in OPEN]
        else:
            return 404, _error(5, "not found")
        paged = self.page_of(match, body.get("cursor") or None, limit)
        if paged is None:
            return 400, _error(3, "bad cursor")
        page, nxt = paged
        out = {"result": {"postings": [self.posting(v) for v in page], "cursor": nxt or "", "has_next": nxt is not None}}
        self.store.churn([self.store.orders[v.order_id] for v in match])
        return 200, out

    def posting(self, v) -> dict:
        iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"posting_number": f"{v.order_id}-0001-1", "order_id": v.order_id, "order_number": f"{v.order_id}-0001",
                "status": STATUS[v.status], "in_process_at": iso(v.created), "last_changed_status_date": iso(v.modified),
                "products": [{"offer_id": i["offerId"], "quantity": i["count"], "price": f"{i['price']}.00"} for i in v.items],
                "version": v.version}

    def notification(self, kind: str, o, t: float) -> dict:
        """The push of a change (notify.py): TYPE_NEW_POSTING or TYPE_STATE_CHANGED."""
        at = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head = {"posting_number": f"{o.order_id}-0001-1", "seller_id": 1, "warehouse_id": 1}
        if kind == "created":
            return {"message_type": "TYPE_NEW_POSTING", **head, "in_process_at": at,
                    "products": [{"sku": 1, "quantity": i["count"]} for i in o.items]}
        return {"message_type": "TYPE_STATE_CHANGED", **head, "new_state": STATUS[o.status],
                "changed_state_date": at}

    def truth(self):
        return {f"{o.order_id}-0001-1": o for o in self.store.orders.values()}


def start_ozon_simulator(port: int = 0, seed: int = 0, **kw) -> OzonSimulator:
    return OzonSimulator(port=port, seed=seed, **kw).start()
