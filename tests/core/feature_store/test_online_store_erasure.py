"""Erasing a user from Feast's online store (SQLite and Redis): every key of the user goes, the
user's ``(user, item)`` pairs included; other users' rows and item rows stay."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pandas as pd
import pytest

from recops.core.feature_erasure import erase_online_store
from recops.core.settings import Settings

GONE, KEPT = "a" * 32, "b" * 32  # pseudonymised ids look like md5 hex digests


def _store(tmp_path, online_store: dict):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Int64

    now = datetime(2024, 3, 1)
    rows = {
        "user_features": pd.DataFrame({"user_id": [GONE, KEPT], "count_orders": [3, 5]}),
        "item_features": pd.DataFrame({"item_id": ["i1", GONE], "count_buyers": [2, 1]}),
        "user_item_features": pd.DataFrame(
            {
                "user_id": [GONE, GONE, KEPT],
                "item_id": ["i1", "i2", "i1"],
                "count_purchases": [1, 4, 2],
            }
        ),
    }
    views = []
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING)
    entities = {
        "user_features": [user],
        "item_features": [item],
        "user_item_features": [user, item],
    }
    for name, frame in rows.items():
        frame = frame.assign(event_timestamp=pd.Timestamp(now, tz="UTC"))
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        feature = frame.columns[-2]
        views.append(
            FeatureView(
                name=name,
                entities=entities[name],
                ttl=timedelta(days=30),
                schema=[Field(name=feature, dtype=Int64)],
                online=True,
                source=FileSource(
                    name=f"{name}_source", path=str(path), timestamp_field="event_timestamp"
                ),
            )
        )
    project = f"privacy_{uuid.uuid4().hex[:8]}"
    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store=online_store,
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=str(tmp_path),
    )
    store = FeatureStore(config=config)
    store.apply([user, item, *views])
    for name, frame in rows.items():
        store.write_to_online_store(name, frame.assign(event_timestamp=pd.Timestamp(now, tz="UTC")))
    return store


def _online(store, user_id: str) -> dict:
    resp = store.get_online_features(
        features=["user_features:count_orders", "user_item_features:count_purchases"],
        entity_rows=[{"user_id": user_id, "item_id": "i1"}, {"user_id": user_id, "item_id": "i2"}],
    ).to_dict()
    return {k: v for k, v in resp.items() if k.startswith("count")}


def _check(store) -> None:
    assert _online(store, GONE) == {"count_orders": [3, 3], "count_purchases": [1, 4]}
    counts = erase_online_store(Settings(), GONE, store=store)
    assert counts == {"feast.online.user_features": 1, "feast.online.user_item_features": 2}
    assert _online(store, GONE) == {"count_orders": [None, None], "count_purchases": [None, None]}
    assert _online(store, KEPT) == {"count_orders": [5, 5], "count_purchases": [2, None]}
    # an item whose id happens to equal the user's key is not the user: it stays
    items = store.get_online_features(
        features=["item_features:count_buyers"], entity_rows=[{"item_id": GONE}, {"item_id": "i1"}]
    ).to_dict()
    assert items["count_buyers"] == [1, 2]
    assert erase_online_store(Settings(), GONE, store=store) == {
        "feast.online.user_features": 0,
        "feast.online.user_item_features": 0,
    }


def test_sqlite_online_store(tmp_path) -> None:
    store = _store(tmp_path, {"type": "sqlite", "path": str(tmp_path / "online.db")})
    _check(store)


@pytest.mark.redis
def test_redis_online_store(tmp_path, needs_service) -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()
        up, why = True, ""
    except Exception as exc:  # connection refused, timeout
        up, why = False, str(exc)
    needs_service("redis", up, why)
    store = _store(tmp_path, {"type": "redis", "connection_string": "127.0.0.1:6379"})
    try:
        _check(store)
    finally:
        store.teardown()
