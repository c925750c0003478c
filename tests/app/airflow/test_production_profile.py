"""The production profile for real, scaled out: PostgreSQL (warehouse, dbt target, Airflow
metadata and Celery results, MLflow backend, Feast SQL registry and offline store), Redis (Feast
online store, Celery broker), and ``recops airflow up`` on the CeleryExecutor: ``recops_pipeline``
triggered over the REST API, every task run by the Celery worker."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg2
import pytest
import redis

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings
from recops.core.warehouse import drop_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.timeout(1200)]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "production-test-token-0123456789"
BROKER_DB = 14  # the Celery broker's Redis database (emptied first; the feature store uses 0)
DAG, RUN = "recops_pipeline", "celery"


def _services() -> tuple[bool, str]:
    try:
        psycopg2.connect(ADMIN_DSN, connect_timeout=5).close()
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=5).ping()
    except Exception as exc:  # the message names the service that is down
        return False, str(exc)
    return True, ""


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory, needs_service, postgres_admin, pg_database_name, shop_home,
         airflow_tools):
    """The shared shop home's data, run through ``recops_pipeline`` on the production profile by
    the CeleryExecutor (``recops airflow up``; the run triggered as the UI's trigger dialog does)."""
    ok, why = _services()
    needs_service("PostgreSQL and Redis", ok, why)
    redis.Redis(host="127.0.0.1", port=6379, db=BROKER_DB).flushdb()
    db = pg_database_name("prod")
    project = f"recops_{uuid.uuid4().hex[:8]}"
    env = {
        "RECOPS_PROFILE": "production",
        "RECOPS_POSTGRES_DB": db,
        "RECOPS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RECOPS_FEAST_PROJECT": project,
        "RECOPS_AIRFLOW_EXECUTOR": "CeleryExecutor",
        "RECOPS_CELERY_WORKERS": "2",
        "RECOPS_CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{BROKER_DB}",
    }
    home = tmp_path_factory.mktemp("prod-home")
    # the shop home's tuned settings, so that both profiles train the same model
    (home / "tuning").mkdir()
    shutil.copy(shop_home.home / "tuning" / "tuned_settings.json", home / "tuning" / "tuned_settings.json")
    shop = shop_home.shop
    settings = Settings(home=home, profile="production", postgres_db=db, feast_project=project,
                        user_salt=os.environ["RECOPS_USER_SALT"])
    newest = pd.Timestamp(pd.read_parquet(shop / "events.parquet", columns=["event_at"])["event_at"].max())
    newest = newest.tz_convert("UTC") if newest.tzinfo else newest.tz_localize("UTC")
    logical = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC).isoformat()
    up = airflow_tools.AirflowUp(home, airflow_tools.free_port())
    try:
        rest = up.start(**env)
        endpoint = json.loads(up.endpoint_file.read_text())
        rest.wait_for_dags({DAG})
        response = rest.trigger(DAG, run_id=RUN, logical_date=logical, conf={
            "source": "events", "data_path": str(shop / "events.parquet"),
            "catalog_path": str(shop / "catalog.parquet"), "cutoff": None, "auto_promote": True,
        })
        assert response.status_code == 200, response.text
        tasks = rest.wait(DAG, RUN, timeout_s=900)
        run = {"state": rest.run(DAG, RUN)["state"], "tasks": tasks}
        if run["state"] != "success":
            run["failures"] = rest.failures(DAG, RUN)
        worker_log = (home / "airflow" / "logs" / "celery-worker.log").read_text(errors="replace")
        yield {"settings": settings, "shop": shop, "run": run, "db": db, "home": home, "endpoint": endpoint,
               "worker_log": worker_log}
    finally:
        up.stop()
        try:
            from recops.core.candidate_store import candidate_store
            from recops.core.feature_store import get_store

            get_store(settings).teardown()  # removes this project's Redis keys
            for version in candidate_store(settings).versions():
                candidate_store(settings).delete_version(version)
        except Exception as exc:  # noqa: BLE001 - teardown must go on to drop the databases
            print(f"feast teardown failed: {exc}")
        for name in (db, f"{db}_airflow", f"{db}_mlflow"):
            drop_postgres_database(postgres_admin, name)


def _query(db: str, sql: str) -> list[tuple]:
    con = psycopg2.connect(f"postgresql://postgres@127.0.0.1:5432/{db}")
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def test_run_succeeded_with_airflow_metadata_in_postgres(prod) -> None:
    assert prod["run"]["state"] == "success", prod["run"].get("failures")
    rows = _query(f"{prod['db']}_airflow", "select dag_id, state from dag_run")
    assert ("recops_pipeline", "success") in rows


def test_every_task_ran_on_the_celery_worker(prod) -> None:
    """The scheduler hands every task to Celery (broker on Redis, results in PostgreSQL); the
    worker's log names each one it ran."""
    assert prod["endpoint"]["executor"] == "CeleryExecutor" and prod["endpoint"]["celery_workers"] == 2
    ran = {t for t, state in prod["run"]["tasks"].items() if state == "success"}
    assert {"ingest", "dbt_build", "validate_marts", "build_training_set", "train_evaluate", "register_model"} <= ran
    log = prod["worker_log"]
    missing = [t for t in ran if f"task_id='{t}'" not in log]
    assert not missing, f"not in the Celery worker's log: {missing}"
    # Celery's results backend is the Airflow database
    [(stored,)] = _query(f"{prod['db']}_airflow", "select count(*) from celery_taskmeta where status = 'SUCCESS'")
    assert stored > 0


def test_warehouse_and_marts_in_postgres(prod) -> None:
    events = pd.read_parquet(prod["shop"] / "events.parquet")
    [(raw,)] = _query(prod["db"], "select count(*) from raw.events")
    assert raw == len(events)
    for table in ("fct_interactions", "dim_items", "dim_users", "ml_user_features", "ml_item_features",
                  "ml_user_item_features", "ml_ltr_labels"):
        [(n,)] = _query(prod["db"], f"select count(*) from public.{table}")
        assert n > 0, table
    [(users,)] = _query(prod["db"], "select count(*) from public.dim_users")
    assert users == events["user_id"].nunique()


def test_mlflow_backend_in_postgres_has_champion(prod) -> None:
    rows = _query(f"{prod['db']}_mlflow", "select name, alias, version from registered_model_aliases")
    assert ("recops-ranker", "champion", 1) in rows


def test_feast_registry_in_postgres_and_online_features_from_redis(prod) -> None:
    from recops.core.feature_store import get_store, online_features

    tables = {r[0] for r in _query(prod["db"], "select table_name from information_schema.tables")}
    assert {"feature_views", "entities", "feature_services"} <= tables
    settings: Settings = prod["settings"]
    store = get_store(settings)
    assert store.config.online_store.type == "redis"
    events = pd.read_parquet(prod["shop"] / "events.parquet")
    buys = events[events.event_type == "purchase"]
    user = str(buys["user_id"].value_counts().index[0])
    item = str(buys[buys["user_id"].astype(str) == user]["item_id"].iloc[0])
    feats = online_features(store, pseudonymise(user, settings.user_salt), [item])
    assert int(feats["user_item_features__count_purchases"].iloc[0]) >= 1
    assert int(feats["user_features__count_purchases_90d"].iloc[0]) >= 1
    keys = redis.Redis(host="127.0.0.1", port=6379).keys("*")
    assert keys, "no feature rows in Redis"


def test_production_serves_from_redis_the_same_lists_as_embedded(prod, shop_home) -> None:
    """The same shop on both profiles: the API reads its candidates from Redis on one and SQLite
    on the other, and answers the same top-10 (PostgreSQL and DuckDB build the same marts)."""
    from fastapi.testclient import TestClient

    from recops.core.candidate_store import RedisCandidateStore, candidate_store
    from recops.serving.main import create_app

    assert isinstance(candidate_store(prod["settings"]), RedisCandidateStore)
    events = pd.read_parquet(prod["shop"] / "events.parquet")
    users = events.loc[events.event_type == "purchase", "user_id"].astype(str).value_counts().index[:20]
    lists = []
    for settings in (prod["settings"], shop_home.settings):
        app = create_app(settings.model_copy(update={"api_tokens": TOKEN, "serve_cache_seconds": 0.0}))
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            assert api.get("/health").json()["status"] == "ok"
            lists.append({u: [r["item_id"] for r in api.get(f"/recommendations/{u}").json()["items"]] for u in users})
    production, embedded = lists
    assert all(production[u] for u in users)
    assert production == embedded
