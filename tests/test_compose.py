"""docker-compose.yaml (the production path) cannot run here (no Docker engine), so check what can be checked:
it parses, has the Airflow 3 services and both databases, its image agrees with requirements.txt, its mounts
exist in the repo and match the folders Airflow is told to use, and every connection the code needs is in
.env.example. The needed connection ids are derived from the code and the config, so a new connection in
code without a compose/env update fails here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {"api-server": "api-server", "scheduler": "scheduler", "dag-processor": "dag-processor",
                    "triggerer": "triggerer"}
CONN_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for n, line in enumerate((ROOT / ".env.example").read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f".env.example line {n} is not NAME=value: {line!r}"
        assert name not in values, f".env.example defines {name} twice"
        values[name] = value
    return values


def _airflow_services(compose: dict) -> dict[str, dict]:
    return {name: compose["services"][name] for name in [*AIRFLOW_SERVICES, "airflow-init"]}


def _command(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def _binds(service: dict) -> dict[str, str]:
    """Host path (relative to the repo) -> container path, for bind mounts only."""
    out = {}
    for v in service.get("volumes", []):
        source, target = v.split(":")[:2]
        if source.startswith((".", "/")):
            out[source] = target
    return out


# ---- what the code needs ----------------------------------------------------------------------------------
def _conn_ids_in_python(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    in_connections = path.name == "connections.py"

    def literal(node) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if not names or node.value is None:
                continue
            name = names[0]
            if (in_connections and name.isupper()) or "CONN" in name.upper():
                if literal(node.value):
                    found.add(literal(node.value))
                elif isinstance(node.value, ast.Dict):      # e.g. DEFAULT_CONN = {"ozon": "ozon_api", ...}
                    found.update(v for v in map(literal, node.value.values) if v)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop"):
            # cfg.get("ftp_conn_id", "onec_ftp"): the default a config may leave out
            if len(node.args) == 2 and (literal(node.args[0]) or "").endswith("conn_id") and literal(node.args[1]):
                found.add(literal(node.args[1]))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            defaults += node.args.kw_defaults
            for arg, default in zip(args, defaults):
                if arg.arg.endswith("conn_id") and default is not None and literal(default):
                    found.add(literal(default))
    return {c for c in found if CONN_ID.match(c)}


def _conn_ids_in_config(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).endswith("conn_id") and isinstance(value, str):
                found.add(value)
            else:
                found |= _conn_ids_in_config(value)
    elif isinstance(node, list):
        for item in node:
            found |= _conn_ids_in_config(item)
    return found


def needed_conn_ids() -> set[str]:
    files = [p for p in (ROOT / "plugins").rglob("*.py") if "local" not in p.relative_to(ROOT / "plugins").parts]
    files += list((ROOT / "dags").glob("*.py"))
    found = set().union(*(_conn_ids_in_python(p) for p in files))
    config = yaml.safe_load((ROOT / "include" / "config" / "mpsync.yaml").read_text(encoding="utf-8"))
    return found | _conn_ids_in_config(config)


def test_conn_ids_are_derived_from_the_code():
    # The derivation itself must work, or the env check below proves nothing.
    needed = needed_conn_ids()
    assert {"exchange_db", "onec_ftp"} <= needed, needed
    sample = ROOT / "plugins" / "mpsync" / "airflow_glue" / "connections.py"
    assert _conn_ids_in_python(sample) >= {"exchange_db", "onec_ftp"}


def test_derivation_catches_a_new_connection(tmp_path):
    src = tmp_path / "new_glue.py"
    src.write_text('PAYMENTS_CONN_ID = "payments_api"\n'
                   'def push(conn_id: str = "crm_api"): ...\n'
                   'x = cfg.get("sms_conn_id", "sms_gateway")\n')
    assert _conn_ids_in_python(src) == {"payments_api", "crm_api", "sms_gateway"}
    assert _conn_ids_in_config({"a": {"conn_id": "x_api"}, "b": [{"smtp_conn_id": "mail"}]}) == {"x_api", "mail"}


# ---- the compose file -------------------------------------------------------------------------------------
def test_services(compose):
    services = compose["services"]
    for name, cmd in AIRFLOW_SERVICES.items():
        assert name in services, f"docker-compose.yaml: no service {name!r}"
        assert _command(services[name]).split()[0] == cmd, f"{name}: command {_command(services[name])!r}"
    for db in ("postgres", "exchange-db"):
        assert services[db]["image"].startswith("postgres:"), db
        assert "healthcheck" in services[db], f"{db} needs a healthcheck for depends_on"
    init = _command(services["airflow-init"])
    assert "airflow db migrate" in init and "python -m mpsync migrate" in init, init
    for name in AIRFLOW_SERVICES:
        deps = services[name].get("depends_on", {})
        assert deps.get("airflow-init", {}).get("condition") == "service_completed_successfully", name


def test_two_separate_databases(compose, env_example):
    services = compose["services"]
    for name, service in _airflow_services(compose).items():
        env = service["environment"]
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert _default(env["AIRFLOW__CORE__EXECUTOR"]) == "LocalExecutor", name      # the default profile
    exchange = env_example["AIRFLOW_CONN_EXCHANGE_DB"]
    m = re.fullmatch(r"postgres(?:ql)?://([^:@]+)(?::[^@]*)?@([^:/]+):(\d+)/(\w+)", exchange)
    assert m, f".env.example AIRFLOW_CONN_EXCHANGE_DB is not a postgresql:// URI: {exchange}"
    user, host, _port, dbname = m.groups()
    assert host == "exchange-db", "the exchange_db connection must point at the exchange-db service"
    db_env = services["exchange-db"]["environment"]
    assert (user, dbname) == (db_env["POSTGRES_USER"], db_env["POSTGRES_DB"])


def test_image_matches_requirements(compose):
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", (ROOT / "requirements.txt").read_text(), re.M))
    dockerfile = (ROOT / "Dockerfile").read_text()
    m = re.search(r"^FROM\s+apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?\s*$", dockerfile, re.M)
    assert m, "Dockerfile must build FROM apache/airflow:<version>[-python<x.y>]"
    assert m.group(1) == pins["apache-airflow"], f"Dockerfile Airflow {m.group(1)} != requirements {pins['apache-airflow']}"
    if m.group(2):
        assert m.group(2) == f"{sys.version_info.major}.{sys.version_info.minor}", "image Python != tested Python"
    assert "requirements.txt" in dockerfile
    for name, service in _airflow_services(compose).items():
        assert service.get("build") == ".", f"{name} must use the image built from the Dockerfile"
        assert service["image"].endswith(":" + pins["apache-airflow"]), f"{name}: image tag {service['image']}"


def test_mounts_exist_and_match_airflow_folders(compose):
    for name, service in _airflow_services(compose).items():
        binds = _binds(service)
        for host in binds:
            assert (ROOT / host).is_dir(), f"{name}: mounted {host} does not exist in the repo"
        env = service["environment"]
        assert binds.get("./dags") == env["AIRFLOW__CORE__DAGS_FOLDER"], name
        assert binds.get("./plugins") == env["AIRFLOW__CORE__PLUGINS_FOLDER"], name
        # mpsync finds include/ next to plugins/ (mpsync.PROJECT_ROOT): the mounts must keep that layout.
        plugins = PurePosixPath(binds["./plugins"])
        assert binds.get("./include") == str(plugins.parent / "include"), name
        config = PurePosixPath(env["MPSYNC_CONFIG"])
        rel = config.relative_to(binds["./include"])
        assert (ROOT / "include" / rel).is_file(), f"{name}: MPSYNC_CONFIG {config} is not a file in include/"
        # The published feeds: written by tasks, served by the feeds web server from the same volume.
        named = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"] if not v.startswith((".", "/"))}
        assert env["MPSYNC_FEEDS_DIR"] in named, f"{name}: MPSYNC_FEEDS_DIR is not on a volume"
        feeds_volume = named[env["MPSYNC_FEEDS_DIR"]]
        assert any(v.startswith(feeds_volume + ":") for v in compose["services"]["feeds"]["volumes"])


def test_env_names_agree(compose, env_example):
    text = (ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    # ${VAR} without a default must be defined in .env.example ($${...} is an escaped literal for the shell).
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)\}", text))
    missing = used - set(env_example)
    assert not missing, f"docker-compose.yaml uses {sorted(missing)}, not in .env.example"
    for name, service in _airflow_services(compose).items():
        assert ".env" in service.get("env_file", []), f"{name} must read the connections from .env"
    conns = {k[len("AIRFLOW_CONN_"):].lower() for k in env_example if k.startswith("AIRFLOW_CONN_")}
    needed = needed_conn_ids()
    assert not needed - conns, f".env.example lacks AIRFLOW_CONN_* for {sorted(needed - conns)}"
    assert not conns - needed, f".env.example has connections no code uses: {sorted(conns - needed)}"


def test_real_env_is_ignored_and_example_is_not():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
    assert ignored, ".env (real credentials) must be git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1


# ---- the opt-in CeleryExecutor profile (issue 21) -----------------------------------------------------------

def _default(value: str) -> str:
    """A compose value with ${VAR:-default} taken at its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def test_celery_is_an_opt_in_profile_switched_by_one_variable(compose):
    services = compose["services"]
    celery = {n for n, s in services.items() if "celery" in s.get("profiles", [])}
    assert celery == {"redis", "airflow-worker", "flower"}, celery
    scheduler_env = services["scheduler"]["environment"]
    executor = scheduler_env["AIRFLOW__CORE__EXECUTOR"]
    assert re.fullmatch(r"\$\{([A-Z_]+):-LocalExecutor\}", executor), executor
    variable = re.fullmatch(r"\$\{([A-Z_]+):-", executor[:executor.index("-") + 1]).group(1)
    for name in [*AIRFLOW_SERVICES, "airflow-init", "airflow-worker", "flower"]:
        # every Airflow part reads the same switch: a scheduler on Celery with LocalExecutor workers is no system
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == executor, name
    assert variable in (ROOT / "docker-compose.yaml").read_text() and "CeleryExecutor" in \
        (ROOT / "docker-compose.yaml").read_text().split("services:")[0]
    # the broker is the redis service, the result backend Airflow's metadata database
    broker = scheduler_env["AIRFLOW__CELERY__BROKER_URL"]
    assert re.fullmatch(r"redis://redis:6379/\d+", broker), broker
    assert services["redis"]["healthcheck"] and not services["redis"].get("ports")
    backend = scheduler_env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql://") and "@postgres:5432/airflow" in backend
    assert backend[len("db+"):] == scheduler_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")


def test_the_celery_worker_is_scalable_and_shares_what_the_scheduler_shares(compose):
    services = compose["services"]
    worker, scheduler = services["airflow-worker"], services["scheduler"]
    assert _command(worker).split()[:2] == ["celery", "worker"]
    assert "container_name" not in worker and not worker.get("ports"), "--scale needs no fixed name or port"
    assert worker.get("build") == "." and worker["image"] == scheduler["image"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    # the same mounts: feeds it publishes are what the feeds server serves, its logs what the API server reads
    assert sorted(worker["volumes"]) == sorted(scheduler["volumes"])
    assert worker["environment"] == scheduler["environment"] and ".env" in worker["env_file"]
    # the healthcheck pings this worker through the Celery app the provider really has
    import importlib

    app_path = re.search(r"--app (\S+)", " ".join(worker["healthcheck"]["test"])).group(1)
    module, _, attr = app_path.rpartition(".")
    assert hasattr(importlib.import_module(module), attr), app_path
    assert _command(services["flower"]).split()[:2] == ["celery", "flower"]
    assert all(addr == "127.0.0.1" for addr, *_ in _published(services["flower"]))


# ---- exposure (issue 17): published on 127.0.0.1 by default, TLS proxy opt-in, no placeholder secrets --------

def _published(service: dict) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) with compose's ${VAR:-default} taken at its default."""
    out = []
    for p in service.get("ports", []):
        resolved = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(p))
        parts = resolved.split(":")
        out.append(tuple(parts) if len(parts) == 3 else ("0.0.0.0", *parts))
    return out


def test_ui_and_feeds_are_published_on_localhost_by_default(compose, env_example):
    services = compose["services"]
    for name in ("api-server", "feeds"):
        published = _published(services[name])
        assert published and all(addr == "127.0.0.1" for addr, *_ in published), f"{name}: {published}"
    assert env_example["PUBLISH_ADDRESS"] == "127.0.0.1"
    # only the TLS proxy publishes on every interface, and only when its profile is asked for
    for name, service in services.items():
        if any(addr != "127.0.0.1" for addr, *_ in _published(service)):
            assert name == "proxy" and service.get("profiles") == ["tls"], name


def test_the_tls_proxy_serves_the_feeds_and_only_the_1c_exchange_and_order_receiver_paths(compose):
    proxy = compose["services"]["proxy"]
    caddyfile = next(v.split(":")[0] for v in proxy["volumes"] if v.startswith("./"))
    text = (ROOT / caddyfile).read_text(encoding="utf-8")
    assert "reverse_proxy feeds:80" in text
    from mpsync.airflow_glue.onec_exchange import URL_PREFIX

    assert re.search(rf"handle {URL_PREFIX}/exchange\*\s*\{{\s*reverse_proxy api-server:8080", text)
    # the order receivers' paths, and nothing else of the API server (UI, REST API), go through it
    assert text.count("api-server:8080") == 2 and 'respond "Not found" 404' in text
    orders = re.compile(re.search(r"@orders path_regexp (\S+)", text).group(1))
    assert orders.match("/orders/yandex/main/notification") and orders.match("/orders/megamarket/main/order/new")
    for path in ("/orders/yandex/main/notification/x", "/api/v2/dags", "/orders/", "/orders/a/b/c/notification"):
        assert not orders.match(path), path


def test_init_refuses_the_placeholder_secrets_of_env_example(compose, env_example):
    from mpsync.preflight_cmd import problems

    assert _command(compose["services"]["airflow-init"]).split("&&")[0].strip().endswith("python -m mpsync preflight")
    found = problems(env_example)
    for name in ("AIRFLOW_DB_PASSWORD", "EXCHANGE_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
                 "AIRFLOW_API_SECRET_KEY", "AIRFLOW_CONN_EXCHANGE_DB", "AIRFLOW_CONN_ONEC_FTP"):
        assert any(line.startswith(name + ":") for line in found), (name, found)
    assert not any("change-me" in line for line in found), "values are never printed"


def test_init_accepts_real_secrets(env_example):
    import base64
    import secrets

    from mpsync.preflight_cmd import problems

    env = {k: v.replace("change-me", secrets.token_urlsafe(16)) for k, v in env_example.items()}
    env.update({"AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(48), "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(48)})
    assert problems(env) == []
    assert problems({**env, "AIRFLOW_FERNET_KEY": "short"}) == \
        ["AIRFLOW_FERNET_KEY: is not a Fernet key (32 bytes, url-safe base64)"]
    assert problems({**env, "AIRFLOW_JWT_SECRET": "abc"}) == ["AIRFLOW_JWT_SECRET: shorter than 32 characters"]
