"""A small FTP client over ftplib: list a drop folder with sizes and times, download whole, upload atomically."""

from __future__ import annotations

import ftplib
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class FtpParams:
    host: str
    port: int = 21
    user: str = "anonymous"
    password: str = ""
    passive: bool = True
    encoding: str = "utf-8"     # cp1251 for servers that send Cyrillic names in the Windows code page
    timeout: float = 60.0


@dataclass(frozen=True)
class FtpEntry:
    path: str
    name: str
    size: int
    modified_at: datetime | None


class FtpError(RuntimeError):
    pass


def _parse_mdtm(value: str) -> datetime:
    value = value.split(".")[0]
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


class FtpClient:
    def __init__(self, params: FtpParams):
        self.params = params
        self.ftp: ftplib.FTP | None = None

    def __enter__(self) -> "FtpClient":
        p = self.params
        ftp = ftplib.FTP(timeout=p.timeout, encoding=p.encoding)
        ftp.connect(p.host, p.port)
        ftp.login(p.user, p.password)
        ftp.set_pasv(p.passive)
        self.ftp = ftp
        return self

    def __exit__(self, *exc) -> None:
        if self.ftp is not None:
            try:
                self.ftp.quit()
            except (ftplib.all_errors):
                self.ftp.close()
            self.ftp = None

    def list_files(self, folder: str) -> list[FtpEntry]:
        """Regular files in a folder with size and modification time (MLSD; NLST+SIZE+MDTM fallback)."""
        assert self.ftp is not None
        try:
            entries = []
            for name, facts in self.ftp.mlsd(folder, facts=["type", "size", "modify"]):
                if facts.get("type") != "file":
                    continue
                modified = _parse_mdtm(facts["modify"]) if "modify" in facts else None
                entries.append(FtpEntry(posixpath.join(folder, name), name, int(facts.get("size", 0)), modified))
            return sorted(entries, key=lambda e: e.name)
        except ftplib.error_perm as exc:
            if str(exc).startswith("550") or "No such directory" in str(exc):
                return []           # folder does not exist (yet): nothing dropped
            if not str(exc).startswith("500"):
                raise
        entries = []
        for path in self.ftp.nlst(folder):
            name = posixpath.basename(path)
            try:
                size = self.ftp.size(posixpath.join(folder, name))
            except ftplib.error_perm:
                continue            # a directory
            mdtm = self.ftp.sendcmd(f"MDTM {posixpath.join(folder, name)}").split()[-1]
            entries.append(FtpEntry(posixpath.join(folder, name), name, int(size or 0), _parse_mdtm(mdtm)))
        return sorted(entries, key=lambda e: e.name)

    def stat(self, path: str) -> FtpEntry | None:
        folder, name = posixpath.split(path)
        return next((e for e in self.list_files(folder) if e.name == name), None)

    def download(self, path: str, local: Path, expected_size: int | None = None) -> Path:
        """Download whole into `local`; a short read (connection dropped) raises instead of returning a part."""
        assert self.ftp is not None
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(local.name + ".part")
        with part.open("wb") as fh:
            self.ftp.retrbinary(f"RETR {path}", fh.write, blocksize=1 << 16)
        got = part.stat().st_size
        if expected_size is not None and got != expected_size:
            part.unlink(missing_ok=True)
            raise FtpError(f"download of {path} incomplete: {got} of {expected_size} bytes")
        part.replace(local)
        return local

    def makedirs(self, folder: str) -> None:
        assert self.ftp is not None
        current = ""
        for piece in [p for p in folder.split("/") if p]:
            current += "/" + piece
            try:
                self.ftp.mkd(current)
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550") and not str(exc).startswith("521"):
                    raise

    def upload(self, local: Path, path: str) -> None:
        """Upload aside then rename, so an FTP user never opens a half-written file."""
        assert self.ftp is not None
        self.makedirs(posixpath.dirname(path))
        tmp = path + ".part"
        with local.open("rb") as fh:
            self.ftp.storbinary(f"STOR {tmp}", fh)
        self.rename(tmp, path)

    def rename(self, src: str, dst: str) -> None:
        assert self.ftp is not None
        self.makedirs(posixpath.dirname(dst))
        try:
            self.ftp.delete(dst)
        except ftplib.error_perm:
            pass
        self.ftp.rename(src, dst)
