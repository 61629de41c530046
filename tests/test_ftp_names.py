"""Issue 17: hostile names on the FTP, and FTPS (explicit TLS) against pyftpdlib's TLS handler."""

from __future__ import annotations

import ftplib
import logging
import os
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyftpdlib.filesystems import AbstractedFS

from mpsync import dropfolder, ftp_names
from mpsync.ftp import FtpClient, FtpError, FtpParams
from mpsync.local.ftpserver import LocalFtp
from mpsync.local.postgres import free_port
from mpsync.settings import load_settings
from tests.stock_helpers import write_test_config


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def test_names_that_are_not_plain_file_names_are_refused():
    bad = ["Ostatki_MP/../../../x.csv", "..", "a\\b.csv", "Ostatki\n.csv", "x\x00.csv", "Ostatki_MP_\udcc0.csv",
           "O" * 250 + ".csv", "a..csv", "\u202eCSV.exe"]
    assert all(ftp_names.problem(n) for n in bad), [n for n in bad if not ftp_names.problem(n)]
    assert ftp_names.problem("Остатки_MP 2026-01-05.xlsx") is None
    assert "\n" not in ftp_names.shown("Ostatki\n.csv") and "\\xc0" in ftp_names.shown("x\udcc0")


class HostileListing(AbstractedFS):
    """A listing as a hostile (or broken) server sends it: raw bytes, names with a line break, a path."""

    def format_mlsx(self, basedir, listing, perms, facts, ignore_err=True):
        fake = [b"Ostatki_MP_new\nline.csv", b"Ostatki_MP_\xcf\xf0\xe8.csv", b"Ostatki_MP_" + b"x" * 240 + b".csv",
                b"Ostatki_MP/../../../x.csv"]
        for name in fake:
            yield b"type=file;size=3;modify=20260101000000; " + name + b"\r\n"
        yield from super().format_mlsx(basedir, listing, perms, facts, ignore_err)


@pytest.fixture
def hostile_ftp(tmp_path):
    server = LocalFtp(tmp_path / "root", free_port(), fs_class=HostileListing).start()
    (tmp_path / "root" / "1c" / "stock").mkdir(parents=True)
    (tmp_path / "root" / "1c" / "stock" / "Ostatki_MP_good.csv").write_text("a;1\n")
    yield FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10)
    server.stop()


def test_hostile_names_in_the_drop_folder_are_skipped_and_reported_once(exchange_dsn, hostile_ftp, cfg, caplog):
    with caplog.at_level(logging.WARNING, logger="mpsync.dropfolder"):
        files = dropfolder.new_stable_files(exchange_dsn, hostile_ftp, cfg.drops["stock"], 0)
        assert [f.name for f in files] == ["Ostatki_MP_good.csv"]      # was: UnicodeDecodeError, every run
        first = [r.getMessage() for r in caplog.records]
        caplog.clear()
        dropfolder.new_stable_files(exchange_dsn, hostile_ftp, cfg.drops["stock"], 0)
        assert [r.getMessage() for r in caplog.records] == []           # reported once, not at every poke
    assert all("skipped on the FTP" in m for m in first) and len(first) == 4, first
    for why in ("not valid text", "control character", "longer than", "path separator"):
        assert any(why in m for m in first), (why, first)
    assert not any("\n" in m for m in first)


class SpoofedListing(AbstractedFS):
    """A server whose listing names a file with path separators (hostile, or a broken server)."""

    def format_mlsx(self, basedir, listing, perms, facts, ignore_err=True):
        yield b"type=file;size=3;modify=20260101000000; Ostatki_MP/../../../x.csv\r\n"
        yield from super().format_mlsx(basedir, listing, perms, facts, ignore_err)


def test_a_spoofed_listing_never_makes_a_download_land_outside_the_work_folder(tmp_path):
    server = LocalFtp(tmp_path / "root", free_port(), fs_class=SpoofedListing).start()
    try:
        (tmp_path / "root" / "1c" / "stock").mkdir(parents=True)
        (tmp_path / "root" / "1c" / "stock" / "Ostatki_MP_1.csv").write_text("a;1\n")
        params = FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10)
        with FtpClient(params) as ftp:
            assert [e.name for e in ftp.list_files("/1c/stock")] == ["Ostatki_MP_1.csv"]
            assert ftp.skipped and "path separator" in ftp.skipped[0]
            with pytest.raises(FtpError, match="not a safe local name"):
                ftp.download("/1c/stock/Ostatki_MP_1.csv", tmp_path / "work" / "stock" / ".." / ".." / "x.csv")
    finally:
        server.stop()
    assert not (tmp_path / "x.csv").exists()


def _self_signed(folder: Path) -> Path:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = folder / "server.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return pem


def test_ftps_explicit_tls_lists_downloads_and_uploads_and_plain_ftp_is_refused(tmp_path):
    pytest.importorskip("OpenSSL")          # pyftpdlib's TLS handler needs pyOpenSSL (requirements.txt)
    pem = _self_signed(tmp_path)
    server = LocalFtp(tmp_path / "root", free_port(), certfile=pem).start()
    try:
        (tmp_path / "root" / "1c" / "stock").mkdir(parents=True)
        (tmp_path / "root" / "1c" / "stock" / "Ostatki_MP_1.csv").write_text("Артикул;1\n", encoding="utf-8")
        tls = FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10, tls=True,
                        tls_ca_file=str(pem))
        with FtpClient(tls) as ftp:
            (entry,) = ftp.list_files("/1c/stock")
            got = ftp.download(entry.path, tmp_path / "got" / entry.name, expected_size=entry.size)
            ftp.upload(got, "/1c/results/back.csv")
        assert got.read_text(encoding="utf-8") == "Артикул;1\n"
        assert (tmp_path / "root" / "1c" / "results" / "back.csv").read_text(encoding="utf-8") == "Артикул;1\n"
        plain = FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10)
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required"):
            with FtpClient(plain):
                pass
        with pytest.raises(ssl.SSLCertVerificationError):     # an unknown certificate is not trusted
            with FtpClient(FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10, tls=True)):
                pass
    finally:
        server.stop()
