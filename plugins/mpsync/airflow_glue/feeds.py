"""Airflow side of the feeds: resolve connections, publish one feed, log and return its figures."""

from __future__ import annotations

import logging

from airflow.exceptions import AirflowNotFoundException

from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.airflow_glue.failures import refusal_fails_without_retry
from mpsync.feeds.config import feeds_config
from mpsync.feeds.publish import FeedRejected, publish_feed
from mpsync.settings import settings
from mpsync.feeds.render import FeedRenderError

log = logging.getLogger(__name__)


def publish_feed_task(feed: str) -> dict:
    """Render, check and publish `feed`; the task output is the FeedReport as a dict.

    A rejected or refused feed (file check, feed-level fault) or a broken template fails the task without
    retries (re-rendering the same data gives the same result); the previous feed stays published. A
    database or FTP hiccup retries. Offers left out for a rule go to the staff report on the 1C FTP.
    """
    cfg = feeds_config()
    st = settings()
    ftp = ftp_params(cfg.ftp_upload.conn_id) if cfg.ftp_upload else None
    try:
        results_ftp = ftp_params(st.ftp_conn_id)
    except AirflowNotFoundException:
        # The feed matters more than its staff report: publish, and say where the report did not go.
        log.warning("connection %r not defined: the feed report is not uploaded to the 1C FTP", st.ftp_conn_id)
        results_ftp = None
    with refusal_fails_without_retry(FeedRejected, FeedRenderError):
        report = publish_feed(exchange_dsn(), feed, config=cfg, ftp=ftp, results_ftp=results_ftp,
                              results_folder=st.results_folder)
    log.info("%s", report.line())
    return report.as_dict()
