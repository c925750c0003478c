"""``RECOPS_TRAIN_BACKEND=dask``: the ranker trained by ``lightgbm.DaskLGBMRanker`` on a real local
Dask cluster (2 worker processes) reaches the local backend's NDCG@10 within 0.01 on the synthetic
shop, with the same features; partitions hold whole queries; the stopping rule is LightGBM's."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from recops.training.artifacts import flat_params
from recops.training.dataset import QUERY_COL, feature_columns
from recops.training.distributed import best_iteration, ndcg_curve, query_partitions

pytestmark = [pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_partitions_hold_whole_queries_in_order() -> None:
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    frame = pd.DataFrame({QUERY_COL: np.repeat(np.arange(len(sizes)), sizes)})
    frame["label"] = np.arange(len(frame)) % 2
    frame["f"] = np.arange(len(frame), dtype=float)
    for parts in (1, 2, 3, 5, 20):
        got = query_partitions(frame, ["f"], parts)
        assert 1 <= len(got) <= parts
        assert np.concatenate([p.features[:, 0] for p in got]).tolist() == frame["f"].tolist()
        assert np.concatenate([p.groups for p in got]).tolist() == sizes  # no query cut in two
        assert all(p.groups.sum() == len(p.labels) == len(p.features) for p in got)
    assert len(query_partitions(frame, ["f"], 2)) == 2


def test_best_iteration_follows_lightgbms_early_stopping() -> None:
    assert best_iteration([0.1, 0.3, 0.2, 0.25, 0.29, 0.5], rounds=3) == 2  # stopped before the 0.5
    assert best_iteration([0.1, 0.3, 0.2, 0.25, 0.29, 0.5], rounds=4) == 6
    assert best_iteration([0.4, 0.4, 0.4], rounds=10) == 1  # the first of equal bests


def test_the_validation_curve_is_lightgbms_ndcg_metric(shop, make_config, feature_fetcher) -> None:
    from recops.core.constants import ITEM_COL, LABEL_COL
    from recops.training.train import build_training_set

    cfg = make_config()
    frame = build_training_set(cfg, shop.interactions, shop.items, shop.end - pd.Timedelta(days=21), feature_fetcher)
    frame = frame.sort_values([QUERY_COL, ITEM_COL], ignore_index=True)
    cols = feature_columns(frame)
    half = frame[QUERY_COL].isin(frame[QUERY_COL].unique()[::2])
    train, valid = frame[~half], frame[half]

    def dataset(part: pd.DataFrame, reference=None) -> lgb.Dataset:
        sizes = part.groupby(QUERY_COL, sort=False).size().to_numpy()
        return lgb.Dataset(part[cols].to_numpy(float), label=part[LABEL_COL].to_numpy(), group=sizes,
                           reference=reference, free_raw_data=False)

    recorded: dict = {}
    train_set = dataset(train)
    booster = lgb.train(cfg.ranker.lgb_params(1), train_set, num_boost_round=25, valid_sets=[dataset(valid, train_set)],
                        valid_names=["valid"], callbacks=[lgb.record_evaluation(recorded)])
    curve = ndcg_curve(booster, query_partitions(valid, cols, 1)[0], cfg.ranker.eval_at, cfg.ranker.label_gain)
    expected = recorded["valid"][f"ndcg@{cfg.ranker.eval_at}"]
    assert len(curve) == len(expected) == 25 and len(set(np.round(expected, 6))) > 1
    np.testing.assert_allclose(curve, expected, atol=1e-9)


def test_dask_backend_matches_the_local_ndcg(shop, make_config, feature_fetcher) -> None:
    from recops.training.train import train_and_evaluate

    cutoff = shop.end - pd.Timedelta(days=21)
    local_cfg, dask_cfg = make_config(), make_config(train_backend="dask", dask_workers=2)
    local = train_and_evaluate(local_cfg, shop.interactions, shop.items, cutoff, feature_fetcher)
    dist = train_and_evaluate(dask_cfg, shop.interactions, shop.items, cutoff, feature_fetcher)

    assert flat_params(dask_cfg)["ranker.backend"] == "dask"  # logged with the MLflow run's params
    assert flat_params(local_cfg)["ranker.backend"] == "local"
    assert dist.booster.feature_name() == local.booster.feature_name() == list(dist.feature_cols)
    assert dist.row_counts["training_rows"] == local.row_counts["training_rows"]
    assert 1 <= dist.row_counts["best_iteration"] <= dask_cfg.ranker.num_boost_round
    ranker_local, ranker_dask = local.metrics["ranker"]["ndcg@10"], dist.metrics["ranker"]["ndcg@10"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dask-backend.json").write_text(json.dumps({
        "ndcg@10": {"local": ranker_local, "dask": ranker_dask},
        "best_iteration": {"local": local.row_counts["best_iteration"], "dask": dist.row_counts["best_iteration"]},
        "train_ranker_s": {"local": local.timings["train_ranker_s"], "dask": dist.timings["train_ranker_s"]},
    }, indent=2))
    assert ranker_dask > 0.2  # a real model, not an empty one
    assert abs(ranker_dask - ranker_local) <= 0.01, (ranker_local, ranker_dask)
    assert feature_columns(local.holdout.frame) == list(local.feature_cols)
