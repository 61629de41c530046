"""
### Alert probe (tests only)

Fails on purpose: two mapped fragments raise on every try, with retries, so the test can count the failure
alerts of one run (exactly one is expected) and read what it says.
"""

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from mpsync.airflow_glue.dag_defaults import Tag, dag_kwargs, default_args, tags


@task
def list_fragments() -> list[int]:
    return [1, 2]


@task
def apply_fragment(n: int) -> None:
    raise RuntimeError(f"FTP connection reset while reading fragment {n}\nserver said: 421 Timeout")


@dag(
    dag_id="alert_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=tags(Tag.OPERATIONS),
    doc_md=__doc__,
    **dag_kwargs(default_args=default_args(retries=2, retry_delay=timedelta(0), retry_exponential_backoff=False)),
)
def alert_probe():
    apply_fragment.expand(n=list_fragments())


alert_probe()
