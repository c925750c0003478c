"""Evaluation protocol v1: who is evaluated, what is relevant, where the cutoff falls."""

from __future__ import annotations

import pandas as pd
import pytest

from recops.training.evaluation import compare_models, evaluate, split_protocol_v1

T = pd.Timestamp("2024-03-01")


def events(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "event_at"])


def at(days: float) -> pd.Timestamp:
    return T + pd.Timedelta(days=days)


LOG = events(
    [
        ("regular", "a", "purchase", at(-10)),
        ("regular", "a", "purchase", at(2)),  # repeat purchase: still relevant
        ("regular", "b", "purchase", at(3)),
        ("regular", "b", "purchase", at(4)),  # bought twice in test: one relevant pair
        ("regular", "c", "return", at(5)),  # returns are not purchases
        ("newbie", "d", "purchase", at(1)),  # cold: no purchase before T
        ("viewer", "a", "view", at(-3)),
        ("viewer", "e", "purchase", at(1)),  # cold too: views are not purchases
        ("lapsed", "a", "purchase", at(-20)),  # no purchase in test: not evaluated
        ("edge", "f", "purchase", T),  # exactly at T: test
        ("edge", "g", "purchase", T - pd.Timedelta(seconds=1)),  # just before T: history
    ]
)


def test_split_assigns_users_and_relevant_items():
    split = split_protocol_v1(LOG, T)
    assert list(split.users) == ["edge", "regular"]
    assert list(split.cold_users) == ["newbie", "viewer"]
    truth = set(map(tuple, split.truth[["user_id", "item_id"]].to_numpy()))
    assert truth == {("regular", "a"), ("regular", "b"), ("edge", "f")}
    cold = set(map(tuple, split.cold_truth[["user_id", "item_id"]].to_numpy()))
    assert cold == {("newbie", "d"), ("viewer", "e")}


def test_cutoff_boundary_history_is_strictly_before():
    split = split_protocol_v1(LOG, T)
    assert split.history["event_at"].max() < T
    assert ("edge", "g") in set(map(tuple, split.history[["user_id", "item_id"]].to_numpy()))
    assert "f" not in set(split.history["item_id"])
    # catalogue = items with any event in history: a, g (the view of a counts too)
    assert split.n_items == 2


def test_end_bounds_the_test_window():
    split = split_protocol_v1(LOG, T, end=at(3))
    truth = set(map(tuple, split.truth[["user_id", "item_id"]].to_numpy()))
    assert truth == {("regular", "a"), ("edge", "f")}


def test_tz_aware_event_times_are_read_as_utc():
    aware = LOG.assign(event_at=LOG["event_at"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"))
    split = split_protocol_v1(aware, T)
    assert list(split.users) == ["edge", "regular"]


def test_evaluate_on_evaluated_and_cold_users():
    split = split_protocol_v1(LOG, T)
    recs = pd.DataFrame(
        {
            "user_id": ["regular", "regular", "edge", "newbie"],
            "item_id": ["b", "a", "x", "d"],
            "score": [2.0, 1.0, 1.0, 1.0],
        }
    )
    result = evaluate(recs, split, k=10, n_items=10)
    assert result["n_users"] == 2
    assert result["hitrate@10"] == pytest.approx(0.5)
    assert result["ndcg@10"] == pytest.approx(0.5)
    assert result["recall@10"] == pytest.approx(0.5)
    assert result["coverage"] == pytest.approx(3 / 10)  # a, b, x in the evaluated users' top 10
    cold = evaluate(recs, split, k=10, cold=True)
    assert cold["n_users"] == 2 and cold["hitrate@10"] == pytest.approx(0.5)


def test_compare_models_uses_the_same_users_and_curves():
    split = split_protocol_v1(LOG, T)
    good = pd.DataFrame(
        {
            "user_id": ["regular", "regular", "edge"],
            "item_id": ["a", "b", "f"],
            "score": [2.0, 1.0, 1.0],
        }
    )
    bad = pd.DataFrame(
        {"user_id": ["regular", "stranger"], "item_id": ["z", "a"], "score": [1.0, 1.0]}
    )
    comparison = compare_models(
        {"good": good, "bad": bad}, split, k=10, ks=range(1, 21), cold_recs={"bad": bad}
    )
    assert comparison.metrics["good"]["ndcg@10"] == pytest.approx(1.0)
    assert comparison.metrics["bad"]["ndcg@10"] == 0.0
    assert comparison.metrics["good"]["n_users"] == comparison.metrics["bad"]["n_users"] == 2
    assert comparison.cold_metrics["bad"]["hitrate@10"] == 0.0
    curve = comparison.by_k
    assert set(curve["k"]) == set(range(1, 21))
    assert len(curve) == 2 * 20 * 4
    good_recall = curve[(curve.model == "good") & (curve.metric == "recall")].set_index("k")[
        "value"
    ]
    assert good_recall[1] == pytest.approx(0.75) and good_recall[2] == pytest.approx(1.0)


def test_protocol_split_closes_the_test_window_after_its_days():
    from recops.training.evaluation import protocol_split

    open_split = protocol_split(LOG, T, None)
    closed = protocol_split(LOG, T, 3)  # [T, T + 3 days): b at +3 and +4 fall outside
    assert set(map(tuple, open_split.truth.values)) == {("regular", "a"), ("regular", "b"), ("edge", "f")}
    assert set(map(tuple, closed.truth.values)) == {("regular", "a"), ("edge", "f")}
    assert closed.history.equals(open_split.history)
