"""
### Held prices: an operator decides

When a price import holds prices (a change of more than `prices.max_change_share`, below the floor), it
announces `prices_held`, and this DAG asks in Airflow (**Required actions**, or the run's *Ask* task):

1. **held_prices** – the held prices of that file that still wait: article, list, current price, held price,
   why. (They are also in the import's log and result file.)
2. **ask** – *Apply the held prices* or *Keep the current prices*; optionally only the articles listed in the
   form. No answer within `prices.approval.timeout_hours` (24) does what
   `prices.approval.on_timeout` says (`keep`, the default).
3. **apply_decision** – applies the chosen held prices where the price is still the one they were compared
   with (a newer price file wins: such a price is recorded as superseded), and announces `catalog_changed`
   so the feeds and pushes follow. Decisions are kept in the table `price_hold`, and the staff get
   `<file>.decision-<time>.xlsx` in the results folder: each held price, what became of it, who decided.

A run waits only for its own files: later price imports are never held back by an open question. Triggered
by hand, it asks about every file whose held prices are still undecided.
"""

import pendulum
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, dag, get_current_context, task

from mpsync.airflow_glue import price_approvals as glue
from mpsync.airflow_glue.assets import CATALOG_CHANGED_ALIAS, PRICES_HELD
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.price_approval import APPLY, KEEP, ApprovalSettings
from mpsync.settings import settings

approval = ApprovalSettings.from_settings(settings())


@task(task_display_name="Held prices waiting for a decision")
def held_prices() -> dict:
    return glue.held_prices(get_current_context())


@task(task_display_name="Apply the decision", outlets=[CATALOG_CHANGED_ALIAS])
def apply_decision(held: dict, answer: dict, *, outlet_events=None) -> dict:
    return glue.apply_answer(held, answer, outlet_events)


@dag(
    dag_id="price_approvals",
    dag_display_name="Held prices: apply or keep",
    schedule=[PRICES_HELD],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=16,          # each run waits for its own answer
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.PRICE, Tag.OPERATIONS),
    doc_md=__doc__,
)
def price_approvals():
    held = held_prices()
    ask = HITLOperator(
        task_id="ask",
        task_display_name="Ask: apply the held prices?",
        subject="{{ ti.xcom_pull(task_ids='held_prices')['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='held_prices')['body'] }}",
        options=[APPLY, KEEP],
        defaults=[approval.on_timeout],
        response_timeout=approval.timeout,
        params={"articles": Param("", type=["null", "string"], title="Only these articles",
                                  description="Comma-separated articles to apply; empty = every held price")},
    )
    held >> ask
    apply_decision(held, ask.output)


price_approvals()
