"""The end of an import that failed for any reason other than the file's content (issue 17).

A refused file (content) ends at once: moved to processed/, ledger 'refused', a result saying why. Any other
failure (a bug, the database or the FTP gone, the process killed) leaves the file in the drop folder with its
ledger row 'received' or 'parsed': the next run (or the task's retry) takes it up again, and counts the
attempt (import_file.attempts). The attempt that reaches `imports.max_attempts` gives up: ledger 'failed'
with the cause, a result file for staff, the file moved out of the drop folder. An attempt that died
without a word (killed) is found by the next one, which gives up before parsing when the count is reached.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpParams
from mpsync.imports import files, report
from mpsync.imports.contracts import ImportRefused
from mpsync.settings import ConfigError, Settings

log = logging.getLogger(__name__)
DEFAULT_MAX_ATTEMPTS = 3


def max_attempts(cfg: Settings) -> int:
    value = cfg.section("imports").get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{cfg.source}: 'imports.max_attempts' must be a whole number >= 1, got {value!r}")
    return value


def attempts(conn: psycopg.Connection, import_file_id: int) -> int:
    return conn.execute("select attempts from import_file where import_file_id = %s", (import_file_id,)).fetchone()[0]


def exhausted_before(conn: psycopg.Connection, import_file_id: int, cfg: Settings) -> bool:
    """True when earlier attempts used up the count: this one (already counted) must not parse again."""
    return attempts(conn, import_file_id) > max_attempts(cfg)


def last_attempt(conn: psycopg.Connection, import_file_id: int, cfg: Settings) -> bool:
    return attempts(conn, import_file_id) >= max_attempts(cfg)


def give_up(conn: psycopg.Connection, params: FtpParams, cfg: Settings, *, kind: str, import_file_id: int,
            file: DropFile, cause: str, staging_tables: tuple[str, ...] = ()) -> str:
    """Ledger 'failed', staging dropped, a result file for staff, the file out of the drop folder. Returns the
    one-line message. Safe to repeat."""
    n = attempts(conn, import_file_id)
    message = f"import failed {n} time(s), given up: {cause}"
    for table in staging_tables:    # the plan and the applied fragments' records stay: they say what was written
        try:
            conn.execute(f"delete from {table} where import_file_id = %s", (import_file_id,))
        except psycopg.Error:           # best effort: what failed may be the staging itself
            log.warning("%s: its staged rows could not be dropped", file.name, exc_info=True)
    ledger.update(conn, import_file_id, status="failed", message=message[:2000])
    remote = report.publish_refusal(conn, params, cfg, [import_file_id], file.name, kind=kind, reason=message[:2000],
                                    failed=True)
    files.archive_refused(params, cfg, [file])
    log.error("%s: %s (result %s)", file.name, message, remote)
    return message


@contextmanager
def attempt(conn: psycopg.Connection, params: FtpParams, cfg: Settings, *, kind: str, import_file_id: int,
            file: DropFile, refused: type[ImportRefused], passthrough: tuple[type[BaseException], ...] = (),
            staging_tables: tuple[str, ...] = ()):
    """Around an import's work on a registered file: gives up before it when earlier attempts used up the
    count, and after it when it failed on the last attempt; raises `refused` (not retried) then."""
    def end(cause: str) -> str:
        return give_up(conn, params, cfg, kind=kind, import_file_id=import_file_id, file=file, cause=cause,
                       staging_tables=staging_tables)

    if exhausted_before(conn, import_file_id, cfg):
        raise _given_up(refused, file, end("the earlier attempts ended without finishing (the process died, "
                                           "or a later step kept failing)"))
    try:
        yield
    except (refused, *passthrough):
        raise
    except Exception as exc:
        if not last_attempt(conn, import_file_id, cfg):
            raise                                       # retried: by the task's retry or the next run
        raise _given_up(refused, file, end(f"{type(exc).__name__}: {str(exc)[:500]}")) from exc


def _given_up(refused: type[ImportRefused], file: DropFile, message: str) -> ImportRefused:
    # given_up: the caller must not refuse it again, its result and move are done
    return refused(f"{file.name}: {message}", message, given_up=True)
