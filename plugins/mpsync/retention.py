"""Data that stops growing (issue 21): what is kept, for how long, and the daily trim that enforces it.

What grows without bound otherwise, and how each is trimmed:
- `stock_history`, `price_history` (a 1%-changed hourly stock report of 1M x 60 adds ~600,000 rows an hour):
  day partitions by the time a value was replaced (migration 0024); a partition older than the retention is
  DROPPED whole, so the trim costs the same whatever the table holds, and the hourly import never gets slower
  with the history's age. `stock_as_of` / `price_as_of` refuse a time before what is kept.
- `import_reject` of imports finished before the horizon, `order_sync_window` rows committed before it,
  processed `order_webhook_inbox` bodies (and notifications nobody settled: an account removed from the config),
  `onec_exchange_log` lines: DELETE by an indexed time.
- On the FTP: the archive's day folders (`processed_folder/YYYY-MM-DD/`) before the horizon, and result files
  in the results folder last modified before it (the feeds' reports in `results/feeds/` are replaced in
  place, never accumulate, and are left alone).

Every table keeps the ledger rows themselves (`import_file`, `marketplace_order`): they are small and are
what the exchange page and the reservations read.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import psycopg

from mpsync import SQL_DIR
from mpsync.ftp import FtpClient, FtpParams
from mpsync.settings import ConfigError, Settings

log = logging.getLogger(__name__)
HISTORY_TABLES = ("stock_history", "price_history")
_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The log tables trimmed by time: include/sql/retention/<table>.sql, the horizon its one parameter (`before`).
TRIMMED = ("import_reject", "order_sync_window", "order_webhook_inbox", "onec_exchange_log")


@dataclass(frozen=True)
class RetentionSettings:
    history_days: int = 90        # stock and price history (stock_as_of / price_as_of answer within it)
    log_days: int = 90            # rejected rows, order sync windows, webhook bodies, 1C exchange log
    ftp_days: int = 90            # archived 1C drops and staff result files on the FTP
    partitions_ahead: int = 7     # day partitions made in advance (a missed run still loses nothing)

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetentionSettings":
        raw = settings.section("retention")
        values = {}
        for name in ("history_days", "log_days", "ftp_days", "partitions_ahead"):
            if name not in raw:
                continue
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{settings.source}: 'retention.{name}' must be a whole number of days >= 1, "
                                  f"got {value!r}")
            values[name] = value
        unknown = set(raw) - {"history_days", "log_days", "ftp_days", "partitions_ahead"}
        if unknown:
            raise ConfigError(f"{settings.source}: unknown key(s) in 'retention': {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class TrimReport:
    """What one maintenance run did (the task's XCom, and one log line)."""

    partitions_created: int = 0
    partitions_dropped: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)
    ftp_files_deleted: int = 0
    ftp_problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"partitions_created": self.partitions_created, "partitions_dropped": self.partitions_dropped,
                "rows_deleted": dict(self.rows_deleted), "ftp_files_deleted": self.ftp_files_deleted,
                "ftp_problems": list(self.ftp_problems)}


def horizon(now: datetime, days: int) -> datetime:
    """The start of the day `days` days back (UTC): what is older goes."""
    day = (now.astimezone(timezone.utc) - timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def ensure_partitions(conn: psycopg.Connection, today: date, ahead: int) -> int:
    """Day partitions of both history tables from today to `ahead` days on (rows that went to the default
    partition meanwhile are moved into theirs). Each table in its own transaction."""
    made = 0
    for table in HISTORY_TABLES:
        with conn.transaction():
            made += conn.execute("select history_partitions_ensure(%s, %s, %s)",
                                 (table, today, today + timedelta(days=ahead))).fetchone()[0]
    return made


def drop_history(conn: psycopg.Connection, before: datetime) -> int:
    """Drop the history's day partitions that end at or before `before`; returns how many."""
    dropped = 0
    for table in HISTORY_TABLES:
        with conn.transaction():
            dropped += conn.execute("select history_partitions_drop(%s, %s)", (table, before)).fetchone()[0]
    return dropped


def kept_from(conn: psycopg.Connection, table: str) -> datetime | None:
    """Since when `table`'s history is whole (None: nothing was ever dropped)."""
    row = conn.execute("select kept_from from history_retention where table_name = %s", (table,)).fetchone()
    return row[0] if row else None


def trim_tables(conn: psycopg.Connection, before: datetime) -> dict[str, int]:
    """Delete the growing log tables' rows older than `before`; {table: rows deleted}."""
    deleted = {}
    for table in TRIMMED:
        statement = (SQL_DIR / "retention" / f"{table}.sql").read_text(encoding="utf-8")
        with conn.transaction():
            deleted[table] = conn.execute(statement, {"before": before}).rowcount
    return deleted


def trim_ftp(params: FtpParams, processed_folder: str, results_folder: str,
             before: datetime) -> tuple[int, list[str]]:
    """Archive day folders and result files older than `before`; (files deleted, problems). A folder or file
    that cannot be deleted is reported and skipped: the next run tries again."""
    deleted, problems = 0, []
    cutoff_day = before.date().isoformat()
    with FtpClient(params) as ftp:
        for name in ftp.folders(processed_folder):
            if not _DAY_FOLDER.match(name) or name >= cutoff_day:
                continue
            folder = posixpath.join(processed_folder, name)
            try:
                deleted += ftp.remove_folder(folder)
            except Exception as exc:            # an FTP error on one folder must not stop the others
                problems.append(f"{folder}: {exc}")
        for entry in ftp.list_files(results_folder):
            if entry.modified_at is not None and entry.modified_at < before:
                try:
                    ftp.delete(entry.path)
                    deleted += 1
                except Exception as exc:
                    problems.append(f"{entry.path}: {exc}")
    return deleted, problems


def run(dsn: str, params: FtpParams | None, cfg: Settings, rs: RetentionSettings, now: datetime) -> TrimReport:
    """One maintenance pass: partitions ahead, then the history, the log tables and the FTP trimmed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        created = ensure_partitions(conn, now.astimezone(timezone.utc).date(), rs.partitions_ahead)
        dropped = drop_history(conn, horizon(now, rs.history_days))
        rows = trim_tables(conn, horizon(now, rs.log_days))
    files, problems = (0, [])
    if params is not None:
        files, problems = trim_ftp(params, cfg.processed_folder, cfg.results_folder, horizon(now, rs.ftp_days))
    report = TrimReport(created, dropped, rows, files, tuple(problems))
    log.info("retention: %d partition(s) made, %d dropped, rows deleted %s, %d FTP file(s) deleted%s",
             created, dropped, rows, files, f"; problems: {problems}" if problems else "")
    return report
