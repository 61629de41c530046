"""Webhook bodies as a source (Megamarket `order/new`): stored durably first, answered second.

`store_webhook` commits the body to `order_webhook_inbox` and only then returns the success answer the
marketplace expects; if the database is down the receiver answers 500 and the marketplace resends.
The next sync run fetches the orders the stored bodies name (`engine._webhooks`) and marks them processed.
`WebhookReceiver` is a small HTTP receiver: POST /<marketplace>/<account>/order/new.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)
ACK = {"data": {}, "meta": {}, "success": 1}


def store_webhook(dsn: str, marketplace: str, account: str, body: dict) -> dict:
    if not isinstance(body, dict):
        raise ValueError("webhook body must be a JSON object")
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        conn.execute("insert into order_webhook_inbox (marketplace, account, body) values (%s, %s, %s)",
                     (marketplace, account, Jsonb(body)))
    return ACK


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dsn: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.dsn = dsn

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def start(self) -> "WebhookReceiver":
        threading.Thread(target=self.serve_forever, daemon=True, name="order-webhooks").start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.info("webhook %s", fmt % args)

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[2:] != ["order", "new"]:
            return self._answer(404, {"success": 0, "error": [{"message": "POST /<marketplace>/<account>/order/new"}]})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            ack = store_webhook(self.server.dsn, parts[0], parts[1], body)
        except ValueError as exc:
            return self._answer(400, {"success": 0, "error": [{"message": str(exc)}]})
        except psycopg.Error as exc:   # not stored: say so, the marketplace resends
            log.error("webhook not stored: %s", exc)
            return self._answer(500, {"success": 0, "error": [{"message": "not stored, resend"}]})
        self._answer(200, ack)
