"""Render, check and publish one feed: the whole life of a feed file, in one call.

    render into a hidden temp file in the feeds folder   (one DB pass, streamed; an offer breaking a rule
                                                          is left out and listed in the feed's report)
    check the file against the marketplace's rules       (streamed)
      failed  -> the previous feed stays published; the rejected file is kept in <folder>/rejected/
                 for inspection; FeedRejected names the reasons
    feed-level fault (no offer, or more left out than feeds.max_rejected_share of the last good feed)
            -> FeedRefused; the previous feed stays, re-dated when due if it still passes the file check
    report  -> table feed_rejection, staff file <results>/feeds/<feed>.xlsx on the 1C FTP (when it changed)
    same content hash as the published feed (date ignored) and not too old -> leave it, changed = False
    else    -> rename over the published file (atomic), record hash/size/date in .<file>.json beside it
    optional FTP upload (atomic on the server too), retried on the next run until it succeeds
"""

from __future__ import annotations

import ftplib
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
from mpsync.feeds import report as feed_report
from mpsync.feeds.config import FeedsConfig, FeedSettings, feeds_config
from mpsync.feeds.render import FeedRenderError, feed_date, render_feed
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


class FeedRefused(FeedRejected):
    """A feed-level fault (empty, or too many offers left out): the last good feed stays."""

    def __init__(self, feed: str, reason: str, redated: bool):
        FeedError.__init__(self, f"feed {feed} refused, the previous one stays"
                                 f"{' (re-dated)' if redated else ''}: {reason}")
        self.reasons = reason


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
    offers_rejected: int = 0                # left out for breaking a marketplace rule (the report)
    rejected_by_rule: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        if self.skipped:
            return f"feed {self.feed}: skipped ({self.skipped})"
        rules = ", ".join(f"{k} {v}" for k, v in (self.rejected_by_rule or {}).items()) or "none"
        return (f"feed {self.feed}: {self.offers_total} offers ({self.offers_available} available, "
                f"{self.offers_unavailable} unavailable, {self.offers_left_out} left out, "
                f"{self.offers_rejected} rejected by rule: {rules}), {self.size} bytes, "
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


def feed_level_fault(offers: int, rejected: int, previous: dict, share: float) -> tuple[str, str] | None:
    """(reason for the log, reason for staff in Russian) when the feed must not replace the last good one."""
    if offers == 0:
        return "no offer left to publish", "в фиде не осталось ни одного товара"
    last_good = int((previous.get("counts") or {}).get("offers_total") or 0)
    # Compared with the last good feed: fewer than (1 - share) of its offers left because of rejections.
    # Without one: more than `share` of this run's offers rejected.
    if rejected and (offers < (1 - share) * last_good if last_good else rejected > share * (offers + rejected)):
        base = last_good or offers + rejected
        where_en = "the last good feed's" if last_good else "this run's"
        where_ru = "в последнем опубликованном фиде" if last_good else "в этой выгрузке"
        return (f"{rejected} offers left out, {offers} left of {where_en} {base} (limit: lose at most "
                f"{share:.0%})", f"не попало {rejected} товаров, осталось {offers} из {base} {where_ru} "
                f"(допустимо потерять не больше {share:.0%})")
    return None


def redate_last_good(final: Path, cfg: FeedsConfig, fs: FeedSettings, now: datetime | None) -> bool:
    """Re-date the published feed when it reached max_age_hours, if its content still passes the file
    check (Yandex refuses a catalogue older than 10 days). Returns whether it was re-dated."""
    previous = _read_sidecar(final)
    if not final.exists() or not previous.get("date"):
        return False
    if (time.time() - float(previous.get("published_epoch", 0))) / 3600 < cfg.max_age_hours:
        return False
    date = feed_date(cfg, now)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.redate")
    try:
        with open(final, "rb") as src, open(tmp, "wb") as dst:
            head = src.read(4096)
            dst.write(head.replace(f'date="{previous["date"]}"'.encode(), f'date="{date}"'.encode(), 1))
            while block := src.read(1 << 20):
                dst.write(block)
        check = validate_feed(tmp, fs, now=now)
        if not check.ok:
            log.warning("feed %s: the last good feed no longer passes its rules, not re-dated: %s",
                        fs.feed, check.summary()[:2000])
            return False
        os.replace(tmp, final)
        previous.update(date=date, published_epoch=time.time())
        _write_sidecar(final, previous)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _report(dsn: str, cfg: FeedsConfig, fs: FeedSettings, rejected: list[tuple], status: str,
            results_ftp: FtpParams | None, results_folder: str | None) -> None:
    """The run's report: the table always; the staff file on the 1C FTP when its content changed."""
    rows = feed_report.unique(rejected)
    when = datetime.now(cfg.tz())
    with db.connect(dsn) as conn:
        feed_report.store(conn, fs.feed, rows, when)
    if results_ftp is None or results_folder is None:
        return
    final = cfg.folder / fs.file
    side = _read_sidecar(final)
    digest = feed_report.digest(rows, status)
    if side.get("report_uploaded_sha256") == digest:
        return
    local = cfg.folder / "reports" / f"{fs.feed}.xlsx"
    feed_report.write_staff_file(local, feed=fs.feed, marketplace=fs.marketplace, rejected=rows, status=status,
                                 when=when)
    try:
        with FtpClient(results_ftp) as client:
            client.upload(local, feed_report.remote_path(results_folder, fs.feed))
    except (OSError, EOFError, ftplib.Error) as exc:
        # The feed is published already; the report is uploaded by the next run (its digest is not saved).
        log.warning("feed %s: report not uploaded to the FTP (%s); the next run retries", fs.feed, exc)
        return
    side = _read_sidecar(final)
    side["report_uploaded_sha256"] = digest
    _write_sidecar(final, side)


def _last_run(final: Path, status: str, counts: dict, reason: str | None) -> None:
    side = _read_sidecar(final)
    side["last_run"] = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "status": status,
                        "offers_rejected": counts.get("offers_rejected", 0),
                        "rejected_by_rule": counts.get("rejected_by_rule", {}), "reason": reason}
    _write_sidecar(final, side)


def publish_feed(dsn: str, feed: str, *, config: FeedsConfig | None = None, ftp: FtpParams | None = None,
                 now: datetime | None = None, env: jinja2.Environment | None = None,
                 results_ftp: FtpParams | None = None, results_folder: str | None = None) -> FeedReport:
    """Render, check and publish feed `feed` (yandex, ozon, ozon_kgt, megamarket) from the exchange DB.

    Raises FeedRenderError (template/value problem), FeedRejected (file check) or FeedRefused (feed-level
    fault) with the previous feed left in place. `ftp` is the upload target when config.ftp_upload is set;
    `results_ftp` + `results_folder` (the 1C FTP, its results folder) receive the staff report. With a
    shared store (config.store, mpsync.feeds.store) the feeds folder is this worker's working copy of it:
    pulled first, pushed after, whatever the outcome (a refusal updates the record too).
    """
    cfg = config or feeds_config()
    if cfg.store is None:
        return _publish(dsn, feed, cfg, ftp, now, env, results_ftp, results_folder)
    file = cfg.feed(feed).file
    cfg.store.pull(cfg.folder, file)
    try:
        return _publish(dsn, feed, cfg, ftp, now, env, results_ftp, results_folder)
    finally:
        cfg.store.push(cfg.folder, file)


def _publish(dsn: str, feed: str, cfg: FeedsConfig, ftp: FtpParams | None, now: datetime | None,
             env: jinja2.Environment | None, results_ftp: FtpParams | None,
             results_folder: str | None) -> FeedReport:
    started = time.monotonic()
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
        counts = result.counts.as_dict()
        previous = _read_sidecar(final)
        if not check.ok:
            kept = folder / "rejected" / fs.file
            kept.parent.mkdir(exist_ok=True)
            os.replace(tmp, kept)
            _last_run(final, "refused", counts, "the file failed its rules (template?)")
            _report(dsn, cfg, fs, result.counts.rejected,
                    feed_report.staff_status(False, "файл фида не прошёл проверку (ошибка шаблона?)"),
                    results_ftp, results_folder)
            redate_last_good(final, cfg, fs, now)
            raise FeedRejected(feed, kept, check.summary())
        fault = feed_level_fault(result.counts.total, counts["offers_rejected"], previous, cfg.max_rejected_share)
        if fault is not None and result.counts.total == 0 and not final.exists():
            # Nothing was ever published and nothing can be yet (a first start: the catalog arrived before
            # the prices): no good feed to protect, so no failure; the freshness watcher counts the feed missing.
            log.warning("feed %s: nothing to publish yet (%s, %d left out); no feed was published before",
                        feed, fault[0], result.counts.left_out)
            _last_run(final, "nothing yet", counts, fault[0])
            return FeedReport(feed, fs.file, str(final), 0, 0, 0, result.counts.left_out, result.counts.rows_read,
                              0, "", "", False, False, False, round(time.monotonic() - started, 2),
                              skipped=f"nothing to publish yet: {fault[0]}; no feed was published before",
                              offers_rejected=counts["offers_rejected"],
                              rejected_by_rule=counts["rejected_by_rule"])
        if fault is not None:
            _last_run(final, "refused", counts, fault[0])
            _report(dsn, cfg, fs, result.counts.rejected, feed_report.staff_status(False, fault[1]),
                    results_ftp, results_folder)
            raise FeedRefused(feed, f"{fault[0]}; left out per rule: {counts['rejected_by_rule']}",
                              redate_last_good(final, cfg, fs, now))
        age_hours = (time.time() - float(previous.get("published_epoch", 0))) / 3600
        changed = previous.get("sha256") != result.sha256 or not final.exists()
        publish = changed or age_hours >= cfg.max_age_hours
        if publish:
            os.replace(tmp, final)      # atomic: a marketplace fetching now gets the old or the new file
            previous.update(sha256=result.sha256, size=result.size, date=result.date,
                            published_epoch=time.time(), counts=result.counts.as_dict())
            _write_sidecar(final, previous)
        _last_run(final, "published" if publish else "unchanged", counts, None)
        _report(dsn, cfg, fs, result.counts.rejected, feed_report.staff_status(publish, None),
                results_ftp, results_folder)
        previous = _read_sidecar(final)
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
    counts = c.as_dict()
    return FeedReport(feed, fs.file, str(final), c.total, c.available, c.unavailable, c.left_out, c.rows_read,
                      result.size, result.sha256, result.date, changed, publish, uploaded,
                      round(time.monotonic() - started, 2), offers_rejected=counts["offers_rejected"],
                      rejected_by_rule=counts["rejected_by_rule"])


def published_feeds(config: FeedsConfig | None = None) -> dict[str, dict]:
    """What is published now, per feed (from the records beside the files); for operators and the run command."""
    cfg = config or feeds_config()
    out = {}
    for name, fs in cfg.feeds.items():
        if cfg.store is not None:           # the shared copy's records (the local folder is one worker's)
            info = cfg.store.record(fs.file)
            if info:
                info["published_at"] = datetime.fromtimestamp(info.get("published_epoch", 0), timezone.utc).isoformat()
            out[name] = {"file": fs.file, "exists": bool(info.get("sha256")), **info}
            continue
        path = cfg.folder / fs.file
        info = _read_sidecar(path) if path.exists() else {}
        if info:
            info["published_at"] = datetime.fromtimestamp(info.get("published_epoch", 0), timezone.utc).isoformat()
        out[name] = {"file": fs.file, "exists": path.exists(), **info}
    return out


__all__ = ["FeedError", "FeedRefused", "FeedRejected", "FeedRenderError", "FeedReport", "publish_feed", "published_feeds"]
