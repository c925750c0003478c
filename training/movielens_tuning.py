"""The search behind the MovieLens benchmark's settings (``ease_lambda``, ``covisit_window_seconds``
and the ``movielens_*`` settings): ``recops benchmark movielens PATH --tune``.

Only the train part of the protocol's split is used. It is split again (per item or user,
:data:`TUNE_RATIO`, seed + 1) into a fitting part and a validation part:

1. each retriever alone, fitted on the fitting part, is scored (nDCG@10 of its top 10 unseen
   items) on the validation part for every value of its grid;
2. the whole method (:func:`~recops.training.movielens_benchmark.fit_and_evaluate`: cross-fitted
   ranker, retrievers refitted) runs on (fitting part, validation part) for one ranker setting at a
   time, in the order of :data:`RANKER_GRID`, each keeping the best value so far (coordinate
   search from the current settings; ties keep the current value).

Deterministic: fixed seeds, fixed grids, fixed order. The test part is never read.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from recops.core.constants import ITEM_COL, USER_COL
from recops.core.settings import Settings
from recops.training.movielens_benchmark import (
    TRAIN_RATIO,
    Stratify,
    fit_and_evaluate,
    fit_retrievers,
    protocol_metrics,
    read_items,
    read_ratings,
    retriever_config,
    stratified_split,
)
from recops.training.tuning import grid

log = logging.getLogger(__name__)

TUNE_RATIO = 0.8
METRIC = "ndcg@10"
RETRIEVER_GRID: dict[str, dict[str, tuple]] = {  # retriever -> setting -> values
    "ease": {"ease_lambda": (100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0)},
    "itemcf": {
        "movielens_itemcf_neighbours": (50, 100, 200, 400),
        "movielens_itemcf_shrink": (0.0, 5.0, 20.0),
    },
    "als": {
        "movielens_als_factors": (32, 64, 128),
        "movielens_als_regularization": (0.01, 0.1, 1.0),
        "movielens_als_alpha": (1.0, 5.0, 20.0),
    },
}
RANKER_GRID: dict[str, tuple] = {  # searched one after the other
    # co-visitation is there for what it adds to EASE, not alone: its window is chosen here
    "covisit_window_seconds": (0.0, 60.0, 300.0),
    "movielens_candidates": (30, 50),  # 100 was no better and doubles the rows (runtime budget)
    "movielens_ranker_objective": ("lambdarank", "rank_xendcg"),
    "movielens_ranker_num_leaves": (4, 7, 15, 31),
    "movielens_ranker_min_data_in_leaf": (30, 100, 300),
    "movielens_ranker_learning_rate": (0.02, 0.05, 0.1),
}


def retriever_alone(
    settings: Settings,
    name: str,
    seen: pd.DataFrame,
    truth: pd.DataFrame,
    items: pd.DataFrame,
) -> float:
    """nDCG@10 of retriever ``name`` alone (fitted on ``seen``) on the users of ``truth``."""
    config = retriever_config(settings, enabled=(name,))
    retriever = fit_retrievers(config.build(settings.seed), seen, items)[0]
    users = truth[USER_COL].unique()
    recs = retriever.recommend(users, 10, exclude=seen[[USER_COL, ITEM_COL]])
    return protocol_metrics(truth[[USER_COL, ITEM_COL]], recs)[METRIC]


def tune_retrievers(
    settings: Settings, seen: pd.DataFrame, truth: pd.DataFrame, items: pd.DataFrame
) -> tuple[dict, list[dict]]:
    """Stage 1 (module docstring): the best grid point of each retriever, and every trial."""
    chosen: dict = {}
    trials: list[dict] = []
    for name, values in RETRIEVER_GRID.items():
        best = None
        for combo in grid(values):
            value = retriever_alone(settings.model_copy(update=combo), name, seen, truth, items)
            trials.append({"stage": name, **combo, METRIC: round(value, 4)})
            log.info("tune %s %s: %.4f", name, combo, value)
            if best is None or value > best[0]:
                best = (value, combo)
        chosen |= best[1]
    return chosen, trials


def tune_ranker(
    settings: Settings,
    seen: pd.DataFrame,
    truth: pd.DataFrame,
    items: pd.DataFrame,
    *,
    by: Stratify,
    seed: int,
) -> tuple[dict, list[dict]]:
    """Stage 2 (module docstring): coordinate search over ``RANKER_GRID``, and every trial."""
    chosen: dict = {}
    trials: list[dict] = []
    scores: dict[tuple, float] = {}
    for name, options in RANKER_GRID.items():
        current = getattr(settings.model_copy(update=chosen), name)
        best_value, best_score = current, None
        for option in sorted(options, key=lambda o: o != current):  # the current value first
            trial = chosen | {name: option}
            key = tuple(sorted(trial.items()))
            if key not in scores:
                result = fit_and_evaluate(
                    settings.model_copy(update=trial), seen, truth, items, by=by, seed=seed
                )
                scores[key] = result["metrics"]["ranker"][METRIC]
                trials.append({"stage": "ranker", **trial, METRIC: round(scores[key], 4)})
                log.info("tune ranker %s: %.4f", trial, scores[key])
            if best_score is None or scores[key] > best_score:
                best_value, best_score = option, scores[key]
        chosen[name] = best_value
    return chosen, trials


def tune_movielens(
    settings: Settings, path: Path, *, seed: int = 42, stratify: Stratify = "item"
) -> dict:
    """Run both stages on the train part of the protocol's split; ``chosen`` maps each setting to
    the value picked (set them as ``RECOPS_<NAME>`` or in ``recops.core.settings``)."""
    started = time.perf_counter()
    ratings, items = read_ratings(path), read_items(path)
    train, _ = stratified_split(ratings, TRAIN_RATIO, by=stratify, seed=seed)
    seen, truth = stratified_split(train, TUNE_RATIO, by=stratify, seed=seed + 1)
    chosen, trials = tune_retrievers(settings, seen, truth, items)
    tuned = settings.model_copy(update=chosen)
    ranker_chosen, ranker_trials = tune_ranker(
        tuned, seen, truth, items, by=stratify, seed=seed + 1
    )
    return {
        "chosen": chosen | ranker_chosen,
        "trials": trials + ranker_trials,
        "split": {"train_ratio": TRAIN_RATIO, "tune_ratio": TUNE_RATIO, "seed": seed + 1},
        "seconds": round(time.perf_counter() - started, 1),
    }
