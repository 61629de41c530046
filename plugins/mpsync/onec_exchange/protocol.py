"""1C's "обмен с сайтом" for orders (type=sale), as plain Python: a Request in, a Reply out.

The protocol, as 1C's exchange module speaks it (v8.1c.ru "Протокол обмена с сайтом"; 1C-Bitrix "Алгоритм
загрузки документов с сайта" and its sale.export.1c component; CS-Cart's exim_1c description):
  GET  ?type=sale&mode=checkauth   HTTP basic auth -> "success\n<cookie name>\n<cookie value>\nsessid=<key>"
                                   (newer modules append line 4 to every later URL; older ones ignore it)
  GET  ?type=sale&mode=init        -> "zip=yes|no\nfile_limit=<bytes>\nsessid=<key>\nversion=<schema>"
  POST ?type=sale&mode=file&filename=<name>   1C's orders document, in parts of at most file_limit bytes
                                   (a zip when zip=yes) -> "success"
  GET  ?type=sale&mode=query       -> the CommerceML document of the orders to load
  GET  ?type=sale&mode=success     1C loaded what query sent -> "success"
Every later request carries the cookie; errors answer "failure\n<reason>" (HTTP 200: 1C shows the text).
Wrong credentials, a missing or expired cookie, or a sessid that does not match change nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

import psycopg

from mpsync.onec.commerceml_orders import looks_complete, parse_onec_orders
from mpsync.onec.model import FileRefused
from mpsync.onec_exchange import store
from mpsync.onec_exchange.config import ExchangeSettings
from mpsync.onec_exchange.document import render
from mpsync.onec_exchange.orders import order_docs

log = logging.getLogger(__name__)
COOKIE = "MPSYNC_1C"


@dataclass(frozen=True)
class Credentials:
    login: str
    password: str


@dataclass(frozen=True)
class Request:
    method: str
    params: Mapping[str, str]
    cookies: Mapping[str, str] = field(default_factory=dict)
    authorization: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class Reply:
    body: bytes
    content_type: str
    cookie: str | None = None       # value of COOKIE to set (checkauth)


class Failure(Exception):
    """A protocol-level refusal: answered as "failure\\n<reason>"."""


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    for enc in ("utf-8", "cp1251"):     # 1C sends a Cyrillic login in either, depending on the platform
        try:
            login, _, password = raw.decode(enc).partition(":")
            return login, password
        except UnicodeDecodeError:
            continue
    return None


class Exchange:
    """One instance per server; every request opens its own short database connection."""

    def __init__(self, dsn: str, cfg: ExchangeSettings, credentials: Callable[[], Credentials], tz: ZoneInfo,
                 ftp_copy: Callable[[bytes], None] | None = None):
        self.dsn, self.cfg, self.credentials, self.tz, self.ftp_copy = dsn, cfg, credentials, tz, ftp_copy

    def text(self, *lines: str) -> Reply:
        enc = self.cfg.xml_encoding
        return Reply("\n".join(lines).encode(enc, errors="replace"), f"text/plain; charset={enc}")

    def handle(self, req: Request) -> Reply:
        try:
            return self._dispatch(req)
        except Failure as exc:
            return self.text("failure", str(exc))
        except psycopg.Error as exc:
            log.error("1C exchange: database error in mode=%s: %s", req.params.get("mode"), exc)
            return self.text("failure", "база обмена недоступна, повторите обмен позже")

    def _dispatch(self, req: Request) -> Reply:
        kind, mode = req.params.get("type", ""), req.params.get("mode", "")
        if kind != "sale":
            raise Failure(f"этот адрес принимает только обмен заказами (type=sale), запрошено type={kind!r}")
        if mode == "checkauth":
            return self._checkauth(req)
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            session = self._session(conn, req)
            if mode == "init":
                zip_ = "yes" if self.cfg.zip else "no"
                return self.text(f"zip={zip_}", f"file_limit={self.cfg.file_limit}",
                                 f"sessid={store.sessid_for(req.cookies[COOKIE])}",
                                 f"version={self.cfg.schema_version}")
            if mode == "query":
                return self._query(conn, session)
            if mode == "success":
                n = store.confirm(conn, session)
                log.info("1C exchange: success, %d order(s) confirmed", n)
                return self.text("success")
            if mode == "file":
                return self._file(conn, session, req)
        raise Failure(f"неизвестный режим обмена mode={mode!r}")

    def _checkauth(self, req: Request) -> Reply:
        given, expected = _basic(req.authorization), self.credentials()
        if not expected.login or not expected.password:
            log.error("1C exchange: no login/password in the exchange's connection: every checkauth is refused")
            raise Failure("обмен не настроен: нет логина и пароля на стороне mpsync")
        ok = given is not None and hmac.compare_digest(given[0].encode(), expected.login.encode()) \
            and hmac.compare_digest(given[1].encode(), expected.password.encode())
        if not ok:
            log.warning("1C exchange: checkauth refused (login %r)", given[0] if given else None)
            raise Failure("неверный логин или пароль обмена")
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            cookie = store.open_session(conn, expected.login, self.cfg)
        reply = self.text("success", COOKIE, cookie, f"sessid={store.sessid_for(cookie)}")
        return Reply(reply.body, reply.content_type, cookie=cookie)

    def _session(self, conn: psycopg.Connection, req: Request) -> store.Session:
        cookie = req.cookies.get(COOKIE)
        session = store.find_session(conn, cookie, self.cfg) if cookie else None
        if session is None:
            raise Failure("нет сеанса обмена или он устарел: выполните checkauth заново")
        sessid = req.params.get("sessid")
        if sessid is not None and not hmac.compare_digest(sessid, store.sessid_for(cookie)):
            raise Failure("неверный ключ сеанса (sessid)")
        return session

    def _query(self, conn: psycopg.Connection, session: store.Session) -> Reply:
        given_back = store.give_back_unconfirmed(conn, self.cfg)
        claimed = store.claim_orders(conn, self.cfg)
        try:
            docs = order_docs(conn, claimed.rows)
            body = render(docs, self.cfg, self.tz)
            store.remember_sent(conn, session, claimed, [d.modified_at for d in docs])
        except BaseException:
            store.outbox.release(conn, store.SUBSCRIBER, store.OBJECT_TYPE, claimed.token)
            raise
        store.log_event(conn, "query", "ok", len(docs), f"{len(body)} bytes"
                        + (f"; {given_back} unconfirmed order(s) offered again" if given_back else ""))
        log.info("1C exchange: query sent %d order(s), %d bytes", len(docs), len(body))
        if self.ftp_copy is not None and self.cfg.ftp.copies_queries:
            try:
                self.ftp_copy(body)
            except Exception as exc:     # the file copy is a convenience: never fail 1C's HTTP exchange for it
                log.error("1C exchange: copy of the query document to the FTP failed: %s", exc)
        return Reply(body, f"application/xml; charset={self.cfg.xml_encoding}")

    def _file(self, conn: psycopg.Connection, session: store.Session, req: Request) -> Reply:
        name = (req.params.get("filename") or "orders.xml").replace("\\", "/").rsplit("/", 1)[-1][:200]
        data = (session.upload or b"") if session.upload_name == name else b""
        data += req.body
        if len(data) > self.cfg.max_upload_bytes:
            store.save_upload(conn, session, None, None)
            store.log_event(conn, "file", "refused", 0, f"{name}: larger than {self.cfg.max_upload_bytes} bytes")
            raise Failure(f"файл {name} больше {self.cfg.max_upload_bytes} байт")
        # 1C cuts a file into parts of exactly file_limit bytes, only the last is shorter: a full-size part
        # that is not a whole document yet means more parts follow.
        if len(req.body) == self.cfg.file_limit and not looks_complete(data):
            store.save_upload(conn, session, name, data)
            return self.text("success")
        store.save_upload(conn, session, None, None)
        try:
            answers = parse_onec_orders(data, name, max_bytes=self.cfg.max_upload_bytes)
        except FileRefused as exc:
            store.log_event(conn, "file", "refused", 0, str(exc))
            log.warning("1C exchange: 1C's file refused, nothing stored: %s", exc)
            raise Failure(f"файл заказов не принят, ничего не изменено: {exc.reason}") from None
        stored, unknown = store.store_answers(conn, answers)
        if unknown:
            log.warning("1C exchange: %s names %d order(s) we do not have: %s", name, len(unknown),
                        ", ".join(unknown[:20]))
        log.info("1C exchange: %s: %d order(s) of 1C stored", name, stored)
        return self.text("success")
