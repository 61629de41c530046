"""Which price file a run takes: the operator's pick in the trigger form, or the oldest new one."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpClient, FtpParams
from mpsync.settings import Settings


class PriceFileChoiceError(ValueError):
    """The operator's file choice in the trigger form is not a file waiting on the FTP."""



def waiting_files(params: FtpParams, cfg: Settings, dsn: str | None = None) -> list[DropFile]:
    """Files in the price drop folder(s) not yet in the ledger, any name (staff may upload a file for a
    dry run under a name the sensor ignores, e.g. CHECK_prices.xlsx), oldest first."""
    drop = cfg.drops["price"]
    with FtpClient(params) as ftp:
        entries = [e for folder in drop.folders for e in ftp.list_files(folder) if not e.name.endswith(".part")]
    known: set = set()
    if dsn is not None:
        with psycopg.connect(dsn) as conn:
            known = ledger.known_identities(conn, "price")
    fresh = [e for e in entries if (e.name, e.size, e.modified_at) not in known]
    fresh.sort(key=lambda e: (e.modified_at or datetime.min.replace(tzinfo=timezone.utc), e.name))
    return [DropFile.from_entry(e) for e in fresh]


def choose_file(params: FtpParams, cfg: Settings, wanted: str | None, dsn: str | None = None) -> dict | None:
    """Validate the trigger form's file choice against the FTP; None when no file was chosen (sensor run)."""
    wanted = (wanted or "").strip()
    if not wanted:
        return None
    files = waiting_files(params, cfg, dsn)
    hit = [f for f in files if f.name == wanted or f.path == wanted] or \
          [f for f in files if f.name.casefold() == wanted.casefold()]
    if len(hit) != 1:
        listing = ", ".join(f.name for f in files) or "none"
        raise PriceFileChoiceError(
            f"price file {wanted!r} is not waiting in {list(cfg.drops['price'].folders)} on the FTP. "
            f"Files waiting: {listing}")
    return hit[0].to_dict()


