"""End to end: training frame -> ranker -> protocol v1, the run folder, and the serving bundle."""

from __future__ import annotations

import json

import joblib
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.training.artifacts import load_holdout, score_holdout, write_run_artifacts
from recops.training.train import (
    RecommenderBundle,
    TrainConfig,
    train_from_training_set,
)

MODELS = {"ranker", "popularity", "repeat", "itemcf", "als", "content"}
KEYS = {"ndcg@10", "recall@10", "hitrate@10", "map@10", "coverage", "n_users"}


def test_ranker_beats_popularity_on_the_same_users(trained):
    _, result = trained
    assert set(result.metrics) == MODELS
    for name, metrics in result.metrics.items():
        assert set(metrics) == KEYS, name
        assert metrics["n_users"] == result.row_counts["eval_users"] > 20
    ranker, popularity = result.metrics["ranker"], result.metrics["popularity"]
    assert ranker["ndcg@10"] > popularity["ndcg@10"] + 0.05
    assert ranker["ndcg@10"] >= max(m["ndcg@10"] for m in result.metrics.values()) - 0.02


def test_result_carries_cold_users_curves_counts_and_features(trained):
    _, result = trained
    assert set(result.cold_metrics) == {"ranker", "popularity", "content_pop"}
    assert result.cold_metrics["ranker"] == result.cold_metrics["popularity"]  # the fallback
    curve = result.metrics_by_k
    assert set(curve["model"]) == MODELS and set(curve["k"]) == set(range(1, 21))
    at_10 = curve[(curve.model == "ranker") & (curve.k == 10) & (curve.metric == "ndcg")]["value"]
    assert at_10.iloc[0] == pytest.approx(result.metrics["ranker"]["ndcg@10"])
    counts = result.row_counts
    assert counts["training_rows"] > counts["training_queries"] > 0
    assert 0 < counts["training_positives"] < counts["training_rows"]
    assert {"item_number", "seen_at_age_days", "repeat_rank", "n_retrievers"} <= set(
        result.feature_cols
    )
    assert set(result.feature_importance["feature"]) == set(result.feature_cols)
    assert {"build_training_set_s", "train_ranker_s", "build_holdout_s", "total_s"} <= set(
        result.timings
    )
    assert result.holdout.frame["event_timestamp"].eq(result.cutoff).all()


def test_config_from_settings():
    s = Settings(k=5, candidates_per_retriever=30, label_windows=3, seed=9, ranker_num_leaves=12)
    cfg = TrainConfig.from_settings(s)
    assert (cfg.k, cfg.candidates_per_retriever, cfg.label_windows, cfg.seed) == (5, 30, 3, 9)
    assert cfg.ranker.num_leaves == 12 and cfg.ranker.eval_at == 5
    assert cfg.candidate_depth == 30


def test_run_folder_and_champion_rescoring(trained, tmp_path):
    _, result = trained
    paths = write_run_artifacts(result, None, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"model.txt", "holdout.parquet", "plots"}
    assert paths["metrics_by_k_plot"].stat().st_size > 0
    rescored = score_holdout(result.booster, load_holdout(tmp_path))
    assert rescored == pytest.approx(result.metrics["ranker"])


def test_train_from_training_set_writes_a_loadable_report(
    shop, make_config, feature_fetcher, tmp_path
):
    from recops.training.train import build_training_set

    cfg = make_config(label_windows=1)
    cutoff = shop.end - pd.Timedelta(days=21)
    frame = build_training_set(cfg, shop.interactions, shop.items, cutoff, feature_fetcher)
    report = train_from_training_set(
        cfg, frame, shop.interactions, shop.items, cutoff, feature_fetcher, out_dir=tmp_path
    )
    json.dumps(report, allow_nan=False)
    assert report["cutoff"] == cutoff.date().isoformat()
    assert report["params"]["ranker.num_leaves"] == 7
    bundle = joblib.load(tmp_path / "bundle.joblib")
    assert isinstance(bundle, RecommenderBundle)


def test_same_seed_same_model_and_metrics(shop, make_config):
    from recops.training.train import train_and_evaluate

    cfg = make_config(label_windows=1)
    cutoff = shop.end - pd.Timedelta(days=21)
    first, second = (
        train_and_evaluate(cfg, shop.interactions, shop.items, cutoff) for _ in range(2)
    )
    assert first.booster.model_to_string() == second.booster.model_to_string()
    assert first.metrics == second.metrics
