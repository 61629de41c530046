"""Airflow plugin: 1C's site exchange for orders, mounted in the API server at /onec/exchange.

Kept at the top of plugins/ (mpsync/ itself is ignored by the plugin loader, see .airflowignore); the app and
everything it does live in mpsync.airflow_glue.onec_exchange and mpsync.onec_exchange. docs/onec-exchange.md.
"""

from airflow.plugins_manager import AirflowPlugin

from mpsync.airflow_glue.onec_exchange import URL_PREFIX, fastapi_app


class MpsyncOnecExchangePlugin(AirflowPlugin):
    name = "mpsync_onec_exchange"
    fastapi_apps = [{"app": fastapi_app(), "url_prefix": URL_PREFIX, "name": "mpsync: 1C site exchange (orders)"}]
