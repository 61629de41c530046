"""Mirror a checkpoint (kept in the exchange database's sync table) to an Airflow Variable for operators."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def mirror_checkpoint(name: str, value: str) -> None:
    from airflow.sdk import Variable

    key = f"checkpoint__{name}"
    Variable.set(key, value, description="Mirror of the checkpoint in the exchange DB sync table (read-only)")
    # Some 3.x releases swallowed Variable.set errors: read back, and say so if it did not stick.
    if Variable.get(key, default=None) != value:
        log.warning("Variable %s did not take the value %s; the sync table remains the truth", key, value)
