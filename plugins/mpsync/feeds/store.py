"""Where the published feeds live when tasks run on several machines (issue 21): a store every worker and the
feeds web server share, addressed by Airflow's ObjectStoragePath (`file:///srv/feeds`, `s3://bucket/feeds`
with an Airflow connection for the credentials and endpoint of any S3-compatible storage).

    MPSYNC_FEEDS_STORE=s3://shop-feeds/feeds  MPSYNC_FEEDS_STORE_CONN_ID=feeds_s3     (or feeds.store /
                                                                                       feeds.store_conn_id)

Without it the feeds folder (MPSYNC_FEEDS_DIR) is the published copy, as on one machine. With it, the feeds
folder is each worker's working copy: before a feed is rendered, the store's record of it (`.<file>.json`:
content hash, the last good feed's offer count, upload and report state) and, when the local copy is not the
store's, the published file are pulled; after, the file (when it changed) and the record are pushed. So every
decision the publisher makes from the record (unchanged? too many offers lost? due for re-dating?) is made on
what was last published from any worker, and what the web server serves from the store is what a worker
published. Each object is replaced whole: a reader gets the old or the new one (a rename on a filesystem; a
single PUT or a server-side copy on S3). Feeds of one name are never published by two tasks at once (one task
per feed in a run, one run at a time).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORE_ENV = "MPSYNC_FEEDS_STORE"
CONN_ENV = "MPSYNC_FEEDS_STORE_CONN_ID"


def record_name(file: str) -> str:
    """The record beside a feed file (mpsync.feeds.publish.sidecar_path)."""
    return f".{file}.json"


@dataclass(frozen=True)
class FeedStore:
    url: str
    conn_id: str | None = None

    @classmethod
    def from_settings(cls, raw: dict[str, Any], env: dict[str, str]) -> "FeedStore | None":
        url = env.get(STORE_ENV) or raw.get("store")
        if not url:
            return None
        return cls(str(url).rstrip("/"), env.get(CONN_ENV) or raw.get("store_conn_id") or None)

    def root(self):
        """The store's root as the storage has it now. This process's cached listings of it are dropped: s3fs
        keeps them for good, so a long-lived reader (the feed server) would go on seeing the objects, sizes
        and ETags from before another process replaced them, and S3 refuses a read for a stale ETag."""
        from airflow.sdk import ObjectStoragePath        # only with a store: not at a DAG file's import

        root = ObjectStoragePath(self.url, conn_id=self.conn_id)
        root.fs.invalidate_cache(root.path)
        return root

    def local_root(self) -> Path | None:
        """The store's folder when it is on this machine's filesystem (file://), else None."""
        root = self.root()
        return Path(root.path) if (root.protocol or "file") in ("file", "local") else None

    def record(self, file: str) -> dict:
        """The store's record of a published feed ({} when none was published)."""
        data = self.read(record_name(file))
        try:
            return json.loads(data) if data is not None else {}
        except ValueError:
            return {}

    def read(self, name: str) -> bytes | None:
        """An object of the store, whole (None when there is none). On S3 an object replaced between the
        look at it and the download is refused (s3fs asks for the ETag it saw; FileExpired, EBUSY), never
        mixed: read it again, it is the new one."""
        for attempt in range(3):
            path = self.root() / name
            try:
                return path.read_bytes() if path.exists() else None
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 2:
                    raise
        return None

    def pull(self, folder: Path, file: str) -> None:
        """Make the working copy in `folder` the store's: its record, and its file unless already the same
        publication. Nothing published yet: no working copy either (a worker's leftover must not count)."""
        folder.mkdir(parents=True, exist_ok=True)
        local_file, local_record = folder / file, folder / record_name(file)
        remote = self.record(file)
        if not remote:
            local_file.unlink(missing_ok=True)
            local_record.unlink(missing_ok=True)
            return
        try:
            local = json.loads(local_record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            local = {}
        same = (local.get("sha256"), local.get("published_epoch")) == (remote.get("sha256"),
                                                                       remote.get("published_epoch"))
        if not same or not local_file.exists():
            tmp = folder / f".{file}.{os.getpid()}.pull"
            try:
                with (self.root() / file).open("rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(tmp, local_file)
            finally:
                tmp.unlink(missing_ok=True)
        if remote.get("published_epoch"):
            # the working copy's time is the publication's, as the freshness check reads it
            os.utime(local_file, (float(remote["published_epoch"]),) * 2)
        _write_atomic(local_record, json.dumps(remote, ensure_ascii=False, indent=1).encode("utf-8"))

    def push(self, folder: Path, file: str) -> None:
        """The working copy's file (when it is another publication than the store's) and its record, to the
        store: file first, so the record never describes a file that is not there."""
        local_file, local_record = folder / file, folder / record_name(file)
        if not local_record.exists():
            return
        data = local_record.read_bytes()
        local = json.loads(data)
        remote = self.record(file)
        root = self.root()
        root.mkdir(parents=True, exist_ok=True)
        published = (local.get("sha256"), local.get("published_epoch"))
        if local_file.exists() and (published != (remote.get("sha256"), remote.get("published_epoch"))
                                    or not (root / file).exists()):
            self._put(local_file, file)
        tmp = folder / f".{record_name(file)}.{os.getpid()}.push"
        try:
            tmp.write_bytes(data)
            self._put(tmp, record_name(file))
        finally:
            tmp.unlink(missing_ok=True)

    def _put(self, local: Path, name: str) -> None:
        root = self.root()
        tmp = root / f".{name}.{os.getpid()}.tmp"
        with open(local, "rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        # Whole: a reader sees the old object or the new one. On a filesystem that is the rename; on S3 the
        # rename is CopyObject then DeleteObject (s3fs), and S3 replaces an object atomically on any PUT or
        # copy, so a PUT in place would be as safe (tests/test_feeds_s3.py).
        tmp.rename(root / name)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
