"""LightGBM ranking over the candidate frame: LambdaRank, or XE-NDCG (``objective``).

Rows are grouped by ``query_id`` (one user in one label window). A seeded 20% of the *users* (all
their queries, so one user never sits on both sides) is held out for early stopping on NDCG@k.
Training rows are sorted by (query_id, item_id) first, so the booster does not depend on the
order rows arrive in; scoring is row-wise, so scores depend on features only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from recops.core.constants import ITEM_COL, LABEL_COL, USER_COL
from recops.core.settings import Settings
from recops.training.dataset import QUERY_COL

log = logging.getLogger(__name__)


class RankerError(ValueError):
    """The frame cannot be trained on or scored (missing columns, labels outside label_gain)."""


class RankerParams(BaseModel):
    """LambdaRank hyperparameters; ``label_gain[r]`` is the gain of relevance r. No defaults here:
    :meth:`from_settings` takes them from the ``ranker_*`` settings (tuning notes in
    ``recops.core.settings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    objective: Literal["lambdarank", "rank_xendcg"]
    num_leaves: int = Field(ge=2)
    learning_rate: float = Field(gt=0, le=1)
    num_boost_round: int = Field(ge=1)
    min_data_in_leaf: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    feature_fraction: float = Field(gt=0, le=1)
    lambda_l2: float = Field(ge=0)
    label_gain: tuple[float, ...]
    eval_at: int = Field(ge=1)
    valid_fraction: float = Field(ge=0, lt=1)
    num_threads: int = Field(ge=1)
    backend: Literal["local", "dask"]  # where it trains (recorded with the run's params)
    dask_scheduler: str | None
    dask_workers: int = Field(ge=1)

    @model_validator(mode="after")
    def _gains(self) -> RankerParams:
        if len(self.label_gain) < 2 or list(self.label_gain) != sorted(self.label_gain):
            raise ValueError("label_gain needs >= 2 non-decreasing gains")
        return self

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RankerParams:
        values = {
            "objective": settings.ranker_objective,
            "num_leaves": settings.ranker_num_leaves,
            "learning_rate": settings.ranker_learning_rate,
            "num_boost_round": settings.ranker_num_boost_round,
            "min_data_in_leaf": settings.ranker_min_data_in_leaf,
            "early_stopping_rounds": settings.ranker_early_stopping_rounds,
            "feature_fraction": settings.ranker_feature_fraction,
            "lambda_l2": settings.ranker_lambda_l2,
            "label_gain": settings.ranker_label_gain,
            "valid_fraction": settings.ranker_valid_fraction,
            "eval_at": settings.k,
            "num_threads": settings.train_threads,
            "backend": settings.train_backend,
            "dask_scheduler": settings.dask_scheduler,
            "dask_workers": settings.dask_workers,
        }
        return cls(**(values | overrides))

    def lgb_params(self, seed: int) -> dict:
        return {
            "objective": self.objective,
            "metric": "ndcg",
            "eval_at": [self.eval_at],
            "label_gain": list(self.label_gain),
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


def _check_frame(frame: pd.DataFrame, feature_cols: Sequence[str], need: Sequence[str]) -> None:
    missing = [c for c in [*need, *feature_cols] if c not in frame.columns]
    if missing:
        raise RankerError(f"frame lacks columns {missing}")


def _dataset(frame: pd.DataFrame, rows: np.ndarray, feature_cols: Sequence[str], reference=None) -> lgb.Dataset:
    """The LightGBM dataset of ``frame``'s ``rows`` (a boolean mask), filled one feature column at
    a time: the only full-size copy is the float matrix LightGBM reads."""
    matrix = np.empty((int(rows.sum()), len(feature_cols)), dtype=np.float64)
    for j, col in enumerate(feature_cols):
        matrix[:, j] = frame[col].to_numpy(dtype=np.float64)[rows]
    groups = frame[QUERY_COL].to_numpy()[rows]
    return lgb.Dataset(
        matrix,
        label=frame[LABEL_COL].to_numpy()[rows],
        group=pd.Series(groups).groupby(groups, sort=False).size().to_numpy(),
        feature_name=list(feature_cols),
        reference=reference,
        free_raw_data=False,
    )


def validation_users(users: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of the distinct ``users`` (sorted first: input order is irrelevant)."""
    distinct = np.sort(pd.unique(users))
    n_valid = round(len(distinct) * fraction)
    if fraction == 0 or n_valid == 0 or n_valid == len(distinct):
        return distinct[:0]
    return np.random.default_rng(seed).choice(distinct, size=n_valid, replace=False)


def train_ranker(
    frame: pd.DataFrame, feature_cols: Sequence[str], params: RankerParams, seed: int
) -> lgb.Booster:
    """Train LambdaRank on ``frame`` (query_id, label, features); early-stops on held-out users."""
    _check_frame(frame, feature_cols, [QUERY_COL, LABEL_COL, USER_COL, ITEM_COL])
    labels = frame[LABEL_COL].to_numpy()
    if labels.min() < 0 or labels.max() >= len(params.label_gain):
        raise RankerError(f"labels must lie in [0, {len(params.label_gain) - 1}]")
    keys = frame[[QUERY_COL, ITEM_COL]]
    if not keys.equals(keys.sort_values([QUERY_COL, ITEM_COL], kind="mergesort")):  # a training-set file is sorted
        frame = frame.sort_values([QUERY_COL, ITEM_COL], kind="mergesort")
    valid = frame[USER_COL].isin(
        validation_users(frame[USER_COL].to_numpy(), params.valid_fraction, seed)
    ).to_numpy()
    if params.backend == "dask":
        from recops.training.distributed import train_ranker_dask

        return train_ranker_dask(frame[~valid], frame[valid], feature_cols, params, seed)
    train_set = _dataset(frame, ~valid, feature_cols)
    lgb_params = params.lgb_params(seed)
    if valid.any():
        valid_set = _dataset(frame, valid, feature_cols, reference=train_set)
        booster = lgb.train(
            lgb_params,
            train_set,
            num_boost_round=params.num_boost_round,
            valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
        )
    else:
        log.warning(
            "too few users for a validation split: training %d rounds", params.num_boost_round
        )
        booster = lgb.train(lgb_params, train_set, num_boost_round=params.num_boost_round)
    return booster


def score(booster: lgb.Booster, frame: pd.DataFrame, feature_cols: Sequence[str]) -> np.ndarray:
    """Ranker scores aligned with the rows of ``frame`` (best iteration if early-stopped)."""
    _check_frame(frame, feature_cols, [])
    if frame.empty:
        return np.array([], dtype=np.float64)
    return booster.predict(
        frame[list(feature_cols)].to_numpy(dtype=np.float64),
        num_iteration=booster.best_iteration or None,
    )


def feature_importance(booster: lgb.Booster) -> pd.DataFrame:
    """Gain and split importance per feature, largest gain first."""
    return pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain"),
            "split": booster.feature_importance("split"),
        }
    ).sort_values("gain", ascending=False, ignore_index=True)
