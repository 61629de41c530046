"""Per-channel price rules (issue 20): each rule alone, the SQL twin equal to the Python rule on the real
database, the push sends the ruled price, an override price list keeps precedence, and config errors."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
import yaml

from mpsync.outbox.price_rules import PriceRule, apply, price_rules, rule_for, sql
from mpsync.settings import DEFAULT_CONFIG, ConfigError, load_settings

D = Decimal


def test_markup_percent_and_fixed_apply_to_both_prices():
    r = apply(PriceRule(markup_percent=D(10), markup_fixed=D(5)), 100, 200)
    assert (r.price, r.old_price) == (D("115.00"), D("225.00")) and r.why[0].startswith("markup")


@pytest.mark.parametrize("rounding, price, want", [
    ("kopeck", "1234.567", "1234.57"), ("rouble", "1234.5", "1235"), ("rouble", "1234.4", "1234"),
    ("9", "1234", "1239"), ("9", "1239", "1239"), ("9", "1239.01", "1249"),
    ("90", "1234", "1290"), ("90", "1290", "1290"), ("90", "1291", "1390"),
])
def test_rounding(rounding, price, want):
    assert apply(PriceRule(rounding=rounding), price).price == D(want)


def test_floor_fixed_and_share_of_rrp():
    assert apply(PriceRule(floor=D(300)), 250).price == D("300.00")
    r = apply(PriceRule(floor_rrp_share=D("0.6"), rounding="9"), 500, None, rrp=1000)
    assert r.price == D(609) and any(w.startswith("floor") for w in r.why)        # 600, up to the next ...9
    assert apply(PriceRule(floor_rrp_share=D("0.6")), 500, None, rrp=None).price == D("500.00")   # no RRP
    assert apply(PriceRule(floor=D("299.4"), rounding="rouble"), 100).price == D(300)             # never below


def test_old_price_only_with_the_minimum_discount():
    rule = PriceRule(min_discount_percent=D(5))
    assert apply(rule, 96, 100).old_price is None                  # 4 %
    assert apply(rule, 95, 100).old_price == D("100.00")           # 5 %
    assert apply(PriceRule(), 100, 90).old_price is None           # not above the price


@pytest.mark.parametrize("rule", [
    PriceRule(),
    PriceRule(markup_percent=D("7.5"), markup_fixed=D(49), rounding="90", min_discount_percent=D(5)),
    PriceRule(rounding="9", floor=D(1000), floor_rrp_share=D("0.8")),
    PriceRule(rounding="rouble", floor=D("299.4")),
    PriceRule(markup_percent=D(3), rounding="kopeck", min_discount_percent=D(15)),
])
def test_sql_twin_gives_what_the_python_rule_gives(exchange_dsn, rule):
    cases = [(D("99.99"), D("150.00"), D("1200")), (D("1234.50"), None, None), (D("10"), D("10.4"), D("100")),
             (D("2999"), D("3499"), D("5000")), (D("0.01"), D("1"), None)]
    price, old = sql(rule, "v.p", "v.o", "v.r")
    with psycopg.connect(exchange_dsn) as conn:
        for p, o, rrp in cases:
            got = conn.execute(f"select {price}, {old} from (select %s::numeric p, %s::numeric o, %s::numeric r) v",
                               (p, o, rrp)).fetchone()
            want = apply(rule, p, o, rrp)
            assert (got[0], got[1]) == (want.price, want.old_price), (rule, p, o, rrp)


def _config(tmp_path, monkeypatch, rules: dict):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["price_rules"] = rules
    raw["prices"]["overrides"] = {"ozon": {"price": "Цена OZON", "old_price": "Старая OZON"}}
    path = tmp_path / "mpsync.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    from mpsync.settings import _cached

    _cached.cache_clear()
    return load_settings(path)


def test_account_rule_over_marketplace_over_default(tmp_path, monkeypatch):
    cfg = _config(tmp_path, monkeypatch, {"default": {"markup_percent": 1}, "ozon": {"rounding": "9"},
                                          "ozon:second": {"markup_fixed": 10}})
    rules = price_rules(cfg)
    assert rule_for(rules, "ozon", "main") == PriceRule("ozon", D(1), D(0), "9")
    assert rule_for(rules, "ozon", "second") == PriceRule("ozon:second", D(1), D(10), "9")
    assert rule_for(rules, "yandex").markup_percent == D(1) and rule_for(rules, "wildberries").rounding == "rouble"
    for bad in ({"ozon": {"rounding": "99"}}, {"ozon": {"markup": 5}}, {"ozon": {"floor": -1}},
                {"ozon": {"min_discount_percent": 100}}):
        with pytest.raises(ConfigError, match="price_rules.ozon"):
            price_rules(_config(tmp_path, monkeypatch, bad))


def test_push_sends_the_ruled_price_and_an_override_list_as_it_is(exchange_dsn, tmp_path, monkeypatch):
    from mpsync.outbox.clients import ApiParams, client_for
    from mpsync.outbox.config import parse_push_settings
    from mpsync.outbox.push import push_subscriber
    from mpsync.outbox.sources import source_for
    from mpsync.settings import settings
    from mpsync.simulators.push_ozon import start_ozon_simulator

    _config(tmp_path, monkeypatch, {"ozon": {"markup_percent": 10, "rounding": "90", "min_discount_percent": 20}})
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into product (article, name, rrp) values ('A1', 'a', 2000), ('A2', 'b', 2000)")
        conn.execute("insert into price (product_id, price, old_price) select product_id, 1000, 1300 from product")
        conn.execute("insert into price (product_id, price_list, price, old_price)"
                     " select product_id, 'ozon', 777, null from product where article = 'A2'")
    cfg = parse_push_settings({"subscribers": {"ozon_price": {"client": "ozon_prices"}}}, settings())
    sub = cfg.subscriber("ozon_price")
    sim = start_ozon_simulator()
    try:
        client = client_for(sub.client, ApiParams(sim.url, "client", "key"))
        counts = push_subscriber(exchange_dsn, sub, source_for(sub, settings()), client, cfg, sleep=lambda s: None)
        client.close()
        assert counts.acknowledged == 2
        # 1000 * 1.1 = 1100 -> 1190; old 1300 * 1.1 = 1430 -> 1490: discount 20.1 % >= 20: kept
        assert sim.state["A1"]["price"] == "1190.00" and sim.state["A1"]["old_price"] == "1490.00"
        assert sim.state["A2"]["price"] == "777.00"                      # the override list, untouched
    finally:
        sim.stop()


def test_change_the_rounding_absorbs_is_never_claimed_and_a_later_real_change_goes(exchange_dsn, tmp_path, monkeypatch):
    """The marker is the hash of the price the channel gets: a staff change that leaves it as it was is not
    pending (nothing claimed, no request), and the next change that moves it is pushed with its latest value."""
    from mpsync.outbox.clients import ApiParams, client_for
    from mpsync.outbox.config import parse_push_settings
    from mpsync.outbox.push import push_subscriber
    from mpsync.outbox.sources import source_for
    from mpsync.settings import settings
    from mpsync.simulators.push_ozon import start_ozon_simulator

    _config(tmp_path, monkeypatch, {"ozon": {"markup_percent": 10, "rounding": "90"}})
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into product (article, name) values ('A1', 'a')")
        conn.execute("insert into price (product_id, price) select product_id, 1000 from product")
    cfg = parse_push_settings({"subscribers": {"ozon_price": {"client": "ozon_prices"}}}, settings())
    sub = cfg.subscriber("ozon_price")
    sim = start_ozon_simulator()
    client = client_for(sub.client, ApiParams(sim.url, "client", "key"))

    def push_after(price):
        if price is not None:
            with psycopg.connect(exchange_dsn) as conn:
                conn.execute("update price set price = %s, updated_at = now()", (price,))
        return push_subscriber(exchange_dsn, sub, source_for(sub, settings()), client, cfg, sleep=lambda s: None)

    try:
        first = push_after(None)
        assert first.acknowledged == 1 and sim.state["A1"]["price"] == "1190.00"      # 1100 -> 1190
        absorbed = push_after(1050)                                                 # 1155 -> 1190: the same
        assert (absorbed.changed, absorbed.sent, absorbed.requests) == (0, 0, 0)
        with psycopg.connect(exchange_dsn) as conn:
            assert conn.execute("select object_marker = sync_updated and claim_token is null from sync"
                                " where subscriber = 'ozon_price'").fetchone()[0]
        moved = push_after(1100)                                                    # 1210 -> 1290
        assert (moved.changed, moved.acknowledged) == (1, 1) and sim.state["A1"]["price"] == "1290.00"
    finally:
        client.close()
        sim.stop()
