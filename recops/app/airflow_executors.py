"""An Airflow executor with warm task processes (``AIRFLOW__CORE__EXECUTOR`` names it).

Airflow runs every task in a process of its own, forked from an executor's worker process (the
LocalExecutor's workers are forked from the scheduler, the Celery worker's pool processes from
its main process), and a task of ``recops_pipeline`` spends seconds importing Feast, Great
Expectations, dbt, MLflow or LightGBM before it does anything. :class:`WarmLocalExecutor` imports
the pipeline's libraries once, before its worker processes are forked, so every task process
starts with them (copy-on-write, shared); :mod:`recops.app.airflow_celery` does the same for the
Celery worker. Nothing else changes: the scheduling, the queues and the task processes are
Airflow's own.
"""

from __future__ import annotations

import importlib

from airflow.executors.local_executor import LocalExecutor

PIPELINE_MODULES = (
    "recops.app.tasks",
    "recops.ingestion",
    "recops.quality.runner",
    "recops.core.dbt",
    "recops.core.feature_store",
    "recops.training.train",
    "recops.training.registry",
    "duckdb",
    "great_expectations",
    "feast",
    "feast.infra.offline_stores.duckdb",
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.postgres",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "lightgbm",
    "implicit",
    "sklearn",
    "matplotlib.pyplot",
)
"""What the tasks of ``recops_pipeline`` import (the stages import their tools inside their
functions, so the tools are named here too)."""


def preload(modules: tuple[str, ...] = PIPELINE_MODULES) -> None:
    """Import ``modules`` into this process."""
    for name in modules:
        importlib.import_module(name)


class WarmLocalExecutor(LocalExecutor):
    """Airflow's LocalExecutor, its worker processes forked after :func:`preload`."""

    def start(self) -> None:
        preload()
        super().start()
