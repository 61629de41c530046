"""Airflow's four parts for the run command, like `airflow standalone` but with nothing on other interfaces.

    python -m mpsync.local.airflow_parts        # AIRFLOW_* from the environment (LocalSystem.airflow_env())

`airflow standalone` starts the scheduler and the triggerer with their log servers, and Airflow 3.3's log
server binds every interface (`airflow/utils/serve_logs/core.py` passes host ""), with no setting to change
it. With the LocalExecutor every task log is a file in AIRFLOW_HOME that the API server reads itself, so the
log servers serve nothing here: this starts the same parts with `--skip-serve-logs`, and the API server on
`[api] host` (127.0.0.1). The database is migrated first, as standalone does; the admin password is generated
by the API server's simple auth manager, as under standalone.

One process group (the caller starts it in a session of its own): when any part exits, the others are
stopped and this exits with the part's code, so the caller sees a failed start instead of a half system.

With `AIRFLOW__CORE__EXECUTOR=CeleryExecutor` (`./run --executor celery`) it also starts MPSYNC_CELERY_WORKERS
Celery workers (`airflow celery worker`, hostnames `mpsync-worker-<n>@<host>`, no log server) and, with
MPSYNC_FLOWER=1, Flower on 127.0.0.1. Each worker names itself in the task instances it runs
(`[core] hostname_callable`, mpsync.local.worker_name): two workers on one machine would otherwise both write
the machine's name. A worker that exits (killed, as the slow test does) is reported and the rest go on: the
scheduler retries its tasks on the other workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PARTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def parts(env: dict[str, str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (airflow arguments, environment) of every part to start."""
    out = {name: (args, env) for name, args in PARTS.items()}
    if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
        return out
    queue = env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")
    for n in range(1, int(env.get("MPSYNC_CELERY_WORKERS", "2")) + 1):
        name = f"mpsync-worker-{n}"
        worker_env = {**env, "MPSYNC_WORKER_NAME": name,
                      "AIRFLOW__CORE__HOSTNAME_CALLABLE": "mpsync.local.worker_name.hostname"}
        out[f"worker-{n}"] = (["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue,
                               "--skip-serve-logs"], worker_env)
    if env.get("MPSYNC_FLOWER") == "1":
        out["flower"] = (["celery", "flower", "--hostname", "127.0.0.1",
                          "--port", env.get("AIRFLOW__CELERY__FLOWER_PORT", "5555")], env)
    return out


def essential(name: str) -> bool:
    """A part whose exit stops the system: not a Celery worker or Flower (the others carry on)."""
    return not name.startswith(("worker-", "flower"))


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _prefix_output(name: str, proc: subprocess.Popen) -> None:
    """Each part's lines on our stdout (the run's Airflow log), prefixed like standalone does."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.write(f"{name:<14}| {raw.decode(errors='replace')}")
        sys.stdout.flush()


def _stop(procs: dict[str, subprocess.Popen], grace: float = 30) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    env = dict(os.environ)
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    print("airflow_parts | migrating Airflow's database", flush=True)
    migrated = subprocess.run([_airflow(), "db", "migrate"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    sys.stdout.write(migrated.stdout.decode(errors="replace"))
    if migrated.returncode:
        return migrated.returncode
    procs = {name: subprocess.Popen([_airflow(), *args], env=part_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
             for name, (args, part_env) in parts(env).items()}
    for name, proc in procs.items():
        threading.Thread(target=_prefix_output, args=(name, proc), daemon=True).start()
    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    reported: set[str] = set()
    while not stopping.is_set():
        for name in [n for n, p in procs.items() if not essential(n) and p.poll() is not None and n not in reported]:
            print(f"airflow_parts | {name} exited with {procs[name].returncode}; the other parts go on", flush=True)
            reported.add(name)
        ended = [(n, p.returncode) for n, p in procs.items() if essential(n) and p.poll() is not None]
        if ended:
            name, code = ended[0]
            print(f"airflow_parts | {name} exited with {code}: stopping the others", flush=True)
            code = code or 1
            break
        stopping.wait(1)
    _stop(procs)
    return code


if __name__ == "__main__":
    sys.exit(main())
