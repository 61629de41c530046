"""Marketplace feeds: Yandex.Market YML, Ozon (normal goods and KGT goods), SberMegaMarket.

- `config`  — the `feeds:` section of mpsync.yaml (shop, categories, outlets, vat), validated;
- `offers`  — the single query per feed and the marketplace rules on what a row publishes;
- `render`  — streaming Jinja2 rendering with the templates in include/templates/;
- `validate` — the rule check per marketplace (streaming lxml);
- `publish` — render + check + atomic publish (+ optional FTP upload): `publish_feed(dsn, feed)`;
- `serve`   — a static HTTP server for the feeds folder: `serve_feeds(folder, host, port)`.
"""

from mpsync.feeds.config import FEEDS

__all__ = ["FEEDS"]
