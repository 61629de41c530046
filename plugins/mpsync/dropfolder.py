"""The 1C drop folder on the FTP: which files are new, and which have finished uploading.

A file is "new" when its (name, size, modification time) is not in the ledger, and "stable" when the FTP
has shown the same size and time for at least `stable_seconds` (observations are kept in the database, so
a sensor in reschedule mode, which holds no memory between pokes, still sees the history).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from mpsync import ledger
from mpsync.ftp import FtpClient, FtpEntry, FtpParams
from mpsync.settings import Drop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropFile:
    path: str
    name: str
    size: int
    modified_at: str | None     # ISO, so the value survives XCom

    @classmethod
    def from_entry(cls, e: FtpEntry) -> "DropFile":
        return cls(e.path, e.name, e.size, e.modified_at.isoformat() if e.modified_at else None)

    @property
    def modified(self) -> datetime | None:
        return datetime.fromisoformat(self.modified_at) if self.modified_at else None

    def to_dict(self) -> dict:
        return asdict(self)


def matches(name: str, pattern: str) -> bool:
    # Case-insensitive: 1C and staff are not consistent about "ostatki_mp.XLSX".
    return fnmatch.fnmatch(name.lower(), pattern.lower()) and not name.endswith(".part")


def list_candidates(ftp: FtpClient, drop: Drop) -> list[FtpEntry]:
    found = []
    for folder in drop.folders:
        found += [e for e in ftp.list_files(folder) if matches(e.name, drop.pattern)]
    return found


def observe_stable(conn: psycopg.Connection, entries: list[FtpEntry], stable_seconds: int,
                   now: datetime | None = None) -> list[FtpEntry]:
    """Record what the FTP shows now; return the entries unchanged for at least stable_seconds."""
    now = now or datetime.now(timezone.utc)
    stable = []
    for e in entries:
        row = conn.execute(
            """insert into ftp_observation (path, size, modified_at, first_seen) values (%s, %s, %s, %s)
               on conflict (path) do update set
                 first_seen = case when ftp_observation.size = excluded.size
                                    and ftp_observation.modified_at is not distinct from excluded.modified_at
                                   then ftp_observation.first_seen else excluded.first_seen end,
                 size = excluded.size, modified_at = excluded.modified_at
               returning first_seen""",
            (e.path, e.size, e.modified_at, now),
        ).fetchone()
        if now - row[0] >= timedelta(seconds=stable_seconds):
            stable.append(e)
    return stable


def new_stable_files(dsn: str, params: FtpParams, drop: Drop, stable_seconds: int) -> list[DropFile]:
    """One poke of the drop folder: files not yet in the ledger whose upload has finished, oldest first."""
    with FtpClient(params) as ftp:
        entries = list_candidates(ftp, drop)
        skipped = ftp.skipped
    with psycopg.connect(dsn, autocommit=True) as conn:
        report_skipped(conn, skipped)
        known = ledger.known_identities(conn, drop.kind)
        fresh = [e for e in entries if (e.name, e.size, e.modified_at) not in known]
        stable = observe_stable(conn, fresh, stable_seconds)
    stable.sort(key=lambda e: (e.modified_at or datetime.min.replace(tzinfo=timezone.utc), e.name))
    return [DropFile.from_entry(e) for e in stable]


def report_skipped(conn: psycopg.Connection, skipped: list[str]) -> list[str]:
    """Log each unusable name in a drop folder once (not at every poke): remembered in ftp_observation under
    a key no real path has. Returns the ones reported now."""
    new = []
    for line in skipped:
        key = "skipped name: " + line[:2000]          # real paths start with "/"
        row = conn.execute("""insert into ftp_observation (path, size, modified_at) values (%s, 0, null)
                              on conflict (path) do nothing returning path""", (key,)).fetchone()
        if row is not None:
            log.warning("skipped on the FTP, not imported: %s", line)
            new.append(line)
    return new
