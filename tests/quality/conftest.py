"""Fixtures of the quality tests: settings with and without alert channels, and ``quality_data``,
the builders of raw batches, marts and training frames in a real DuckDB warehouse."""


from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from recops.core.constants import RAW_EVENT_COLUMNS, RAW_ITEM_COLUMNS
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

AS_OF = datetime(2010, 12, 31)
"""The data interval end the raw tests validate against."""
START = datetime(2010, 3, 1)


def raw_events(
    batch_id: str,
    n: int,
    *,
    seed: int = 0,
    start: datetime = START,
    source: str = "events",
    source_file: str | None = None,
    n_users: int = 50,
    n_items: int = 40,
) -> pd.DataFrame:
    """``n`` plausible raw.events rows (views, carts, purchases, returns) within 2010."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["view", "add_to_cart", "purchase", "return"], n, p=[0.5, 0.2, 0.25, 0.05])
    frame = pd.DataFrame(
        {
            "batch_id": batch_id,
            "ingested_at": AS_OF,
            "source": source,
            "source_file": source_file or f"/data/{batch_id}.csv",
            "source_row": np.arange(n, dtype="int64"),
            "user_id": [f"u{x}" for x in rng.integers(0, n_users, n)],
            "item_id": [f"i{x}" for x in rng.integers(0, n_items, n)],
            "event_type": kinds,
            "event_at": [
                start + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 200, n)
            ],
            "session_id": [f"s{x}" for x in rng.integers(0, n // 5 + 1, n)],
            "quantity": np.where(kinds == "view", np.nan, rng.integers(1, 12, n)).astype("float64"),
            "price_amount": np.round(rng.uniform(0.5, 40.0, n), 2),
            "order_id": [f"o{x}" for x in rng.integers(0, n // 3 + 1, n)],
            "country": "United Kingdom",
            "request_id": None,  # set on feedback about a served list only
            "served_rank": pd.array([pd.NA] * n, dtype="Int64"),
        }
    )
    return frame[list(RAW_EVENT_COLUMNS)]


def raw_items(batch_id: str, n_items: int = 40, *, source: str = "events") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "batch_id": batch_id,
            "ingested_at": AS_OF,
            "source": source,
            "source_file": f"/data/{batch_id}-catalogue.csv",
            "source_row": np.arange(n_items, dtype="int64"),
            "item_id": [f"i{x}" for x in range(n_items)],
            "title": [f"Item {x}" for x in range(n_items)],
            "description": None,
            "category": "gifts",
            "brand": None,
            "price_amount": np.linspace(1.0, 30.0, n_items),
        }
    )
    return frame[list(RAW_ITEM_COLUMNS)]


def load_batch(
    settings: Settings,
    batch_id: str,
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    *,
    source: str = "events",
    ingested_at: datetime = AS_OF,
    status: str = "loaded",
    quarantined: dict[str, int] | None = None,
) -> None:
    """Write a batch as ingestion would: its raw rows and its raw.batches row.

    ``quarantined``: input records the loader rejected, per reason (counted in raw.batches).
    """
    items = items if items is not None else pd.DataFrame(columns=list(RAW_ITEM_COLUMNS))
    quarantined = quarantined or {}
    rejected = sum(quarantined.values())
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df("raw.events", events.assign(ingested_at=ingested_at))
        if len(items):
            wh.append_df("raw.items", items.assign(ingested_at=ingested_at))
        wh.append_df(
            "raw.batches",
            pd.DataFrame(
                {
                    "batch_id": [batch_id],
                    "source": [source],
                    "files": [json.dumps([f"/data/{batch_id}.csv"])],
                    "rows_in": [len(events) + len(items) + rejected],
                    "rows_loaded": [len(events) + len(items)],
                    "rows_quarantined": [rejected],
                    "quarantine_reasons": [json.dumps(quarantined, sort_keys=True)],
                    "status": [status],
                    "status_reason": [None],
                    "ingested_at": [ingested_at],
                }
            ),
        )


def batch_status(settings: Settings, batch_id: str) -> tuple[str, str | None]:
    with Warehouse(settings, read_only=True) as wh:
        row = wh.query_df(
            "select status, status_reason from raw.batches where batch_id = ?", [batch_id]
        )
    return str(row.at[0, "status"]), row.at[0, "status_reason"]


def raw_rows(settings: Settings, batch_id: str) -> int:
    with Warehouse(settings, read_only=True) as wh:
        return int(wh.scalar("select count(*) from raw.events where batch_id = ?", [batch_id]))


# --- marts --------------------------------------------------------------------------------------
_SQL_TYPES = {
    "i": "bigint",
    "u": "bigint",
    "f": "double precision",
    "b": "boolean",
    "M": "timestamp",
}


def create_table(wh: Warehouse, table: str, frame: pd.DataFrame) -> None:
    """``create table`` from the frame's dtypes with plain SQL, then insert its rows."""
    cols = ", ".join(f"{c} {_SQL_TYPES.get(frame[c].dtype.kind, 'varchar')}" for c in frame.columns)
    wh.execute(f"drop table if exists {table}")
    wh.execute(f"create table {table} ({cols})")
    wh.append_df(table, frame)


def mart_frames(
    *,
    n_users: int = 30,
    n_items: int = 20,
    n_events: int = 400,
    seed: int = 1,
    pairs_per_snapshot: int | None = None,
) -> dict[str, pd.DataFrame]:
    """A consistent, clean set of marts (the shapes of CONTRACTS.md) from random interactions."""
    rng = np.random.default_rng(seed)
    users = [f"p{u:05d}" for u in range(n_users)]
    items = [f"i{i}" for i in range(n_items)]
    t0 = datetime(2010, 1, 1)
    fct = pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(n_events)],
            "user_id": rng.choice(users, n_events),
            "item_id": rng.choice(items, n_events),
            "event_type": rng.choice(["view", "purchase", "return"], n_events, p=[0.5, 0.45, 0.05]),
            "event_at": [t0 + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 300, n_events)],
            "session_id": [f"s{k // 4}" for k in range(n_events)],
            "quantity": rng.integers(1, 5, n_events).astype("float64"),
            "price_amount": np.round(rng.uniform(1, 20, n_events), 2),
            "order_id": [f"o{k // 3}" for k in range(n_events)],
            "source": "events",
        }
    )
    # every user and item appears at least once
    fct.loc[: n_users - 1, "user_id"] = users
    fct.loc[: n_items - 1, "item_id"] = items
    purchases = fct[fct["event_type"] == "purchase"]
    dim_items = pd.DataFrame(
        {
            "item_id": items,
            "title": [f"Item {i}" for i in range(n_items)],
            "description": None,
            "category": "gifts",
            "brand": None,
            "price_amount": np.linspace(1, 20, n_items),
            "item_text": [f"item {i} gifts" for i in range(n_items)],
            "first_seen_at": t0,
            "count_purchases": purchases.groupby("item_id")
            .size()
            .reindex(items, fill_value=0)
            .to_numpy(),
            "count_buyers": purchases.groupby("item_id")["user_id"]
            .nunique()
            .reindex(items, fill_value=0)
            .to_numpy(),
        }
    )
    per_user = fct.groupby("user_id")
    dim_users = pd.DataFrame(
        {
            "user_id": users,
            "first_event_at": per_user["event_at"].min().reindex(users).to_numpy(),
            "last_event_at": per_user["event_at"].max().reindex(users).to_numpy(),
            "count_purchases": purchases.groupby("user_id")
            .size()
            .reindex(users, fill_value=0)
            .to_numpy(),
            "count_orders": purchases.groupby("user_id")["order_id"]
            .nunique()
            .reindex(users, fill_value=0)
            .to_numpy(),
            "spend_amount": (purchases["price_amount"] * purchases["quantity"])
            .groupby(purchases["user_id"])
            .sum()
            .reindex(users, fill_value=0.0)
            .to_numpy(),
        }
    )
    snapshots = [datetime(2010, 9, 1) + timedelta(days=7 * k) for k in range(4)]
    uf = pd.DataFrame(
        [(u, s) for s in snapshots for u in users], columns=["user_id", "event_timestamp"]
    )
    n = len(uf)
    uf = uf.assign(
        count_purchases_7d=rng.integers(0, 3, n),
        count_purchases_30d=rng.integers(0, 8, n),
        count_purchases_90d=rng.integers(0, 20, n),
        count_orders_90d=rng.integers(0, 6, n),
        spend_amount_7d=rng.uniform(0, 50, n),
        spend_amount_30d=rng.uniform(0, 200, n),
        spend_amount_90d=rng.uniform(0, 500, n),
        count_distinct_items_90d=rng.integers(0, 15, n),
        count_views_30d=rng.integers(0, 30, n),
        count_returns_90d=rng.integers(0, 2, n),
        days_since_last_purchase=np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0, 90, n)),
    )
    itf = item_features(fct, items, snapshots)
    k = pairs_per_snapshot or n_users * 3
    uif = pd.DataFrame(
        {
            "user_id": rng.choice(users, k * len(snapshots)),
            "item_id": rng.choice(items, k * len(snapshots)),
            "event_timestamp": np.repeat(snapshots, k),
        }
    ).drop_duplicates(["user_id", "item_id", "event_timestamp"], ignore_index=True)
    q = len(uif)
    first = uif["event_timestamp"] - pd.to_timedelta(rng.integers(30, 200, q), unit="D")
    last = uif["event_timestamp"] - pd.to_timedelta(rng.integers(1, 29, q), unit="D")
    bought = rng.random(q) < 0.7
    clicked = rng.random(q) < 0.3
    uif = uif.assign(
        count_purchases=np.where(bought, rng.integers(1, 6, q), 0),
        count_views=rng.integers(0, 10, q),
        count_carts=rng.integers(0, 3, q),
        count_clicks=np.where(clicked, rng.integers(1, 4, q), 0),
        last_purchase_at=last.where(bought),
        first_purchase_at=first.where(bought),
        last_click_at=last.where(clicked),
    )
    labels = uif.sample(frac=0.5, random_state=seed)[["user_id", "item_id", "event_timestamp"]]
    labels = labels.assign(count_purchases=rng.integers(1, 4, len(labels)), relevance=1)
    return {
        "fct_interactions": fct,
        "dim_items": dim_items,
        "dim_users": dim_users,
        "ml_user_features": uf,
        "ml_item_features": itf,
        "ml_user_item_features": uif,
        "ml_ltr_labels": labels.reset_index(drop=True),
        **online_frames(users, items),
    }


def item_features(fct: pd.DataFrame, items, snapshots) -> pd.DataFrame:
    """ml_item_features as dbt computes it from these events (only events strictly before each
    snapshot; windows of 7, 30 and 90 days; median positive price of the 90 days), every item at
    every snapshot (in DuckDB, over the frames)."""
    import duckdb

    spine = pd.DataFrame(
        [(i, pd.Timestamp(t)) for t in snapshots for i in items], columns=["item_id", "event_timestamp"]
    )
    events = fct[["user_id", "item_id", "event_type", "event_at", "price_amount"]].assign(
        event_at=pd.to_datetime(fct["event_at"])
    )
    con = duckdb.connect()
    con.register("spine", spine)
    con.register("events", events)
    frame = con.execute(
        """
        select s.item_id, s.event_timestamp,
            count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval 7 day then 1 end) as count_purchases_7d,
            count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval 30 day then 1 end) as count_purchases_30d,
            count(case when e.event_type = 'purchase' then 1 end) as count_purchases_90d,
            count(distinct case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval 30 day then e.user_id end) as count_buyers_30d,
            count(distinct case when e.event_type = 'purchase' then e.user_id end) as count_buyers_90d,
            count(case when e.event_type = 'view' and e.event_at >= s.event_timestamp - interval 30 day then 1 end) as count_views_30d,
            percentile_cont(0.5) within group (order by case when e.price_amount > 0 then e.price_amount end) as price_amount,
            count(case when e.event_type = 'return' then 1 end) as count_returns_90d
        from spine s
        left join events e on e.item_id = s.item_id and e.event_at < s.event_timestamp
            and e.event_at >= s.event_timestamp - interval 90 day
        group by s.item_id, s.event_timestamp
        order by s.event_timestamp, s.item_id
        """
    ).df()
    con.close()
    frame["trend_ratio"] = (frame["count_purchases_7d"] / 7 + 0.1) / (frame["count_purchases_30d"] / 30 + 0.1)
    bought = frame["count_purchases_90d"]
    frame["return_rate_90d"] = (frame["count_returns_90d"] / bought.where(bought > 0)).clip(upper=1.0)
    for col in ("count_purchases_7d", "count_purchases_30d", "count_purchases_90d", "count_buyers_30d",
                "count_buyers_90d", "count_views_30d", "count_returns_90d"):
        frame[col] = frame[col].astype("int64")
    return frame


def online_frames(users: list[str], items: list[str]) -> dict[str, pd.DataFrame]:
    """Two served lists of three items (model version 1) and a click and a purchase on them."""
    at = datetime(2010, 12, 1, 10)
    served = pd.DataFrame({
        "request_id": ["r1"] * 3 + ["r2"] * 3, "served_rank": [1, 2, 3] * 2, "served_at": at,
        "served_date": pd.Timestamp(at.date()), "user_id": [users[0]] * 3 + [None] * 3, "model_version": "1",
        "variant": "champion", "response_kind": ["personal"] * 3 + ["cold_start"] * 3,
        "context_item_id": None, "item_id": items[:3] * 2, "ranker_score": [0.9, 0.5, 0.1] * 2,
    })
    feedback = pd.DataFrame({
        "event_id": ["e1", "e2"], "user_id": users[0], "item_id": items[0], "event_type": ["click", "purchase"],
        "event_at": at, "request_id": "r1", "served_rank": 1, "model_version": "1", "variant": "champion",
        "served_at": at, "is_attributed": True, "revenue_amount": [0.0, 12.5],
    })
    daily = pd.DataFrame({
        "served_date": [pd.Timestamp(at.date())], "model_version": ["1"], "variant": ["champion"],
        "count_requests": [2], "count_impressions": [6], "count_fallback_requests": [1], "count_seen": [0],
        "count_clicks": [1], "count_add_to_carts": [0], "count_purchases": [1], "revenue_amount": [12.5],
        "ctr_rate": [1 / 6], "add_to_cart_rate": [0.0], "conversion_rate": [1 / 6],
        "revenue_per_mille_amount": [12500 / 6], "coverage_rate": [3 / len(items)], "fallback_share_rate": [0.5],
    })
    return {"fct_served_items": served, "fct_feedback": feedback, "online_metrics_daily": daily}


def write_marts(
    settings: Settings, frames: dict[str, pd.DataFrame], *, staging: pd.DataFrame | None = None
) -> None:
    """Create the marts (schema main, or public on PostgreSQL) and stg_raw__events as a view."""
    fct = frames.get("fct_interactions")
    if staging is None:
        staging = fct[["user_id", "item_id", "event_type", "event_at", "price_amount"]]
    schema = "public" if settings.profile == "production" else "main"
    with Warehouse(settings) as wh:
        for table, frame in frames.items():
            create_table(wh, f"{schema}.{table}", frame)
        create_table(wh, f"{schema}.staging_events_data", staging)
        wh.execute(
            f"create or replace view {schema}.stg_raw__events as "
            f"select * from {schema}.staging_events_data"
        )


# --- training sets -------------------------------------------------------------------------------
def training_frame(
    *, n_groups: int = 300, per_group: int = 20, seed: int = 7, shift: float = 0.0
) -> pd.DataFrame:
    """A point-in-time training set: one query group per (user, label window), one positive or
    more per group, Feast-style feature names, and ``shift`` added (in std units) to one feature."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    groups = np.repeat(np.arange(n_groups), per_group)
    ts = pd.Timestamp("2010-11-01") + pd.to_timedelta(groups % 4 * 7, unit="D")
    label = (rng.random(n) < 0.08).astype("int64")
    label[::per_group] = 1  # a positive in every group
    label[1::per_group] = 0  # and a negative
    bought = rng.random(n) < 0.6
    last = ts - pd.to_timedelta(rng.integers(1, 300, n), unit="D")
    return pd.DataFrame(
        {
            "query_id": groups,
            "user_id": [f"p{g:05d}" for g in groups],
            "item_id": [f"i{x}" for x in rng.integers(0, 500, n)],
            "event_timestamp": ts,
            "label": label,
            "user_features__count_purchases_30d": rng.poisson(3.0, n),
            "user_features__spend_amount_30d": rng.gamma(2.0, 20.0, n) + shift * 40.0,
            "item_features__trend_ratio": rng.lognormal(0.0, 0.4, n),
            "user_item_features__count_purchases": np.where(bought, rng.integers(1, 5, n), 0),
            "user_item_features__last_purchase_at": pd.Series(last).where(bought).to_numpy(),
            # the ranker's numeric form of a feature timestamp: days before the label's time
            "user_item_features__first_purchase_at_age_days": np.where(
                bought, rng.uniform(1, 400, n), np.nan
            ),
            "window": groups % 2,
        }
    )


@pytest.fixture(scope="session")
def quality_data(read_alerts) -> SimpleNamespace:
    """The builders and constants above, for the test modules (helpers are fixtures)."""
    return SimpleNamespace(
        item_features=item_features,
        raw_events=raw_events,
        raw_items=raw_items,
        load_batch=load_batch,
        batch_status=batch_status,
        raw_rows=raw_rows,
        read_alerts=read_alerts,
        create_table=create_table,
        mart_frames=mart_frames,
        online_frames=online_frames,
        write_marts=write_marts,
        training_frame=training_frame,
        AS_OF=AS_OF,
        START=START,
    )
