"""Airflow on the active profile: its environment, its metadata database, in-process DAG runs.

Airflow reads its configuration when first imported, so :func:`airflow_env` must be exported
before anything imports ``airflow`` (the CLI does this first).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from recops.settings import Settings

PIPELINE_DAG_ID = "recops_pipeline"
ROLLBACK_DAG_ID = "recops_rollback"


class PipelineFailed(RuntimeError):
    """A DAG run ended in a state other than success."""


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for every Airflow process of this ``RECOPS_HOME``."""
    home = settings.airflow_home
    if settings.profile == "production":
        conn = (
            f"postgresql+psycopg2://{settings.postgres_user}"
            + (f":{settings.postgres_password}" if settings.postgres_password else "")
            + f"@{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}_airflow"
        )
        executor = "LocalExecutor"
    else:
        conn = f"sqlite:///{home / 'airflow.db'}"
        executor = "LocalExecutor"
    api_url = f"http://{settings.airflow_host}:{settings.airflow_port}"
    return {
        **settings.tool_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__HOST": settings.airflow_host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "NO_PROXY": "*",
    }


def export_airflow_env(settings: Settings) -> dict[str, str]:
    """Put :func:`airflow_env` into ``os.environ`` (before ``airflow`` is imported)."""
    env = airflow_env(settings)
    os.environ.update(env)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    return env


def migrate_db(settings: Settings) -> None:
    """``airflow db migrate`` for this home (idempotent)."""
    env = {**os.environ, **airflow_env(settings)}
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def run_dag_in_process(
    settings: Settings, dag_id: str, *, logical_date: datetime, conf: dict[str, Any]
) -> dict[str, Any]:
    """Run one DAG in this process with ``dag.test()`` (embedded default; no scheduler needed).

    Returns the run's id, state and per-task states; raises :class:`PipelineFailed` unless the
    run succeeded.
    """
    export_airflow_env(settings)
    migrate_db(settings)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_folder))
    if bag.import_errors:
        raise PipelineFailed(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    tasks = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    result = {"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state), "tasks": tasks}
    if not tasks:  # e.g. a logical date before the DAG's start_date: nothing ran
        raise PipelineFailed(f"{dag_id} run {dag_run.run_id} at {logical_date} ran no task")
    if str(dag_run.state) != "success":
        raise PipelineFailed(f"{dag_id} run {dag_run.run_id} ended {dag_run.state}: {tasks}")
    return result
