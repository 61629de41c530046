"""A real FTP server (pyftpdlib) on 127.0.0.1 for the run command and the tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer


@dataclass
class LocalFtp:
    root: Path
    port: int
    user: str = "onec"
    password: str = "onec-local"
    fs_class: type | None = None        # a pyftpdlib AbstractedFS subclass (tests use one that misbehaves)
    certfile: Path | None = None        # PEM with key and certificate: FTPS (explicit TLS) required
    _server: ThreadedFTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def url(self) -> str:
        return f"ftp://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def _build(self) -> ThreadedFTPServer:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = DummyAuthorizer()
        auth.add_user(self.user, self.password, str(self.root), perm="elradfmwMT")
        if self.certfile is not None:
            from pyftpdlib.handlers import TLS_FTPHandler

            # Explicit TLS, and nothing in clear: no login and no data connection before AUTH TLS / PROT P.
            handler = type("Handler", (TLS_FTPHandler,), {"certfile": str(self.certfile),
                                                           "tls_control_required": True,
                                                           "tls_data_required": True})
        else:
            handler = type("Handler", (FTPHandler,), {})
        handler.authorizer = auth
        handler.passive_ports = None
        handler.use_encoding = "utf8"
        handler.banner = "mpsync local FTP"
        if self.fs_class is not None:
            handler.abstracted_fs = self.fs_class
        # Its own IOLoop: pyftpdlib's default is a process-wide singleton, so stopping one server (a test's
        # misbehaving FTP) would otherwise close every other server's connections in the same process.
        server = ThreadedFTPServer(("127.0.0.1", self.port), handler, ioloop=IOLoop())
        server.max_cons = 64
        # Likewise its own stop flag: ThreadedFTPServer keeps it on the CLASS, so close_all() of one server
        # would make every other server in the process drop each new connection.
        server._exit = threading.Event()
        server._lock = threading.Lock()
        return server

    def start(self) -> "LocalFtp":
        self._server = self._build()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"handle_exit": False},
                                        daemon=True, name="local-ftp")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = self._build()
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close_all()
            self._server = None
