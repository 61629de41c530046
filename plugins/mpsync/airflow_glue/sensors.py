"""The drop-folder sensor: new, fully uploaded 1C files of one kind on the FTP.

The provider's FTPSensor checks one exact path; a drop folder needs a pattern, the ledger and a size
stability check, so this is a `@task.sensor` in reschedule mode handing the file list on via XCom.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import PokeReturnValue, task

from mpsync import dropfolder
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.settings import settings


def wait_for_new_files(kind: str):
    """A sensor task `wait_for_<kind>_file` returning [DropFile dict, ...] (oldest first)."""
    cfg = settings()

    @task.sensor(
        task_id=f"wait_for_{kind}_file",
        task_display_name=f"Wait for a new {kind} file on the FTP",
        mode="reschedule",
        poke_interval=timedelta(seconds=cfg.poke_seconds),
        timeout=timedelta(seconds=cfg.timeout_seconds),
        soft_fail=True,      # no file this hour is normal: the run is skipped, not failed
    )
    def wait() -> PokeReturnValue:
        current = settings()
        files = dropfolder.new_stable_files(exchange_dsn(), ftp_params(current.ftp_conn_id),
                                            current.drops[kind], current.stable_seconds)
        return PokeReturnValue(is_done=bool(files), xcom_value=[f.to_dict() for f in files])

    return wait()
