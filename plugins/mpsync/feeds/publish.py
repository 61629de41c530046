"""Render, check and publish one feed: the whole life of a feed file, in one call.

    render into a hidden temp file in the feeds folder   (one DB pass, streamed)
    check it against the marketplace's rules             (streamed)
      failed  -> the previous feed stays published; the rejected file is kept in <folder>/rejected/
                 for inspection; FeedRejected names the reasons
    same content hash as the published feed (date ignored) and not too old -> leave it, changed = False
    else    -> rename over the published file (atomic), record hash/size/date in .<file>.json beside it
    optional FTP upload (atomic on the server too), retried on the next run until it succeeds
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from mpsync import db
from mpsync.feeds.config import FeedsConfig, feeds_config
from mpsync.feeds.render import FeedRenderError, render_feed
from mpsync.feeds.validate import validate_feed
from mpsync.ftp import FtpClient, FtpParams

log = logging.getLogger(__name__)


class FeedError(RuntimeError):
    """A feed was not published; the previously published one is still in place."""


class FeedRejected(FeedError):
    def __init__(self, feed: str, kept: Path, reasons: str):
        super().__init__(f"feed {feed} failed its {feed} rules and was NOT published (the previous one stays); "
                         f"rejected file kept at {kept}:\n{reasons}")
        self.reasons = reasons


@dataclass
class FeedReport:
    feed: str
    file: str
    path: str
    offers_total: int
    offers_available: int
    offers_unavailable: int
    offers_left_out: int
    rows_read: int
    size: int
    sha256: str
    date: str
    changed: bool           # content differs from the published feed (date ignored)
    published: bool         # the file was replaced (changed, or re-dated because it got old)
    uploaded: bool
    seconds: float
    skipped: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        if self.skipped:
            return f"feed {self.feed}: skipped ({self.skipped})"
        return (f"feed {self.feed}: {self.offers_total} offers ({self.offers_available} available, "
                f"{self.offers_unavailable} unavailable, {self.offers_left_out} left out), {self.size} bytes, "
                f"sha256 {self.sha256[:16]}, {'changed' if self.changed else 'unchanged'}, "
                f"{'published' if self.published else 'not republished'}"
                f"{', uploaded' if self.uploaded else ''}, {self.seconds:.1f} s -> {self.path}")


def sidecar_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.json")


def _read_sidecar(path: Path) -> dict:
    try:
        return json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def _write_sidecar(path: Path, data: dict) -> None:
    side = sidecar_path(path)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, side)


def publish_feed(dsn: str, feed: str, *, config: FeedsConfig | None = None, ftp: FtpParams | None = None,
                 now: datetime | None = None, env: jinja2.Environment | None = None) -> FeedReport:
    """Render, check and publish feed `feed` (yandex, ozon, ozon_kgt, megamarket) from the exchange DB.

    Raises FeedRenderError (template/value problem) or FeedRejected (rule check) with the previous feed
    left in place. `ftp` is the upload target when config.ftp_upload is set.
    """
    started = time.monotonic()
    cfg = config or feeds_config()
    fs = cfg.feed(feed)
    folder = cfg.folder
    final = folder / fs.file
    if not fs.enabled:
        return FeedReport(feed, fs.file, str(final), 0, 0, 0, 0, 0, 0, "", "", False, False, False, 0.0,
                          skipped="disabled in config")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{fs.file}.{os.getpid()}.tmp"
    try:
        with db.connect(dsn) as conn:
            result = render_feed(conn, cfg, fs, tmp, now=now, env=env)
        check = validate_feed(tmp, fs, now=now)
        if check.ok and check.offers != result.counts.total:
            check.add(f"{check.offers} offers in the file but {result.counts.total} rendered")
        if not check.ok:
            kept = folder / "rejected" / fs.file
            kept.parent.mkdir(exist_ok=True)
            os.replace(tmp, kept)
            raise FeedRejected(feed, kept, check.summary())

        previous = _read_sidecar(final)
        age_hours = (time.time() - float(previous.get("published_epoch", 0))) / 3600
        changed = previous.get("sha256") != result.sha256 or not final.exists()
        publish = changed or age_hours >= cfg.max_age_hours
        if publish:
            os.replace(tmp, final)      # atomic: a marketplace fetching now gets the old or the new file
            previous.update(sha256=result.sha256, size=result.size, date=result.date,
                            published_epoch=time.time(), counts=result.counts.as_dict())
            _write_sidecar(final, previous)
        uploaded = False
        if cfg.ftp_upload and ftp is not None and previous.get("uploaded_sha256") != previous.get("sha256"):
            remote = posixpath.join(cfg.ftp_upload.folder, fs.file)
            with FtpClient(ftp) as client:
                client.upload(final, remote)
            previous["uploaded_sha256"] = previous["sha256"]
            _write_sidecar(final, previous)
            uploaded = True
    finally:
        tmp.unlink(missing_ok=True)
    c = result.counts
    return FeedReport(feed, fs.file, str(final), c.total, c.available, c.unavailable, c.left_out, c.rows_read,
                      result.size, result.sha256, result.date, changed, publish, uploaded,
                      round(time.monotonic() - started, 2))


def published_feeds(config: FeedsConfig | None = None) -> dict[str, dict]:
    """What is published now, per feed (from the records beside the files); for operators and the run command."""
    cfg = config or feeds_config()
    out = {}
    for name, fs in cfg.feeds.items():
        path = cfg.folder / fs.file
        info = _read_sidecar(path) if path.exists() else {}
        if info:
            info["published_at"] = datetime.fromtimestamp(info.get("published_epoch", 0), timezone.utc).isoformat()
        out[name] = {"file": fs.file, "exists": path.exists(), **info}
    return out


__all__ = ["FeedError", "FeedRejected", "FeedRenderError", "FeedReport", "publish_feed", "published_feeds"]
