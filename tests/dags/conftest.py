"""The one DagBag of the DAG tests: the project's DAG files parsed by Airflow (no running Airflow).

Airflow reads its configuration from the environment when first imported, so the home's Airflow
environment is set while Airflow is imported and the DAGs parsed, then restored."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    from recops.app.airflow_runtime import airflow_env
    from recops.core.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("dagbag") / "home")
    settings.airflow_home.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in airflow_env(settings).items():
            patch.setenv(key, value)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(settings.dags_folder))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="session")
def dags(dagbag):
    return dagbag.dags
