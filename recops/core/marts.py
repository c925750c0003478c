"""Reads of the raw layer and the dbt marts that several stages share (SQL lives here only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pandas as pd

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    PRICE_COL,
    QUANTITY_COL,
    RAW_BATCHES,
    RAW_EVENTS,
    RAW_SCHEMA,
    USER_COL,
)
from recops.core.settings import Settings
from recops.core.timeutil import midnight, to_timestamp
from recops.core.warehouse import Warehouse

LEARNER_COLUMNS = (USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL, QUANTITY_COL, PRICE_COL)
"""The ``fct_interactions`` columns that retrievers, features and labels read (not the event,
session and order ids, each a string per row)."""


class NoDataError(RuntimeError):
    """The warehouse holds no loaded event yet."""


def _read_only(settings: Settings) -> bool:
    return settings.profile == "embedded"


def newest_event_at(settings: Settings, *, before: datetime | None = None) -> datetime:
    """The newest event (naive UTC) of the loaded batches in the raw layer (before ``before``)."""
    sql = (
        f"select max(e.event_at) from {RAW_EVENTS} e join {RAW_BATCHES} b "
        "on e.batch_id = b.batch_id where b.status = 'loaded'"
    )
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        if before is None:
            value = wh.scalar(sql)
        else:
            value = wh.scalar(sql + " and e.event_at < ?", [to_timestamp(before).to_pydatetime()])
    if value is None or pd.isna(value):
        raise NoDataError("the warehouse holds no events: ingest data first (recops ingest ...)")
    return pd.Timestamp(value).to_pydatetime()


def frequent_buyers(settings: Settings, limit: int = 50) -> list[str]:
    """Shop user ids as loaded (personal data: the raw layer keeps them before staging
    pseudonymises them) with the most purchases in the loaded batches, most first."""
    sql = (
        f"select e.user_id, count(*) as count_purchases from {RAW_EVENTS} e join {RAW_BATCHES} b "
        "on e.batch_id = b.batch_id where b.status = 'loaded' and e.event_type = 'purchase' "
        "and e.user_id is not null group by e.user_id order by count_purchases desc, e.user_id limit ?"
    )
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        if not wh.table_exists(RAW_SCHEMA, "events"):
            return []
        return [str(u) for u in wh.query_df(sql, [int(limit)])[USER_COL]]


def data_end(settings: Settings) -> datetime:
    """Midnight (UTC, aware) after the newest loaded event: the data's own interval end."""
    return midnight(newest_event_at(settings).date() + timedelta(days=1))


def default_cutoff(settings: Settings, *, before: datetime | None = None) -> date:
    """The day after the newest event (before ``before``) minus ``holdout_days``."""
    return newest_event_at(settings, before=before).date() + timedelta(days=1 - settings.holdout_days)


def interactions_and_items(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``fct_interactions`` (its :data:`LEARNER_COLUMNS`) and ``dim_items`` as DataFrames, each
    column's equal strings one object (the whole history is held in memory by every stage that
    trains or evaluates)."""
    schema = settings.mart_schema
    columns = ", ".join(LEARNER_COLUMNS)
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        interactions = wh.query_df(
            f"select {columns} from {schema}.fct_interactions", shared_strings=True
        )
        items = wh.query_df(f"select * from {schema}.dim_items", shared_strings=True)
    return interactions, items


def served_impressions(settings: Settings) -> pd.DataFrame:
    """(user_id, item_id, served_at) of every personal or cold-start list the API served (the
    served-list log through dbt); empty before any was served."""
    schema = settings.mart_schema
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        if not wh.table_exists(schema, "fct_served_items"):
            return pd.DataFrame(columns=[USER_COL, "item_id", "served_at"])
        return wh.query_df(
            f"select user_id, item_id, served_at from {schema}.fct_served_items where user_id is not null"
        )


def purchases_before(settings: Settings, users: Sequence[str], cutoff: pd.Timestamp) -> pd.Series:
    """Purchases before ``cutoff`` per user of ``users`` (0 for users with none)."""
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        counts = wh.query_df(
            f"select user_id, count(*) as count_purchases from {settings.mart_schema}.fct_interactions "
            "where event_type = 'purchase' and event_at < ? group by user_id",
            [to_timestamp(cutoff).to_pydatetime()],
        )
    series = counts.set_index(USER_COL)["count_purchases"].astype(int)
    return series.reindex(list(users), fill_value=0)


def items_catalogue(settings: Settings) -> pd.DataFrame:
    """``dim_items``' item_id, title, price_amount and is_available (true when the column is
    absent), for the serving data."""
    schema = settings.mart_schema
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        has_flag = "is_available" in wh.query_df(f"select * from {schema}.dim_items limit 0").columns
        flag = "is_available" if has_flag else "true as is_available"
        return wh.query_df(f"select item_id, title, price_amount, {flag} from {schema}.dim_items")


ONLINE_COUNTS = ("count_requests", "count_impressions", "count_fallback_requests", "count_seen", "count_clicks",
                 "count_add_to_carts", "count_purchases")


def online_metrics_daily(settings: Settings) -> pd.DataFrame:
    """``online_metrics_daily`` (empty when the pipeline has not built it yet)."""
    schema = settings.mart_schema
    empty = pd.DataFrame(columns=["served_date", "model_version", "variant", *ONLINE_COUNTS,
                                  "revenue_amount", "coverage_rate"])
    if settings.dbt_target == "duckdb" and not settings.warehouse_path.exists():
        return empty
    with Warehouse(settings, read_only=_read_only(settings)) as wh:
        if not wh.table_exists(schema, "online_metrics_daily"):
            return empty
        return wh.query_df(f"select * from {schema}.online_metrics_daily order by served_date, model_version, variant")


def online_summary(daily: pd.DataFrame, *, since: date | None = None, until: date | None = None) -> list[dict]:
    """Per model version and variant over the days served (``since`` .. ``until``, both
    included): counts summed, rates from the sums (CTR = clicks / impressions, ...)."""
    days = pd.to_datetime(daily["served_date"]).dt.date
    if since is not None:
        daily, days = daily[days >= since], days[days >= since]
    if until is not None:
        daily = daily[days <= until]
    if daily.empty:
        return []
    grouped = daily.groupby(["model_version", "variant"], as_index=False).agg(
        **{c: (c, "sum") for c in (*ONLINE_COUNTS, "revenue_amount")},
        coverage=("coverage_rate", "mean"),
        days=("served_date", "nunique"),
        first_day=("served_date", "min"),
        last_day=("served_date", "max"),
    )
    out = []
    for row in grouped.to_dict("records"):
        shown = max(int(row["count_impressions"]), 1)
        out.append({
            "model_version": str(row["model_version"]), "variant": row["variant"],
            "days": int(row["days"]), "first_day": str(row["first_day"])[:10], "last_day": str(row["last_day"])[:10],
            "requests": int(row["count_requests"]), "impressions": int(row["count_impressions"]),
            "seen": int(row["count_seen"]), "clicks": int(row["count_clicks"]),
            "add_to_carts": int(row["count_add_to_carts"]), "purchases": int(row["count_purchases"]),
            "revenue": round(float(row["revenue_amount"]), 2),
            "ctr": round(row["count_clicks"] / shown, 6), "add_to_cart_rate": round(row["count_add_to_carts"] / shown, 6),
            "conversion": round(row["count_purchases"] / shown, 6),
            "revenue_per_1000": round(1000 * float(row["revenue_amount"]) / shown, 4),
            "fallback_share": round(row["count_fallback_requests"] / max(int(row["count_requests"]), 1), 6),
            "coverage_mean_daily": round(float(row["coverage"] or 0.0), 6),
        })
    return out
