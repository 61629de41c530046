"""Airflow Connections -> plain parameters for the domain code (credentials never leave Connections)."""

from __future__ import annotations

from urllib.parse import quote

from mpsync.ftp import FtpParams

EXCHANGE_DB = "exchange_db"
ONEC_FTP = "onec_ftp"


def _get(conn_id: str):
    from airflow.sdk import Connection

    return Connection.get(conn_id)


def exchange_dsn(conn_id: str = EXCHANGE_DB) -> str:
    c = _get(conn_id)
    auth = quote(c.login or "postgres", safe="")
    if c.password:
        auth += ":" + quote(c.password, safe="")
    return f"postgresql://{auth}@{c.host or '127.0.0.1'}:{c.port or 5432}/{c.schema or 'exchange'}"


def ftp_params(conn_id: str = ONEC_FTP) -> FtpParams:
    c = _get(conn_id)
    extra = c.extra_dejson or {}
    return FtpParams(
        host=c.host or "127.0.0.1",
        port=int(c.port or 21),
        user=c.login or "anonymous",
        password=c.password or "",
        passive=_flag(extra.get("passive", True)),
        encoding=extra.get("encoding", "utf-8"),
        # FTPS (explicit TLS): extra {"tls": true}, optionally "tls_ca_file" (a self-signed server's certificate)
        tls=_flag(extra.get("tls", False)) or (c.conn_type or "").lower() == "ftps",
        tls_ca_file=extra.get("tls_ca_file") or None,
        tls_verify=_flag(extra.get("tls_verify", True)),
    )


def _flag(value) -> bool:
    return str(value).lower() not in ("false", "0", "no")


# Seller APIs and the website (sync push; the order sync uses the same connection ids).
SITE_API = "site_api"
OZON_API = "ozon_api"
YANDEX_MARKET_API = "yandex_market_api"
MEGAMARKET_API = "megamarket_api"


def push_api(conn_id: str):
    """An HTTP API connection -> mpsync.outbox.ApiParams (base URL, login/password, extras).

    Base URL: extra `base_url`, else scheme (conn type http/https, default https) + host + port + schema as a
    path prefix. Ozon: login = Client-Id, password = Api-Key; Yandex: password = Api-Key, extras campaign_id
    and business_id; Megamarket: password = token; website: login/password = consumer key/secret.
    """
    from mpsync.outbox.clients import ApiParams

    c = _get(conn_id)
    extra = dict(c.extra_dejson or {})
    base = extra.pop("base_url", None)
    if not base:
        host = c.host or "127.0.0.1"
        scheme = c.conn_type if c.conn_type in ("http", "https") else "https"
        base = host if "://" in host else f"{scheme}://{host}" + (f":{c.port}" if c.port else "")
        if c.schema:
            base = base.rstrip("/") + "/" + c.schema.strip("/")
    return ApiParams(base_url=base, login=c.login or "", password=c.password or "", extra=extra)


# Order sync: the Taobao-style increment API (the marketplaces above share their connections with sync push).
TAOBAO_API = "taobao_api"


def order_api(conn_id: str):
    """A marketplace order API connection: base URL, login, password, extras (same rules as push_api).

    Ozon: login = Client-Id, password = Api-Key; Yandex: password = Api-Key, extra business_id; Megamarket:
    password = token; Taobao-style: password = session key.
    """
    return push_api(conn_id)
