"""`python -m mpsync preflight`: refuse to start a deployment whose secrets are still placeholders.

docker-compose's `airflow-init` runs it before anything else, so `docker compose up` with the values of
`.env.example` stops there with a list of what to fill in, instead of starting an Airflow whose keys and
passwords are on GitHub. Only variable names are printed, never values.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

# Must be set and not a placeholder; the keys also long enough to be keys.
SECRETS = {
    "AIRFLOW_DB_PASSWORD": 12,
    "EXCHANGE_DB_PASSWORD": 12,
    "AIRFLOW_FERNET_KEY": 0,           # checked as a Fernet key below
    "AIRFLOW_JWT_SECRET": 32,
    "AIRFLOW_API_SECRET_KEY": 32,
}
_PLACEHOLDER = re.compile(r"change[-_ ]?me|changeme|example-secret|^secret$|^password$|^admin$", re.IGNORECASE)


def _is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.search(value))


def _fernet_problem(value: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (ValueError, TypeError):
        raw = b""
    return None if len(raw) == 32 else "is not a Fernet key (32 bytes, url-safe base64)"


def _connection_secret(value: str) -> str:
    """The password part of an AIRFLOW_CONN_* value (URI or JSON form), or the whole value."""
    value = value.strip()
    if value.startswith("{"):
        found = re.findall(r'"(?:password|login)"\s*:\s*"([^"]*)"', value)
        return " ".join(found)
    try:
        parts = urlsplit(value)
        return f"{parts.username or ''} {parts.password or ''}"
    except ValueError:
        return value


def problems(env: Mapping[str, str]) -> list[str]:
    """What stops a start: each as `NAME: why` (values never shown)."""
    out = []
    for name, min_len in SECRETS.items():
        value = env.get(name, "")
        if not value:
            out.append(f"{name}: not set")
        elif _is_placeholder(value):
            out.append(f"{name}: still the placeholder from .env.example")
        elif name == "AIRFLOW_FERNET_KEY":
            why = _fernet_problem(value)
            if why:
                out.append(f"{name}: {why}")
        elif len(value) < min_len:
            out.append(f"{name}: shorter than {min_len} characters")
    for name in sorted(k for k in env if k.startswith("AIRFLOW_CONN_")):
        if re.search(r"change[-_ ]?me", _connection_secret(env[name]), re.IGNORECASE):
            out.append(f"{name}: login or password is still the placeholder from .env.example")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warn-only", action="store_true", help="print the problems but exit 0")


def run(args: argparse.Namespace) -> int:
    found = problems(os.environ)
    if not found:
        print("preflight: secrets set (no placeholder values)")
        return 0
    print("preflight: refusing to start, fill these in .env (see .env.example for how to generate each):",
          file=sys.stderr)
    for line in found:
        print(f"  - {line}", file=sys.stderr)
    return 0 if args.warn_only else 1
