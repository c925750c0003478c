"""recops_pipeline: ingest -> dbt -> quality gates -> Feast -> training -> MLflow -> promotion.

Wiring only: every task imports inside its body and calls one adapter of ``recops.app.tasks``,
which parses its inputs and calls one stage function. After the automatic gate, a candidate that
passed (and is not auto-promoted) waits in the Airflow UI's Required Actions for an approver:
Approve runs ``promote_champion``; Reject or the response timeout skips it and
``record_rejection`` records why.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, task

from recops.app.airflow_operators import ModelApprovalOperator
from recops.app.assets import pipeline_schedule


def _alert_on_failure(context) -> None:
    from recops.app.tasks import alert_failed_task

    alert_failed_task(context)


PARAMS = {
    "cutoff": Param(
        None,
        type=["null", "string"],
        format="date",
        title="Evaluation cutoff",
        description="Time split (YYYY-MM-DD): history before it, holdout from it. "
        "Empty: the newest event minus RECOPS_HOLDOUT_DAYS.",
    ),
    "source": Param(
        "none",
        type="string",
        enum=["none", "events", "online_retail", "movielens", "feedback"],
        title="Data source",
        description="Format of the file to ingest first; 'none' uses what the warehouse holds.",
    ),
    "data_path": Param(
        None, type=["null", "string"], title="Data path",
        description="File (or MovieLens folder) to ingest for this run.",
    ),
    "catalog_path": Param(
        None, type=["null", "string"], title="Catalogue path",
        description="Catalogue file for the 'events' source (optional).",
    ),
    "auto_promote": Param(
        False, type="boolean", title="Auto-promote",
        description="Promote a candidate that passes the gate without asking the approvers.",
    ),
    "approvers": Param(
        [], type="array", items={"type": "string"}, title="Approvers",
        description="Airflow users asked to approve a candidate (empty: any user).",
    ),
}
APPROVAL_PARAMS = {
    "reason": Param(
        None, type=["null", "string"], maxLength=500, title="Reason",
        description="Why you approve or reject (optional); recorded on the model version in MLflow.",
    )
}


@task
def run_interval(ingested: dict, triggering_asset_events=None, data_interval_start=None, data_interval_end=None) -> dict:
    """The run's data interval: from the consumed asset events (Airflow gives an Asset-triggered
    run none), else the run's own, else what the warehouse holds once the run's files are in."""
    from recops.app import tasks

    extras = [dict(e.extra or {}) for events in (triggering_asset_events or {}).values() for e in events]
    return tasks.run_interval(extras, interval_start=data_interval_start, interval_end=data_interval_end)


@task
def ingest(params=None) -> dict:
    from recops.app import tasks

    return tasks.ingest(source=params["source"], data_path=params["data_path"], catalog_path=params["catalog_path"])


@task
def validate_raw(ingested: dict, interval: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.validate_raw(ingested, run_id=run_id, interval_end=interval["end"])


@task
def dbt_build(raw_report: dict, interval: dict, params=None) -> dict:
    from recops.app import tasks

    return tasks.dbt_build(cutoff=params["cutoff"], interval_end=interval["end"])


@task
def validate_marts(transformed: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.validate_marts(run_id=run_id)


@task
def feast_apply(marts_report: dict) -> dict:
    from recops.app import tasks

    return tasks.features()


@task
def build_training_set(features: dict, transformed: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.build_training_set(transformed, run_id=run_id)


@task
def validate_training_set(training_set: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.validate_training_set(training_set, run_id=run_id)


@task
def train_evaluate(training_set: dict, checked: dict) -> dict:
    from recops.app import tasks

    return tasks.train_evaluate(training_set)


@task
def register_model(trained: dict, transformed: dict, checked: dict, interval: dict) -> dict:
    from recops.app import tasks

    return tasks.register_model(
        trained, transformed=transformed, checked=checked, interval_start=interval["start"], interval_end=interval["end"]
    )


@task
def promotion_gate(candidate: dict, params=None, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.promotion_gate(candidate, auto_promote=params["auto_promote"], run_id=run_id)


@task
def publish_online(decision: dict, interval: dict) -> dict:
    """Write-audit-publish: the online store and the served candidates change only now, after
    every gate and the promotion decision."""
    from recops.app import tasks

    return tasks.publish(interval_end=interval["end"], interval_start=interval.get("start"))


@task.short_circuit
def needs_approval(decision: dict) -> bool:
    """Ask a human only if the gate passed and the run does not auto-promote; otherwise the gate
    already decided and the approval tasks are skipped."""
    from recops.core.constants import AWAITING_APPROVAL

    return decision["action"] == AWAITING_APPROVAL


@task
def promote_champion(decision: dict, approval: dict, run_id=None) -> dict:
    from recops.app import tasks

    return tasks.promote_champion(decision, approval, run_id=run_id)


@task(trigger_rule=TriggerRule.ALL_SKIPPED)
def record_rejection(ti=None, run_id=None) -> dict:
    """Runs only when a Reject (or the timeout) skipped ``promote_champion``."""
    from recops.app import tasks

    decision = ti.xcom_pull(task_ids="promotion_gate")
    response = ti.xcom_pull(task_ids="approve_model", key="response")
    return tasks.record_rejection(decision, response, run_id=run_id)


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
def promotion_outcome() -> dict:
    """Where the aliases point after the decision. The run's last task: a failure in the approval
    branch reaches it, so the run fails instead of ending on a skipped task."""
    from recops.app import tasks

    return tasks.promotion_outcome()


@dag(
    dag_id="recops_pipeline",
    description="Ingest, model, validate, featurise, train, evaluate and promote the ranker.",
    # new batches (recops_ingest's Asset) or the daily cron, per the settings; and triggered from
    # the UI or REST API with params, or by `recops run`
    schedule=pipeline_schedule(),
    # before any shop's data: a run's logical date is the day after its newest event, and a
    # logical date before start_date makes a run with no task instances (MovieLens is 1997-98)
    start_date=datetime(1970, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recops", "pipeline", "ml"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": _alert_on_failure},
    params=PARAMS,
    render_template_as_native_obj=True,
)
def recops_pipeline():
    approve_model = ModelApprovalOperator(
        task_id="approve_model",
        subject="{{ ti.xcom_pull(task_ids='promotion_gate')['approval']['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='promotion_gate')['approval']['body'] }}",
        defaults="Reject",  # what a response timeout chooses
        params=APPROVAL_PARAMS,
        retries=0,  # a human answers once; a retry would ask again
    )
    ingested = ingest()
    interval = run_interval(ingested)
    transformed = dbt_build(validate_raw(ingested, interval), interval)
    training_set = build_training_set(feast_apply(validate_marts(transformed)), transformed)
    checked = validate_training_set(training_set)
    candidate = register_model(train_evaluate(training_set, checked), transformed, checked, interval)
    decision = promotion_gate(candidate)
    publish_online(decision, interval)
    needs_approval(decision) >> approve_model
    promoted = promote_champion(decision, approve_model.output)
    outcome = promotion_outcome()
    promoted >> record_rejection() >> outcome
    promoted >> outcome


recops_pipeline()
