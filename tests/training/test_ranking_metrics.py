"""Behaviour of the ranking metrics: perfect, empty, hand-computed, validation, invariances."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from recops.training.metrics import (
    MetricInputError,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    metrics_at_ks,
    ndcg_at_k,
    per_user_metrics,
    rank_predictions,
    recall_at_k,
)

ALL = (ndcg_at_k, recall_at_k, hit_rate_at_k, map_at_k)


def frame(rows, cols=("user_id", "item_id")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(cols))


def pred(rows) -> pd.DataFrame:
    return frame(rows, ("user_id", "item_id", "score"))


TRUTH = frame([("u1", "a"), ("u1", "b"), ("u2", "c")])


@pytest.mark.parametrize("metric", ALL)
def test_perfect_ranking_scores_one(metric):
    perfect = pred([("u1", "a", 0.9), ("u1", "b", 0.8), ("u1", "x", 0.1), ("u2", "c", 0.5)])
    assert metric(TRUTH, perfect, k=10) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ALL)
def test_no_hit_scores_zero(metric):
    miss = pred([("u1", "x", 0.9), ("u1", "y", 0.8), ("u2", "z", 0.5)])
    assert metric(TRUTH, miss, k=10) == 0.0


def test_hand_computed_case():
    truth = frame([("u", "a"), ("u", "b"), ("u", "c")])
    ranked = pred([("u", "a", 5), ("u", "x", 4), ("u", "b", 3), ("u", "y", 2), ("u", "z", 1)])
    # hits at ranks 1 and 3; ideal: 3 hits at ranks 1..3
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(truth, ranked, k=5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(truth, ranked, k=5) == pytest.approx(0.703918, abs=1e-6)
    assert map_at_k(truth, ranked, k=5) == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert recall_at_k(truth, ranked, k=5) == pytest.approx(2 / 3)
    assert hit_rate_at_k(truth, ranked, k=5) == 1.0


def test_ideal_and_ap_use_min_of_relevant_and_k():
    truth = frame([("u", "a"), ("u", "b"), ("u", "c")])
    ranked = pred([("u", "a", 2), ("u", "b", 1)])
    assert ndcg_at_k(truth, ranked, k=2) == pytest.approx(1.0)
    assert map_at_k(truth, ranked, k=2) == pytest.approx(1.0)
    assert recall_at_k(truth, ranked, k=2) == pytest.approx(2 / 3)


def test_user_without_predictions_counts_as_zero_and_extra_users_are_ignored():
    ranked = pred([("u1", "a", 1.0), ("u1", "b", 0.5), ("stranger", "a", 1.0)])
    # u1 perfect, u2 has no predictions
    assert ndcg_at_k(TRUTH, ranked) == pytest.approx(0.5)
    assert hit_rate_at_k(TRUTH, ranked) == pytest.approx(0.5)
    table = per_user_metrics(TRUTH, ranked)
    assert list(table.index) == ["u1", "u2"]
    assert table.loc["u2", "ndcg"] == 0.0


@pytest.mark.parametrize("metric", ALL)
def test_invariant_to_prediction_row_order(metric):
    ranked = pred(
        [
            ("u1", "x", 0.9),
            ("u1", "a", 0.7),
            ("u1", "y", 0.6),
            ("u1", "b", 0.2),
            ("u2", "q", 0.9),
            ("u2", "c", 0.3),
        ]
    )
    shuffled = ranked.sample(frac=1.0, random_state=11)
    assert metric(TRUTH, shuffled, k=3) == metric(TRUTH, ranked, k=3)


def test_ties_are_broken_by_item_id():
    truth = frame([("u", "b")])
    tied = pred([("u", "c", 1.0), ("u", "b", 1.0), ("u", "a", 1.0)])
    assert rank_predictions(tied)["item_id"].tolist() == ["a", "b", "c"]
    assert hit_rate_at_k(truth, tied, k=1) == 0.0
    assert hit_rate_at_k(truth, tied, k=2) == 1.0
    assert ndcg_at_k(truth, tied, k=2) == pytest.approx(1 / math.log2(3))


def test_duplicate_truth_rows_are_collapsed():
    ranked = pred([("u1", "a", 1.0), ("u2", "c", 1.0)])
    doubled = pd.concat([TRUTH, TRUTH, frame([("u1", "a")])])
    for metric in ALL:
        assert metric(doubled, ranked) == metric(TRUTH, ranked)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_raises(k):
    with pytest.raises(MetricInputError, match="k must be"):
        ndcg_at_k(TRUTH, pred([("u1", "a", 1.0)]), k=k)


def test_missing_columns_and_empty_truth_raise():
    with pytest.raises(MetricInputError, match="pred lacks columns"):
        ndcg_at_k(TRUTH, frame([("u1", "a")]))
    with pytest.raises(MetricInputError, match="truth lacks columns"):
        recall_at_k(frame([("u1",)], ("user_id",)), pred([("u1", "a", 1.0)]))
    with pytest.raises(MetricInputError, match="truth is empty"):
        map_at_k(frame([]), pred([("u1", "a", 1.0)]))


def test_custom_column_names():
    truth = pd.DataFrame({"customer": ["u"], "sku": ["a"]})
    ranked = pd.DataFrame({"customer": ["u", "u"], "sku": ["b", "a"], "p": [0.1, 0.9]})
    cols = {"col_user": "customer", "col_item": "sku", "col_score": "p"}
    assert ndcg_at_k(truth, ranked, k=1, **cols) == 1.0


def test_catalog_coverage():
    ranked = pred(
        [("u1", "a", 3), ("u1", "b", 2), ("u1", "c", 1), ("u2", "a", 1), ("u2", "d", 0.5)]
    )
    assert catalog_coverage(ranked, 10, k=1) == pytest.approx(1 / 10)
    assert catalog_coverage(ranked, 10, k=2) == pytest.approx(3 / 10)
    with pytest.raises(MetricInputError):
        catalog_coverage(ranked, 0)


def test_metrics_at_ks_match_single_metric_calls():
    ranked = pred([("u1", "x", 0.9), ("u1", "a", 0.7), ("u1", "b", 0.2), ("u2", "c", 0.3)])
    curve = metrics_at_ks(TRUTH, ranked, ks=[1, 2, 3])
    lookup = curve.set_index(["k", "metric"])["value"]
    for k in (1, 2, 3):
        assert lookup[(k, "ndcg")] == pytest.approx(ndcg_at_k(TRUTH, ranked, k=k))
        assert lookup[(k, "map")] == pytest.approx(map_at_k(TRUTH, ranked, k=k))
        assert lookup[(k, "recall")] == pytest.approx(recall_at_k(TRUTH, ranked, k=k))
