"""DAG integrity: no import errors, tags, retries, the expected edges, params."""

from __future__ import annotations

import pytest

from recops.airflow_runtime import PIPELINE_DAG_ID, export_airflow_env
from recops.settings import get_settings

EXPECTED_EDGES = {
    ("ingest", "validate_raw"),
    ("validate_raw", "dbt_build"),
    ("dbt_build", "validate_marts"),
    ("validate_marts", "feast_apply_materialize"),
    ("feast_apply_materialize", "build_training_set"),
    ("dbt_build", "build_training_set"),
    ("build_training_set", "validate_training_set"),
    ("validate_training_set", "train_evaluate"),
    ("build_training_set", "train_evaluate"),
    ("train_evaluate", "register_model"),
    ("register_model", "promotion_gate"),
    ("promotion_gate", "needs_approval"),
    ("needs_approval", "approve_model"),
    ("approve_model", "promote_champion"),
    ("promotion_gate", "promote_champion"),
    ("promote_champion", "record_rejection"),
    ("promote_champion", "promotion_outcome"),
    ("record_rejection", "promotion_outcome"),
}


@pytest.fixture(scope="module")
def dagbag():
    export_airflow_env(get_settings())
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(get_settings().dags_folder))


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


def test_dag_file_has_no_heavy_imports() -> None:
    src = (get_settings().dags_folder / "recops_pipeline.py").read_text()
    top = src.split("@dag(")[0]
    for heavy in ("pandas", "lightgbm", "mlflow", "feast", "great_expectations", "duckdb", "Variable.get"):
        assert heavy not in top, heavy
