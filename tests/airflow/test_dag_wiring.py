"""How the promotion and rollback tasks are wired (parsed DAGs, no running Airflow)."""

from __future__ import annotations

import pytest

from recops.airflow_runtime import PIPELINE_DAG_ID, ROLLBACK_DAG_ID, export_airflow_env
from recops.settings import get_settings


@pytest.fixture(scope="module")
def dags():
    export_airflow_env(get_settings())
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(get_settings().dags_folder))
    assert bag.import_errors == {}
    return bag.dags


def test_approval_is_an_airflow_approval_operator(dags) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    approve = dags[PIPELINE_DAG_ID].get_task("approve_model")
    assert isinstance(approve, ApprovalOperator)
    assert approve.options == ["Approve", "Reject"]
    assert approve.defaults == ["Reject"]  # a response timeout rejects
    assert approve.retries == 0
    assert set(approve.params.keys()) == {"reason"}
    assert "promotion_gate" in approve.subject and "promotion_gate" in approve.body


def test_gate_short_circuits_the_approval_branch(dags) -> None:
    dag = dags[PIPELINE_DAG_ID]
    gate = dag.get_task("needs_approval")
    assert gate.downstream_task_ids == {"approve_model"}
    # a gate decision (rejected or auto-promoted) skips every approval task, regardless of rules
    assert gate.ignore_downstream_trigger_rules is True
    assert dag.get_task("approve_model").downstream_task_ids == {"promote_champion"}


def test_rejection_runs_only_when_promotion_is_skipped(dags) -> None:
    dag = dags[PIPELINE_DAG_ID]
    record = dag.get_task("record_rejection")
    assert record.trigger_rule == "all_skipped"
    # not a direct downstream of the approval: a Reject skips only direct downstream tasks
    assert record.upstream_task_ids == {"promote_champion"}
    outcome = dag.get_task("promotion_outcome")
    assert outcome.trigger_rule == "none_failed_min_one_success"
    assert outcome.upstream_task_ids == {"promote_champion", "record_rejection"}
    assert dag.leaves == [outcome]


def test_rollback_dag_params(dags) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dags[ROLLBACK_DAG_ID]
    assert "recops" in dag.tags and dag.schedule is None
    assert [t.task_id for t in dag.tasks] == ["rollback_champion"]
    params = dag.params
    assert params["version"] is None
    params["version"] = "12"
    with pytest.raises(ParamValidationError, match="version"):
        params["version"] = "v12"
    assert params.get_param("reason").description


def test_dag_files_import_nothing_heavy() -> None:
    for name in ("recops_pipeline.py", "recops_rollback.py"):
        top = (get_settings().dags_folder / name).read_text().split("@dag(")[0]
        for heavy in ("pandas", "lightgbm", "mlflow", "feast", "great_expectations", "duckdb", "Variable.get"):
            assert heavy not in top, (name, heavy)


def test_stale_request_detection() -> None:
    from recops.airflow_operators import stale_request

    stored = {"subject": "Promote m v3 to champion? (current: v1)", "body": "table v3"}
    assert not stale_request(stored, subject=stored["subject"], body=stored["body"])
    assert stale_request(stored, subject="Promote m v4 to champion? (current: v1)", body="table v4")
    assert stale_request(stored, subject=stored["subject"], body="table v3, other metrics")
