"""Shared machinery of the push simulators (website, Ozon, Yandex, Megamarket stock and price APIs).

Each simulator is a real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread) that validates the
published request shape and answers in the published response shape. Test controls:
- `fail_items[key] = message`: a per-item error for that item (APIs with per-item results), or a refused
  whole request containing it (Yandex 400, Megamarket `success: 0`);
- `queue_fault(status=503)` / `queue_fault(status=429, retry_after=1)` / `queue_fault(timeout=2.0)`: the
  next request(s) fail as a whole (the timeout sleeps, then answers: past the client's timeout);
- `on_request(items)`: called while the request is in flight (a test changes the database there);
- `delay`: seconds every request takes; `calls_per_minute`: over it, 429 (Ozon) / 420 (Yandex);
- `received`: every item accepted, in order; `requests`: every request with its keys and answer status;
  `state[key]`: what the receiver holds now.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class Reply(Exception):
    """Raised by a handler to answer with a status and a JSON body."""

    def __init__(self, status: int, body: Any, headers: dict | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class PushSimulator:
    rate_limit_status = 429

    def __init__(self, port: int = 0):
        self.fail_items: dict[str, str] = {}
        self.faults: deque = deque()
        self.on_request: Callable[[list[str]], None] | None = None
        self.delay = 0.0
        self.calls_per_minute = 0
        self.received: list[tuple[str, dict]] = []
        self.requests: list[dict] = []
        self.state: dict[str, dict] = {}
        self.lock = threading.Lock()
        self._calls: deque = deque()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                sim._dispatch(self)

            do_GET = do_POST = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PushSimulator":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- controls ----------------------------------------------------------------------------------
    def queue_fault(self, *, status: int | None = None, timeout: float | None = None, retry_after: float | None = None,
                    times: int = 1) -> None:
        for _ in range(times):
            self.faults.append((status, timeout, retry_after))

    def received_keys(self) -> list[str]:
        return [k for k, _ in self.received]

    def requested_keys(self) -> list[str]:
        """Every item key that reached the receiver in a request, accepted or not."""
        return [k for r in self.requests for k in r["keys"]]

    def reset_log(self) -> None:
        with self.lock:
            self.received.clear()
            self.requests.clear()

    # -- serving -----------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        record = {"method": h.command, "path": h.path, "keys": [], "status": None}
        try:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise Reply(400, {"error": "body is not JSON"})
            self.check_auth(h.headers, body)
            with self.lock:
                fault = self.faults.popleft() if self.faults else None
            if fault:
                status, timeout, retry_after = fault
                if timeout:
                    time.sleep(timeout)
                    raise Reply(504, {"error": "gateway timeout"})
                raise Reply(status, {"error": f"simulated {status}"},
                            {"Retry-After": str(retry_after)} if retry_after is not None else {})
            self._rate_limit()
            status, answer = self.handle(h.command, h.path, body, record)
        except Reply as r:
            status, answer, headers = r.status, r.body, r.headers
        else:
            headers = {}
        record["status"] = status
        with self.lock:
            self.requests.append(record)
        data = json.dumps(answer).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): the answer is lost, as in life

    def _rate_limit(self) -> None:
        if not self.calls_per_minute:
            return
        now = time.monotonic()
        with self.lock:
            while self._calls and self._calls[0] < now - 60:
                self._calls.popleft()
            if len(self._calls) >= self.calls_per_minute:
                raise Reply(self.rate_limit_status, self.rate_limited_body(), {"Retry-After": "1"})
            self._calls.append(now)

    def in_flight(self, keys: list[str]) -> None:
        """The request is being processed: delay and the test's hook happen here."""
        if self.on_request:
            self.on_request(keys)
        if self.delay:
            time.sleep(self.delay)

    def accept(self, key: str, item: dict) -> None:
        with self.lock:
            self.received.append((key, item))
            self.state[key] = item

    # -- per API -----------------------------------------------------------------------------------
    def check_auth(self, headers, body) -> None:
        pass

    def rate_limited_body(self) -> Any:
        return {"error": "rate limited"}

    def handle(self, method: str, path: str, body: Any, record: dict) -> tuple[int, Any]:
        raise Reply(404, {"error": f"no route {method} {path}"})
