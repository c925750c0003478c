"""Materialisation per data interval is idempotent: on rerun, and on a backfill of an earlier
interval (which must not put older values over newer ones in the online store).

Real Feast (DuckDB offline store, SQLite online store) on the hand-written marts of conftest.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from recops.core.feature_store import get_store, materialize_interval, online_features

USERS = ("u1", "u2", "u5")
START, END = datetime(2024, 1, 1), datetime(2024, 3, 9)  # the run's data interval


def online(settings) -> pd.DataFrame:
    """Online ranker_v1 features of every test user for item i1 (one row per user)."""
    store = get_store(settings)
    rows = [online_features(store, user, ["i1"]).iloc[0].to_dict() for user in USERS]
    return pd.DataFrame.from_records(rows).set_index("user_id").sort_index(axis=1)


@pytest.fixture(scope="module")
def materialized(feast_home):
    materialize_interval(feast_home, START, END)
    return feast_home, online(feast_home)


def test_online_store_serves_the_newest_row_of_the_interval(materialized) -> None:
    _, first = materialized
    assert first.loc["u1", "user_features__count_purchases_90d"] == 9  # the 03-08 snapshot
    assert first.loc["u2", "user_features__count_purchases_90d"] == 4
    assert first.loc["u1", "item_features__count_purchases_90d"] == 50
    assert first.loc["u1", "user_item_features__count_purchases"] == 3
    assert pd.isna(first.loc["u5", "user_features__count_purchases_90d"])  # its row is older


def test_rerunning_the_interval_changes_nothing(materialized) -> None:
    settings, first = materialized
    result = materialize_interval(settings, START, END)
    assert "widened_to" not in result
    # u5's only row is older than START: only a backfill (the next test, in any order) adds it
    pd.testing.assert_frame_equal(online(settings).drop(index="u5"), first.drop(index="u5"), check_dtype=False)


def test_a_backfill_of_an_earlier_interval_keeps_the_newer_values(materialized) -> None:
    settings, first = materialized
    # Feast alone would write u1's 03-01 snapshot (3) over the 03-08 one (9)
    result = materialize_interval(settings, datetime(2023, 12, 1), datetime(2024, 3, 2))
    assert result["widened_to"].startswith("2024-03-09")
    again = online(settings)
    # u5's only row (2023-12-15) lies in the backfilled interval: it appears, nothing else moves
    assert again.loc["u5", "user_features__count_purchases_90d"] == 5
    pd.testing.assert_frame_equal(again.drop(index="u5"), first.drop(index="u5"), check_dtype=False)
    # and the backfill is idempotent as well
    materialize_interval(settings, datetime(2023, 12, 1), datetime(2024, 3, 2))
    pd.testing.assert_frame_equal(online(settings), again)


def test_an_empty_interval_is_refused(feast_home) -> None:
    with pytest.raises(ValueError, match="empty"):
        materialize_interval(feast_home, END, START)


def test_a_run_publishes_only_its_interval_once_the_store_has_been_filled(tmp_path, feast_factory) -> None:
    """The first publish of a store loads the feature TTL's worth (an entity whose newest row is
    old still gets it); later runs load only their own interval."""
    from datetime import timedelta

    from recops.core.feature_store import publish_online

    settings = feast_factory(tmp_path / "home")
    day = timedelta(days=1)
    first = publish_online(settings, END, start=END - day)
    assert first["start"] == (END - timedelta(days=settings.feature_ttl_days)).isoformat() + "+00:00"
    assert online(settings).loc["u5", "user_features__count_purchases_90d"] == 5  # 2023-12-15, still known
    later = publish_online(settings, END, start=END - day)
    assert later["start"] == (END - day).isoformat() + "+00:00"
    assert online(settings).loc["u1", "user_features__count_purchases_90d"] == 9
    # a manual run has no interval (start == end): from where the views' materialisation ended
    manual = publish_online(settings, END + day, start=END + day)
    assert (manual["start"], manual["end"]) == (END.isoformat() + "+00:00", (END + day).isoformat() + "+00:00")
    # a cleared run publishing the same interval again: nothing new, the TTL's worth again
    again = publish_online(settings, END + day, start=END + day)
    assert again["start"] == (END + day - timedelta(days=settings.feature_ttl_days)).isoformat() + "+00:00"
    assert online(settings).loc["u5", "user_features__count_purchases_90d"] == 5
