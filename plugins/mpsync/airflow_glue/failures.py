"""Turn the domain's "refused" outcomes into a failed task that is NOT retried, with a one-line cause."""

from __future__ import annotations

from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException

from mpsync.imports.contracts import ImportRefused
from mpsync.imports.fragments import StagingLost

# Refusals are decisions about a file's content, of any kind (stock, price, catalog): retrying cannot change them.
REFUSALS: tuple[type[Exception], ...] = (ImportRefused,)
# Staged rows that are not what prepare staged: a retry would find the same; clearing prepare stages again.
NOT_RETRIED: tuple[type[Exception], ...] = (StagingLost,)


@contextmanager
def refusal_fails_without_retry(*extra: type[Exception]):
    try:
        yield
    except (*REFUSALS, *NOT_RETRIED, *extra) as exc:
        raise AirflowFailException(str(exc)) from None
