"""The feeds store (mpsync.feeds.store) on S3: `s3://shop-feeds/feeds` through Airflow's ObjectStoragePath
(apache-airflow-providers-amazon + s3fs), against moto's standalone server on 127.0.0.1 -- a real HTTP server
speaking the S3 REST API -- with the endpoint and dummy keys in an Airflow connection given as AIRFLOW_CONN_*.
Feeds are published through publish_feed by two workers' folders and read back over HTTP from the feed server
(serve_store) running in its own process, as `./run` runs it apart from the task processes.

What real S3 guarantees, and what of it this test can show:
- Strong read-after-write consistency (AWS S3 since December 2020, MinIO by design): after a PUT, a new or an
  overwritten object, every GET, HEAD and LIST sees it. moto keeps objects in one process's memory, so it is
  trivially consistent; it cannot show that a real deployment is, only that mpsync needs nothing weaker.
- A PUT, a completed multipart upload or a CopyObject replaces the object whole: a reader gets the old or the
  new one, never a mix. The store writes a hidden temporary object and renames it, which on S3 is CopyObject
  then DeleteObject (s3fs); a single PUT in place would be as atomic. moto too swaps the key's object whole.
  A reader that had the old object's size and ETag and then asks for the bytes after the swap is refused by
  the server (s3fs sends If-Match: 412), which moto reproduces.
- Not reproduced by moto: AWS's authentication (moto accepts any keys), its latencies, throttling (503 Slow
  Down) and partial failures, nor MinIO's or any other vendor's quirks. moto emulates the API; it is not AWS.
What the test does show: the calls mpsync makes (pull, push, listing, read, overwrite) work over the S3 wire
protocol through the Airflow connection, and that the feed server, a long-lived process, serves what a worker
published since, not what it had seen before (s3fs caches listings per process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
BUCKET, STORE, CONN_ID = "shop-feeds", "s3://shop-feeds/feeds", "feeds_s3"


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 server on a free port of 127.0.0.1, a bucket, and the Airflow connection to it."""
    import boto3
    from moto.server import ThreadedMotoServer        # requirements.txt: moto[s3], flask, flask-cors

    logging.getLogger("werkzeug").setLevel(logging.WARNING)      # one line a request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # dummy keys: moto accepts any; the endpoint is what makes the connection point at it
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "aws", "login": "mpsync-test", "password": "not-a-secret",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1",
                  "config_kwargs": {"s3": {"addressing_style": "path"}}}}))     # as for MinIO (docs/production.md)
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="mpsync-test",
                          aws_secret_access_key="not-a-secret", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def _worker_feeds(folder: Path):
    from mpsync.feeds.config import parse_feeds_config
    from mpsync.settings import settings
    from tests.feeds_data import FEEDS_SECTION

    return parse_feeds_config(FEEDS_SECTION, settings(), env={
        "MPSYNC_FEEDS_DIR": str(folder), "MPSYNC_FEEDS_STORE": STORE, "MPSYNC_FEEDS_STORE_CONN_ID": CONN_ID})


_SERVER = """
import pathlib, sys
from mpsync.feeds.serve import serve_store
from mpsync.feeds.store import FeedStore
server = serve_store(FeedStore(sys.argv[1], sys.argv[2]))
pathlib.Path(sys.argv[3]).write_text(str(server.server_address[1]))
sys.stdin.read()        # until the test closes it
"""


@pytest.fixture
def feed_server(s3, tmp_path):
    """serve_store in its own process (its own ObjectStoragePath and s3fs caches), as `./run` runs it."""
    port_file, log = tmp_path / "feed-server.port", tmp_path / "feed-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _SERVER, STORE, CONN_ID, str(port_file)],
                                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_file.exists(), f"feed server did not start (exit {proc.poll()}): {log.read_text()[-2000:]}"
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _object(client, name: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=f"feeds/{name}")["Body"].read()


def test_feeds_published_to_s3_are_served_byte_for_byte_and_replaced_whole(exchange_dsn, s3, feed_server,
                                                                           tmp_path):
    from mpsync.feeds.publish import publish_feed, published_feeds
    from tests.feeds_data import insert_products

    insert_products(exchange_dsn)
    a, b = _worker_feeds(tmp_path / "worker-a"), _worker_feeds(tmp_path / "worker-b")
    assert a.store is not None and a.store.local_root() is None         # really the s3 filesystem

    first = publish_feed(exchange_dsn, "ozon", config=a, now=NOW)
    published = (tmp_path / "worker-a" / "ozon.xml").read_bytes()
    assert first.published and _object(s3, "ozon.xml") == published
    assert json.loads(_object(s3, ".ozon.xml.json"))["sha256"] == first.sha256
    assert _get(f"{feed_server}/ozon.xml") == (200, published)
    assert _get(f"{feed_server}/.ozon.xml.json")[0] == 404              # the record is not a feed
    assert _get(f"{feed_server}/yandex.xml")[0] == 404                  # never published
    listing = _get(f"{feed_server}/")[1]
    assert b"ozon.xml" in listing and b".tmp" not in listing and b".json" not in listing

    # Worker B decides from the store's record: the same data is not published again.
    again = publish_feed(exchange_dsn, "ozon", config=b, now=NOW + timedelta(hours=1))
    assert (again.changed, again.published) == (False, False)
    assert (tmp_path / "worker-b" / "ozon.xml").read_bytes() == published

    # B publishes a change while readers keep fetching: each gets the old feed or the new one, whole.
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("update stock set quantity = 4242 where product_id = (select product_id from product"
                     " where article = 'A-1')")
    seen, stop = [], threading.Event()

    def read_loop():
        while not stop.is_set():
            try:
                seen.append(_get(f"{feed_server}/ozon.xml"))
            except OSError as exc:          # the server dropped the request: it must not
                seen.append((repr(exc), b""))

    readers = [threading.Thread(target=read_loop) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        changed = publish_feed(exchange_dsn, "ozon", config=b, now=NOW + timedelta(hours=2))
    finally:
        stop.set()
        for t in readers:
            t.join(60)
    new = (tmp_path / "worker-b" / "ozon.xml").read_bytes()
    assert changed.published and b'instock="4242"' in new and _object(s3, "ozon.xml") == new
    assert seen and {body for _, body in seen} <= {published, new}, "a reader got something else than a feed"
    assert {status for status, _ in seen} == {200}

    # The feed server, which read the old feed before, serves the new one; so does a listing-first read.
    assert _get(f"{feed_server}/ozon.xml") == (200, new)
    assert b"ozon.xml" in _get(f"{feed_server}/")[1]
    assert _get(f"{feed_server}/ozon.xml") == (200, new)
    # A takes B's publication as the one to compare with; the operators' view is the store's record.
    third = publish_feed(exchange_dsn, "ozon", config=a, now=NOW + timedelta(hours=3))
    assert (third.changed, third.published, third.sha256) == (False, False, changed.sha256)
    assert (tmp_path / "worker-a" / "ozon.xml").read_bytes() == new
    shown = published_feeds(_worker_feeds(tmp_path / "worker-c"))
    assert shown["ozon"]["sha256"] == changed.sha256 and shown["ozon"]["size"] == len(new)
    # No temporary objects left behind by the renames.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="feeds/")["Contents"]]
    assert sorted(keys) == ["feeds/.ozon.xml.json", "feeds/ozon.xml"]
