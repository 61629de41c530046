"""
### Marketplace feeds (Yandex.Market, Ozon normal + KGT, Megamarket)

Runs **every hour**, **as soon as a stock, price or catalog import changed product data** (the
`catalog_changed` asset), and by hand. One task per feed, each independent of the others:

- **publish_yandex_feed** – Yandex.Market YML; offer id = 1C nomenclature code when the product has one,
  else the article.
- **publish_ozon_feed** / **publish_ozon_kgt_feed** – Ozon stock/price feeds, normal goods and bulky (KGT)
  goods separately, each with its own `warehouse_name`(s).
- **publish_megamarket_feed** – Megamarket YML with EAN barcode, model, vat, shipment options, outlets.

Each task renders from the exchange database (one pass), checks the file against the marketplace's rules,
then publishes it atomically into the feeds folder (and the optional FTP target). Its log line and output
give offers total / available / unavailable / left out, size, content hash, changed or not.

**A failed task means the feed was NOT published and the previous one is still served.** The log lists
the reasons (offer id and line); the rejected file is kept in `<feeds folder>/rejected/`. Fix the data
(or the template / `feeds:` config), then clear the task. See `docs/feeds.md`.
"""

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from mpsync.airflow_glue.assets import CATALOG_CHANGED
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.airflow_glue.feeds import publish_feed_task
from mpsync.feeds import FEEDS


@task
def publish_feed(feed: str) -> dict:
    return publish_feed_task(feed)


@dag(
    dag_id="marketplace_feeds",
    dag_display_name="Marketplace feeds",
    # Hourly OR whenever an import announces changed product data: one schedule combining both.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="Europe/Moscow"),
        assets=CATALOG_CHANGED,
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,          # two runs would render the same feeds twice; the next one follows
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.FEEDS, Tag.MARKETPLACE),
    doc_md=__doc__,
)
def marketplace_feeds():
    for feed in FEEDS:
        publish_feed.override(task_id=f"publish_{feed}_feed", task_display_name=f"Publish the {feed} feed")(feed)


marketplace_feeds()
