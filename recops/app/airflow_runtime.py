"""Airflow on the active profile: its environment, its metadata database, DAG runs.

Airflow reads its configuration from the environment when first imported, so every Airflow
process of a home is a child process started with ``env=``:func:`airflow_env` (the components
of ``recops airflow up``, ``airflow db migrate``, and the ``dag.test()`` runner of ``recops run``,
:mod:`recops.app.dag_runner`). Nothing here writes this process's ``os.environ``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from recops.core.constants import PIPELINE_DAG_ID, ROLLBACK_DAG_ID
from recops.core.settings import Settings

__all__ = [
    "PIPELINE_DAG_ID", "ROLLBACK_DAG_ID", "PipelineFailed", "airflow_env", "create_production_databases", "migrate_db",
]

MIGRATED_MARKER = "migrated.json"


class PipelineFailed(RuntimeError):
    """A DAG run ended in a state other than success."""


EXECUTORS = {"LocalExecutor": "recops.app.airflow_executors.WarmLocalExecutor", "CeleryExecutor": "CeleryExecutor"}
"""``RECOPS_AIRFLOW_EXECUTOR`` to Airflow's executor: the LocalExecutor's task processes start warm
(:mod:`recops.app.airflow_executors`)."""


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for every Airflow process of this ``RECOPS_HOME``."""
    home = settings.airflow_home
    if settings.profile == "production":
        conn = settings.postgres_url(airflow_database(settings), driver="postgresql+psycopg2")
    else:
        conn = f"sqlite:///{home / 'airflow.db'}"
    api_url = f"http://{settings.airflow_host}:{settings.airflow_port}"
    celery = {}
    if settings.airflow_executor == "CeleryExecutor":  # production only (Settings checks it)
        celery = {
            "AIRFLOW__CELERY__BROKER_URL": settings.celery_broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + settings.postgres_url(airflow_database(settings)),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.celery_workers),
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "recops.app.airflow_celery.CELERY_CONFIG",
            # the worker's log server; the api-server reads the shared log folder first
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.airflow_port + 1),
        }
    return {
        **settings.as_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[settings.airflow_executor],
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
        **celery,
    }


def airflow_database(settings: Settings) -> str:
    """The production profile's Airflow metadata database (also the Celery result backend)."""
    return f"{settings.postgres_db}_airflow"


def create_production_databases(settings: Settings) -> None:
    """On the production profile, the warehouse, Airflow and MLflow databases (idempotent)."""
    if settings.profile != "production":
        return
    from recops.core.warehouse import create_postgres_database

    for name in (settings.postgres_db, airflow_database(settings), f"{settings.postgres_db}_mlflow"):
        create_postgres_database(settings, name)


def _alembic_version(conn: str) -> str | None:
    """The metadata database's schema revision, or ``None`` (no database or table yet)."""
    from sqlalchemy import create_engine, text

    if conn.startswith("sqlite:///") and not Path(conn.removeprefix("sqlite:///")).exists():
        return None
    engine = create_engine(conn)
    try:
        with engine.connect() as con:
            return con.execute(text("select version_num from alembic_version")).scalar()
    except Exception:  # missing database or table
        return None
    finally:
        engine.dispose()


def migrate_db(settings: Settings) -> None:
    """``airflow db migrate`` for this home (idempotent). Skipped when the database is at the
    revision this home's last migration left (a marker file records it with the Airflow version)."""
    from importlib.metadata import version

    env = {**os.environ, **airflow_env(settings)}
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    marker = settings.airflow_home / MIGRATED_MARKER
    revision = _alembic_version(conn)
    stamp = {"airflow": version("apache-airflow"), "revision": revision}
    if revision is not None and marker.exists() and json.loads(marker.read_text()) == stamp:
        return
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    marker.write_text(json.dumps({**stamp, "revision": _alembic_version(conn)}))
