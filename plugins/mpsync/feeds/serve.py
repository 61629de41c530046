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

    def _listing(self):
        folder = Path(self.directory)
        feeds = sorted(p.name for p in folder.glob("*.xml") if not p.name.startswith("."))
        body = "<html><body><h1>Feeds</h1><ul>" + "".join(
            f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in feeds) + "</ul></body></html>"
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        import io

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


def feed_urls(server: ThreadingHTTPServer, files: list[str]) -> list[str]:
    host, port = server.server_address[:2]
    return [f"http://{host}:{port}/{f}" for f in files]
