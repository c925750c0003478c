"""MovieLens 100k on the Microsoft Recommenders protocol: the split, the metrics on hand-computed
cases, EASE and co-visitation on tiny matrices with known answers, leaving seen items out, and
the whole benchmark on the real data (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.core.constants import EVENT_AT_COL, EVENT_TYPE_COL, ITEM_COL, SCORE_COL, USER_COL
from recops.training.covisit import CoVisitation
from recops.training.ease import EASE, ease_weights
from recops.training.movielens_benchmark import (
    BenchmarkError,
    protocol_metrics,
    stratified_folds,
    stratified_split,
)
from recops.training.retrievers import ItemCF, Popularity
from recops.training.topn import REC_COLUMNS

T0 = pd.Timestamp("1998-01-01")


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    """40 users with 1 to 40 ratings each (user u rates items 0 .. u-1), in a shuffled order."""
    rows = [(u, i, 1 + (u + i) % 5) for u in range(1, 41) for i in range(u)]
    frame = pd.DataFrame(rows, columns=[USER_COL, ITEM_COL, "rating"])
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.assign(**{EVENT_AT_COL: T0 + pd.to_timedelta(np.arange(len(frame)), unit="s")})


def events(pairs: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Purchases (user, item, seconds after T0)."""
    return pd.DataFrame(
        {
            USER_COL: [p[0] for p in pairs],
            ITEM_COL: [p[1] for p in pairs],
            EVENT_TYPE_COL: "purchase",
            EVENT_AT_COL: [T0 + pd.Timedelta(seconds=p[2]) for p in pairs],
        }
    )


# --- the split ---------------------------------------------------------------------------------
@pytest.mark.parametrize("by, key", [("user", USER_COL), ("item", ITEM_COL)])
def test_split_is_stratified_75_25_per_group(ratings, by, key):
    train, test = stratified_split(ratings, 0.75, by=by, seed=42)
    assert len(train) + len(test) == len(ratings)
    assert not train.index.intersection(test.index).size
    sizes = ratings.groupby(key).size()
    in_train = train.groupby(key).size().reindex(sizes.index, fill_value=0)
    expected = sizes.map(lambda n: round(0.75 * n))  # Python rounding: half to even
    pd.testing.assert_series_equal(in_train, expected, check_names=False)
    assert expected[22 if by == "user" else 18] == 16  # 22 ratings: 16.5 rounds to 16


def test_split_keeps_every_user_in_train_and_is_deterministic(ratings):
    train, test = stratified_split(ratings, 0.75, by="user", seed=42)
    assert set(train[USER_COL]) == set(ratings[USER_COL])
    again, _ = stratified_split(ratings, 0.75, by="user", seed=42)
    other, _ = stratified_split(ratings, 0.75, by="user", seed=7)
    assert train.index.equals(again.index)
    assert not train.index.equals(other.index)


def test_split_draws_what_recommenders_draws(ratings):
    """Per group: the rows in input order, shuffled by RandomState(seed), the first round(0.75 n)
    to train (pandas' DataFrame.sample(frac=1, random_state=42) in their splitter)."""
    train, _ = stratified_split(ratings, 0.75, by="user", seed=42)
    group = ratings[ratings[USER_COL] == 8]
    expected = group.sample(frac=1.0, random_state=42).index[:6]
    assert sorted(train[train[USER_COL] == 8].index) == sorted(expected)


def test_split_refuses_bad_arguments(ratings):
    with pytest.raises(BenchmarkError):
        stratified_split(ratings, 1.0, by="user", seed=42)
    with pytest.raises(BenchmarkError):
        stratified_split(ratings, 0.75, by="session", seed=42)  # type: ignore[arg-type]


def test_folds_deal_each_group_evenly(ratings):
    folds = stratified_folds(ratings, 5, by="item", seed=43)
    counts = pd.crosstab(ratings[ITEM_COL], folds)
    assert set(np.unique(folds)) == set(range(5))
    assert ((counts.max(axis=1) - counts.min(axis=1)) <= 1).all()


# --- the metrics -------------------------------------------------------------------------------
def recs(user: str, items: list[str]) -> pd.DataFrame:
    """A ranked list: the first item scores highest."""
    n = len(items)
    return pd.DataFrame({USER_COL: user, ITEM_COL: items, SCORE_COL: np.arange(n, 0, -1.0)})


def truth(user: str, items: list[str]) -> pd.DataFrame:
    return pd.DataFrame({USER_COL: user, ITEM_COL: items})


def test_perfect_ranking_and_no_hit():
    perfect = protocol_metrics(truth("u", ["a", "b", "c"]), recs("u", ["a", "b", "c", "x"]))
    assert perfect["ndcg@10"] == pytest.approx(1.0)
    assert perfect["map"] == pytest.approx(1.0) and perfect["map@10"] == pytest.approx(1.0)
    assert perfect["recall@10"] == pytest.approx(1.0)
    assert perfect["precision@10"] == pytest.approx(0.3)  # hits / k even with 4 predictions
    nothing = protocol_metrics(truth("u", ["a", "b"]), recs("u", ["x", "y", "z"]))
    assert all(value == 0.0 for value in nothing.values())


def test_a_hand_computed_case():
    """Relevant a, b, c, d and twelve more (16 in all); hits at ranks 2 and 4 of the top 10."""
    relevant = ["a", "b", "c", "d", *(f"r{i}" for i in range(12))]
    ranked = ["x1", "a", "x2", "b", "x3", "x4", "x5", "x6", "x7", "x8", "c"]  # c is 11th
    got = protocol_metrics(truth("u", relevant), recs("u", ranked))
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    idcg = sum(1 / np.log2(r + 1) for r in range(1, 11))  # min(16, 10) ideal hits
    assert got["ndcg@10"] == pytest.approx(dcg / idcg)
    assert got["precision@10"] == pytest.approx(0.2)
    assert got["recall@10"] == pytest.approx(2 / 16)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 4) / 16)  # Recommenders' MAP: / |relevant|
    assert got["map@10"] == pytest.approx((1 / 2 + 2 / 4) / 10)  # / min(|relevant|, k)


# --- EASE and co-visitation ---------------------------------------------------------------------
def test_ease_weights_match_the_closed_form():
    """Two items: B_ij = G_ij / (G_ii + lambda), the ridge fit of item j's column on item i's."""
    gram = np.array([[4.0, 2.0], [2.0, 3.0]])
    weights = ease_weights(gram, 1.0)
    assert weights == pytest.approx(np.array([[0.0, 2 / 5], [2 / 4, 0.0]]))
    bigger = np.array([[5.0, 2.0, 1.0], [2.0, 4.0, 3.0], [1.0, 3.0, 6.0]])
    weights = ease_weights(bigger, 2.0)
    precision = np.linalg.inv(bigger + 2.0 * np.eye(3))
    assert np.diag(weights) == pytest.approx(np.zeros(3))
    assert weights == pytest.approx(np.eye(3) - precision / np.diag(precision))


def test_ease_retriever_scores_x_times_b():
    # A: u1 u2 u3 u5, B: u1 u2 u4 -> G = [[4, 2], [2, 3]]; u3 and u5 only have A
    bought = [("u1", "A", 0), ("u1", "B", 0), ("u2", "A", 0), ("u2", "B", 0)]
    bought += [("u3", "A", 0), ("u4", "B", 0), ("u5", "A", 0)]
    ease = EASE(lambda_=1.0).fit(events(bought), None, T0 + pd.Timedelta(days=1))
    got = ease.recommend(["u3", "u4"], 5, exclude=events(bought)[[USER_COL, ITEM_COL]])
    assert list(got.columns) == REC_COLUMNS
    assert got[[USER_COL, ITEM_COL]].values.tolist() == [["u3", "B"], ["u4", "A"]]
    assert got[SCORE_COL].tolist() == pytest.approx([2 / 5, 2 / 4])


def test_covisit_counts_only_items_chosen_together():
    # u1 picks A and B in one second, C a day later; u2 picks A and B together too
    picked = events([("u1", "A", 0), ("u1", "B", 0), ("u1", "C", 86400)])
    picked = pd.concat([picked, events([("u2", "A", 5), ("u2", "B", 5), ("u3", "A", 9)])])
    covisit = CoVisitation(window_seconds=0).fit(picked, None, T0 + pd.Timedelta(days=2))
    sim = covisit.similarity.toarray()
    a, b, c = (covisit.item_index.get_loc(i) for i in "ABC")
    assert sim[a, b] == pytest.approx(2 / np.sqrt(3 * 2))  # 2 users; A has 3 users, B 2
    assert sim[a, c] == 0.0 and sim[b, c] == 0.0 and sim[a, a] == 0.0
    got = covisit.recommend(["u3"], 5)
    assert got[ITEM_COL].tolist() == ["B"]


@pytest.mark.parametrize("make", [Popularity, ItemCF, EASE], ids=lambda m: m.__name__)
def test_excluded_pairs_are_never_recommended(make):
    bought = [(f"u{u}", f"i{i}", 0) for u in range(6) for i in range(u + 2)]
    history = events(bought)
    retriever = make().fit(history, None, T0 + pd.Timedelta(days=1))
    users = [f"u{u}" for u in range(6)]
    seen = history[[USER_COL, ITEM_COL]]
    got = retriever.recommend(users, 3, exclude=seen)
    pairs = set(map(tuple, got[[USER_COL, ITEM_COL]].values.tolist()))
    assert not pairs & set(map(tuple, seen.values.tolist()))
    assert (got["rank"].to_numpy() == got.groupby(USER_COL).cumcount().to_numpy() + 1).all()
    assert "u0" in set(got[USER_COL])  # u0 saw 2 of 7 items: others are left to recommend


# --- the benchmark ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_movielens_benchmark_beats_the_published_table(dataset, cli, parse_json, tmp_path):
    """The real command on the real data: the ranker reaches nDCG@10 >= 0.48 (BiVAE, the best
    published, has 0.475) and beats every retriever alone."""
    proc = cli(tmp_path, "benchmark", "movielens", str(dataset("movielens_100k")), "--json")
    result = parse_json(proc.stdout)
    metrics = result["metrics"]
    assert result["counts"]["test"] == 24934 and result["counts"]["test_users"] == 943
    assert metrics["ranker"]["ndcg@10"] >= 0.48
    best_published = max(m["ndcg@10"] for m in result["published"].values())
    assert best_published == pytest.approx(0.475077)
    assert metrics["ranker"]["ndcg@10"] > best_published
    for name in result["retrievers"]:
        assert metrics["ranker"]["ndcg@10"] >= metrics[name]["ndcg@10"], name
