"""What every DAG shares: owner, retry policy, approved tags. Kept out of DAG files so they only wire."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

from mpsync.airflow_glue.alerts import failure_alert, record_failure_cause

__all__ = ["OWNER", "Tag", "APPROVED_TAGS", "tags", "default_args", "failure_alert", "dag_kwargs"]

OWNER = "data-exchange"


class Tag(str, Enum):
    """The approved tags; the DAG integrity test rejects any other."""

    ONEC = "1c"
    IMPORT = "import"
    STOCK = "stock"
    PRICE = "price"
    CATALOG = "catalog"
    FEEDS = "feeds"
    MARKETPLACE = "marketplace"
    ORDERS = "orders"
    SYNC = "sync"
    WEBSITE = "website"
    OPERATIONS = "operations"


APPROVED_TAGS = frozenset(t.value for t in Tag)


def tags(*items: Tag) -> list[str]:
    return [t.value for t in items]


def default_args(**overrides) -> dict:
    """Owner and retries with exponential backoff: a flaky FTP or database gets a few calm retries.

    A task that fails for good records its cause (no message: the DAG's failure_alert() sends one per run).
    """
    args = {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": [record_failure_cause],
    }
    args.update(overrides)
    return args


def dag_kwargs(**overrides) -> dict:
    """What every @dag(...) gets: `@dag(dag_id=..., **dag_kwargs())` = default_args + the failure alert."""
    kwargs = {"default_args": default_args(), "on_failure_callback": failure_alert()}
    kwargs.update(overrides)
    return kwargs
