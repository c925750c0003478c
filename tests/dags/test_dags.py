"""DAG integrity and wiring: no import errors, tags, retries, the expected edges, params, the
approval and rollback branches (parsed DAGs, no running Airflow)."""

from __future__ import annotations

import pytest

from recops.core.constants import PIPELINE_DAG_ID, ROLLBACK_DAG_ID
from recops.core.settings import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "dags"

EXPECTED_EDGES = {
    ("ingest", "run_interval"),  # a run dated by its data sees the files it loads
    ("ingest", "validate_raw"),
    ("run_interval", "validate_raw"),
    ("validate_raw", "dbt_build"),
    ("dbt_build", "validate_marts"),
    ("validate_marts", "feast_apply"),
    ("feast_apply", "build_training_set"),
    ("dbt_build", "build_training_set"),
    ("build_training_set", "validate_training_set"),
    ("validate_training_set", "train_evaluate"),
    ("build_training_set", "train_evaluate"),
    ("train_evaluate", "register_model"),
    ("register_model", "promotion_gate"),
    ("promotion_gate", "publish_online"),
    ("promotion_gate", "needs_approval"),
    ("needs_approval", "approve_model"),
    ("approve_model", "promote_champion"),
    ("promotion_gate", "promote_champion"),
    ("promote_champion", "record_rejection"),
    ("promote_champion", "promotion_outcome"),
    ("record_rejection", "promotion_outcome"),
}


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert PIPELINE_DAG_ID in dagbag.dag_ids


def test_pipeline_edges(dagbag) -> None:
    dag = dagbag.dags[PIPELINE_DAG_ID]
    edges = {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}
    assert edges >= EXPECTED_EDGES
    assert dag.get_task("ingest").upstream_task_ids == set()


def test_every_dag_has_tags_and_retries(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert "recops" in dag.tags, dag_id
        for t in dag.tasks:
            assert t.retries >= 1 or t.task_id.startswith("approve"), f"{dag_id}.{t.task_id} has no retries"


def test_pipeline_params_validate(dagbag) -> None:
    dag = dagbag.dags[PIPELINE_DAG_ID]
    params = dag.params
    assert params["auto_promote"] is False
    assert set(params.keys()) >= {"cutoff", "source", "data_path", "catalog_path", "auto_promote", "approvers"}
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="excel-sheet"):
        params["source"] = "excel-sheet"
    with pytest.raises(ParamValidationError, match="cutoff"):
        params["cutoff"] = "not-a-date"


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
    assert {t.task_id for t in dag.leaves} == {"promotion_outcome", "publish_online"}


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
    """Module level of a DAG file: only Airflow and the operators; tasks import inside their body."""
    import ast

    heavy = ("pandas", "lightgbm", "mlflow", "feast", "great_expectations", "duckdb", "recops.core", "recops.training")
    files = sorted(p.name for p in DAGS_FOLDER.glob("recops_*.py"))
    assert len(files) == 5, files
    for name in files:
        tree = ast.parse((DAGS_FOLDER / name).read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        modules += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert modules and not [m for m in modules if m.startswith(heavy)], (name, modules)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "get"
                 and isinstance(n.value, ast.Name) and n.value.id == "Variable"]
        assert not calls, name


def test_stale_request_detection() -> None:
    from recops.app.airflow_operators import stale_request

    stored = {"subject": "Promote m v3 to champion? (current: v1)", "body": "table v3"}
    assert not stale_request(stored, subject=stored["subject"], body=stored["body"])
    assert stale_request(stored, subject="Promote m v4 to champion? (current: v1)", body="table v4")
    assert stale_request(stored, subject=stored["subject"], body="table v3, other metrics")


def test_pipeline_runs_on_new_batches_or_daily(dags) -> None:
    """Defaults: recops_pipeline runs when recops_ingest announces batches, or daily at 03:00 UTC
    over the day before."""
    from datetime import timedelta

    from airflow.sdk import AssetOrTimeSchedule

    from recops.app.assets import RAW_BATCHES

    timetable = dags[PIPELINE_DAG_ID].timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert timetable.asset_condition == RAW_BATCHES
    assert (timetable.timetable.expression, timetable.timetable.interval) == ("0 3 * * *", timedelta(days=1))
    # the run's data interval comes first: every stage reads it
    assert dags[PIPELINE_DAG_ID].get_task("run_interval").downstream_task_ids >= {"validate_raw", "dbt_build"}


def test_ingest_dag_announces_the_asset_and_the_monitor_runs_daily(dags) -> None:
    from recops.app.assets import RAW_BATCHES

    ingest = dags["recops_ingest"]
    assert [t.task_id for t in ingest.tasks] == ["collect"]
    assert ingest.get_task("collect").outlets == [RAW_BATCHES]
    assert ingest.timetable.expression == "*/10 * * * *" and ingest.max_active_runs == 1
    monitor = dags["recops_monitor"]
    assert monitor.timetable.expression == "0 6 * * *"
    assert {t.task_id for t in monitor.tasks} == {"online_marts", "check_ctr"}


@pytest.mark.parametrize(
    ("cron", "on_new_data", "kind"),
    [("0 3 * * *", True, "both"), ("", True, "asset"), ("30 1 * * *", False, "cron"), ("", False, "none")],
)
def test_pipeline_schedule_follows_the_settings(cron: str, on_new_data: bool, kind: str, tmp_path) -> None:
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    from recops.app.assets import RAW_BATCHES, pipeline_schedule
    from recops.core.settings import Settings

    schedule = pipeline_schedule(Settings(home=tmp_path, pipeline_schedule=cron, pipeline_on_new_data=on_new_data))
    if kind == "both":
        assert isinstance(schedule, AssetOrTimeSchedule)
    elif kind == "asset":
        assert schedule == [RAW_BATCHES]
    elif kind == "cron":
        assert isinstance(schedule, CronTriggerTimetable) and schedule.expression == cron
    else:
        assert schedule is None
