"""One HTTP address in front of several simulators of the same marketplace (run command only).

The order-sync simulator and the stock/price-push simulator of a marketplace are separate servers, but the
DAGs reach a marketplace through ONE connection (`ozon_api`, ...), as they reach the real API. The router
sends order calls (paths naming orders or postings: `/v4/posting/fbs/list`, `/v1/businesses/{id}/orders`,
`.../orderService/order/search`) to the order simulator and everything else to the push simulator, and
passes the answer back with its headers (the order sync reads the server clock from `Date`).
"""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "host", "content-length"}


ORDER_PATH = re.compile(r"order|posting", re.IGNORECASE)


class SimulatorRouter(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, order_url: str, push_url: str, port: int = 0, timeout: float = 120):
        self.order, self.push = urlsplit(order_url), urlsplit(push_url)
        self.timeout = timeout
        super().__init__(("127.0.0.1", port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "SimulatorRouter":
        self._thread = threading.Thread(target=self.serve_forever, name="simulator-router", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        backend = self.order if ORDER_PATH.search(path.split("?", 1)[0]) else self.push
        conn = http.client.HTTPConnection(backend.hostname, backend.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.getheaders(), resp.read()
        finally:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorRouter

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            status, reason, resp_headers, data = self.server.forward(self.command, self.path, headers, body)
        except OSError as exc:      # a backend that times out or drops: the client sees a 502, as behind a proxy
            status, reason, resp_headers, data = 502, "Bad Gateway", [], str(exc).encode()
        self.send_response_only(status, reason)
        for k, v in resp_headers:
            if k.lower() not in _HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route

    def log_message(self, format, *args):   # quiet: the run command has its own log
        pass
