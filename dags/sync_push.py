"""
### Push changed stock and prices to the website and the marketplaces' APIs (the sync table)

Runs **every 5 minutes** and **as soon as an import changed product data** (`catalog_changed`).
Only what changed since the receiver last confirmed it is sent (the `sync` table, one row per object and
subscriber; docs/sync-push.md).

1. **unpark_requested_objects** – only when the trigger form names subscribers and/or object ids.
2. **list_<system>_subscribers** – the enabled subscribers (`sync_push.subscribers` in the config).
3. **push_to_site / push_to_ozon / push_to_yandex / push_to_megamarket** – one mapped instance per
   subscriber, each system in its own pool (`push_<system>`). Log and output: changed, sent,
   acknowledged, failed, parked. A failed instance means the receiver kept refusing whole requests
   (down, 5xx, rate limit, bad credentials): no object's state was changed; Airflow retries it, and the
   other subscribers are not held back. After a Yandex price push the same task reads Yandex's price
   quarantine and confirms the prices mpsync vouches for (its own log line; docs/feeds.md); the rest is
   reported by the freshness check `quarantine`.
4. **report_parked_objects** – objects that failed `max_failures` times are parked and listed here with
   their last error. Fix the data (a changed object comes back by itself), or unpark them: trigger this
   DAG with `unpark_subscribers` and/or `unpark_object_ids`.
"""

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk import TriggerRule

from mpsync.airflow_glue import sync_push as glue
from mpsync.airflow_glue.assets import CATALOG_CHANGED
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.outbox.config import PUSH_GROUPS


@task(task_display_name="Unpark objects named in the trigger form")
def unpark_requested_objects() -> dict:
    return glue.unpark_requested(get_current_context()["params"])


@task
def list_subscribers(group: str) -> list[str]:
    return glue.subscribers_of(group)


@task(map_index_template="{{ push_label }}")
def push_changes(subscriber: str) -> dict:
    return glue.push_one(subscriber, get_current_context()["params"])


@task(trigger_rule=TriggerRule.ALL_DONE, task_display_name="Report parked objects")
def report_parked_objects() -> dict:
    return glue.report()


@dag(
    dag_id="sync_push",
    dag_display_name="Sync push: website and marketplace APIs",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Europe/Moscow"),
        assets=CATALOG_CHANGED,
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.SYNC, Tag.WEBSITE, Tag.MARKETPLACE),
    doc_md=__doc__,
    params={
        "unpark_subscribers": Param(
            "", type=["null", "string"], title="Unpark: subscribers",
            description="Comma-separated subscriber names (e.g. site, ozon_stock). With no object ids: every "
                        "parked object of these subscribers."),
        "unpark_object_ids": Param(
            "", type=["null", "string"], title="Unpark: object ids",
            description="Comma-separated object ids (articles). With no subscribers: for every subscriber."),
        "full_scan": Param(
            False, type="boolean", title="Full scan",
            description="Compare every object with what the receivers confirmed (reconciliation), not only "
                        "what changed since the last run."),
    },
)
def sync_push():
    unpark = unpark_requested_objects()
    report = report_parked_objects()
    for group in PUSH_GROUPS:
        subscribers = list_subscribers.override(task_id=f"list_{group}_subscribers",
                                                task_display_name=f"Enabled subscribers of {group}")(group)
        unpark >> subscribers
        pushed = push_changes.override(task_id=f"push_to_{group}", pool=f"push_{group}",
                                       task_display_name=f"Push changes to {group}").expand(subscriber=subscribers)
        pushed >> report


sync_push()
