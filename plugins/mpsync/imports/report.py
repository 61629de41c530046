"""The staff's result file of an import: written in the work folder, uploaded to the FTP results folder,
and its FTP path recorded in the ledger (import_file.result_file, read by the Exchange page) whatever the
end: applied, unchanged, stale, refused or given up. The workbook itself is mpsync.results'."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import psycopg

from mpsync import results
from mpsync.ftp import FtpParams
from mpsync.imports.files import work_dir
from mpsync.onec.model import Reject
from mpsync.settings import Settings

# Column keys (mpsync.result_labels translates them): the rows rejected on the way to a refusal (the reason
# is in the status: «отклонено: <reason>»).
REJECT_HEADER = ["row", "article", "column"]


def local_path(name: str, *, dry_run: bool = False, when: datetime | None = None) -> Path:
    return work_dir() / "results" / results.result_name(name, dry_run=dry_run, when=when)


def record(conn: psycopg.Connection, import_file_ids: Sequence[int], remote: str) -> None:
    """The result file's FTP path into the ledger rows it reports on."""
    conn.execute("update import_file set result_file = %s where import_file_id = any(%s)",
                 (remote, list(import_file_ids)))


def publish(conn: psycopg.Connection | None, params: FtpParams, cfg: Settings, import_file_ids: Sequence[int],
            name: str, *, kind: str, summary: dict[str, Any], header: Sequence[str], rows: Sequence,
            statuses: Sequence[str], dry_run: bool = False, when: datetime | None = None, title: str = "",
            refused: str = "", failed: bool = False) -> str:
    """Write, upload and record a result file named after `name`, about `title` (default: name; several
    files of one exchange), in the configured language and time zone (results.language, results.timezone);
    its FTP path. A dry run's is not recorded (nothing is)."""
    local = local_path(name, dry_run=dry_run, when=when)
    results.write_result_xlsx(local, file_name=title or name, kind=kind, summary=summary, header=header, rows=rows,
                              statuses=statuses, language=cfg.results_language, refused=refused, failed=failed,
                              timezone=cfg.results_timezone)
    remote = results.publish_result(params, local, folder=cfg.results_folder)
    if conn is not None and not dry_run:
        record(conn, import_file_ids, remote)
    return remote


def publish_refusal(conn: psycopg.Connection | None, params: FtpParams, cfg: Settings,
                    import_file_ids: Sequence[int], name: str, *, kind: str, reason: str,
                    rejects: Sequence[Reject] = (), status: str = "", dry_run: bool = False,
                    extra: dict[str, Any] | None = None, title: str = "", failed: bool = False) -> str:
    """The result of a file refused whole (or, `failed`, given up on): why (in the first cell), that nothing
    was applied, and the rows rejected on the way, if any. `status`: a result_labels value key."""
    summary = {"status": status or ("failed" if failed else "refused"), "refused_because": reason, **(extra or {})}
    rows = [[r.row, r.article, r.column] for r in rejects]
    return publish(conn, params, cfg, import_file_ids, name, kind=kind, summary=summary,
                   header=REJECT_HEADER, rows=rows, statuses=[f"rejected: {r.reason}" for r in rejects],
                   dry_run=dry_run, title=title, refused=reason, failed=failed)
