"""The exchange as an ASGI app (FastAPI): what Airflow's API server mounts (airflow_glue.onec_exchange) and what
the tests serve under uvicorn. HTTP only: every decision is in protocol.Exchange.
"""

from __future__ import annotations

import threading
from typing import Callable

from fastapi import FastAPI, Request as HttpRequest
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mpsync.onec_exchange.protocol import COOKIE, Exchange, Request
PATH = "/exchange"


def create_app(exchange: Callable[[], Exchange]) -> FastAPI:
    """`exchange` is called once, at the first request (connections and config are read then, not at import)."""
    app = FastAPI(title="mpsync: 1C site exchange (type=sale)", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()
    holder: list[Exchange] = []

    def get() -> Exchange:
        with lock:
            if not holder:
                holder.append(exchange())
            return holder[0]

    async def endpoint(request: HttpRequest) -> Response:
        ex = await run_in_threadpool(get)
        limit = ex.cfg.max_upload_bytes
        body = bytearray()
        async for chunk in request.stream():         # capped: a client may send more than it announced
            body += chunk
            if len(body) > limit:
                reply = ex.text("failure", f"запрос больше {limit} байт")
                return Response(reply.body, media_type=reply.content_type)
        req = Request(method=request.method, params=dict(request.query_params), cookies=dict(request.cookies),
                      authorization=request.headers.get("authorization"), body=bytes(body))
        reply = await run_in_threadpool(ex.handle, req)
        response = Response(reply.body, media_type=reply.content_type)
        if reply.cookie:
            response.set_cookie(COOKIE, reply.cookie, httponly=True, path="/")
        return response

    for path in (PATH, "/"):
        app.add_api_route(path, endpoint, methods=["GET", "POST"], include_in_schema=False)
    return app
