"""recops_quarantine: release a quarantined batch, from the Airflow UI (the same as
``recops quarantine release BATCH --reason ...``).

Wiring only: the task calls ``recops.app.tasks.release_batch``. The release is recorded in
``raw.batch_releases`` with the triggering user, the reason and this run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


def _alert_on_failure(context) -> None:
    from recops.app.tasks import alert_failed_task

    alert_failed_task(context)


@task
def release_batch(params=None, dag_run=None, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.release_batch(
        batch_id=params["batch_id"],
        reason=params["reason"],
        actor=getattr(dag_run, "triggering_user_name", None) or "airflow",
        run_id=run_id,
    )


@dag(
    dag_id="recops_quarantine",
    description="Release a quarantined batch back into the marts (recorded and audited).",
    schedule=None,
    start_date=datetime(1970, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recops", "quality"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10), "on_failure_callback": _alert_on_failure},
    params={
        "batch_id": Param(type="string", pattern="^[0-9a-f]{64}$", title="Batch id",
                          description="The quarantined batch (see `recops quarantine list`)."),
        "reason": Param(type="string", minLength=3, maxLength=500, title="Reason",
                        description="Why the batch is fine after all; recorded."),
    },
    render_template_as_native_obj=True,
)
def recops_quarantine():
    release_batch()


recops_quarantine()
