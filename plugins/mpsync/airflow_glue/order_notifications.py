"""Order notifications (Yandex, Ozon) and webhooks (Megamarket) served by Airflow's API server at /orders.

Why there: it already runs in every deployment and listens on the one published HTTP port (as the 1C
exchange, onec_exchange.py). The marketplace's cabinet gets `<public address>/orders/<marketplace>/<account>`
(Yandex appends /notification itself); docs/orders.md. Config and connections are read at the first request,
the accounts again when an unknown one is asked (an account added is served without a restart).
"""

from __future__ import annotations

from mpsync.orders.receiver_app import create_app

URL_PREFIX = "/orders"


def _dsn() -> str:
    from mpsync.airflow_glue.connections import EXCHANGE_DB
    from mpsync.airflow_glue.onec_exchange import _dsn as dsn_of

    return dsn_of(EXCHANGE_DB)


def _accounts() -> set[tuple[str, str]]:
    """The configured accounts, read from the file each time (not the process's cached settings): the receiver
    calls this again when an account it does not know is asked, so one added since is served."""
    from mpsync.orders.config import orders_config
    from mpsync.settings import load_settings

    fresh = load_settings()
    return {(a.marketplace, a.account) for a in orders_config(fresh.section("orders"), str(fresh.source)).accounts}


def fastapi_app():
    return create_app(_dsn, _accounts)
