"""
### Order sync: marketplaces -> exchange database, never losing an order

Every **10 minutes**, one mapped task per configured account (`orders.accounts`), each marketplace in its
own pool (`orders_<marketplace>`). docs/orders.md explains the rules and what to do when an account stalls.

1. **list_<marketplace>_accounts** - the configured accounts (or those named in the trigger form).
2. **sync_<marketplace>_orders** - per account: orders changed since its checkpoint (minus a lookback),
   up to the marketplace's clock minus a margin. Orders and checkpoint commit together per window; a
   failed task resumes from the last committed window on retry. The checkpoint is in the `sync` table
   (object_type `order_checkpoint`) and mirrored to the Variable `checkpoint__orders__<marketplace>__<account>`.
   The orders' lines reserve stock in the same transaction (docs/reservations.md).
3. **announce_reservations** - after every account (even when one failed): when what is reserved changed
   since the run began, announces `catalog_changed`, so the pushes send the new numbers within minutes.
   One announcer per run, not one per account: concurrent announcements of one asset can deadlock in
   Airflow's metadata database and fail a task whose orders had committed.

**Re-sync** a period: trigger with `from` and `to` (a half-open period), or run a backfill
(`airflow backfill create --dag-id order_sync --from-date ... --to-date ...`): each backfill run re-syncs
its data interval. Neither moves the live checkpoint.
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from mpsync.airflow_glue import orders as glue
from mpsync.airflow_glue.assets import CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.reservations import announce_if_changed, reserved_now
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.orders.config import MARKETPLACES


@task
def list_accounts(marketplace: str) -> list[str]:
    from airflow.sdk import get_current_context

    return glue.accounts_of(marketplace, get_current_context()["params"])


@task(task_display_name="Reservations before the sync")
def reservations_before() -> str:
    return reserved_now()


@task(map_index_template="{{ account_label }}")
def sync_account_orders(account: str) -> dict:
    return glue.sync_one(account)


@task(task_display_name="Announce changed reservations", outlets=[CATALOG_CHANGED_ALIAS], trigger_rule="all_done")
def announce_reservations(before: str, *, outlet_events=None) -> bool:
    return announce_if_changed(before, outlet_events, source="orders")


@dag(
    dag_id="order_sync",
    dag_display_name="Order sync: marketplaces to the exchange DB",
    # a real data interval (not a zero-width cron trigger): backfill runs re-sync their interval
    schedule=CronDataIntervalTimetable("*/10 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.ORDERS, Tag.MARKETPLACE),
    doc_md=__doc__,
    params={
        "accounts": Param("", type=["null", "string"], title="Accounts",
                          description="Comma-separated 'marketplace:account' (or a marketplace, or an account "
                                      "name). Empty: every configured account."),
        "from": Param(None, type=["null", "string"], format="date-time", title="Re-sync from (inclusive)",
                      description="With 'to': re-read orders modified in [from, to). Leaves the checkpoint."),
        "to": Param(None, type=["null", "string"], format="date-time", title="Re-sync to (exclusive)",
                    description="End of the re-sync period (exclusive)."),
    },
)
def order_sync():
    before = reservations_before()
    announce = announce_reservations(before)
    for marketplace in MARKETPLACES:
        accounts = list_accounts.override(task_id=f"list_{marketplace}_accounts",
                                          task_display_name=f"List {marketplace} accounts")(marketplace)
        synced = sync_account_orders.override(
            task_id=f"sync_{marketplace}_orders",
            task_display_name=f"Sync {marketplace} orders",
            pool=f"orders_{marketplace}",
        ).expand(account=accounts)
        before >> accounts
        synced >> announce


order_sync()
