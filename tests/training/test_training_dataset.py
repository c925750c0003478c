"""Candidates, point-in-time labels and features of the learning-to-rank frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.training.dataset import (
    DERIVED_FEATURES,
    META_COLS,
    HistoryStats,
    TrainingDataError,
    attach_store_features,
    build_candidates,
    feature_columns,
    relevance,
)
from recops.training.retrievers import Repeat, Retriever
from recops.training.windows import build_training_frame, iter_training_partitions, write_partitions


class Fixed(Retriever):
    """A retriever that returns a given list (for build_candidates)."""

    def __init__(self, name: str, recs: dict[str, list[str]]) -> None:
        super().__init__()
        self.name = name
        self.recs = recs

    def _fit(self, history, items) -> None:
        pass

    def recommend(self, users, n):
        rows = [
            (u, item, 1.0 / (r + 1), r + 1)
            for u in users
            for r, item in enumerate(self.recs.get(u, [])[:n])
        ]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


def test_build_candidates_unions_and_fills_missing():
    one = Fixed("one", {"u": ["a", "b"]})
    two = Fixed("two", {"u": ["b", "c"], "v": ["a"]})
    cands = build_candidates([one, two], ["u", "v"], n=5)
    assert list(zip(cands["user_id"], cands["item_id"], strict=True)) == [
        ("u", "a"),
        ("u", "b"),
        ("u", "c"),
        ("v", "a"),
    ]
    assert cands["one_rank"].tolist() == [1, 2, 6, 6]
    assert cands["one_score"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert cands["two_rank"].tolist() == [6, 1, 2, 1]
    assert cands["n_retrievers"].tolist() == [1, 2, 1, 1]
    # score over the user's best score from that retriever; 0 where it did not retrieve the item
    assert cands["one_norm"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert cands["two_norm"].tolist() == [0.0, 1.0, 0.5, 1.0]


def test_derived_features_by_hand():
    """Two users, three items, purchases before as_of = 2024-03-01 (and one after it)."""
    day = pd.Timestamp("2024-03-01")
    rows = [
        # u: i1 on three days (one of them twice: two orders), i2 once 100 days ago
        ("u", "i1", day - pd.Timedelta(days=30), 2),
        ("u", "i1", day - pd.Timedelta(days=20), 1),
        ("u", "i1", day - pd.Timedelta(days=20, hours=2), 1),
        ("u", "i1", day - pd.Timedelta(days=10), 3),
        ("u", "i2", day - pd.Timedelta(days=100), 1),
        # u: i4 first 120 days ago, again 40 days ago (an old favourite inside the last 90 days)
        ("u", "i4", day - pd.Timedelta(days=120), 1),
        ("u", "i4", day - pd.Timedelta(days=40), 1),
        # v: i1 once, i3 once; and i3 again *after* as_of (must not count)
        ("v", "i1", day - pd.Timedelta(days=5), 1),
        ("v", "i3", day - pd.Timedelta(days=50), 1),
        ("v", "i3", day + pd.Timedelta(days=1), 9),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_at", "quantity"]).assign(
        event_type="purchase", price_amount=1.0
    )
    stats = HistoryStats.fit(events, None, day)
    pairs = pd.DataFrame(
        [("u", "i1"), ("u", "i2"), ("u", "i3"), ("v", "i3"), ("w", "i1")],
        columns=["user_id", "item_id"],
    )
    f = stats.features(pairs)
    assert f.columns.tolist() == list(DERIVED_FEATURES)
    assert f["user_item_purchases"].tolist() == [4, 1, 0, 1, 0]
    np.testing.assert_allclose(f["days_since_user_bought_item"], [10, 100, np.nan, 50, np.nan])
    # u has 7 orders (distinct purchase times): i1 is in 4 of them
    np.testing.assert_allclose(f["user_item_purchase_share"], [4 / 7, 1 / 7, 0.0, 0.5, np.nan])
    np.testing.assert_allclose(f["user_item_quantity"], [7, 1, 0, 1, 0])
    # i1 bought on three days spanning 20 days: every 10 days, and due now (10 / 10)
    np.testing.assert_allclose(f["user_item_interval_days"], [10, np.nan, np.nan, np.nan, np.nan])
    np.testing.assert_allclose(f["user_item_due_ratio"], [1.0, np.nan, np.nan, np.nan, np.nan])
    # i1: u bought it on 3 days, v on one: 1 of 2 buyers again; i3: v once (before as_of)
    np.testing.assert_allclose(f["item_repurchase_rate"], [0.5, 0.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(f["item_days_since_first_sale"], [30, 100, 50, 50, 30])
    np.testing.assert_allclose(f["item_days_since_last_sale"], [5, 100, 50, 50, 5])
    # last 90 days: u bought i1 (new, first 30 days ago) and i4 (first 120 days ago): half new;
    # v bought i1 and i3 there, both for the first time
    np.testing.assert_allclose(f["user_novelty_90d"], [0.5, 0.5, 0.5, 1.0, np.nan])
    # served a week later: every "days since" is a week older, nothing else moves
    later = stats.features(pairs, day + pd.Timedelta(days=7))
    np.testing.assert_allclose(
        later["days_since_user_bought_item"], f["days_since_user_bought_item"] + 7
    )
    np.testing.assert_allclose(later["user_item_due_ratio"], [1.7, np.nan, np.nan, np.nan, np.nan])
    pd.testing.assert_series_equal(later["user_item_purchase_share"], f["user_item_purchase_share"])


def test_relevance_grades():
    assert relevance([0, 1, 2, 3, 4, 9]).tolist() == [0, 1, 2, 2, 3, 3]


@pytest.fixture(scope="module")
def built(shop, make_config, feature_fetcher):
    cfg = make_config()
    cutoff = shop.end - pd.Timedelta(days=21)
    seen = []

    def fetch(entity_df):
        seen.append(list(entity_df.columns))
        return feature_fetcher(entity_df)

    frame = build_training_frame(
        shop.interactions,
        shop.items,
        cutoff,
        label_window_days=28,
        label_windows=2,
        n_candidates=15,
        retriever_factory=cfg.make_retrievers,
        fetch_features=fetch,
    )
    return cutoff, frame, seen


def test_partitions_give_the_same_frame_and_file(built, shop, make_config, feature_fetcher, tmp_path):
    """Assembled 7 users at a time (each partition with its own feature fetch), streamed to
    Parquet: the same frame, row for row, as in one piece."""
    cutoff, frame, _ = built
    fetched = []

    def fetch(entity_df):
        fetched.append(len(entity_df))
        return feature_fetcher(entity_df)

    parts = list(iter_training_partitions(
        shop.interactions, shop.items, cutoff, label_window_days=28, label_windows=2, n_candidates=15,
        retriever_factory=make_config().make_retrievers, fetch_features=fetch, partition_users=7,
    ))
    assert len(parts) >= max(3, frame["query_id"].nunique() / 7) and len(fetched) == len(parts)
    assert max(part["query_id"].nunique() for part in parts) <= 7
    assert sum(fetched) == len(frame)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)

    path = tmp_path / "training_set.parquet"
    counts = write_partitions(iter(parts), path)
    assert counts == {
        "rows": len(frame), "queries": frame["query_id"].nunique(),
        "positives": int((frame["label"] > 0).sum()), "partitions": len(parts),
    }
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)


def test_a_failed_build_leaves_no_training_set_file(built, tmp_path):
    _, frame, _ = built

    def parts():
        yield frame.iloc[:10]
        raise TrainingDataError("no query group has a positive")

    with pytest.raises(TrainingDataError, match="no query group"):
        write_partitions(parts(), tmp_path / "training_set.parquet")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TrainingDataError, match="other columns"):
        write_partitions(iter([frame.iloc[:10], frame.iloc[10:20].drop(columns="label")]), tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


def test_windows_queries_and_positives(built):
    cutoff, frame, _ = built
    starts = {0: cutoff - pd.Timedelta(days=28), 1: cutoff - pd.Timedelta(days=56)}
    assert set(frame["window"]) == {0, 1}
    for window, start in starts.items():
        assert (frame.loc[frame["window"] == window, "event_timestamp"] == start).all()
    per_query = frame.groupby("query_id").agg(
        users=("user_id", "nunique"), ts=("event_timestamp", "nunique"), best=("label", "max")
    )
    assert (per_query["users"] == 1).all() and (per_query["ts"] == 1).all()
    assert (per_query["best"] > 0).all()  # groups without a positive are dropped
    assert frame.groupby(["user_id", "event_timestamp"])["query_id"].nunique().max() == 1
    assert frame["query_id"].is_monotonic_increasing
    assert not frame.duplicated(["query_id", "item_id"]).any()


def test_labels_count_purchases_inside_the_window(built, shop):
    cutoff, frame, _ = built
    start, end = cutoff - pd.Timedelta(days=28), cutoff
    ev = shop.interactions
    window = ev[(ev.event_type == "purchase") & (ev.event_at >= start) & (ev.event_at < end)]
    counts = (
        window.drop_duplicates(["user_id", "item_id", "event_at"])
        .groupby(["user_id", "item_id"])
        .size()
    )
    rows = frame[frame["window"] == 0]
    expected = relevance(
        counts.reindex(pd.MultiIndex.from_frame(rows[["user_id", "item_id"]])).fillna(0)
    )
    assert rows["label"].tolist() == expected.tolist()
    assert set(frame["label"]) <= {0, 1, 2, 3}


def test_features_only_see_the_past(built, shop):
    _, frame, _ = built
    ev = shop.interactions
    for _, rows in frame.groupby("window"):
        start = rows["event_timestamp"].iloc[0]
        past = ev[(ev.event_type == "purchase") & (ev.event_at < start)]
        past = past.drop_duplicates(["user_id", "item_id", "event_at"])  # one line per order
        counts = past.groupby(["user_id", "item_id"]).size()
        expected = counts.reindex(pd.MultiIndex.from_frame(rows[["user_id", "item_id"]])).fillna(0)
        assert rows["user_item_purchases"].tolist() == expected.tolist()
        never = rows["user_item_purchases"] == 0
        assert (rows.loc[never, "repeat_score"] == 0).all()
        assert rows.loc[never, "days_since_user_bought_item"].isna().all()
        assert (rows.loc[~never, "days_since_user_bought_item"] > 0).all()


def test_store_features_are_merged_on_keys(built):
    _, frame, seen = built
    assert seen == [["user_id", "item_id", "event_timestamp"]]
    assert (frame["item_number"] == frame["item_id"].str[1:].astype(int) % 7).all()
    assert np.allclose(frame["seen_at_age_days"], 2.0)
    cols = feature_columns(frame)
    assert not set(cols) & set(META_COLS)
    assert {"repeat_score", "als_rank", "n_retrievers", "item_number", *DERIVED_FEATURES} <= set(
        cols
    )


def test_online_style_fetcher_without_timestamp():
    frame = pd.DataFrame(
        {
            "user_id": ["u", "u"],
            "item_id": ["a", "b"],
            "event_timestamp": pd.to_datetime(["2024-01-10", "2024-01-10"]),
        }
    )

    def online(entity_df):
        return pd.DataFrame(
            {
                "item_id": ["b", "a"],
                "user_id": ["u", "u"],
                "views": [2, 1],
                "last_purchase_at": pd.to_datetime(["2024-01-09", None], utc=True),
                "flag": [True, False],
                "label_text": ["x", "y"],
            }
        )

    out = attach_store_features(frame, online)
    assert out["views"].tolist() == [1.0, 2.0]
    assert out["flag"].tolist() == [0.0, 1.0]
    assert np.isnan(out["last_purchase_at_age_days"].iloc[0])
    assert out["last_purchase_at_age_days"].iloc[1] == 1.0
    assert "label_text" not in out.columns


def test_no_query_before_the_data_raises(shop):
    with pytest.raises(TrainingDataError, match="no label window"):
        build_training_frame(
            shop.interactions,
            shop.items,
            shop.start + pd.Timedelta(days=5),
            label_window_days=28,
            label_windows=1,
            n_candidates=5,
            retriever_factory=lambda: [Repeat()],
        )
