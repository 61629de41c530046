"""mpsync: the seller's data exchange (1C files, marketplace feeds and APIs, orders, the sync table).

Plain Python, no Airflow import at package level; `mpsync.airflow_glue` is the only Airflow-facing part.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"
