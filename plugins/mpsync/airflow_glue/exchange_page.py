"""The Exchange page in Airflow's UI (issue 19): a FastAPI app the plugin mounts in the API server.

Behind Airflow's own authentication: every route depends on airflow.api_fastapi.core_api.security.get_user,
the dependency Airflow's REST API uses, so the UI's login cookie (`_token`, a JWT) or a bearer token is
required and checked by the configured auth manager; without one the answer is 401 (a short HTML page
linking to the login). Reading the page needs read access to DAGs; Unpark needs the right to trigger the
sync_push DAG, whose trigger form unparks as well (so both ways ask for the same permission). The 1C site
exchange (mpsync.airflow_glue.onec_exchange) authenticates 1C with its own login instead; this page never
accepts that.

Connections and the feeds config are read per request, never at import (the scheduler loads plugins too).
The data comes from mpsync.exchange_page; the HTML from include/templates/exchange_page.html.j2.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import escape

from mpsync import TEMPLATES_DIR
from mpsync import exchange_page as ep

URL_PREFIX = "/mpsync"           # the page: <api server>/mpsync/exchange
PAGE_PATH = "/exchange"
SYNC_PUSH_DAG = "sync_push"      # its trigger form unparks too: the Unpark button asks for the same right

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_ENV.filters["age"] = ep.human_age
_ENV.filters["size"] = ep.human_size
_ENV.filters["ts"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if hasattr(v, "strftime") else (v or "—")

# Query parameters of each list's cursor (each list pages on its own; the others keep their place).
CURSORS = ("stock", "price", "catalog", "rejects", "parked", "accounts", "feed_rej")


def _airflow_dsn() -> str:
    from mpsync.airflow_glue.connections import exchange_dsn

    return exchange_dsn()


def _feeds_config():
    from mpsync.feeds.config import feeds_config

    return feeds_config()


def render(dsn: str, feeds_cfg, query: dict[str, str], *, user: str, may_unpark: bool, path: str,
           feeds_error: str | None = None) -> str:
    """The whole page for one request's query parameters (plain: testable without a server)."""
    q = {k: v for k, v in query.items() if v not in ("", None)}

    def link(**changes) -> str:
        new = {**q, **changes}
        return path + "?" + urlencode({k: v for k, v in new.items() if v not in ("", None)})

    def int_param(name: str) -> int | None:
        if not q.get(name):
            return None
        try:
            return int(q[name])
        except ValueError:
            raise ep.BadCursor(f"{name} must be a number") from None

    feed = q.get("feed")
    with ep.connect(dsn) as conn:
        files = {k: ep.files_page(conn, k, after=q.get(k)) for k in ep.KINDS}
        rejects = ep.rejects_page(conn, article=q.get("article"), file=q.get("file"),
                                  file_id=int_param("file_id"), after=q.get("rejects"))
        parked = ep.parked_page(conn, subscriber=q.get("subscriber"), object_id=q.get("object_id"),
                                after=q.get("parked"))
        accounts = ep.order_accounts_page(conn, after=q.get("accounts"))
        feeds = ep.feeds_summary(conn, feeds_cfg) if feeds_cfg is not None else []
        feed_rej = (ep.feed_rejections_page(conn, feed, article=q.get("feed_article"), after=q.get("feed_rej"))
                    if feed else None)
    return _ENV.get_template("exchange_page.html.j2").render(
        files=files, rejects=rejects, parked=parked, accounts=accounts, feeds=feeds, feed=feed,
        feed_rej=feed_rej, q=q, link=link, user=user, may_unpark=may_unpark, path=path,
        unparked=q.get("unparked"), feeds_error=feeds_error)


def create_app(dsn: Callable[[], str] = _airflow_dsn, feeds_cfg: Callable[[], object] = _feeds_config):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="mpsync: Exchange page", docs_url=None, redoc_url=None, openapi_url=None)

    def may_read(user) -> bool:
        return get_auth_manager().is_authorized_dag(method="GET", user=user)

    def may_unpark(user) -> bool:
        return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                    details=DagDetails(id=SYNC_PUSH_DAG), user=user)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        # A person in a browser gets a page pointing at the login, not a JSON body.
        login = str(request.base_url).rstrip("/") + "/auth/login?" + urlencode({"next": str(request.url)})
        body = (f"<!doctype html><title>Exchange</title><p>{exc.status_code}: {escape(str(exc.detail))}."
                f" <a href=\"{escape(login)}\">Log in to Airflow</a></p>")
        return HTMLResponse(body, status_code=exc.status_code)

    @app.get(PAGE_PATH, response_class=HTMLResponse)
    def page(request: Request, user=Depends(get_user)):
        if not may_read(user):
            raise HTTPException(403, "not allowed to read DAGs")
        path = request.scope.get("root_path", "") + PAGE_PATH
        feeds, feeds_error = None, None
        try:
            feeds = feeds_cfg()
        except Exception as exc:  # a broken feeds section must not hide the rest of the page
            feeds_error = f"{type(exc).__name__}: {exc}"
        try:
            html = render(dsn(), feeds, dict(request.query_params), user=user.get_name(),
                          may_unpark=may_unpark(user), path=path, feeds_error=feeds_error)
        except ep.BadCursor as exc:
            raise HTTPException(400, str(exc)) from None
        return HTMLResponse(html)

    @app.post(PAGE_PATH + "/unpark")
    def unpark(request: Request, subscriber: str = Form(...), object_id: list[str] = Form(...),
               back: str = Form(""), user=Depends(get_user)):
        _same_origin(request)
        if not may_unpark(user):
            raise HTTPException(403, f"not allowed to trigger {SYNC_PUSH_DAG}")
        try:
            done = ep.unpark(dsn(), subscriber, object_id)
        except ep.BadCursor as exc:
            raise HTTPException(400, str(exc)) from None
        path = request.scope.get("root_path", "") + PAGE_PATH
        query = urlsplit(back).query if back.startswith(path) else ""
        sep = "&" if query else ""
        return RedirectResponse(f"{path}?{query}{sep}unparked={len(done)}", status_code=303)

    return app


def _same_origin(request: Request) -> None:
    """A form post must come from this server's own pages (the login cookie rides along cross-site posts in
    older browsers): an Origin naming another host is refused."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site form post refused")


def fastapi_app():
    return create_app()
