"""The catalog import's face before issue 18 (dicts out), kept for the callers written against it (older tests).
New code: mpsync.imports.catalog."""

from __future__ import annotations

from mpsync.imports import catalog
from mpsync.imports.catalog import CatalogFileRefused, parse_exchange  # noqa: F401

CHECKPOINT_NAME = catalog.CHECKPOINT_NAME


def run(dsn, params, files, cfg) -> dict:
    summary = catalog.run(dsn, params, files, cfg).to_dict()
    return {**summary, **summary["details"], "result": summary["result_file"]}
