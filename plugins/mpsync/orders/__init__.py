"""Incremental order sync that never loses an order (DOMAIN.md section 4).

One algorithm (`engine.sync_account`) over small per-API adapters (`taobao`, `yandex`, `ozon`, `megamarket`).
Plain Python: no Airflow import here; `mpsync.airflow_glue.orders` wires it into the `order_sync` DAG.
"""
