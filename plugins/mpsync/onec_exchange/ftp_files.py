"""The exchange's documents as files on the FTP, for 1C set up to load orders from a folder instead of a URL.

One file per exchange, `orders_<YYYYMMDD_HHMMSS>_<n>.xml` in the configured folder (default /1c/orders),
uploaded as `.part` and renamed (mpsync.ftp.FtpClient.upload): 1C never opens a half-written file.
"""

from __future__ import annotations

import posixpath
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from mpsync.ftp import FtpClient, FtpParams


def file_name(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    # the random tail keeps two exchanges within one second from overwriting each other
    return f"orders_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}.xml"


def write_document(params: FtpParams, folder: str, body: bytes, name: str | None = None) -> str:
    """Upload one document atomically; returns its path on the FTP."""
    path = posixpath.join(folder, name or file_name())
    with tempfile.TemporaryDirectory(prefix="mpsync-1c-") as tmp:
        local = Path(tmp) / "orders.xml"
        local.write_bytes(body)
        with FtpClient(params) as ftp:
            ftp.upload(local, path)
    return path
