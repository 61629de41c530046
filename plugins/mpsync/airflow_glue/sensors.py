"""The drop-folder sensor: new, fully uploaded 1C files of one kind on the FTP.

The provider's FTPSensor checks one exact path; a drop folder needs a pattern, the ledger and a size
stability check, so this is a `@task.sensor` in reschedule mode handing the file list on via XCom.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import PokeReturnValue, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

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
        if not files:
            give_way_to_queued_runs(kind)
        return PokeReturnValue(is_done=bool(files), xcom_value=[f.to_dict() for f in files])

    return wait()


def give_way_to_queued_runs(kind: str) -> None:
    """With max_active_runs=1, a run whose sensor waits for a file holds every later run in the queue: a run
    an operator triggered by hand would wait up to the sensor's timeout (55 minutes). While no file has come,
    the waiting run gives way: it is skipped (as when no file comes), and the queued run starts at once."""
    ctx = get_current_context()
    queued = ctx["ti"].get_dr_count(dag_id=ctx["dag"].dag_id, states=["queued"])
    if queued:
        raise AirflowSkipException(f"no new {kind} file yet and {queued} run(s) of this DAG queued behind this one "
                                   "(e.g. triggered by hand): this run gives way")
