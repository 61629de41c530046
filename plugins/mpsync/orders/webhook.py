"""Webhook bodies as a source (Megamarket `order/new`) or as hints (Yandex's and Ozon's notifications, notices.py):
stored durably first, answered second.

`store_webhook` commits the body to `order_webhook_inbox` and only then returns the success answer the
marketplace expects; if the database is down the receiver answers 500 and the marketplace resends.
The next sync run fetches the orders the stored bodies name (`engine._webhooks`) and marks them processed.
`WebhookReceiver` is a small HTTP receiver: POST /<marketplace>/<account>/order/new, and
POST /<marketplace>/<account>/notification for the marketplaces in NOTIFIED, answered as each spec asks
(Yandex: its name, version and time; 400 WRONG_EVENT_FORMAT for a body it cannot read; 500 when the
notification is not stored, so the marketplace sends it again). Only order notifications are stored.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import psycopg
from psycopg.types.json import Jsonb

from mpsync.orders.ozon import OzonAdapter
from mpsync.orders.yandex import YandexAdapter

log = logging.getLogger(__name__)
ACK = {"data": {}, "meta": {}, "success": 1}
NOTIFIED = {"yandex": YandexAdapter, "ozon": OzonAdapter}     # whose notifications are read, by whom


def store_webhook(dsn: str, marketplace: str, account: str, body: dict) -> dict:
    if not isinstance(body, dict):
        raise ValueError("webhook body must be a JSON object")
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        store_body(conn, marketplace, account, body)
    return ACK


def store_body(conn: psycopg.Connection, marketplace: str, account: str, body: dict) -> None:
    """A webhook's or notification's body into the inbox (committed by the caller's connection)."""
    conn.execute("insert into order_webhook_inbox (marketplace, account, body) values (%s, %s, %s)",
                 (marketplace, account, Jsonb(body)))


def receive_notification(store: Callable[[dict], None], marketplace: str, raw: bytes) -> tuple[int, dict]:
    """The answer to one notification: read by its marketplace's adapter, stored by `store` (order changes
    only) before a 200; 400 for a body that is not its format; 500 when it could not be stored."""
    kind, now, body = NOTIFIED[marketplace], datetime.now(timezone.utc), None
    try:
        body = json.loads(raw)
        notices = kind.notification(body)
    except (ValueError, RecursionError) as exc:     # not JSON (or nested past reason), or not its format
        return 400, kind.notification_answer(body, now, "format", str(exc))
    if notices:
        try:
            store(body)
        except psycopg.Error as exc:    # not stored: say so, the marketplace sends it again
            log.error("%s notification not stored: %s", marketplace, exc)
            return 500, kind.notification_answer(body, now, "unknown", "not stored, send again")
    return 200, kind.notification_answer(body, now)


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

    db: psycopg.Connection | None = None     # one per client connection (a marketplace keeps it alive)

    def log_message(self, fmt, *args):
        log.info("webhook %s", fmt % args)

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without NODELAY, Nagle + delayed ACK cost 40 ms an answer
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self):
        super().finish()
        if self.db is not None:
            self.db.close()

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _notification(self, marketplace: str, account: str) -> None:
        def store(body: dict) -> None:
            if self.db is None or self.db.closed:
                self.db = psycopg.connect(self.server.dsn, connect_timeout=10, autocommit=True)
            try:
                store_body(self.db, marketplace, account, body)
            except psycopg.Error:
                self.db.close()         # broken or not: the next notification connects anew
                self.db = None
                raise

        self._answer(*receive_notification(store, marketplace, self.rfile.read(int(self.headers.get("Content-Length") or 0))))

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[2] == "notification" and parts[0] in NOTIFIED:
            return self._notification(parts[0], parts[1])
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
