"""recops_ingest: load what shops dropped in the inbox and the API's closed logs (served lists,
feedback), on its schedule; when new batches landed, tell recops_pipeline through the
``recops_raw_batches`` Asset (its event carries the batch ids and their data span).

Wiring only: the task calls ``recops.app.tasks.ingest_inbox``. Nothing new: the task is skipped,
so no Asset event and no pipeline run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from recops.app.assets import RAW_BATCHES, ingest_schedule


def _alert_on_failure(context) -> None:
    from recops.app.tasks import alert_failed_task

    alert_failed_task(context)


@task(outlets=[RAW_BATCHES])
def collect(outlet_events=None) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from recops.app import tasks

    loaded = tasks.ingest_inbox()
    if not loaded["batch_ids"]:
        raise AirflowSkipException("nothing new in the inbox or the API's logs")
    outlet_events[RAW_BATCHES].extra = {k: loaded[k] for k in ("batch_ids", "start", "end")}
    return loaded


@dag(
    dag_id="recops_ingest",
    description="Load inbox files and the API's logs; announce new batches to recops_pipeline.",
    schedule=ingest_schedule(),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recops", "ingestion"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": _alert_on_failure},
)
def recops_ingest():
    collect()


recops_ingest()
