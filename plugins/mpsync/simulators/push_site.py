"""The website's WooCommerce-style batch API: `POST /wp-json/wc/v3/products/batch` {"update": [...]}.

At most `max_batch` (100) items (413 above it); HTTP 200 with per-item results in `update[]`; a failed item
is `{"id", "updated", "error": {"code", "message"}}`; a good one echoes `updated` (the sender's marker).
Items are applied one by one, not in a transaction. Basic auth (consumer key / secret) is required.
"""

from __future__ import annotations

from mpsync.simulators.push_common import PushSimulator, Reply

PATH = "/wp-json/wc/v3/products/batch"


class SiteSimulator(PushSimulator):
    max_batch = 100

    def check_auth(self, headers, body):
        if not (headers.get("Authorization") or "").startswith("Basic "):
            raise Reply(401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."})

    def handle(self, method, path, body, record):
        if (method, path) != ("POST", PATH):
            raise Reply(404, {"code": "rest_no_route", "message": "No route was found"})
        items = (body or {}).get("update")
        if not isinstance(items, list):
            raise Reply(400, {"code": "rest_invalid_param", "message": "update must be a list"})
        if len(items) > self.max_batch:
            raise Reply(413, {"code": "rest_batch_too_large", "message": f"at most {self.max_batch} items"})
        keys = [str(i.get("id")) for i in items]
        record["keys"] = keys
        self.in_flight(keys)
        out = []
        for item in items:
            key = str(item.get("id"))
            if key in self.fail_items:
                out.append({"id": item.get("id"), "updated": item.get("updated"),
                            "error": {"code": "woocommerce_rest_invalid_product", "message": self.fail_items[key]}})
                continue
            qty = item.get("stock_quantity")
            if not isinstance(qty, int) or qty < 0:
                out.append({"id": item.get("id"), "updated": item.get("updated"),
                            "error": {"code": "rest_invalid_param", "message": f"stock_quantity {qty!r}"}})
                continue
            self.accept(key, item)
            out.append({"id": item.get("id"), "sku": item.get("sku"), "stock_quantity": qty,
                        "regular_price": item.get("regular_price"), "sale_price": item.get("sale_price"),
                        "updated": item.get("updated")})
        return 200, {"update": out}


def start_site_simulator(port: int = 0) -> SiteSimulator:
    return SiteSimulator(port).start()
