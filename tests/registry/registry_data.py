"""A real MLflow registry in a temporary home: tiny LightGBM boosters, registered like the
pipeline does (``log_candidate``), cheap extra versions that reuse a logged model."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd

from recops.settings import Settings

FEATURES = ["f_signal", "f_noise"]


def settings_for(home: Path, **overrides) -> Settings:
    return Settings(home=home, user_salt=os.environ["RECOPS_USER_SALT"], **overrides)


def train_booster(sign: float = 1.0, seed: int = 0) -> lgb.Booster:
    """A booster scoring by ``sign * f_signal`` (plus a little noise it mostly ignores)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"f_signal": rng.uniform(0, 15, size=600), "f_noise": rng.normal(size=600)})
    y = sign * x["f_signal"] + 0.01 * x["f_noise"]
    data = lgb.Dataset(x, y, feature_name=FEATURES, free_raw_data=False)
    params = {"objective": "regression", "verbose": -1, "seed": seed, "num_leaves": 7, "deterministic": True}
    return lgb.train(params, data, num_boost_round=20)


def log_version(settings: Settings, booster: lgb.Booster, tmp: Path, *, ndcg: float = 0.5) -> str:
    """Register ``booster`` as a new version, with a serving bundle artifact; return its number."""
    from recops.training.registry import log_candidate

    bundle = tmp / "bundle.joblib"
    joblib.dump({"bundle_of": ndcg}, bundle)
    info = log_candidate(
        settings,
        booster=booster,
        params={"seed": 0},
        metrics={"ranker": {"ndcg@10": ndcg, "recall@10": ndcg}},
        artifacts={"bundle": bundle},
        tags={"recops.cutoff": "2026-03-04", "recops.feature_service": "ranker_v1"},
        run_name="registry-test",
    )
    return info.version


def copy_versions(settings: Settings, source_version: str, model_name: str, n: int) -> Settings:
    """A fresh registered model ``model_name`` with ``n`` versions of an already logged model
    (no new training or upload); returns settings pointing at it."""
    from recops.training.registry import client

    c = client(settings)
    mv = c.get_model_version(settings.model_name, source_version)
    c.create_registered_model(model_name)
    for _ in range(n):
        c.create_model_version(model_name, mv.source, run_id=mv.run_id)
    return settings.model_copy(update={"model_name": model_name})
