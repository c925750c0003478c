"""LambdaRank training: scores come from features only, training is order-free and seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.training.dataset import feature_columns
from recops.training.ranker import (
    RankerError,
    RankerParams,
    score,
    train_ranker,
    validation_users,
)
from recops.training.train import build_training_set


@pytest.fixture(scope="module")
def frame(shop, make_config):
    cfg = make_config()
    return build_training_set(cfg, shop.interactions, shop.items, shop.end - pd.Timedelta(days=21))


PARAMS = RankerParams.from_settings(
    Settings(ranker_num_leaves=7, ranker_min_data_in_leaf=5, ranker_num_boost_round=30, ranker_learning_rate=0.1)
)


def keyed(frame: pd.DataFrame, scores: np.ndarray) -> pd.Series:
    return pd.Series(
        scores, index=pd.MultiIndex.from_frame(frame[["query_id", "item_id"]])
    ).sort_index()


def test_scores_do_not_depend_on_candidate_order(frame):
    cols = feature_columns(frame)
    booster = train_ranker(frame, cols, PARAMS, seed=1)
    shuffled = frame.sample(frac=1.0, random_state=4)
    pd.testing.assert_series_equal(
        keyed(frame, score(booster, frame, cols)), keyed(shuffled, score(booster, shuffled, cols))
    )


def test_training_is_invariant_to_row_order_and_seeded(frame):
    cols = feature_columns(frame)
    first = train_ranker(frame, cols, PARAMS, seed=1)
    again = train_ranker(frame.sample(frac=1.0, random_state=9), cols, PARAMS, seed=1)
    assert np.array_equal(score(first, frame, cols), score(again, frame, cols))
    assert first.best_iteration >= 1


def test_bad_frames_raise(frame):
    cols = feature_columns(frame)
    with pytest.raises(RankerError, match="labels must lie"):
        train_ranker(frame.assign(label=frame["label"] + 5), cols, PARAMS, seed=1)
    with pytest.raises(RankerError, match="lacks columns"):
        train_ranker(frame.drop(columns=["query_id"]), cols, PARAMS, seed=1)


def test_validation_users_are_seeded_and_order_free():
    users = np.array([f"u{i}" for i in range(50)], dtype=object)
    chosen = validation_users(users, 0.2, seed=3)
    assert len(chosen) == 10
    assert set(validation_users(users[::-1], 0.2, seed=3)) == set(chosen)
    assert len(validation_users(users[:2], 0.2, seed=3)) == 0


def test_params_from_settings_and_label_gain():
    s = Settings(ranker_num_leaves=15, ranker_learning_rate=0.2, k=5)
    params = RankerParams.from_settings(s)
    assert (params.num_leaves, params.learning_rate, params.eval_at) == (15, 0.2, 5)
    assert params.lgb_params(seed=1)["label_gain"] == [0.0, 1.0, 3.0, 7.0]
    # no defaults of its own: every hyperparameter must come from somewhere
    with pytest.raises(ValueError, match="num_leaves"):
        RankerParams()
    tuned = RankerParams.from_settings(
        Settings(ranker_lambda_l2=3.0, ranker_feature_fraction=0.5, ranker_label_gain=(0, 1, 2))
    )
    assert (tuned.lambda_l2, tuned.feature_fraction, tuned.label_gain) == (3.0, 0.5, (0, 1, 2))
    assert tuned.lgb_params(seed=1)["lambda_l2"] == 3.0
    assert params.lgb_params(seed=1)["objective"] == "lambdarank"
    with pytest.raises(ValueError, match="label_gain"):
        RankerParams.from_settings(Settings(), label_gain=(0.0, 3.0, 1.0))
