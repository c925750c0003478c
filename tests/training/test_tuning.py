"""Closed-window tuning (`recops tune`): folds that never reach the cutoff, nothing read at or
after it, every trial in MLflow, the chosen settings written, read back and applied."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recops.core.constants import EVENT_AT_COL, EVENT_TYPE_COL, ITEM_COL, USER_COL
from recops.core.settings import Settings
from recops.training.train import TrainConfig, build_holdout
from recops.training.tuned import TunedSettingsError, read_tuned, with_tuned_settings, write_tuned
from recops.training.tuning import closed_folds, tune

SMALL = {  # the shop's small settings (tests/training/conftest.py), as settings
    "k": 10,
    "candidates_per_retriever": 20,
    "seed": 7,
    "ranker_min_data_in_leaf": 5,
    "ranker_num_boost_round": 60,
    "ranker_early_stopping_rounds": 15,
    "als_iterations": 6,
    "itemcf_neighbours": 30,
}


# smaller grids than the defaults (same code path, fewer trials)
RETRIEVERS = {
    "popularity": {"popularity_half_life_days": (14.0, 30.0)},
    "repeat": {"repeat_half_life_days": (180.0, 90.0), "repeat_popularity_weight": (2.0, 0.0)},
    "itemcf": {"itemcf_shrink": (5.0, 20.0)},
    "als": {"als_factors": (16,)},
    "content": {"content_half_life_days": (120.0,)},
}
RANKER = {"ranker_num_leaves": (7, 15), "ranker_min_data_in_leaf": (5, 20)}


def test_folds_are_closed_before_the_cutoff():
    cutoff = pd.Timestamp("2010-11-01")
    folds = closed_folds(cutoff, n_folds=3, window_days=28, step_days=14)
    assert [(f.cutoff.date().isoformat(), f.end.date().isoformat()) for f in folds] == [
        ("2010-10-04", "2010-11-01"),
        ("2010-09-20", "2010-10-18"),
        ("2010-09-06", "2010-10-04"),
    ]
    assert all(f.end <= cutoff for f in folds)


@pytest.fixture(scope="module")
def tuned_run(shop, feature_fetcher, tmp_path_factory):
    home = tmp_path_factory.mktemp("tune-home")
    settings = Settings(home=home, **SMALL)
    cutoff = shop.end - pd.Timedelta(days=21)
    result = tune(
        settings, shop.interactions, shop.items, cutoff, fetch_features=feature_fetcher,
        retriever_grid=RETRIEVERS, ranker_grid=RANKER,
    )
    return settings, cutoff, result


def test_tuning_writes_and_logs_what_it_chose(tuned_run):
    settings, cutoff, result = tuned_run
    assert result["cutoff"] == cutoff.date().isoformat()
    assert all(pd.Timestamp(f["end"]) <= cutoff for f in result["folds"])
    chosen = result["settings"]
    assert {"repeat_half_life_days", "repeat_popularity_weight", "itemcf_shrink", "als_factors", "ranker_num_leaves"} <= set(chosen)
    # the ranker beats (or ties) the best single retriever on the folds it was tuned on
    assert result["score"] >= min(b["ndcg"] for b in result["retriever_baselines"]) - 0.05
    on_disk = json.loads(settings.tuned_settings_path.read_text())
    assert on_disk["settings"] == chosen and on_disk["cutoff"] == result["cutoff"]

    from recops.core.registry import client

    c = client(settings)
    experiment = c.get_experiment_by_name(f"{settings.experiment_name}-tuning")
    runs = c.search_runs([experiment.experiment_id], max_results=500)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result["mlflow_run_id"]]
    assert len(children) == result["trials"] > 10
    stages = {r.data.tags["recops.tuning.stage"] for r in children}
    assert stages == {"popularity", "repeat", "itemcf", "als", "content", "ranker"}
    ranker = [r for r in children if r.data.tags["recops.tuning.stage"] == "ranker"]
    assert all("ndcg_at_10.mean" in r.data.metrics and "ndcg_at_10.fold1" in r.data.metrics for r in ranker)
    best = max(r.data.metrics["ndcg_at_10.mean"] for r in ranker)
    assert best == pytest.approx(result["score"], abs=1e-4)


def test_tuning_reads_nothing_at_or_after_the_cutoff_and_is_reproducible(tuned_run, shop, feature_fetcher, tmp_path):
    settings, cutoff, result = tuned_run
    # every user buys one brand-new item, and the tuned models' favourites, from the cutoff on
    later = shop.interactions.sample(n=400, random_state=1).assign(
        **{EVENT_AT_COL: cutoff + pd.Timedelta(hours=1), EVENT_TYPE_COL: "purchase"}
    )
    later[ITEM_COL] = later[ITEM_COL].where(later.index % 2 == 0, "FUTURE-ONLY")
    assert later[USER_COL].nunique() > 50
    with_future = pd.concat([shop.interactions, later], ignore_index=True)
    again = tune(
        settings.model_copy(update={"home": tmp_path}), with_future, shop.items, cutoff,
        fetch_features=feature_fetcher, log_trials=False, write=False, retriever_grid=RETRIEVERS, ranker_grid=RANKER,
    )
    assert again["settings"] == result["settings"]
    assert again["score"] == result["score"]
    assert again["retriever_baselines"] == result["retriever_baselines"]


def test_the_pipeline_applies_the_tuned_file_and_checks_it(tmp_path):
    settings = Settings(home=tmp_path)
    assert with_tuned_settings(settings) == (settings, None)
    write_tuned(settings.tuned_settings_path, {"cutoff": "2010-11-01", "settings": {"ranker_num_leaves": 15}})
    applied, summary = with_tuned_settings(settings)
    assert applied.ranker_num_leaves == 15 and TrainConfig.from_settings(applied).ranker.num_leaves == 15
    assert summary["cutoff"] == "2010-11-01"

    path = settings.tuned_settings_path
    path.write_text(json.dumps({"settings": {"postgres_password": "x"}}))
    with pytest.raises(TunedSettingsError, match=r"tuned_settings\.json: setting 'postgres_password'"):
        read_tuned(settings)
    path.write_text(json.dumps({"settings": {"ranker_num_leaves": 1}}))
    with pytest.raises(TunedSettingsError, match="ranker_num_leaves.*greater than or equal to 2"):
        read_tuned(settings)


def test_holdout_window_follows_the_setting(shop, make_config):
    cutoff = shop.end - pd.Timedelta(days=21)
    open_cfg = make_config()
    closed_cfg = open_cfg.model_copy(update={"evaluation_window_days": 7})
    open_truth = build_holdout(open_cfg, shop.interactions, shop.items, cutoff, None).split.truth
    closed_truth = build_holdout(closed_cfg, shop.interactions, shop.items, cutoff, None).split.truth
    assert 0 < len(closed_truth) < len(open_truth)
    assert Settings(evaluation_window_days=7).evaluation_window_days == 7
    assert TrainConfig.from_settings(Settings(evaluation_window_days=7)).evaluation_window_days == 7
