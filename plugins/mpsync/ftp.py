"""A small FTP client over ftplib: list a drop folder with sizes and times, download whole, upload atomically."""

from __future__ import annotations

import ftplib
import posixpath
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mpsync import ftp_names as names


@dataclass(frozen=True)
class FtpParams:
    host: str
    port: int = 21
    user: str = "anonymous"
    password: str = ""
    passive: bool = True
    encoding: str = "utf-8"     # cp1251 for servers that send Cyrillic names in the Windows code page
    timeout: float = 60.0
    tls: bool = False           # FTPS, explicit (AUTH TLS on the same port): passwords and files encrypted
    tls_ca_file: str | None = None      # trust this CA / self-signed certificate instead of the system's
    tls_verify: bool = True


@dataclass(frozen=True)
class FtpEntry:
    path: str
    name: str
    size: int
    modified_at: datetime | None


class FtpError(RuntimeError):
    pass


def _tls_context(p: FtpParams) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=p.tls_ca_file)
    if not p.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _parse_mdtm(value: str) -> datetime:
    value = value.split(".")[0]
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


class FtpClient:
    def __init__(self, params: FtpParams):
        self.params = params
        self.ftp: ftplib.FTP | None = None

    def __enter__(self) -> "FtpClient":
        p = self.params
        # Lenient decoding: a name in another encoding is listed (and skipped as undecodable), not a crash.
        encoding = names.lenient_codec(p.encoding)
        if p.tls:
            ftp: ftplib.FTP = ftplib.FTP_TLS(timeout=p.timeout, encoding=encoding, context=_tls_context(p))
        else:
            ftp = ftplib.FTP(timeout=p.timeout, encoding=encoding)
        ftp.connect(p.host, p.port)
        ftp.login(p.user, p.password)           # FTP_TLS: AUTH TLS first, so the password is encrypted
        if p.tls:
            ftp.prot_p()                        # and the data connections (listings, files) too
        ftp.set_pasv(p.passive)
        self.ftp = ftp
        self.skipped: list[str] = []            # names refused by list_files (mpsync.ftp_names.problem)
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
            for name, facts in self._mlsd(folder):
                if facts.get("type") != "file" or self._unsafe(folder, name):
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
            name = posixpath.basename(path) if path.startswith(folder.rstrip("/") + "/") else path
            if self._unsafe(folder, name):
                continue
            try:
                size = self.ftp.size(posixpath.join(folder, name))
            except ftplib.error_perm:
                continue            # a directory
            mdtm = self.ftp.sendcmd(f"MDTM {posixpath.join(folder, name)}").split()[-1]
            entries.append(FtpEntry(posixpath.join(folder, name), name, int(size or 0), _parse_mdtm(mdtm)))
        return sorted(entries, key=lambda e: e.name)

    def _mlsd(self, folder: str) -> list[tuple[str, dict[str, str]]]:
        """MLSD lines as (name, facts); a line that is not `facts; name` (a name with a line break splits
        its line in two) is reported like a bad name, where ftplib.mlsd raised on it."""
        assert self.ftp is not None
        self.ftp.sendcmd("OPTS MLST type;size;modify;")
        chunks: list[bytes] = []
        self.ftp.retrbinary(f"MLSD {folder}", chunks.append)        # raw: a bare LF inside a name stays seen
        data = b"".join(chunks).decode(self.ftp.encoding)
        lines = [ln for ln in data.split("\r\n" if "\r\n" in data else "\n") if ln]
        out = []
        for line in lines:
            facts_text, sep, name = line.partition(" ")
            facts = dict(f.partition("=")[::2] for f in facts_text.lower().rstrip(";").split(";"))
            if not sep or not facts_text.endswith(";") or "type" not in facts:
                self.skipped.append(f"{folder}: a listing line that is no file entry: {names.shown(line)}")
                continue
            out.append((name, facts))
        return out

    def _unsafe(self, folder: str, name: str) -> bool:
        problem = names.problem(name)
        if problem:
            self.skipped.append(f"{posixpath.join(folder, names.shown(name))}: {problem}")
        return problem is not None

    def stat(self, path: str) -> FtpEntry | None:
        folder, name = posixpath.split(path)
        return next((e for e in self.list_files(folder) if e.name == name), None)

    def download(self, path: str, local: Path, expected_size: int | None = None) -> Path:
        """Download whole into `local`; a short read (connection dropped) raises instead of returning a part."""
        assert self.ftp is not None
        if names.problem(local.name) or ".." in local.parts:
            raise FtpError(f"refusing to write {names.shown(str(local))}: not a safe local name")
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

    def folders(self, folder: str) -> list[str]:
        """Names of the sub-folders of a folder (MLSD type=dir); [] when the folder does not exist."""
        assert self.ftp is not None
        try:
            return sorted(name for name, facts in self._mlsd(folder)
                          if facts.get("type") == "dir" and not self._unsafe(folder, name))
        except ftplib.error_perm as exc:
            if str(exc).startswith("550"):
                return []
            raise

    def delete(self, path: str) -> None:
        assert self.ftp is not None
        self.ftp.delete(path)

    def remove_folder(self, folder: str) -> int:
        """Delete a folder with the files in it (one level: archive day folders); returns the files deleted."""
        assert self.ftp is not None
        files = self.list_files(folder)
        for entry in files:
            self.ftp.delete(entry.path)
        self.ftp.rmd(folder)
        return len(files)
