"""Order notifications and webhooks as an ASGI app (FastAPI): what Airflow's API server mounts at /orders
(airflow_glue.order_notifications) and what the tests serve under uvicorn. HTTP only: reading and storing
is webhook.py's, the same as its small stand-alone receiver's.

POST /<marketplace>/<account>/notification (Yandex, Ozon: hints, notices.py) and
POST /<marketplace>/<account>/order/new (Megamarket: orders fetched by id next run). Only configured
accounts are served (404 otherwise): a stranger cannot fill the inbox of an account that does not exist.
An account added to the config is served without a restart: an unknown one makes the app read the config
again, at most once every REREAD seconds (so a stranger asking for made-up accounts costs one read per REREAD).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mpsync.orders.webhook import NOTIFIED, receive_notification, store_body, store_webhook

MAX_BYTES = 1 << 20          # a notification is a few hundred bytes; more is not one
REREAD = 30.0                # seconds: how often an unknown account may make the app read the config again


def create_app(dsn: Callable[[], str], accounts: Callable[[], set[tuple[str, str]]],
               reread: float = REREAD) -> FastAPI:
    """`dsn` and `accounts` are called at the first request (connections and config are read then);
    `accounts` again when an unknown one is asked, at most once every `reread` seconds."""
    app = FastAPI(title="mpsync: order notifications", docs_url=None, redoc_url=None, openapi_url=None)
    lock, held = threading.Lock(), {}

    def settings(marketplace: str, account: str) -> tuple[str, set]:
        with lock:
            if not held:
                held["dsn"], held["accounts"], held["at"] = dsn(), accounts(), time.monotonic()
            elif (marketplace, account) not in held["accounts"] and time.monotonic() - held["at"] >= reread:
                held["accounts"], held["at"] = accounts(), time.monotonic()
            return held["dsn"], held["accounts"]

    async def body(request: Request) -> bytes | None:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BYTES:
                return None
        return bytes(raw)

    @app.post("/{marketplace}/{account}/notification", include_in_schema=False)
    async def notification(marketplace: str, account: str, request: Request):
        url, known = await run_in_threadpool(settings, marketplace, account)
        if marketplace not in NOTIFIED or (marketplace, account) not in known:
            return JSONResponse({"error": {"type": "UNKNOWN", "message": "no such account"}}, status_code=404)
        raw = await body(request)

        def receive() -> tuple[int, dict]:
            def store(b: dict) -> None:
                with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                    store_body(conn, marketplace, account, b)
            return receive_notification(store, marketplace, raw if raw is not None else b"[")

        status, answer = await run_in_threadpool(receive)
        return JSONResponse(answer, status_code=status)

    @app.post("/{marketplace}/{account}/order/new", include_in_schema=False)
    async def order_new(marketplace: str, account: str, request: Request):
        url, known = await run_in_threadpool(settings, marketplace, account)
        if (marketplace, account) not in known:
            return JSONResponse({"success": 0, "error": [{"message": "no such account"}]}, status_code=404)
        raw = await body(request)
        try:
            ack = await run_in_threadpool(store_webhook, url, marketplace, account, json.loads(raw or b""))
        except (ValueError, RecursionError) as exc:
            return JSONResponse({"success": 0, "error": [{"message": str(exc)}]}, status_code=400)
        except psycopg.Error:
            return JSONResponse({"success": 0, "error": [{"message": "not stored, send again"}]}, status_code=500)
        return JSONResponse(ack)

    return app
