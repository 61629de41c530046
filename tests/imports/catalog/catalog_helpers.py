"""Helpers for the tests of the catalog applied in fragments: a config that cuts a few rows into several
fragments, a nomenclature sheet on the FTP, and the prepare step on the files waiting there."""

from __future__ import annotations

import pytest
import yaml

from mpsync import dropfolder
from mpsync.ftp import FtpClient, FtpParams
from mpsync.imports import catalog
from mpsync.settings import DEFAULT_CONFIG, Settings, settings
from tests.onec_files import write_catalog_xlsx


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> Settings:
    """Fragments of 3 rows (several even for tiny files); a full file may switch off up to half the catalog."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0})
    raw["catalog"].update({"min_fragment_rows": 3, "max_deactivate_share": 0.5})
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))
    return settings()


def upload_sheet(params: FtpParams, tmp_path, name: str, articles: list[str], suffix: str = "") -> None:
    """A nomenclature sheet of these articles (named "Товар <article><suffix>") into /1c/catalog/<name>."""
    items = [dict(article=a, code=f"00-{i:08d}", name=f"Товар {a}{suffix}", brand="Acme", model="M", ean=None,
                  size="", rrp=None) for i, a in enumerate(articles, 1)]
    path = write_catalog_xlsx(tmp_path / name, items)
    with FtpClient(params) as ftp:
        ftp.upload(path, f"/1c/catalog/{name}")


def prepare_waiting(dsn: str, params: FtpParams, cfg: Settings):
    """catalog.prepare on the catalog files the FTP holds and the ledger does not."""
    return catalog.prepare(dsn, params, dropfolder.new_stable_files(dsn, params, cfg.drops["catalog"], 0), cfg)
