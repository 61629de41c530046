"""The Yandex simulator and client speak the published API: checked against the OpenAPI spec in ../shared.

Skipped where ../shared is absent. A small validator follows $ref, required, type, enum, maxItems, allOf,
nullable and date/date-time formats: enough for the request and response shapes the order sync uses.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import requests
import yaml

from tests.conftest import shared_path
from mpsync.simulators.harness import start_sim

_cache: dict[Path, dict] = {}


def _load(path: Path) -> dict:
    if path not in _cache:
        _cache[path] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _cache[path]


def validate(value, schema: dict, base: Path, where: str = "$") -> list[str]:
    if "$ref" in schema:
        target = (base.parent / schema["$ref"]).resolve()
        return validate(value, _load(target), target, where)
    errors = []
    for sub in schema.get("allOf", []):
        errors += validate(value, sub, base, where)
    if value is None:
        return errors if schema.get("nullable") else errors + [f"{where}: null"]
    t = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if t and not isinstance(value, checks[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        return errors + [f"{where}: expected {t}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in enum")
    fmt = schema.get("format")
    if isinstance(value, str) and fmt in ("date-time", "date"):
        try:
            parsed = datetime.fromisoformat(value) if fmt == "date-time" else date.fromisoformat(value)
            if fmt == "date-time" and parsed.tzinfo is None:
                errors.append(f"{where}: date-time without offset")
        except ValueError:
            errors.append(f"{where}: not a {fmt}: {value!r}")
    if isinstance(value, dict):
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}: missing required {req}")
        for k, sub in (schema.get("properties") or {}).items():
            if k in value:
                errors += validate(value[k], sub, base, f"{where}.{k}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), base, f"{where}[{i}]")
    return errors


def test_yandex_simulator_requests_and_answers_match_the_openapi_spec():
    root = shared_path("specs", "yandex-market-partner-api", "openapi")
    op_path = root / "paths" / "v1_businesses_businessId_orders.yaml"
    op = _load(op_path)["post"]
    request_schema = op["requestBody"]["content"]["application/json"]["schema"]
    response_schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    params = {}
    for p in op["parameters"]:
        spec = _load((op_path.parent / p["$ref"]).resolve())
        params[spec["name"]] = spec
    assert {"pageToken", "limit", "businessId"} <= set(params)
    assert "page_token" in params["pageToken"]["x-aliases"]          # the alias the client sends
    assert params["limit"]["schema"]["maximum"] == 50

    sim = start_sim("yandex", seed=2)
    try:
        sim.store.activity(3600, 120, 60)
        body = {"dates": {"updateDateFrom": "2026-03-01T12:00:00+03:00", "updateDateTo": "2026-03-01T14:00:00+03:00"}}
        assert validate(body, request_schema, op_path) == []
        pages, token = 0, None
        while True:
            resp = requests.post(f"{sim.url}/v1/businesses/{sim.business_id}/orders", json=body,
                                 params={"limit": 50, **({"page_token": token} if token else {})},
                                 headers={"Api-Key": sim.api_key}, timeout=5)
            assert resp.status_code == 200 and resp.headers["Date"]
            answer = resp.json()
            assert validate(answer, response_schema, op_path) == []
            pages += 1
            token = (answer.get("paging") or {}).get("nextPageToken")
            if not token:
                break
        assert pages >= 3
        broken = dict(answer["orders"][0] if answer["orders"] else {}, orderId="x", status="SOMETHING")
        broken.pop("creationDate", None)
        assert len(validate({"orders": [broken]}, response_schema, op_path)) >= 3   # the validator bites
        sim.set_hostility(p_rate_limit=1.0)
        resp = requests.post(f"{sim.url}/v1/businesses/{sim.business_id}/orders", json=body,
                             headers={"Api-Key": sim.api_key}, timeout=5)
        assert resp.status_code == 420 and "Retry-After" in resp.headers
        limit_schema = _load((op_path.parent / op["responses"]["420"]["$ref"]).resolve())
        ref = limit_schema["content"]["application/json"]["schema"]["$ref"]
        assert validate(resp.json(), {"$ref": ref}, (op_path.parent / op["responses"]["420"]["$ref"]).resolve()) == []
    finally:
        sim.stop()


def test_the_business_orders_answer_has_no_count_the_only_count_is_on_a_deprecated_list():
    # why a Yandex window is proven by one answer (sized for it) or two agreeing reads, never by a count like
    # Taobao's (docs/orders.md): the list the adapter reads answers orders and a next-page token only; the
    # `pager.total` of the spec is on the campaign list GET /v2/campaigns/{campaignId}/orders, optional, a
    # page/pageSize pager, and that method is deprecated with a shutdown date. If the spec changes, so may the proof.
    root = shared_path("specs", "yandex-market-partner-api", "openapi")
    op_path = root / "paths" / "v1_businesses_businessId_orders.yaml"
    answer = _load(root / "components" / "schemas" / "GetBusinessOrdersResponse.yaml")
    assert set(answer["properties"]) == {"orders", "paging"}
    paging = _load(root / "components" / "schemas" / "PackagingForwardScrollingPagerDTO.yaml")
    assert set(paging["properties"]) == {"nextPageToken"}
    assert {p["$ref"].rsplit("/", 1)[-1] for p in _load(op_path)["post"]["parameters"]} == {
        "BusinessId.yaml", "AliasedPageToken.yaml", "PageLimit50Truncate.yaml"}      # no page numbers either
    legacy = _load(root / "paths" / "v2_campaigns_campaignId_orders.yaml")["get"]
    assert legacy["deprecated"] and legacy["x-deprecation-config"]["replacement-operation-id"] == "getBusinessOrders"
    assert legacy["x-deprecation-config"]["shutdown-date"] == "2027-04-12"
    counted = _load(root / "components" / "schemas" / "GetOrdersResponse.yaml")
    assert counted["properties"]["pager"]["$ref"] == "./FlippingPagerDTO.yaml" and "pager" not in counted["required"]
    assert "30 дней назад" in legacy["description"]    # it leaves out orders delivered or cancelled 30+ days ago
