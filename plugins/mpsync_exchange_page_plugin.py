"""Airflow plugin: the Exchange page (issue 19), mounted in the API server at /mpsync/exchange and listed in
the UI's navigation (Browse menu) as an external view the UI shows inside its own frame.

Kept at the top of plugins/ (mpsync/ itself is ignored by the plugin loader, see .airflowignore); the app
lives in mpsync.airflow_glue.exchange_page, the data in mpsync.exchange_page. docs/exchange-page.md.
"""

from airflow.plugins_manager import AirflowPlugin

from mpsync.airflow_glue.exchange_page import PAGE_PATH, URL_PREFIX, fastapi_app


class MpsyncExchangePagePlugin(AirflowPlugin):
    name = "mpsync_exchange_page"
    fastapi_apps = [{"app": fastapi_app(), "url_prefix": URL_PREFIX, "name": "mpsync: Exchange page"}]
    # url_route: the UI embeds the page at /plugin/mpsync-exchange; href is where the frame loads it from.
    external_views = [{"name": "Exchange", "href": URL_PREFIX + PAGE_PATH, "destination": "nav",
                       "category": "browse", "url_route": "mpsync-exchange"}]
