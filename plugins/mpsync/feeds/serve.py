"""A tiny static HTTP server for the feeds folder, so a person (or a marketplace in a test) can open
each feed by URL: http://127.0.0.1:<port>/yandex.xml, /ozon.xml, /ozon_kgt.xml, /megamarket.xml.

Serves only the published `*.xml` files and a listing; hidden work files (temp files, the `.<feed>.json`
records) and the `rejected/` folder are not served. Production serves the folder with a real web server
over HTTPS (Megamarket needs https for price and stock by feed).
"""

from __future__ import annotations

import functools
import html
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _FeedHandler(SimpleHTTPRequestHandler):
    extensions_map = {".xml": "application/xml; charset=utf-8", "": "application/octet-stream"}

    def _feed_name(self) -> str | None:
        path = unquote(urlsplit(self.path).path)
        name = path.lstrip("/")
        if name == "":
            return ""
        if "/" in name or name.startswith(".") or not name.endswith(".xml"):
            return None
        return name

    def send_head(self):
        name = self._feed_name()
        if name is None:
            self.send_error(404, "Not a feed")
            return None
        if name == "":
            return self._listing()
        return super().send_head()

    def _feed_names(self) -> list[str]:
        return sorted(p.name for p in Path(self.directory).glob("*.xml") if not p.name.startswith("."))

    def _listing(self):
        body = "<html><body><h1>Feeds</h1><ul>" + "".join(
            f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in self._feed_names()
        ) + "</ul></body></html>"
        return self._answer(body.encode("utf-8"), "text/html; charset=utf-8")

    def _answer(self, data: bytes, content_type: str):
        import io

        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)

    def log_message(self, format, *args):     # quiet: the run command has its own log
        pass


def serve_feeds(folder: str | Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start serving `folder` over HTTP in a daemon thread; return the server (its port is
    `server.server_address[1]`, useful with port=0). Stop with `server.shutdown(); server.server_close()`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_FeedHandler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="feeds-http", daemon=True).start()
    return server


class _StoreHandler(_FeedHandler):
    """The feeds of a store that is not on this machine's filesystem (mpsync.feeds.store), read through it."""
    store = None

    def send_head(self):
        name = self._feed_name()
        if name is None:
            self.send_error(404, "Not a feed")
            return None
        if name == "":
            return self._listing()
        data = self.store.read(name)
        if data is None:
            self.send_error(404, "File not found")
            return None
        return self._answer(data, self.extensions_map[".xml"])

    def _feed_names(self) -> list[str]:
        return sorted(p.name for p in self.store.root().iterdir() if p.name.endswith(".xml")
                      and not p.name.startswith("."))


def serve_store(store, host: str = "127.0.0.1", port: int = 0, *, direct: bool = True) -> ThreadingHTTPServer:
    """Serve the feeds of a shared store (mpsync.feeds.store): its folder as is when it is on this machine
    (file://, and direct), else every request read through ObjectStoragePath."""
    local = store.local_root() if direct else None
    if local is not None:
        return serve_feeds(local, host, port)
    handler = type("StoreHandler", (_StoreHandler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="feeds-http", daemon=True).start()
    return server


def feed_urls(server: ThreadingHTTPServer, files: list[str]) -> list[str]:
    host, port = server.server_address[:2]
    return [f"http://{host}:{port}/{f}" for f in files]
