"""Assets that connect the DAGs: imports announce changed product data, feeds and pushes follow it."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# Emitted (through the alias, only when rows really changed) by the stock, price and catalog imports.
CATALOG_CHANGED = Asset(name="catalog_changed", uri="mpsync://exchange/catalog")
CATALOG_CHANGED_ALIAS = AssetAlias(name="catalog_changed_alias")
