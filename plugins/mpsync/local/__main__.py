"""`./run` = `python -m mpsync.local`: the whole system on the embedded default, on 127.0.0.1, until Ctrl-C.

Data lives in one working folder (default `var/` in the project, git-ignored); a second run reuses it.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
import signal
import sys
import time
from pathlib import Path

from mpsync import PROJECT_ROOT
from mpsync.local.system import LocalSystem, Ports


def _parser() -> argparse.ArgumentParser:
    d = Ports()
    p = argparse.ArgumentParser(prog="./run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--var", type=Path, default=Path(os.environ.get("MPSYNC_VAR", PROJECT_ROOT / "var")),
                   help="working folder for all data (default: %(default)s; env MPSYNC_VAR)")
    p.add_argument("--no-airflow", action="store_true", help="start the services only, not Airflow")
    p.add_argument("--no-simulators", action="store_true", help="do not start the marketplace simulators")
    p.add_argument("--no-demo", action="store_true", help="do not seed the FTP with demo 1C files")
    p.add_argument("--paused", action="store_true", help="new DAGs start paused (default: unpaused)")
    p.add_argument("--pg-port", type=int, default=d.postgres)
    p.add_argument("--ftp-port", type=int, default=d.ftp)
    p.add_argument("--feeds-port", type=int, default=d.feeds)
    p.add_argument("--airflow-port", type=int, default=d.airflow)
    p.add_argument("--worker-log-port", type=int, default=d.worker_log)
    p.add_argument("--trigger-log-port", type=int, default=d.trigger_log)
    p.add_argument("--executor", choices=("local", "celery"), default="local",
                   help="local: LocalExecutor (default); celery: a redis-server broker (Debian's package, installed "
                        "when missing) and Celery workers, all on 127.0.0.1 (docs/run.md)")
    p.add_argument("--workers", type=int, default=2, help="Celery workers with --executor celery (default 2)")
    p.add_argument("--worker-concurrency", type=int, default=4, help="tasks at once per Celery worker (default 4)")
    p.add_argument("--no-flower", action="store_true", help="with --executor celery: do not start Flower")
    p.add_argument("--redis-port", type=int, default=d.redis)
    p.add_argument("--flower-port", type=int, default=d.flower)
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for Airflow to be healthy")
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    args = _parser().parse_args(argv)
    # The FTP server logs every command: into var/ftp.log, not over the summary on the console.
    args.var.mkdir(parents=True, exist_ok=True)
    ftp_log = logging.getLogger("pyftpdlib")
    ftp_log.addHandler(logging.FileHandler(args.var / "ftp.log"))
    ftp_log.setLevel(logging.INFO)
    ftp_log.propagate = False
    ports = Ports(args.pg_port, args.ftp_port, args.feeds_port, args.airflow_port,
                  args.worker_log_port, args.trigger_log_port, args.redis_port, args.flower_port)
    system = LocalSystem(args.var, ports=ports, airflow=not args.no_airflow, simulators=not args.no_simulators,
                         seed_demo=not args.no_demo, dags_paused_at_creation=args.paused,
                         executor=args.executor, celery_workers=args.workers,
                         worker_concurrency=args.worker_concurrency, flower=not args.no_flower,
                         log=lambda line: print(line, flush=True))

    def _terminate(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # SIGTERM (e.g. from a supervisor) takes the same clean path as Ctrl-C.
    # SIGINT explicitly too: a shell that starts us in the background sets it to "ignore".
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    t0 = time.monotonic()
    try:
        system.start(wait_timeout=args.timeout)
        print(system.summary(), flush=True)
        print(f"started in {time.monotonic() - t0:.1f}s", flush=True)
        while True:
            proc = system._airflow_proc
            if proc is not None and proc.poll() is not None:
                print(f"airflow standalone exited with {proc.returncode}; log tail:\n{system.airflow_log_tail()}",
                      file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    finally:
        # Ignore a second Ctrl-C while stopping: a half-stopped system leaves orphans.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        system.stop()
        print("stopped", flush=True)


# Only as `python -m mpsync.local`: a loader that imports files by name (Airflow's plugin loader names this
# file `__main__`) must not start the system.
if __name__ == "__main__" and (__spec__ is None or __spec__.name == "mpsync.local.__main__"):
    sys.exit(main())
