"""Airflow pools the DAGs use: name -> (slots, description). `python -m mpsync.airflow_glue.pools` (or the
run script) creates them; a task in a missing pool never starts, so the DAG integrity test checks names.
Pools limit concurrent tasks per receiver; request rates are paced by the clients themselves.
"""

from __future__ import annotations

POOLS: dict[str, tuple[int, str]] = {}

# sync_push: one pool per receiving system; 2 slots = its stock and price pushes may run side by side.
POOLS.update({
    "push_site": (2, "sync_push: pushes to the website"),
    "push_ozon": (2, "sync_push: Ozon stock and price API pushes"),
    "push_yandex": (2, "sync_push: Yandex.Market stock and price API pushes"),
    "push_megamarket": (2, "sync_push: Megamarket stock and price API pushes"),
    "push_wildberries": (2, "sync_push: Wildberries stock and price API pushes"),
})


# order_sync: one pool per marketplace; accounts of one marketplace sync at most this many at a time.
POOLS.update({
    "orders_yandex": (2, "order_sync: Yandex.Market accounts in parallel"),
    "orders_ozon": (2, "order_sync: Ozon accounts in parallel"),
    "orders_wildberries": (2, "order_sync: Wildberries accounts in parallel"),
    "orders_megamarket": (2, "order_sync: Megamarket accounts in parallel"),
    "orders_taobao": (2, "order_sync: Taobao-style API accounts in parallel"),
    "orders_site": (2, "order_sync: the website's (WooCommerce) orders"),
})


def ensure_pools() -> None:
    """Create or resize the pools (CLI, so it works wherever the `airflow` command does)."""
    import subprocess
    import sys

    for name, (slots, description) in POOLS.items():
        subprocess.run([sys.executable, "-m", "airflow", "pools", "set", name, str(slots), description], check=True)


if __name__ == "__main__":
    ensure_pools()
