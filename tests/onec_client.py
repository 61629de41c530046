"""A scripted 1C: the site exchange for orders (type=sale) as 1C's exchange module speaks it.

From the public descriptions (v8.1c.ru "Протокол обмена с сайтом"; 1C-Bitrix "Алгоритм загрузки документов с
сайта"): checkauth with HTTP basic auth; the answer's lines 2-3 are the cookie 1C sends back as a `Cookie:`
header it builds itself (no cookie jar); a 4th line `sessid=...`, when present, is appended to every later
URL; init tells zip=yes|no and file_limit; 1C posts its file raw (zipped when zip=yes) in parts of at most
file_limit bytes; query returns the document; success confirms it.
"""

from __future__ import annotations

import base64
import io
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field


class ExchangeFailed(AssertionError):
    pass


@dataclass
class OneC:
    base_url: str                       # e.g. http://127.0.0.1:PORT/exchange
    login: str
    password: str
    version: str = "2.10"
    cookie: tuple[str, str] | None = None
    sessid: str | None = None
    zip: bool = False
    file_limit: int = 0
    log: list[str] = field(default_factory=list)

    def _url(self, mode: str, **extra: str) -> str:
        params = {"type": "sale", "mode": mode, **extra}
        url = f"{self.base_url}?{urllib.parse.urlencode(params)}"
        return url + (f"&{self.sessid}" if self.sessid else "")

    def _call(self, url: str, data: bytes | None = None, auth: bool = False) -> bytes:
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if auth:
            token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        if self.cookie:
            req.add_header("Cookie", f"{self.cookie[0]}={self.cookie[1]}")
        if data is not None:
            req.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = resp.read()
        self.log.append(url)
        return body

    @staticmethod
    def _lines(body: bytes) -> list[str]:
        return body.decode("cp1251").replace("\r", "").split("\n")

    def checkauth(self) -> list[str]:
        lines = self._lines(self._call(self._url("checkauth"), auth=True))
        if lines[0] != "success":
            raise ExchangeFailed("\n".join(lines))
        self.cookie = (lines[1], lines[2])
        self.sessid = lines[3] if len(lines) > 3 and lines[3].startswith("sessid=") else None
        return lines

    def init(self) -> list[str]:
        lines = self._lines(self._call(self._url("init", version=self.version)))
        if lines[0].startswith("failure"):
            raise ExchangeFailed("\n".join(lines))
        values = dict(line.split("=", 1) for line in lines if "=" in line)
        self.zip = values.get("zip") == "yes"
        self.file_limit = int(values.get("file_limit", 0))
        return lines

    def send_file(self, name: str, document: bytes) -> list[str]:
        """1C's orders document: zipped when allowed, cut into parts of file_limit bytes."""
        payload = document
        if self.zip:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(name, document)
            payload, name = buf.getvalue(), name.rsplit(".", 1)[0] + ".zip"
        step = self.file_limit or len(payload)
        answer: list[str] = []
        for start in range(0, len(payload), step):
            answer = self._lines(self._call(self._url("file", filename=name), data=payload[start:start + step]))
            if answer[0] != "success":
                return answer
        return answer

    def query(self) -> bytes:
        body = self._call(self._url("query", version=self.version))
        if body.startswith(b"failure"):
            raise ExchangeFailed(body.decode("cp1251"))
        return body

    def success(self) -> list[str]:
        return self._lines(self._call(self._url("success")))

    def exchange(self) -> bytes:
        """What 1C does on schedule: log in, init, take the orders, confirm them."""
        self.checkauth()
        self.init()
        document = self.query()
        assert self.success()[0] == "success"
        return document
