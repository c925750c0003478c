"""The production profile for real: PostgreSQL (warehouse, dbt target, Airflow metadata, MLflow
backend, Feast SQL registry and offline store) and Redis (Feast online store)."""

from __future__ import annotations

import uuid

import pandas as pd
import psycopg2
import pytest
import redis

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings
from recops.core.warehouse import drop_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "production-test-token-0123456789"


def _services() -> tuple[bool, str]:
    try:
        psycopg2.connect(ADMIN_DSN, connect_timeout=5).close()
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=5).ping()
    except Exception as exc:  # the message names the service that is down
        return False, str(exc)
    return True, ""


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, needs_service, postgres_admin,
         pg_database_name, shop_home):
    """The shared shop home's data, run through the pipeline on the production profile."""
    ok, why = _services()
    needs_service("PostgreSQL and Redis", ok, why)
    db = pg_database_name("prod")
    project = f"recops_{uuid.uuid4().hex[:8]}"
    env = {
        "RECOPS_PROFILE": "production",
        "RECOPS_POSTGRES_DB": db,
        "RECOPS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RECOPS_FEAST_PROJECT": project,
    }
    home = tmp_path_factory.mktemp("prod-home")
    shop = shop_home.shop
    settings = Settings(home=home, profile="production", postgres_db=db, feast_project=project,
                        user_salt="test-salt-123")
    try:
        run = cli(home, "run", "--source", "events", "--data", str(shop / "events.parquet"),
                  "--catalog", str(shop / "catalog.parquet"), extra_env=env)
        yield {"settings": settings, "shop": shop, "run": parse_json(run.stdout), "db": db, "home": home}
    finally:
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
    assert prod["run"]["state"] == "success"
    rows = _query(f"{prod['db']}_airflow", "select dag_id, state from dag_run")
    assert ("recops_pipeline", "success") in rows


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
