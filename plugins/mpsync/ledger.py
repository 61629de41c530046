"""The ledger of imported 1C files (table import_file) and the checkpoints kept in the sync table.

A file's identity is (kind, name, size, FTP modification time); its content hash is recorded after download,
so the same content dropped again under the same name is recognised and not applied twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from mpsync.onec.model import Reject

CHECKPOINT = "checkpoint"
CHECKPOINT_SUBSCRIBER = "mpsync"


@dataclass(frozen=True)
class LedgerEntry:
    import_file_id: int
    kind: str
    name: str
    status: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


FINAL = ("applied", "unchanged", "refused", "failed", "stale")


def known_identities(conn: psycopg.Connection, kind: str) -> set[tuple[str, int, datetime | None]]:
    """Files whose import ended. One still 'received' or 'parsed' died on the way (issue 17): it is offered
    again, and given up on after imports.max_attempts (mpsync.imports.give_up), never silently skipped."""
    rows = conn.execute("select name, size, modified_at from import_file where kind = %s and status = any(%s)",
                        (kind, list(FINAL)))
    return {(r[0], r[1], r[2]) for r in rows}


def register(conn: psycopg.Connection, *, kind: str, ftp_path: str, name: str, size: int,
             modified_at: datetime | None, content_sha256: str) -> tuple[LedgerEntry, LedgerEntry | None]:
    """Record a downloaded file; return (entry, earlier entry with the same content that was applied, if any).

    Registering the same identity twice returns the existing entry (a re-run of the same DAG run).
    """
    row = conn.execute(
        """insert into import_file (kind, ftp_path, name, size, modified_at, content_sha256, attempts)
           values (%s, %s, %s, %s, %s, %s, 1)
           on conflict (kind, name, size, modified_at)
           do update set content_sha256 = excluded.content_sha256, ftp_path = excluded.ftp_path,
                         attempts = import_file.attempts + 1
           returning import_file_id, status""",
        (kind, ftp_path, name, size, modified_at, content_sha256),
    ).fetchone()
    entry = LedgerEntry(row[0], kind, name, row[1])
    same = conn.execute(
        """select import_file_id, name, status from import_file
           where kind = %s and content_sha256 = %s and import_file_id <> %s and status in ('applied', 'unchanged')
           order by import_file_id desc limit 1""",
        (kind, content_sha256, entry.import_file_id),
    ).fetchone()
    return entry, (LedgerEntry(same[0], kind, same[1], same[2]) if same else None)


def update(conn: psycopg.Connection, import_file_id: int, **fields) -> None:
    if "layout" in fields and fields["layout"] is not None:
        fields["layout"] = Jsonb(fields["layout"])
    if fields.get("status") in ("applied", "unchanged", "refused", "failed", "stale"):
        fields.setdefault("finished_at", datetime.now(timezone.utc))
    cols = ", ".join(f"{k} = %s" for k in fields)
    conn.execute(f"update import_file set {cols} where import_file_id = %s", (*fields.values(), import_file_id))


def record_rejects(conn: psycopg.Connection, import_file_id: int, rejects: list[Reject]) -> None:
    """Replace the file's rejects (idempotent for re-runs)."""
    conn.execute("delete from import_reject where import_file_id = %s", (import_file_id,))
    with conn.cursor().copy(
        "copy import_reject (import_file_id, row_no, column_name, article, reason) from stdin"
    ) as copy:
        for r in rejects:
            copy.write_row((import_file_id, r.row, r.column, r.article, r.reason))


def rejects_of(conn: psycopg.Connection, import_file_id: int) -> list[Reject]:
    name = conn.execute("select name from import_file where import_file_id = %s", (import_file_id,)).fetchone()[0]
    rows = conn.execute(
        "select row_no, column_name, article, reason from import_reject where import_file_id = %s order by row_no",
        (import_file_id,),
    )
    return [Reject(name, *r) for r in rows]


def made_at(report_time: datetime | None, ftp_modified: datetime | None, onec_tz) -> datetime:
    """When a 1C file was made: the time in its own header if it says, else the FTP time; 1C writes its own
    wall-clock time, so a naive time is in the configured 1C zone."""
    made = report_time or ftp_modified or datetime.now(timezone.utc)
    return made if made.tzinfo else made.replace(tzinfo=onec_tz)


def newest_applied(conn: psycopg.Connection, kind: str, import_file_id: int) -> tuple[str, datetime] | None:
    """(name, time made) of the newest file of a kind already applied, other than this one."""
    row = conn.execute(
        """select name, report_time from import_file where kind = %s and status in ('applied', 'unchanged')
           and import_file_id <> %s and report_time is not null order by report_time desc limit 1""",
        (kind, import_file_id),
    ).fetchone()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class AppliedFile:
    """The last applied import of a kind, as the next file of that kind is compared with it."""
    import_file_id: int
    name: str
    items: int
    layout: dict | None
    report_time: datetime | None


def last_applied(conn: psycopg.Connection, kind: str, other_than: int = -1) -> AppliedFile | None:
    """The newest finished import of a kind that was applied (or changed nothing) and counted its items, other
    than `other_than`: what a stock report's coverage is measured against (imports/refusal.py). A file with the
    same content as an earlier one is 'unchanged' without items, so it never stands in for that one."""
    row = conn.execute(
        """select import_file_id, name, items, layout, report_time from import_file
           where kind = %s and status in ('applied', 'unchanged') and import_file_id <> %s and items is not null
           order by finished_at desc limit 1""",
        (kind, other_than),
    ).fetchone()
    return AppliedFile(*row) if row else None


def archived_entry(conn: psycopg.Connection, kind: str, entry, local: Path, made: datetime) -> int:
    """The ledger id of a file a backfill found in the archive (`entry`: its FTP listing entry): the last
    import of that name, else a new 'stale' record (history only; current values are never rolled back)."""
    row = conn.execute("select import_file_id from import_file where kind = %s and name = %s "
                       "order by import_file_id desc limit 1", (kind, entry.name)).fetchone()
    if row is not None:
        return row[0]
    new, _ = register(conn, kind=kind, ftp_path=entry.path, name=entry.name, size=entry.size,
                      modified_at=entry.modified_at, content_sha256=sha256_file(local))
    update(conn, new.import_file_id, status="stale", report_time=made,
           message="found in the archive by a backfill: history only")
    return new.import_file_id


def set_checkpoint(conn: psycopg.Connection, name: str, when: datetime) -> str:
    value = when.astimezone(timezone.utc).isoformat()
    conn.execute(
        """insert into sync (object_type, object_id, subscriber, sync_updated, synced_at)
           values (%s, %s, %s, %s, now())
           on conflict (object_type, object_id, subscriber)
           do update set sync_updated = excluded.sync_updated, synced_at = now()""",
        (CHECKPOINT, name, CHECKPOINT_SUBSCRIBER, value),
    )
    return value


def get_checkpoint(conn: psycopg.Connection, name: str) -> datetime | None:
    row = conn.execute(
        "select sync_updated from sync where object_type = %s and object_id = %s and subscriber = %s",
        (CHECKPOINT, name, CHECKPOINT_SUBSCRIBER),
    ).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None
