"""Offline sources: the dbt `marts/ml` tables.

Embedded profile: Parquet exports of the DuckDB marts under $RECOPS_FEATURE_DATA_DIR.
Production profile: the PostgreSQL marts themselves.
"""

import os

from feast import FileSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from repo_env import env

_PRODUCTION = env("RECOPS_PROFILE", "embedded") == "production"
_DATA_DIR = env("RECOPS_FEATURE_DATA_DIR", "data")


def _source(dbt_model: str, description: str):
    tags = {"dbt_model": dbt_model}
    if _PRODUCTION:
        return PostgreSQLSource(
            name=dbt_model,
            query=f"select * from public.{dbt_model}",
            timestamp_field="event_timestamp",
            description=description,
            tags=tags,
        )
    return FileSource(
        name=dbt_model,
        path=os.path.join(_DATA_DIR, f"{dbt_model}.parquet"),
        timestamp_field="event_timestamp",
        description=description,
        tags=tags,
    )


user_features_source = _source(
    "ml_user_features", "User activity and spend over 7/30/90 days, one row per snapshot."
)
item_features_source = _source(
    "ml_item_features", "Item popularity and trend over 7/30/90 days, one row per snapshot."
)
user_item_features_source = _source(
    "ml_user_item_features", "Cumulative user-item purchase counts and recency, one row per active day."
)
