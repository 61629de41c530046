"""Reservations: what is sold on a channel but not yet in 1C's figures, and what each channel may sell.

- `lines`: an order's lines and state from each marketplace's payload (one small function per marketplace);
- `config`: the `availability:` section (per-channel safety stock, min_show, stop-sales, release rules);
- `store`: kept by the order sync in the orders' transaction; released by the stock import and 1C's exchange.
The rules and a timeline: docs/reservations.md.
"""
