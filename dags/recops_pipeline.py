"""recops_pipeline: ingest -> dbt -> quality gates -> Feast -> training -> MLflow -> promotion.

Wiring only: every task imports inside its body and calls one function of ``recops.pipeline`` or
``recops.promotion``. After the automatic gate, a candidate that passed (and is not auto-promoted)
waits in the Airflow UI's Required Actions for an approver: Approve runs ``promote_champion``;
Reject or the response timeout skips it and ``record_rejection`` records why.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, task

from recops.airflow_operators import ModelApprovalOperator


def _alert_on_failure(context) -> None:
    from recops.pipeline import alert_failed_task

    alert_failed_task(context)


@dag(
    dag_id="recops_pipeline",
    description="Ingest, model, validate, featurise, train, evaluate and promote the ranker.",
    schedule=None,  # triggered: from the UI or REST API with params, or by `recops run`
    # before any shop's data: a run's logical date is the day after its newest event, and a
    # logical date before start_date makes a run with no task instances (MovieLens is 1997-98)
    start_date=datetime(1970, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recops", "pipeline", "ml"],
    default_args={
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": _alert_on_failure,
    },
    params={
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
            None,
            type=["null", "string"],
            title="Data path",
            description="File (or MovieLens folder) to ingest for this run.",
        ),
        "catalog_path": Param(
            None,
            type=["null", "string"],
            title="Catalogue path",
            description="Catalogue file for the 'events' source (optional).",
        ),
        "auto_promote": Param(
            False,
            type="boolean",
            title="Auto-promote",
            description="Promote a candidate that passes the gate without asking the approvers.",
        ),
        "approvers": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Approvers",
            description="Airflow users asked to approve a candidate (empty: any user).",
        ),
    },
    render_template_as_native_obj=True,
)
def recops_pipeline():
    @task
    def ingest(params=None, run_id=None) -> dict:
        from recops.pipeline import ingest_stage

        return ingest_stage(
            source=params["source"], data_path=params["data_path"], catalog_path=params["catalog_path"]
        )

    @task
    def validate_raw(ingested: dict, run_id=None, data_interval_end=None) -> dict:
        from recops.pipeline import validate_raw_stage

        return validate_raw_stage(ingested, run_id=run_id, as_of=data_interval_end)

    @task
    def dbt_build(raw_report: dict, params=None) -> dict:
        from recops.pipeline import transform_stage

        return transform_stage(cutoff=params["cutoff"])

    @task
    def validate_marts(transformed: dict, run_id=None) -> dict:
        from recops.pipeline import validate_marts_stage

        return validate_marts_stage(run_id=run_id)

    @task
    def feast_apply_materialize(marts_report: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from recops.pipeline import features_stage

        return features_stage(interval_start=data_interval_start, interval_end=data_interval_end)

    @task
    def build_training_set(features: dict, transformed: dict, run_id=None) -> dict:
        from recops.pipeline import training_set_stage

        return training_set_stage(cutoff=transformed["cutoff"], run_id=run_id)

    @task
    def validate_training_set(training_set: dict, run_id=None) -> dict:
        from recops.pipeline import validate_training_set_stage

        return validate_training_set_stage(training_set, run_id=run_id)

    @task
    def train_evaluate(training_set: dict, checked: dict) -> dict:
        from recops.pipeline import train_stage

        return train_stage(training_set)

    @task
    def register_model(trained: dict, transformed: dict, checked: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from recops.pipeline import register_stage

        return register_stage(
            trained,
            context={
                "data_interval_start": data_interval_start,
                "data_interval_end": data_interval_end,
                "dbt": transformed,
                "quality": checked,
            },
        )

    @task
    def promotion_gate(candidate: dict, params=None, run_id=None) -> dict:
        from recops.pipeline import gate_stage

        return gate_stage(candidate, auto_promote=params["auto_promote"], run_id=run_id)

    @task.short_circuit
    def needs_approval(decision: dict) -> bool:
        """Ask a human only if the gate passed and the run does not auto-promote; otherwise the
        gate already decided and the approval tasks are skipped."""
        return decision["action"] == "awaiting_approval"

    approve_model = ModelApprovalOperator(
        task_id="approve_model",
        subject="{{ ti.xcom_pull(task_ids='promotion_gate')['approval']['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='promotion_gate')['approval']['body'] }}",
        defaults="Reject",  # what a response timeout chooses
        params={
            "reason": Param(
                None,
                type=["null", "string"],
                maxLength=500,
                title="Reason",
                description="Why you approve or reject (optional); recorded on the model version in MLflow.",
            )
        },
        retries=0,  # a human answers once; a retry would ask again
    )

    @task
    def promote_champion(decision: dict, approval: dict, run_id=None) -> dict:
        from recops.promotion import approve_stage

        return approve_stage(decision, approval, origin=f"recops_pipeline/{run_id}")

    @task(trigger_rule=TriggerRule.ALL_SKIPPED)
    def record_rejection(ti=None, run_id=None) -> dict:
        """Runs only when a Reject (or the timeout) skipped ``promote_champion``."""
        from recops.promotion import rejection_stage

        decision = ti.xcom_pull(task_ids="promotion_gate")
        response = ti.xcom_pull(task_ids="approve_model", key="response")
        return rejection_stage(decision, response, origin=f"recops_pipeline/{run_id}")

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def promotion_outcome() -> dict:
        """Where the aliases point after the decision. The run's last task: a failure in the
        approval branch reaches it, so the run fails instead of ending on a skipped task."""
        from recops.promotion import champion_summary

        return champion_summary()

    ingested = ingest()
    raw_report = validate_raw(ingested)
    transformed = dbt_build(raw_report)
    marts_report = validate_marts(transformed)
    features = feast_apply_materialize(marts_report)
    training_set = build_training_set(features, transformed)
    checked = validate_training_set(training_set)
    trained = train_evaluate(training_set, checked)
    candidate = register_model(trained, transformed, checked)
    decision = promotion_gate(candidate)
    needs_approval(decision) >> approve_model
    promoted = promote_champion(decision, approve_model.output)
    outcome = promotion_outcome()
    promoted >> record_rejection() >> outcome
    promoted >> outcome


recops_pipeline()
