"""Each retriever on a toy shop whose right answers are known by construction."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.training.retriever_config import RetrieverConfig
from recops.training.retrievers import (
    ALS,
    Content,
    ItemCF,
    Popularity,
    Repeat,
    RetrieverError,
)
from recops.training.topn import REC_COLUMNS, top_n_dense

T = pd.Timestamp("2024-03-01")


def ago(days: float) -> pd.Timestamp:
    return T - pd.Timedelta(days=days)


def buys(user: str, item: str, days_ago: float, event_type: str = "purchase") -> tuple:
    return (user, item, event_type, ago(days_ago))


def toy_events() -> pd.DataFrame:
    rows = [
        # co-purchase: A and B go together; u1 only has A
        *[buys(u, i, 20) for u in ("u2", "u3", "u4") for i in ("A", "B")],
        buys("u1", "A", 5),
        # popularity: HOT is recent, OLD was big long ago
        *[buys(f"h{n}", "HOT", 2) for n in range(3)],
        *[buys(f"o{n}", "OLD", 300) for n in range(6)],
        # repeat: u5 buys X often and recently, Y once long ago
        *[buys("u5", "X", d) for d in (1, 8, 15)],
        buys("u5", "Y", 200),
        # content: u7 bought a red ceramic mug
        buys("u7", "MUG1", 3),
        buys("u8", "MUG2", 30),
        buys("u8", "SOFA", 30),
        buys("u8", "NOTEXT", 30),
        # views only, returns ignored, future events invisible
        buys("viewer", "MUG1", 1, "view"),
        buys("u1", "B", 1, "return"),
        ("u1", "FUTURE", "purchase", T + pd.Timedelta(days=1)),
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "event_at"])


ITEMS = pd.DataFrame(
    {
        "item_id": ["A", "B", "HOT", "OLD", "X", "Y", "MUG1", "MUG2", "SOFA", "NOTEXT", "FUTURE"],
        "item_text": [
            "garden hose",
            "garden hose reel",
            "hot",
            "old",
            "green tea",
            "black tea",
            "red ceramic mug",
            "red glass mug",
            "blue wooden sofa",
            None,
            "future",
        ],
    }
)


def top(recs: pd.DataFrame, user: str) -> list[str]:
    return recs.loc[recs["user_id"] == user].sort_values("rank")["item_id"].tolist()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return toy_events()


def test_popularity_prefers_recent_purchases_and_serves_everyone(events):
    pop = Popularity(half_life_days=14).fit(events, ITEMS, T)
    recs = pop.recommend(["u1", "nobody"], 3)
    assert top(recs, "u1") == top(recs, "nobody")
    assert top(recs, "u1")[0] == "HOT"
    assert "OLD" not in top(recs, "u1")
    assert list(recs.columns) == REC_COLUMNS
    # without decay the old bestseller wins
    assert top(Popularity(half_life_days=1e9).fit(events, ITEMS, T).recommend(["u1"], 1), "u1") == [
        "OLD"
    ]


def test_repeat_ranks_own_purchases_by_frequency_and_recency(events):
    rep = Repeat().fit(events, ITEMS, T)
    recs = rep.recommend(["u5", "nobody", "viewer"], 10)
    assert top(recs, "u5") == ["X", "Y"]
    assert top(recs, "nobody") == [] and top(recs, "viewer") == []
    assert recs["rank"].tolist() == [1, 2]


def test_itemcf_recommends_co_purchased_items(events):
    cf = ItemCF(include_self=False).fit(events, ITEMS, T)
    recs = cf.recommend(["u1", "nobody"], 5)
    assert top(recs, "u1") == ["B"]
    assert cf.anchors("u1", ["B"]) == {"B": "A"}
    with_self = ItemCF(include_self=True).fit(events, ITEMS, T).recommend(["u1"], 5)
    assert top(with_self, "u1") == ["A", "B"]


def test_content_recommends_similar_text_and_skips_items_without_text(events):
    content = Content().fit(events, ITEMS, T)
    recs = content.recommend(["u7", "viewer", "nobody"], 20)
    u7 = top(recs, "u7")
    assert u7[:2] == ["MUG1", "MUG2"]
    assert "NOTEXT" not in u7 and "SOFA" not in u7
    assert top(recs, "viewer")[:2] == ["MUG1", "MUG2"]  # views build a profile too
    assert top(recs, "nobody") == []
    similar = content.similar_items("MUG1", 5)
    assert similar["item_id"].tolist() == ["MUG2"]
    assert content.similar_items("NOTEXT", 5).empty
    assert content.similar_items("unknown", 5).empty


def test_content_without_any_text_returns_nothing(events):
    content = Content().fit(events, ITEMS.assign(item_text=None), T)
    assert content.recommend(["u7"], 5).empty


def clustered_events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for group, items in (("p", ["p1", "p2", "p3", "p4"]), ("q", ["q1", "q2", "q3", "q4"])):
        for n in range(12):
            for item in rng.choice(items, size=3, replace=False):
                rows.append(buys(f"{group}{n}", str(item), int(rng.integers(1, 60))))
    rows += [buys("pnew", "p1", 3), buys("pnew", "p2", 4)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "event_at"])


def test_als_learns_the_clusters_and_is_deterministic():
    events = clustered_events()
    first, second = (
        ALS(factors=2, iterations=15, regularization=0.01, seed=3)
        .fit(events, None, T)
        .recommend(["pnew", "nobody"], 8)
        for _ in range(2)
    )
    pd.testing.assert_frame_equal(first, second)
    ranked = top(first, "pnew")
    assert set(ranked[:4]) == {"p1", "p2", "p3", "p4"}
    assert top(first, "nobody") == []


def test_every_retriever_respects_as_of_and_returns_the_contract(events):
    for retriever in RetrieverConfig.from_settings(Settings(als_factors=4)).build(seed=1):
        recs = retriever.fit(events, ITEMS, T).recommend(["u1", "u5", "u7"], 50)
        assert list(recs.columns) == REC_COLUMNS, retriever.name
        assert "FUTURE" not in set(recs["item_id"]), retriever.name
        assert not recs.duplicated(["user_id", "item_id"]).any(), retriever.name
        for _, rows in recs.groupby("user_id"):
            assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
            assert rows["score"].is_monotonic_decreasing
        restored = pickle.loads(pickle.dumps(retriever))
        pd.testing.assert_frame_equal(restored.recommend(["u1", "u5", "u7"], 50), recs)


def test_recommend_before_fit_and_bad_n_raise(events):
    with pytest.raises(RetrieverError, match="fit"):
        Repeat().recommend(["u1"], 5)
    with pytest.raises(RetrieverError, match="n must be"):
        Repeat().fit(events, ITEMS, T).recommend(["u1"], 0)
    with pytest.raises(RetrieverError, match="unknown retrievers"):
        RetrieverConfig.from_settings(Settings(), enabled=("repeat", "magic")).build(seed=0)


def test_top_n_dense_matches_a_stable_full_sort_with_ties():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(40, 30)).astype(float)
    rows, cols, vals = top_n_dense(scores, 7, positive_only=False)
    for row in range(40):
        expected = np.argsort(-scores[row], kind="stable")[:7]
        assert cols[rows == row].tolist() == expected.tolist()
    rows, cols, vals = top_n_dense(scores, 7, positive_only=True)
    assert (vals > 0).all()


def test_popularity_trend_term_lifts_items_selling_faster_this_week():
    rows = [buys(f"s{d}", "STEADY", d) for d in (1, 4, 8, 11, 15, 18, 22, 25)]
    rows += [buys(f"r{d}", "RISING", d) for d in (1, 2, 3, 5)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "event_at"])
    plain = Popularity(half_life_days=14, trend_weight=0.0).fit(events, None, T).top_items(2)
    trending = Popularity(half_life_days=14, trend_weight=1.0).fit(events, None, T).top_items(2)
    assert plain["item_id"].tolist() == ["STEADY", "RISING"]
    assert trending["item_id"].tolist() == ["RISING", "STEADY"]
