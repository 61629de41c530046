"""Airflow's REST API as the run command and the tests use it: health, the admin's password and token, a
call as admin, and the project's pools made (or brought to their size) once Airflow answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import requests


class AirflowRest:
    def __init__(self, url: str, airflow_home: Path):
        self.url = url
        # written by the API server's simple auth manager (as under `airflow standalone`)
        self.password_file = airflow_home / "simple_auth_manager_passwords.json.generated"

    def health(self) -> dict | None:
        try:
            r = requests.get(f"{self.url}/api/v2/monitor/health", timeout=3)
        except requests.RequestException:
            return None
        return r.json() if r.status_code == 200 else None

    def admin_password(self) -> str:
        return json.loads(self.password_file.read_text())["admin"]

    def token(self, username: str = "admin", password: str | None = None) -> str:
        r = requests.post(f"{self.url}/auth/token", timeout=30,
                          json={"username": username, "password": password or self.admin_password()})
        r.raise_for_status()
        return r.json()["access_token"]

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """A call to Airflow's REST API (`/api/v2/...`) as admin."""
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def create_pools(self, log: Callable[[str], None]) -> None:
        """mpsync.airflow_glue.pools.POOLS, created or set to their slots."""
        try:
            from mpsync.airflow_glue.pools import POOLS
        except ImportError:
            return
        token = self.token()
        for name, slots, description in pool_rows(POOLS):
            body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
            r = self.call("PATCH", f"/api/v2/pools/{quote(name, safe='')}", token, json=body)
            if r.status_code == 404:
                r = self.call("POST", "/api/v2/pools", token, json=body)
            if r.status_code >= 400:
                raise RuntimeError(f"pool {name}: {r.status_code} {r.text[:300]}")
            log(f"pool         {name}: {slots} slots")


def pool_rows(pools: Any) -> list[tuple[str, int, str]]:
    """POOLS as a dict name -> slots | (slots, description) | {slots, description}, or a list of
    (name, slots[, description]) tuples or objects with .name/.slots/.description."""
    items = pools.items() if isinstance(pools, dict) else pools
    rows = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (int, dict, tuple, list)):
            name, spec = item
            if isinstance(spec, dict):
                rows.append((str(name), int(spec["slots"]), str(spec.get("description", ""))))
            elif isinstance(spec, (tuple, list)):
                rows.append((str(name), int(spec[0]), str(spec[1]) if len(spec) > 1 else ""))
            else:
                rows.append((str(name), int(spec), ""))
        elif isinstance(item, (tuple, list)):
            rows.append((str(item[0]), int(item[1]), str(item[2]) if len(item) > 2 else ""))
        else:
            rows.append((str(item.name), int(item.slots), str(getattr(item, "description", "") or "")))
    return rows
