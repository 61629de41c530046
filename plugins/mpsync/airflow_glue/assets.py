"""Assets that connect the DAGs: imports announce changed product data, feeds and pushes follow it."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# Emitted (through the alias, only when rows really changed) by the stock, price and catalog imports.
CATALOG_CHANGED = Asset(name="catalog_changed", uri="mpsync://exchange/catalog")
CATALOG_CHANGED_ALIAS = AssetAlias(name="catalog_changed_alias")

# Emitted by the price import when it held prices: the price_approvals DAG asks an operator to decide.
PRICES_HELD = Asset(name="prices_held", uri="mpsync://exchange/prices-held")
PRICES_HELD_ALIAS = AssetAlias(name="prices_held_alias")     # only when prices were held
