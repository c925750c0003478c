"""recops_monitor: every day, the online metrics from the served lists and the feedback loaded so
far, and an alert when the champion's CTR dropped against its trailing seven days.

Wiring only: each task calls one adapter of ``recops.app.tasks``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from recops.app.assets import monitor_schedule


def _alert_on_failure(context) -> None:
    from recops.app.tasks import alert_failed_task

    alert_failed_task(context)


@task
def online_marts(run_id=None) -> dict:
    from recops.app import tasks

    return tasks.online_marts(run_id=run_id)


@task
def check_ctr(marts: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.check_online_metrics(run_id=run_id)


@dag(
    dag_id="recops_monitor",
    description="Online metrics of the served models; alert on a champion CTR drop.",
    schedule=monitor_schedule(),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recops", "monitoring"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": _alert_on_failure},
)
def recops_monitor():
    check_ctr(online_marts())


recops_monitor()
