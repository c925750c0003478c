"""Feature views over the dbt `marts/ml` tables (schema, ttl, owner, dbt model tag)."""

from datetime import timedelta

from data_sources import item_features_source, user_features_source, user_item_features_source
from entities import item, user
from feast import FeatureView, Field
from feast.types import Float64, Int64, UnixTimestamp
from repo_env import env

# A snapshot row is valid until the next snapshot: older rows mean "inactive" and read as null.
_SNAPSHOT_TTL = timedelta(days=int(env("RECOPS_FEATURE_SNAPSHOT_DAYS", "7")) + 1)
_OWNER = "recops-data@example.com"

user_features = FeatureView(
    name="user_features",
    entities=[user],
    ttl=_SNAPSHOT_TTL,
    schema=[
        Field(name="count_purchases_7d", dtype=Int64),
        Field(name="count_purchases_30d", dtype=Int64),
        Field(name="count_purchases_90d", dtype=Int64),
        Field(name="count_orders_90d", dtype=Int64),
        Field(name="spend_amount_7d", dtype=Float64),
        Field(name="spend_amount_30d", dtype=Float64),
        Field(name="spend_amount_90d", dtype=Float64),
        Field(name="count_distinct_items_90d", dtype=Int64),
        Field(name="count_views_30d", dtype=Int64),
        Field(name="count_returns_90d", dtype=Int64),
        Field(name="days_since_last_purchase", dtype=Float64),
    ],
    source=user_features_source,
    online=True,
    owner=_OWNER,
    tags={"dbt_model": "ml_user_features", "grain": "user_id, event_timestamp"},
)

item_features = FeatureView(
    name="item_features",
    entities=[item],
    ttl=_SNAPSHOT_TTL,
    schema=[
        Field(name="count_purchases_7d", dtype=Int64),
        Field(name="count_purchases_30d", dtype=Int64),
        Field(name="count_purchases_90d", dtype=Int64),
        Field(name="count_buyers_30d", dtype=Int64),
        Field(name="count_buyers_90d", dtype=Int64),
        Field(name="count_views_30d", dtype=Int64),
        Field(name="trend_ratio", dtype=Float64),
        Field(name="price_amount", dtype=Float64),
        Field(name="count_returns_90d", dtype=Int64),
        Field(name="return_rate_90d", dtype=Float64),
    ],
    source=item_features_source,
    online=True,
    owner=_OWNER,
    tags={"dbt_model": "ml_item_features", "grain": "item_id, event_timestamp"},
)

user_item_features = FeatureView(
    name="user_item_features",
    entities=[user, item],
    # Cumulative counts stay true until the pair's next event: valid for years.
    ttl=timedelta(days=3650),
    schema=[
        Field(name="count_purchases", dtype=Int64),
        Field(name="count_views", dtype=Int64),
        Field(name="count_carts", dtype=Int64),
        Field(name="count_clicks", dtype=Int64),
        Field(name="last_click_at", dtype=UnixTimestamp),
        Field(name="first_purchase_at", dtype=UnixTimestamp),
        Field(name="last_purchase_at", dtype=UnixTimestamp),
    ],
    source=user_item_features_source,
    online=True,
    owner=_OWNER,
    tags={"dbt_model": "ml_user_item_features", "grain": "user_id, item_id, event_timestamp"},
)
