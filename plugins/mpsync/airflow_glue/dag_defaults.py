"""What every DAG shares: owner, retry policy, approved tags. Kept out of DAG files so they only wire."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

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
    """Owner and retries with exponential backoff: a flaky FTP or database gets a few calm retries."""
    args = {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    }
    args.update(overrides)
    return args
