"""The executors ``recops airflow up`` configures start their task processes warm: Airflow loads
``WarmLocalExecutor``, whose forked worker processes hold the pipeline's libraries, and the Celery
app's ``imports`` name them. Each check runs in a child process with the home's Airflow
environment (Airflow reads its configuration when first imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recops.app.airflow_executors import PIPELINE_MODULES
from recops.app.airflow_runtime import airflow_env
from recops.core.settings import Settings

LOCAL_EXECUTOR = """
import json, sys
from airflow.executors.executor_loader import ExecutorLoader
from airflow.executors.local_executor import LocalExecutor

preloaded = [name for name in json.loads(sys.argv[1]) if name in sys.modules]
executor = ExecutorLoader.get_default_executor()
executor.start()
try:
    maps = {pid: open(f"/proc/{pid}/maps").read() for pid in executor.workers}
finally:
    executor.end()
print(json.dumps({
    "executor": f"{type(executor).__module__}.{type(executor).__name__}",
    "is_local": isinstance(executor, LocalExecutor),
    "preloaded_before_start": preloaded,
    "workers": len(maps),
    "workers_with_lightgbm": sum("lib_lightgbm" in text for text in maps.values()),
    "workers_with_duckdb": sum("duckdb" in text for text in maps.values()),
}))
"""

CELERY_APP = """
import json
from airflow.providers.celery.executors.celery_executor_utils import app
print(json.dumps({"imports": list(app.conf.imports), "broker": app.conf.broker_url}))
"""


def _run(script: str, settings: Settings, *args: str) -> dict:
    env = {**os.environ, **airflow_env(settings)}
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_local_executor_workers_are_forked_with_the_pipeline_libraries(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", user_salt="a-test-salt-1234")
    settings.airflow_home.mkdir(parents=True)
    seen = _run(LOCAL_EXECUTOR, settings, json.dumps(PIPELINE_MODULES))
    assert seen["executor"] == "recops.app.airflow_executors.WarmLocalExecutor" and seen["is_local"]
    assert seen["preloaded_before_start"] == []  # loading the executor class imports none of them
    assert seen["workers"] == 2  # AIRFLOW__CORE__PARALLELISM
    assert seen["workers_with_lightgbm"] == seen["workers_with_duckdb"] == 2


def test_celery_workers_import_the_pipeline_libraries_before_forking_their_pool(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", profile="production", airflow_executor="CeleryExecutor",
                        celery_broker_url="redis://127.0.0.1:6379/14", user_salt="a-test-salt-1234")
    seen = _run(CELERY_APP, settings)
    assert seen["imports"] == list(PIPELINE_MODULES)
    assert seen["broker"] == "redis://127.0.0.1:6379/14"  # the rest of Airflow's configuration is kept


RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.mark.integration
def test_a_celery_worker_on_rabbitmq_starts_warm_and_answers(postgres_settings, needs_service, airflow_tools) -> None:
    """RabbitMQ as the broker (``RECOPS_CELERY_BROKER_URL=amqp://...``): the worker ``recops airflow
    up`` would start connects to it, holds the pipeline's libraries and answers Celery's ping
    through it. (The whole pipeline on Celery runs with Redis as the broker, in
    ``tests/app/airflow/test_production_profile.py``.)"""
    import time
    import uuid

    from celery import Celery

    from recops.app.airflow_runtime import create_production_databases
    from recops.app.airflow_services import (
        CELERY_WORKER,
        AirflowProcesses,
        component_commands,
        stop_airflow,
    )

    needs_service("RabbitMQ", airflow_tools.port_open(5672), "nothing answers on 127.0.0.1:5672")
    settings = postgres_settings.model_copy(update={"airflow_executor": "CeleryExecutor", "celery_workers": 1,
                                                    "celery_broker_url": RABBITMQ})
    create_production_databases(settings)  # the result backend's database (dropped by the fixture)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    name = f"recops-test-{uuid.uuid4().hex[:8]}@localhost"
    airflow = str(Path(sys.executable).with_name("airflow"))
    log = settings.airflow_home / "celery-worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([*component_commands(settings, airflow=airflow)[CELERY_WORKER], "--celery-hostname", name],
                                  env={**os.environ, **airflow_env(settings)}, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        app = Celery(broker=RABBITMQ)
        deadline, replies = time.monotonic() + 180, []
        while not replies:
            assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"no answer from {name}:\n{log.read_text(errors='replace')[-3000:]}"
            replies = app.control.ping(destination=[name], timeout=2)
        assert replies == [{name: {"ok": "pong"}}]
        maps = Path(f"/proc/{worker.pid}/maps").read_text()
        assert "lib_lightgbm" in maps and "duckdb" in maps  # imported before the pool was forked
        assert "amqp://guest:**@127.0.0.1:5672//" in log.read_text(errors="replace")  # Celery's banner
    finally:  # as `recops airflow up` stops it
        stop_airflow(AirflowProcesses("", "", "", settings.airflow_home / "endpoint.json", {CELERY_WORKER: worker}))
