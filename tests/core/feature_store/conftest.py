"""A Feast home built from hand-written ML marts: the real ``feast apply`` of ``features/``,
the real DuckDB offline store and SQLite online store, under a temporary ``RECOPS_HOME``.

The marts have the exported schema (``recops.core.feature_store.export_feature_tables``) and a few
users whose snapshots change over time, so that what a point in time may see is known by hand.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recops.core.feature_store import ML_MARTS
from recops.core.settings import Settings

T0 = pd.Timestamp("2024-03-01")  # a label window's start: the point in time of its features
DAY = pd.Timedelta(days=1)

USER_COLUMNS = (
    "count_purchases_7d",
    "count_purchases_30d",
    "count_purchases_90d",
    "count_orders_90d",
    "spend_amount_7d",
    "spend_amount_30d",
    "spend_amount_90d",
    "count_distinct_items_90d",
    "count_views_30d",
    "count_returns_90d",
    "days_since_last_purchase",
)
ITEM_COLUMNS = (
    "count_purchases_7d",
    "count_purchases_30d",
    "count_purchases_90d",
    "count_buyers_30d",
    "count_buyers_90d",
    "count_views_30d",
    "trend_ratio",
    "price_amount",
    "count_returns_90d",
    "return_rate_90d",
)


def _user_rows(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """(user, snapshot, count_purchases_90d); the other features follow from the count."""
    frame = pd.DataFrame(rows, columns=["user_id", "event_timestamp", "count_purchases_90d"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"])
    n = frame["count_purchases_90d"]
    for col in USER_COLUMNS:
        if col == "count_purchases_90d":
            continue
        frame[col] = (n * 10.0) if "amount" in col or col.startswith("days") else n * 0
    return frame[["user_id", "event_timestamp", *USER_COLUMNS]].astype(
        {c: "int64" for c in USER_COLUMNS if c.startswith("count_")}
    )


def _item_rows(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "event_timestamp", "count_purchases_90d"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"])
    for col in ITEM_COLUMNS:
        if col != "count_purchases_90d":
            frame[col] = 0 if col.startswith("count_") else 1.0
    return frame[["item_id", "event_timestamp", *ITEM_COLUMNS]].astype(
        {c: "int64" for c in ITEM_COLUMNS if c.startswith("count_")}
    )


def _pair_rows(rows: list[tuple[str, str, str, int, str]]) -> pd.DataFrame:
    """(user, item, snapshot, cumulative count_purchases, last_purchase_at)."""
    frame = pd.DataFrame(
        rows,
        columns=["user_id", "item_id", "event_timestamp", "count_purchases", "last_purchase_at"],
    )
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"])
    frame["last_purchase_at"] = pd.to_datetime(frame["last_purchase_at"])
    frame["first_purchase_at"] = frame.groupby(["user_id", "item_id"])[
        "last_purchase_at"
    ].transform("min")
    frame["count_views"] = 0
    frame["count_carts"] = 0
    frame["count_clicks"] = 0
    frame["last_click_at"] = pd.NaT
    return frame[
        [
            "user_id",
            "item_id",
            "event_timestamp",
            "count_purchases",
            "count_views",
            "count_carts",
            "count_clicks",
            "last_click_at",
            "first_purchase_at",
            "last_purchase_at",
        ]
    ]


# u1 buys on 02-20, 02-29 and, after T0, five more times before 03-08: the 03-08 snapshot (and
# the pair's 03-03 row) hold purchases that happened after T0 and must not reach T0's rows.
USER_FEATURES = _user_rows(
    [
        ("u1", "2024-02-23", 2),
        ("u1", "2024-03-01", 3),
        ("u1", "2024-03-08", 9),
        ("u2", "2024-03-01", 4),
        ("u2", "2024-03-08", 4),
        ("u3", "2024-03-08", 1),  # first seen after T0: nothing to see at T0
        ("u4", "2024-02-01", 7),  # stale: older than the snapshot ttl at T0
        ("u5", "2023-12-15", 5),  # only in an early interval (backfill test)
    ]
)
ITEM_FEATURES = _item_rows(
    [
        ("i1", "2024-03-01", 20),
        ("i1", "2024-03-08", 50),
        ("i2", "2024-03-01", 3),
        ("i3", "2024-03-01", 1),
    ]
)
USER_ITEM_FEATURES = _pair_rows(
    [
        ("u1", "i1", "2024-02-21", 1, "2024-02-20 10:00"),
        ("u1", "i1", "2024-03-01", 2, "2024-02-29 09:00"),
        ("u1", "i1", "2024-03-03", 3, "2024-03-02 11:00"),
        ("u2", "i2", "2024-02-10", 1, "2024-02-09 08:00"),
    ]
)


def write_marts(settings: Settings) -> None:
    settings.feature_data_dir.mkdir(parents=True, exist_ok=True)
    frames = dict(zip(ML_MARTS, (USER_FEATURES, ITEM_FEATURES, USER_ITEM_FEATURES), strict=True))
    for table, frame in frames.items():
        frame.to_parquet(settings.feature_data_dir / f"{table}.parquet", index=False)


def make_feast_home(home: Path) -> Settings:
    """Settings of a fresh home with the hand-written marts and ``feast apply`` of the repo."""
    from recops.core.feature_store import apply_features

    settings = Settings(home=home, user_salt="test-salt-123")
    write_marts(settings)
    applied = apply_features(settings)
    assert applied.feature_views == ["item_features", "user_features", "user_item_features"]
    assert applied.feature_services == ["ranker_v1"]
    return settings


@pytest.fixture(scope="session")
def feast_marts():
    """``feast_marts(settings)``: write the hand-written ML marts into a home (not applied)."""
    return write_marts


@pytest.fixture(scope="session")
def feast_factory():
    """``feast_factory(home)``: a fresh applied Feast home (for tests that need their own store)."""
    return make_feast_home


@pytest.fixture(scope="module")
def feast_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One applied Feast home per test module (``feast apply`` takes seconds)."""
    return make_feast_home(tmp_path_factory.mktemp("feast") / "home")
