"""Settings loading: the shipped config loads, and a key given twice anywhere is refused (YAML keeps the last)."""

import pytest

from mpsync.settings import DEFAULT_CONFIG, ConfigError, load_settings


def test_the_shipped_config_loads_with_each_subscriber_once():
    s = load_settings(DEFAULT_CONFIG)
    subscribers = s.section("sync_push")["subscribers"]
    assert {"site", "wildberries_stock", "wildberries_price"} <= set(subscribers)


def _line_of(text: str, line: str, nth: int) -> int:
    """1-based number of the nth (0-based) occurrence of a whole line."""
    return [i for i, x in enumerate(text.splitlines(), 1) if x == line][nth]


@pytest.mark.parametrize("key, anchor, block", [
    # nested: a subscriber pasted twice (the bug this guards against)
    ("megamarket_price", "\norders:\n", "    megamarket_price:\n      client: megamarket_prices\n      enabled: true\n"),
    # top level: a whole section given twice
    ("retention", None, "retention:\n  history_days: 1\n"),
], ids=["nested", "top_level"])
def test_a_key_given_twice_is_refused_naming_file_line_and_key(tmp_path, key, anchor, block):
    shipped = DEFAULT_CONFIG.read_text(encoding="utf-8")
    text = shipped.replace(anchor, "\n" + block + anchor[1:], 1) if anchor else shipped + block
    assert text != shipped
    path = tmp_path / "mpsync.yaml"
    path.write_text(text, encoding="utf-8")
    head = block.splitlines()[0]
    first, second = _line_of(text, head, 0), _line_of(text, head, 1)
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    message = str(exc.value)
    assert f"{path}, line {second}: key '{key}' is given twice" in message
    assert f"first at line {first}" in message


def test_a_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "mpsync.yaml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    path.write_text(text + "x_base: &base {a: 1, b: 2}\nx_use:\n  <<: *base\n  a: 3\n", encoding="utf-8")
    assert load_settings(path).raw["x_use"] == {"a": 3, "b": 2}
