"""The marketplace and website simulators of the run command: every `start_<name>_simulator` in
mpsync.simulators, grouped by the Airflow connection it serves, one set of demo credentials per connection.

Where one marketplace has an order simulator and a push simulator, a router (mpsync.local.router) puts both
behind the one connection the DAGs use.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

# Which Airflow connection each simulator serves (simulator name = the * of mpsync.simulators' start_*_simulator).
SIMULATOR_CONNECTIONS = {
    "ozon": "ozon_api",
    "yandex": "yandex_market_api",
    "yandex_market": "yandex_market_api",
    "megamarket": "megamarket_api",
    "sber": "megamarket_api",
    "taobao": "taobao_api",
    "site": "site_api",
    "website": "site_api",
    "woocommerce": "site_api",
}


@dataclass
class StartedSimulator:
    name: str
    conn_id: str
    url: str
    handle: Any
    login: str | None = None
    password: str | None = None

    def stop(self) -> None:
        for method in ("stop", "shutdown", "close"):
            fn = getattr(self.handle, method, None)
            if callable(fn):
                fn()
                return


@dataclass
class Simulators:
    """What was started: the servers, each connection's AIRFLOW_CONN value, and the URL it points at."""

    started: list[StartedSimulator] = field(default_factory=list)
    connections: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


def start_simulators(login: str, password: str, log: Callable[[str], None]) -> Simulators:
    """Start every simulator found; one that fails to import or start is reported and skipped."""
    out = Simulators()
    for conn_id, starters in _found(log).items():
        secret = f"{password}-{conn_id}"
        handles = []
        for label, fn in starters:
            try:
                handles.append((label, _start_one(fn, login, secret)))
            except Exception as exc:
                log(f"simulators   {label}: not started ({type(exc).__name__}: {exc})")
        if not handles:
            continue
        sims = [StartedSimulator(label, conn_id, _handle_url(label, h), h, login, secret) for label, h in handles]
        out.started.extend(sims)
        url = sims[0].url
        if len(sims) > 1:
            url = _route(conn_id, sims, out)
        extra = {"base_url": url}
        for key in ("business_id", "campaign_id"):   # Yandex: ids the API paths carry, one per connection
            values = [getattr(h, key) for _, h in handles if getattr(h, key, None) is not None]
            if values:
                extra[key] = values[0]
                for _, h in handles:
                    if hasattr(h, key):
                        setattr(h, key, values[0])
        out.connections[conn_id] = json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": int(url.rsplit(":", 1)[1]), "schema": "",
            "login": login, "password": secret, "extra": extra,
        })
        out.urls[conn_id] = url
        log(f"simulator    {conn_id:<18} {url}  ({', '.join(label for label, _ in handles)})")
    return out


def stop_simulators(sims: list[StartedSimulator], log: Callable[[str], None]) -> None:
    """Stop them side by side: each HTTP server takes up to its poll interval (0.5 s) to stop."""
    def stop(sim: StartedSimulator) -> None:
        try:
            sim.stop()
        except Exception as exc:
            log(f"simulator {sim.name}: stop failed: {exc}")

    stoppers = [threading.Thread(target=stop, args=(sim,), daemon=True) for sim in sims]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(timeout=10)


def _found(log: Callable[[str], None]) -> dict[str, list[tuple[str, Callable]]]:
    """conn id -> [(label, start function)] of every simulator module that imports."""
    import mpsync.simulators as package   # only when simulators are started (not with --no-simulators)

    found: dict[str, list[tuple[str, Callable]]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
        except Exception as exc:   # one broken simulator must not stop the demo
            log(f"simulators   {info.name}: not started ({type(exc).__name__}: {exc})")
            continue
        for attr, fn in vars(module).items():
            if (attr.startswith("start_") and attr.endswith("_simulator") and callable(fn)
                    and getattr(fn, "__module__", None) == module.__name__):
                name = attr[len("start_"):-len("_simulator")]
                conn_id = SIMULATOR_CONNECTIONS.get(name, f"{name}_api")
                found.setdefault(conn_id, []).append((f"{info.name}.{name}", fn))
    return found


def _route(conn_id: str, sims: list[StartedSimulator], out: Simulators) -> str:
    """Order and push simulators of one marketplace behind the one connection the DAGs use: the router's URL."""
    from mpsync.local.router import SimulatorRouter

    push = [s for s in sims if s.name.startswith("push_")]
    order = [s for s in sims if not s.name.startswith("push_")]
    if len(push) != 1 or len(order) != 1:
        raise RuntimeError(f"{conn_id}: expected one order and one push simulator, got {[s.name for s in sims]}")
    router = SimulatorRouter(order[0].url, push[0].url).start()
    out.started.append(StartedSimulator("router", conn_id, router.url, router))
    return router.url


def _start_one(fn: Callable, login: str, password: str) -> Any:
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {"port": 0} if "port" in params else {}
    handle = fn(**kwargs)
    # One set of demo credentials per connection: every simulator behind it checks the same values
    # (Ozon: Client-Id = login, Api-Key = password; Yandex: Api-Key; Megamarket/Taobao: token).
    for attr, value in (("client_id", login), ("api_key", password), ("token", password)):
        if hasattr(handle, attr):
            setattr(handle, attr, value)
    return handle


def _handle_url(label: str, handle: Any) -> str:
    for attr in ("url", "base_url"):
        value = getattr(handle, attr, None)
        value = value() if callable(value) else value
        if isinstance(value, str):
            return value.rstrip("/")
    address = getattr(getattr(handle, "httpd", handle), "server_address", None)
    if not address:
        raise RuntimeError(f"cannot tell the URL of simulator {label}")
    return f"http://{address[0]}:{address[1]}"
