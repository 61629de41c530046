"""Airflow plugin: order notifications and webhooks, mounted in the API server at /orders.

Kept at the top of plugins/ (mpsync/ itself is ignored by the plugin loader, see .airflowignore); the app
lives in mpsync.orders.receiver_app, its Airflow side in mpsync.airflow_glue.order_notifications.
"""

from airflow.plugins_manager import AirflowPlugin

from mpsync.airflow_glue.order_notifications import URL_PREFIX, fastapi_app


class MpsyncOrderNotificationsPlugin(AirflowPlugin):
    name = "mpsync_order_notifications"
    fastapi_apps = [{"app": fastapi_app(), "url_prefix": URL_PREFIX, "name": "mpsync: order notifications"}]
