"""Airflow's Celery configuration for RecOps (``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` names
``CELERY_CONFIG``): Airflow's default plus Celery's ``imports``, which the Celery worker's main
process imports when it starts, before it forks its pool. Every task process is forked from a pool
process, so it starts with the pipeline's libraries imported, as under
:class:`recops.app.airflow_executors.WarmLocalExecutor`."""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from recops.app.airflow_executors import PIPELINE_MODULES

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": list(PIPELINE_MODULES)}
