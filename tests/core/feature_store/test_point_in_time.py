"""Training sets read ``ranker_v1`` point in time: no feature row from after a label's time.

Real ``feast apply`` and ``get_historical_features`` (DuckDB offline store) on hand-written marts
(conftest); the slow test builds the marts with dbt from raw events instead.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recops.core.feature_store import historical_features

T0 = pd.Timestamp("2024-03-01")  # as in conftest: the label window's start
DAY = pd.Timedelta(days=1)


def entity_rows(rows: list[tuple[str, str, pd.Timestamp]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_timestamp"])


def test_a_later_event_does_not_leak_into_an_earlier_label(feast_home) -> None:
    settings = feast_home
    rows = entity_rows(
        [
            ("u1", "i1", T0),  # the snapshot *at* T0 counts events strictly before T0
            ("u1", "i1", T0 + 4 * DAY),  # between snapshots: still T0's, not 03-08's
            ("u1", "i1", T0 + 7 * DAY),  # the 03-08 snapshot is visible from 03-08 on
            ("u1", "i1", T0 - DAY),  # before T0: the 02-23 snapshot
        ]
    )
    got = historical_features(settings, rows)
    assert got["user_features__count_purchases_90d"].tolist() == [3, 3, 9, 2]
    items = got["item_features__count_purchases_90d"]
    assert items.iloc[:3].tolist() == [20, 20, 50] and pd.isna(items.iloc[3])  # i1 starts 03-01
    # the pair: cumulative count and last purchase as of each time, never the 03-02 purchase early
    assert got["user_item_features__count_purchases"].tolist() == [2, 3, 3, 1]
    last = pd.to_datetime(got["user_item_features__last_purchase_at"], utc=True).dt.tz_convert(None)
    assert last.tolist() == [
        pd.Timestamp("2024-02-29 09:00"),
        pd.Timestamp("2024-03-02 11:00"),
        pd.Timestamp("2024-03-02 11:00"),
        pd.Timestamp("2024-02-20 10:00"),
    ]
    assert (last < got["event_timestamp"]).all()


def test_every_entity_row_comes_back_in_order(feast_home) -> None:
    """Rows that share a user and a time (one user's candidates) each get their features.

    Feast's file store drops entity rows sharing one view's join keys and timestamp
    (feast-dev/feast#6787); ``historical_features`` queries each view on its own keys."""
    settings = feast_home
    rows = entity_rows(
        [
            ("u1", "i3", T0),
            ("u1", "i1", T0),
            ("u1", "i2", T0),
            ("u1", "i1", T0),  # a repeat too
            ("u3", "i1", T0),  # u3's only snapshot is later: nulls, the row stays
            ("u4", "i2", T0),  # u4's snapshot is older than the ttl: nulls
            ("u2", "i2", T0),
        ]
    )
    got = historical_features(settings, rows)
    assert (
        got[["user_id", "item_id"]].values.tolist() == rows[["user_id", "item_id"]].values.tolist()
    )
    assert (got["event_timestamp"] == T0).all()
    users = got["user_features__count_purchases_90d"]
    assert users.iloc[:4].tolist() == [3, 3, 3, 3]
    assert users.iloc[4:6].isna().all()
    assert users.iloc[6] == 4
    assert got["item_features__count_purchases_90d"].tolist() == [1, 20, 3, 20, 20, 3, 3]
    pairs = got["user_item_features__count_purchases"]
    assert pairs.iloc[[1, 3]].tolist() == [2, 2] and pairs.iloc[6] == 1
    assert pairs.iloc[[0, 2, 4, 5]].isna().all()  # never bought


@pytest.mark.slow
@pytest.mark.integration
def test_dbt_marts_through_feast_are_point_in_time(tmp_path) -> None:
    """Raw events -> dbt ``marts/ml`` -> Feast: a purchase after the label window's start does not
    reach that window's features, though it is in the marts for later times."""
    from datetime import date

    from recops.core.dbt import build_marts, dbt_state_dir
    from recops.core.feature_store import refresh_features
    from recops.core.marts import data_end
    from recops.core.settings import Settings
    from recops.ingestion import ingest_events

    settings = Settings(home=tmp_path / "home", user_salt="test-salt-123")
    start = pd.Timestamp("2024-01-01 10:00")
    events = [("alice", "i1", start + pd.Timedelta(days=d)) for d in (0, 20, 40)]  # 3 before T
    events += [("alice", "i1", pd.Timestamp("2024-03-05 09:00"))]  # after T = 2024-03-04
    events += [("alice", "i2", pd.Timestamp("2024-03-06 09:00"))]  # a new item, after T
    events += [("bob", f"i{k}", start + pd.Timedelta(days=k)) for k in range(1, 4)]
    events += [("bob", "i1", pd.Timestamp("2024-03-20 12:00"))]
    frame = pd.DataFrame(events, columns=["user_id", "item_id", "event_at"]).assign(
        event_type="purchase", quantity=1, price=2.5, order_id=lambda f: f.index.astype(str)
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False)
    assert ingest_events(settings, path).rows_loaded == len(frame)
    cutoff = date(2024, 3, 18)  # snapshots every 7 days from the cutoff: 2024-03-04 is one of them
    assert build_marts(settings, cutoff)["success"]
    # the pipeline's build: every model and data test, not the models' unit tests (tests/dbt runs them)
    run_results = dbt_state_dir(settings) / "target" / "run_results.json"
    ran = [r["unique_id"] for r in json.loads(run_results.read_text())["results"]]
    assert sum(r.startswith("model.") for r in ran) == 15 and sum(r.startswith("test.") for r in ran) > 100
    assert not [r for r in ran if r.startswith("unit_test.")]
    refresh_features(settings, data_end(settings))

    from recops.core.privacy import pseudonymise

    alice = pseudonymise("alice", settings.user_salt)
    label_at = pd.Timestamp("2024-03-04")
    rows = entity_rows(
        [
            (alice, "i1", label_at),
            (alice, "i2", label_at),
            (alice, "i1", pd.Timestamp("2024-03-11")),
        ]
    )
    got = historical_features(settings, rows)
    # at 03-04 alice has bought i1 three times; the purchases of 03-05 and 03-06 are invisible
    assert got["user_features__count_purchases_90d"].tolist() == [3, 3, 5]
    assert got["user_item_features__count_purchases"].iloc[0] == 3
    assert pd.isna(got["user_item_features__count_purchases"].iloc[1])
    assert got["item_features__count_purchases_90d"].iloc[0] == 4  # alice 3 + bob 1, before 03-04
    assert got["user_item_features__count_purchases"].iloc[2] == 4
