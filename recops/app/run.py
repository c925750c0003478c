"""``recops run``: the whole ``recops_pipeline`` DAG with Airflow's ``dag.test()`` in a child
process, its tool logs in ``$RECOPS_HOME/logs/``, its progress on the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from recops.app.airflow_db import RunWatcher
from recops.app.airflow_runtime import (
    PipelineFailed,
    airflow_env,
    create_production_databases,
    migrate_db,
)
from recops.app.progress import RunProgress
from recops.core.constants import PIPELINE_DAG_ID
from recops.core.settings import Settings
from recops.core.timeutil import midnight, now_utc

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class RunRequest:
    """What a ``recops_pipeline`` run is asked to do (the DAG's params)."""

    cutoff: str | None = None
    source: str = "none"
    data_path: Path | None = None
    catalog_path: Path | None = None
    auto_promote: bool = True

    def conf(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "source": self.source,
            "data_path": str(self.data_path) if self.data_path else None,
            "catalog_path": str(self.catalog_path) if self.catalog_path else None,
            "auto_promote": self.auto_promote,
            "approvers": [],
        }


def new_log_path(settings: Settings, kind: str) -> Path:
    """A fresh log file under ``$RECOPS_HOME/logs`` (one per command run)."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = now_utc().strftime("%Y%m%dT%H%M%S.%f")
    return settings.logs_dir / f"{kind}-{stamp}.log"


def logical_date_for(settings: Settings, request: RunRequest) -> datetime:
    """The day after the newest event (the input file's, or the warehouse's): the run's data
    interval then ends where the data does, and materialisation never reads the future."""
    from recops.core.marts import NoDataError, newest_event_at
    from recops.ingestion.sources import Source, newest_event_in_source, newest_in_pending_logs

    candidates = [newest_in_pending_logs(settings)]  # the API's logs the run will load
    if request.data_path is not None:
        candidates.append(newest_event_in_source(Source(request.source), request.data_path))
    else:
        try:
            candidates.append(newest_event_at(settings))
        except NoDataError:
            if candidates[0] is None:
                raise
    newest = max(c for c in candidates if c is not None)
    return midnight(newest.date() + timedelta(days=1))


def _failure_reason(settings: Settings, run_id: str | None) -> str | None:
    """The newest alert of the run (gate failures and failed tasks both alert)."""
    if run_id is None or not settings.alerts_path.exists():
        return None
    for line in reversed(settings.alerts_path.read_text(encoding="utf-8").splitlines()):
        try:
            alert = json.loads(line)
        except ValueError:
            continue
        if alert.get("run_id") == run_id:
            detail = alert.get("exception") or ""
            return alert.get("title", "") + (f": {detail.splitlines()[0]}" if detail else "")
    return None


def run_dag(
    settings: Settings,
    dag_id: str,
    *,
    logical_date: datetime,
    conf: dict[str, Any],
    console: Console | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run one DAG in a child process (``dag.test()``), showing each task as it finishes.

    The child's output goes to a new file under ``$RECOPS_HOME/logs`` (and to the terminal with
    ``verbose``). Returns the run's id, state, per-task states and the log path; raises
    :class:`PipelineFailed` (with the failing task, the reason and the log path) otherwise."""
    console = console or Console(stderr=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate_db(settings)
    log_path = new_log_path(settings, dag_id)
    result_path = log_path.with_suffix(".result.json")
    command = [
        sys.executable, "-m", "recops.app.dag_runner", "--dags-folder", str(settings.dags_folder),
        "--dag", dag_id, "--logical-date", logical_date.isoformat(), "--conf", json.dumps(conf),
        "--result", str(result_path),
    ]
    watcher = RunWatcher(settings, dag_id)
    watcher.mark()
    progress = RunProgress(console)
    env = {**os.environ, **airflow_env(settings)}
    with log_path.open("wb") as log:
        sink: IO[bytes] | int = subprocess.PIPE if verbose else log
        proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        copier = _tee(proc, log) if verbose else None
        try:
            _follow(proc, watcher, progress, console)
        finally:
            if proc.poll() is None:
                proc.kill()
            if copier is not None:
                copier.join(timeout=10)
            watcher.close()
    if not result_path.exists():
        raise PipelineFailed(f"{dag_id} did not finish (exit {proc.returncode}); log: {log_path}")
    result = {**json.loads(result_path.read_text()), "log": str(log_path)}
    result_path.unlink()
    failed = [t for t, s in result["tasks"].items() if s in ("failed", "upstream_failed")]
    if result["state"] != "success" or not result["tasks"]:
        first = next((t for t, s in result["tasks"].items() if s == "failed"), failed[0] if failed else None)
        reason = _failure_reason(settings, result.get("run_id")) or result.get("errors") or result["state"]
        raise PipelineFailed(f"{dag_id} failed at {first or 'start'}: {reason}\nlog: {log_path}")
    return result


def _tee(proc: subprocess.Popen, log: IO[bytes]) -> threading.Thread:
    """Copy the child's output to the log file and to this process's stderr (``--verbose``)."""

    def copy() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            log.write(line)
            sys.stderr.buffer.write(line)
            sys.stderr.flush()

    thread = threading.Thread(target=copy, name="recops-run-tee", daemon=True)
    thread.start()
    return thread


def _follow(proc: subprocess.Popen, watcher: RunWatcher, progress: RunProgress, console: Console) -> None:
    """Poll the run until the child exits, printing finished tasks."""
    with console.status("starting Airflow...") as status:
        while True:
            running = progress.update(watcher.snapshot())
            if running:
                status.update(f"running {running}...")
            if proc.poll() is not None:
                progress.update(watcher.snapshot())
                return
            time.sleep(POLL_SECONDS)


def run_pipeline(
    settings: Settings, request: RunRequest, *, console: Console | None = None, verbose: bool = False
) -> dict[str, Any]:
    """Run ``recops_pipeline`` on the embedded default (or the production profile's services),
    dated the day after the newest event."""
    create_production_databases(settings)
    logical = logical_date_for(settings, request)
    return run_dag(
        settings, PIPELINE_DAG_ID, logical_date=logical, conf=request.conf(), console=console, verbose=verbose
    )


def backfill(
    settings: Settings, first_end: date, last_end: date, *, every_days: int = 1,
    console: Console | None = None, verbose: bool = False,
) -> list[dict[str, Any]]:
    """One ``recops_pipeline`` run per interval ending at midnight of ``first_end``,
    ``first_end + every_days``, ... ``last_end`` (oldest first, each sees only data before its
    end: dbt's ``as_of``); stops at the first failed run."""
    results = []
    conf = RunRequest(auto_promote=True).conf()
    for end in backfill_ends(first_end, last_end, every_days=every_days):
        results.append(run_dag(settings, PIPELINE_DAG_ID, logical_date=end, conf=conf, console=console,
                               verbose=verbose))
    return results


def backfill_ends(first_end: date, last_end: date, *, every_days: int = 1) -> list[datetime]:
    """The interval ends a backfill runs, oldest first: midnight (UTC) of ``first_end``, then every
    ``every_days`` days up to ``last_end`` (included when it falls on that step)."""
    if every_days < 1:
        raise ValueError(f"--every must be at least 1 day (got {every_days})")
    if last_end < first_end:
        raise ValueError(f"--to {last_end} is before --from {first_end}")
    days = (last_end - first_end).days // every_days
    return [midnight(first_end + timedelta(days=n * every_days)) for n in range(days + 1)]
