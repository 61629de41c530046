"""An import's files: the worker's work folder, downloads from the FTP, and the archive on the FTP.

Every file leaves the drop folder for `processed/<day>/`, the day it was made (1C's report time, else the
FTP time, in 1C's zone), so a backfill of a period finds that period's files; a refused or given-up file
goes the same way, by its FTP time (its content may not say when it was made).
"""

from __future__ import annotations

import os
import posixpath
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from mpsync import PROJECT_ROOT
from mpsync.dropfolder import matches
from mpsync.ftp import FtpClient, FtpEntry, FtpParams
from mpsync.settings import Settings


def work_dir() -> Path:
    """The worker's folder for downloads, result files and the last parsed sheet (MPSYNC_WORK_DIR)."""
    return Path(os.environ.get("MPSYNC_WORK_DIR") or PROJECT_ROOT / "var" / "work")


def download(params: FtpParams, files: Iterable, folder: Path) -> list[Path]:
    """Download `files` (anything with path, name, size) into `folder`; the local paths, in order."""
    with FtpClient(params) as ftp:
        return [ftp.download(f.path, folder / f.name, expected_size=f.size) for f in files]


def archive_path(cfg: Settings, name: str, when: datetime) -> str:
    return posixpath.join(cfg.processed_folder, when.strftime("%Y-%m-%d"), name)


def archive(params: FtpParams, cfg: Settings, files: Iterable, made: datetime | None) -> None:
    """Move files (path, name) out of the drop folder into processed/<the day made>/. A file already moved
    (a retried finish) is left alone."""
    day = (made or datetime.now(timezone.utc)).astimezone(cfg.onec_timezone)
    with FtpClient(params) as ftp:
        for f in files:
            if ftp.stat(f.path) is not None:
                ftp.rename(f.path, archive_path(cfg, f.name, day))


def archive_refused(params: FtpParams, cfg: Settings, files: Iterable) -> None:
    """A refused or given-up file out of the drop folder, by its FTP time: staff see it is done with."""
    for f in files:
        modified = getattr(f, "modified", None) or getattr(f, "modified_at", None)
        if isinstance(modified, str):
            modified = datetime.fromisoformat(modified)
        archive(params, cfg, [f], modified)


def archived_files(ftp: FtpClient, cfg: Settings, start: datetime, end: datetime, kind: str) -> list[FtpEntry]:
    """Files of a kind (by its drop pattern) in the processed/<date>/ folders around [start, end)."""
    day, found = (start - timedelta(days=1)).date(), []
    while day <= (end + timedelta(days=1)).date():
        folder = posixpath.join(cfg.processed_folder, day.strftime("%Y-%m-%d"))
        found += [e for e in ftp.list_files(folder) if matches(e.name, cfg.drops[kind].pattern)]
        day += timedelta(days=1)
    return found
