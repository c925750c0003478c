"""The gates at Online Retail II scale (marked slow): real data through the raw gate without a false
alarm, and marts with a 1M-row ml_user_item_features through the marts gate. They print their
timings; speed is measured by ``benchmarks/pipeline.py``, not asserted here."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.quality.checkpoints import validate_marts, validate_raw_batches

RETAIL_II = "online_retail_ii_2009_2010/online_retail_ii_2009_2010.parquet"

pytestmark = pytest.mark.slow


def _ids(prefix: str, values: np.ndarray) -> np.ndarray:
    return (prefix + pd.Series(values).astype(str)).to_numpy(dtype=object)


def big_marts(
    item_features, *, n_users: int = 4_400, n_items: int = 4_600, n_events: int = 520_000, n_pairs: int = 1_000_000
) -> dict[str, pd.DataFrame]:
    """Marts at Online Retail II scale with a 1M-row user-item feature table."""
    rng = np.random.default_rng(0)
    users, items = _ids("p", np.arange(n_users)), _ids("i", np.arange(n_items))
    t0 = np.datetime64("2009-12-01T00:00:00")
    fct = pd.DataFrame(
        {
            "event_id": _ids("e", np.arange(n_events)),
            "user_id": users[rng.integers(0, n_users, n_events)],
            "item_id": items[rng.integers(0, n_items, n_events)],
            "event_type": np.array(["purchase", "return"], dtype=object)[
                (rng.random(n_events) < 0.03).astype(int)
            ],
            "event_at": t0 + rng.integers(0, 365 * 86400, n_events).astype("timedelta64[s]"),
            "session_id": _ids("s", rng.integers(0, 40_000, n_events)),
            "quantity": rng.integers(1, 24, n_events).astype("float64"),
            "price_amount": rng.uniform(0.1, 20, n_events).round(2),
            "order_id": _ids("o", rng.integers(0, 40_000, n_events)),
            "source": "online_retail",
        }
    )
    fct.loc[: n_users - 1, "user_id"] = users
    fct.loc[: n_items - 1, "item_id"] = items
    dim_items = pd.DataFrame(
        {
            "item_id": items,
            "title": "t",
            "description": None,
            "category": None,
            "brand": None,
            "price_amount": rng.uniform(0.1, 20, n_items),
            "item_text": "t",
            "first_seen_at": t0,
            "count_purchases": rng.integers(0, 500, n_items),
            "count_buyers": rng.integers(0, 200, n_items),
        }
    )
    dim_users = pd.DataFrame(
        {
            "user_id": users,
            "first_event_at": t0,
            "last_event_at": t0,
            "count_purchases": rng.integers(0, 300, n_users),
            "count_orders": rng.integers(0, 40, n_users),
            "spend_amount": rng.uniform(0, 5000, n_users),
        }
    )
    snapshots = t0 + np.arange(0, 52 * 7, 7).astype("timedelta64[D]")
    uf = pd.DataFrame(
        {
            "user_id": np.tile(users, len(snapshots)),
            "event_timestamp": np.repeat(snapshots, n_users),
        }
    )
    for c in (
        "count_purchases_7d",
        "count_purchases_30d",
        "count_purchases_90d",
        "count_orders_90d",
        "count_distinct_items_90d",
        "count_views_30d",
        "count_returns_90d",
    ):
        uf[c] = rng.integers(0, 20, len(uf))
    for c in (
        "spend_amount_7d",
        "spend_amount_30d",
        "spend_amount_90d",
        "days_since_last_purchase",
    ):
        uf[c] = rng.uniform(0, 300, len(uf))
    # consistent with the events: the marts gate recomputes a sample of these point in time
    itf = item_features(fct, items, snapshots)
    # 1M distinct (user, item, snapshot) keys
    key = rng.choice(n_users * n_items * len(snapshots), n_pairs, replace=False)
    snap, rest = np.divmod(key, n_users * n_items)
    u, i = np.divmod(rest, n_items)
    ts = snapshots[snap]
    bought = rng.random(n_pairs) < 0.7
    last = ts - rng.integers(1, 200, n_pairs).astype("timedelta64[D]")
    uif = pd.DataFrame(
        {
            "user_id": users[u],
            "item_id": items[i],
            "event_timestamp": ts,
            "count_purchases": np.where(bought, rng.integers(1, 9, n_pairs), 0),
            "count_views": 0,
            "count_carts": 0,
            "last_purchase_at": pd.Series(last).where(bought),
            "first_purchase_at": pd.Series(last - np.timedelta64(30, "D")).where(bought),
        }
    )
    labels = uif.iloc[:60_000][["user_id", "item_id", "event_timestamp"]].assign(
        count_purchases=1, relevance=1
    )
    return {
        "fct_interactions": fct,
        "dim_items": dim_items,
        "dim_users": dim_users,
        "ml_user_features": uf,
        "ml_item_features": itf,
        "ml_user_item_features": uif,
        "ml_ltr_labels": labels,
    }


def test_validate_marts_on_a_million_feature_rows(settings: Settings, quality_data) -> None:
    frames = big_marts(quality_data.item_features)
    users, items = frames["dim_users"]["user_id"].tolist(), frames["dim_items"]["item_id"].tolist()
    frames.update(quality_data.online_frames(users, items))
    quality_data.write_marts(settings, frames)

    started = time.perf_counter()
    result = validate_marts(settings, run_id="big-marts")
    seconds = time.perf_counter() - started

    assert result.success, [f.line() for f in result.failures]
    rows = result.statistics["rows"]
    assert rows["ml_user_item_features"] == 1_000_000
    per_suite = {v["suite"]: v["seconds"] for v in result.statistics["validations"]}
    total = sum(rows.values())
    print(f"\nvalidate_marts: {seconds:.1f}s for {total:,} mart rows; per suite: {per_suite}")


def test_validate_raw_online_retail(settings: Settings, dataset) -> None:
    from recops.ingestion.online_retail import ingest_online_retail

    summary = ingest_online_retail(settings, dataset(RETAIL_II), ingested_at=datetime(2010, 12, 10))
    started = time.perf_counter()
    result = validate_raw_batches(
        settings, [summary.batch_id], run_id="retail", as_of=datetime(2010, 12, 10)
    )
    seconds = time.perf_counter() - started

    # the real shop's data passes the raw gate: no false alarm on Online Retail II
    assert result.success, [f.line() for f in result.failures]
    assert result.statistics["batches"][summary.batch_id]["events"] == summary.events_loaded
    print(f"\nvalidate_raw_batches: {seconds:.1f}s for {summary.events_loaded:,} events")
