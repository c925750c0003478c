"""recops_rollback: move the ``champion`` alias back (by default to ``previous``).

Wiring only: the task calls ``recops.app.tasks.rollback``, the function behind
``recops rollback``. The move is recorded on the model version (who, when, from which run, why);
a running API serves the restored version within ``RECOPS_MODEL_REFRESH_SECONDS``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


def _alert_on_failure(context) -> None:
    from recops.app.tasks import alert_failed_task

    alert_failed_task(context)


@dag(
    dag_id="recops_rollback",
    description="Move the champion alias back to the previous (or a given) model version.",
    schedule=None,
    start_date=datetime(1970, 1, 1),  # like recops_pipeline: before any logical date a caller gives
    catchup=False,
    max_active_runs=1,
    tags=["recops", "registry", "ml"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(seconds=10),
        "on_failure_callback": _alert_on_failure,
    },
    params={
        "version": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9]+$",
            title="Model version",
            description="Version to restore as champion (it must have served before). "
            "Empty: the version with the alias 'previous'.",
        ),
        "reason": Param(
            "",
            type="string",
            maxLength=500,
            title="Reason",
            description="Why the champion goes back; recorded on the model version in MLflow.",
        ),
    },
    render_template_as_native_obj=True,
)
def recops_rollback():
    @task
    def rollback_champion(params=None, dag_run=None, run_id=None) -> dict:
        from recops.app import tasks

        return tasks.rollback(
            version=params["version"],
            actor=getattr(dag_run, "triggering_user_name", None) or "airflow",
            reason=params["reason"],
            run_id=run_id,
        )

    rollback_champion()


recops_rollback()
