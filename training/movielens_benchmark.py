"""MovieLens 100k on the Microsoft Recommenders protocol: our retrievers and ranker next to their
published table (shared DESIGN.md, "MovieLens 100k, Microsoft Recommenders protocol").

**Their protocol**, read from the commit that produced the published table, recommenders-team/
recommenders 4465f9b629af58026f5caea917d73348adf51b13 (2021-04-02, "rerun benchmark notebook";
README table from ed5dfa5207bd767b1f30216786564dbea9cefa81): ``examples/06_benchmarks/
movielens.ipynb`` and ``benchmark_utils.py``, ``reco_utils/dataset/python_splitters.py`` and
``split_utils.py``, ``reco_utils/evaluation/python_evaluation.py``.

* Every rating of ``u.data`` (file order) is an interaction, whatever its value.
* ``python_stratified_split(df, ratio=0.75, filter_by="item", seed=42)``: per *item*, its ratings
  are shuffled by ``DataFrame.sample(frac=1, random_state=42)`` (numpy's legacy
  ``RandomState(42).permutation``) and the first ``round(0.75 * n)`` (Python rounding) go to train.
  :func:`stratified_split` is that algorithm, so it draws the same split (checked row for row
  against their functions). The notebook groups by item, where DESIGN.md says "stratified by user";
  ``stratify="user"`` runs the by-user variant.
* Each user gets the top 10 items not seen in train (``remove_seen=True``).
* Metrics at k = 10 (:mod:`recops.training.metrics`): Precision = hits / k, Recall = hits /
  |relevant|, nDCG with binary gain and ideal DCG over min(|relevant|, k), MAP = the sum of the
  precisions at the hits divided by |relevant| (their ``map_at_k`` of 2021, named ``map`` since
  release 1.2, whose ``map_at_k`` divides by min(|relevant|, k): our ``map@10``, also reported).
  Means are over the users with test ratings (all of them get recommendations).

**Ours.** Retrievers (``movielens_retrievers``) fitted on train without time decay (a random split
has no time order): popularity, itemcf, ALS, content (TF-IDF of title, year and genres), EASE
(:mod:`recops.training.ease`) and co-visitation (:mod:`recops.training.covisit`: items rated
within ``covisit_window_seconds`` of each other by one user; it reads the train ratings'
timestamps, as Recommenders' SAR does). ``repeat`` is left out: it only proposes items the user
has rated, and every seen item is excluded here. The ranker is the pipeline's LightGBM ranker
(:mod:`recops.training.ranker`; objective ``movielens_ranker_objective``) over the union of the
retrievers' top ``movielens_candidates`` unseen items, with their scores, ranks, per-user
standardised scores, and item and user statistics (``ITEM_FEATURES``, ``USER_FEATURES``) as
features. Nothing is fitted or chosen on the test part. The ranker's rows are cross-fitted inside
train (:func:`ranker_training_frame`): train is dealt into ``movielens_ranker_folds`` stratified
folds; retrievers fitted on the other folds propose candidates to each fold's users, labelled by
the fold's ratings. Then the retrievers are refitted on all of train and the ranker orders the
test users' candidates. The settings were chosen on a split of train by
:mod:`recops.training.movielens_tuning` (``recops benchmark movielens PATH --tune``).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    LABEL_COL,
    RATING_COL,
    SCORE_COL,
    USER_COL,
)
from recops.core.settings import Settings
from recops.training.dataset import QUERY_COL, build_candidates, feature_columns
from recops.training.events import PURCHASE
from recops.training.metrics import per_user_metrics
from recops.training.ranker import RankerParams, score, train_ranker
from recops.training.retriever_config import RetrieverConfig
from recops.training.retrievers import Retriever

Stratify = Literal["item", "user"]

K = 10
TRAIN_RATIO = 0.75
RANKER = "ranker"
PUBLISHED = {  # Recommenders' README, MovieLens 100k (commit ed5dfa5207bd, 2021-04-02)
    "BiVAE": {f"ndcg@{K}": 0.475077, f"precision@{K}": 0.411771, f"recall@{K}": 0.219145, "map": 0.146126},
    "BPR": {f"ndcg@{K}": 0.441997, f"precision@{K}": 0.388229, f"recall@{K}": 0.212522, "map": 0.132478},
    "LightGCN": {f"ndcg@{K}": 0.419846, f"precision@{K}": 0.379626, f"recall@{K}": 0.144336, "map": 0.088526},
    "NCF": {f"ndcg@{K}": 0.396118, f"precision@{K}": 0.347296, f"recall@{K}": 0.180775, "map": 0.107720},
    "SAR": {f"ndcg@{K}": 0.382461, f"precision@{K}": 0.330753, f"recall@{K}": 0.176385, "map": 0.110591},
}
ITEM_FEATURES = ("item_share", "item_mean_rating", "item_days_since_first", "item_year")
USER_FEATURES = ("user_share", "user_mean_rating")


class BenchmarkError(ValueError):
    """The MovieLens folder or an argument of the benchmark is unusable."""


# --- data ----------------------------------------------------------------------------------------
def read_ratings(path: Path) -> pd.DataFrame:
    """``u.data`` in file order: user_id, item_id, rating, event_at (naive UTC)."""
    file = Path(path) / "u.data"
    if not file.is_file():
        raise BenchmarkError(f"{file} not found (the MovieLens 100k folder holds u.data, u.item)")
    frame = pd.read_csv(
        file, sep="\t", names=[USER_COL, ITEM_COL, RATING_COL, "unix"], dtype=np.int64
    )
    return frame.assign(**{EVENT_AT_COL: pd.to_datetime(frame.pop("unix"), unit="s")})


def read_items(path: Path) -> pd.DataFrame:
    """``u.item`` (latin-1) with ``u.genre``: item_id, title, item_year (release year) and
    item_text (title and genre names, what the content retriever reads)."""
    folder = Path(path)
    genres = pd.read_csv(
        folder / "u.genre", sep="|", names=["genre", "flag"], encoding="latin-1"
    ).dropna()
    names = [str(g) for g in genres.sort_values("flag")["genre"]]
    fixed = [ITEM_COL, "title", "released", "video_released", "url"]
    items = pd.read_csv(
        folder / "u.item",
        sep="|",
        names=fixed + names,
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
    )
    flags = items[names].to_numpy(dtype=bool)
    genre_text = [" ".join(np.asarray(names)[row]) for row in flags]
    released = pd.to_datetime(items["released"], format="%d-%b-%Y", errors="coerce")
    return pd.DataFrame(
        {
            ITEM_COL: items[ITEM_COL].astype(np.int64),
            "title": items["title"].fillna(""),
            "item_year": released.dt.year.astype(float),
            "item_text": items["title"].fillna("") + " " + pd.Series(genre_text),
        }
    )


def _shuffled_groups(ratings: pd.DataFrame, by: Stratify, seed: int) -> Iterator[np.ndarray]:
    """Row positions of each item's (``by="item"``) or user's ratings, in input order, shuffled by
    a fresh ``RandomState(seed)`` per group (what ``DataFrame.sample(frac=1, random_state=seed)``
    does to each group in Recommenders' splitter)."""
    if by not in ("item", "user"):
        raise BenchmarkError(f"stratify by 'item' or 'user', not {by!r}")
    keys = ratings[ITEM_COL if by == "item" else USER_COL].to_numpy()
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(keys[order][1:] != keys[order][:-1]) + 1
    for group in np.split(order, bounds):
        yield group[np.random.RandomState(seed).permutation(len(group))]


def stratified_split(
    ratings: pd.DataFrame, ratio: float, *, by: Stratify, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): of each item's (or user's) shuffled ratings the first ``round(ratio * n)``
    (Python rounding) go to train: Recommenders' ``python_stratified_split``."""
    if not 0 < ratio < 1:
        raise BenchmarkError(f"ratio must lie strictly between 0 and 1, got {ratio}")
    in_train = np.zeros(len(ratings), dtype=bool)
    for group in _shuffled_groups(ratings, by, seed):
        in_train[group[: round(ratio * len(group))]] = True
    return ratings[in_train], ratings[~in_train]


def stratified_folds(ratings: pd.DataFrame, n_folds: int, *, by: Stratify, seed: int) -> np.ndarray:
    """Fold number (0 .. n_folds-1) of each row: each item's (or user's) shuffled ratings dealt
    round-robin, so every fold holds about 1/n_folds of them."""
    if n_folds < 2:
        raise BenchmarkError(f"n_folds must be >= 2, got {n_folds}")
    folds = np.zeros(len(ratings), dtype=np.int64)
    for group in _shuffled_groups(ratings, by, seed):
        folds[group] = np.arange(len(group)) % n_folds
    return folds


# --- models ----------------------------------------------------------------------------------------
def retriever_config(settings: Settings, **overrides) -> RetrieverConfig:
    """The pipeline's retriever settings with the protocol's changes: no time decay or trend, the
    ``movielens_*`` choices, ``ease_lambda``; ``overrides`` (tuning trials) last."""
    values = {
        "enabled": tuple(settings.movielens_retrievers),
        "popularity_half_life_days": None,
        "popularity_trend_weight": 0.0,
        "itemcf_half_life_days": None,
        "content_half_life_days": None,
        "als_half_life_days": None,
        "itemcf_neighbours": settings.movielens_itemcf_neighbours,
        "itemcf_shrink": settings.movielens_itemcf_shrink,
        "als_factors": settings.movielens_als_factors,
        "als_regularization": settings.movielens_als_regularization,
        "als_alpha": settings.movielens_als_alpha,
        "als_iterations": settings.movielens_als_iterations,
    }
    return RetrieverConfig.from_settings(settings, **(values | overrides))


def ranker_params(settings: Settings, **overrides) -> RankerParams:
    """The pipeline's ranker settings with binary gains and the ``movielens_ranker_*`` choices."""
    values = {
        "label_gain": (0.0, 1.0),
        "eval_at": K,
        "objective": settings.movielens_ranker_objective,
        "num_leaves": settings.movielens_ranker_num_leaves,
        "learning_rate": settings.movielens_ranker_learning_rate,
        "min_data_in_leaf": settings.movielens_ranker_min_data_in_leaf,
    }
    return RankerParams.from_settings(settings, **(values | overrides))


def fit_retrievers(
    retrievers: Sequence[Retriever], seen: pd.DataFrame, items: pd.DataFrame
) -> list[Retriever]:
    """Fit on every rating of ``seen`` (as purchases; all before the fit's ``as_of``)."""
    interactions = pd.DataFrame(
        {
            USER_COL: seen[USER_COL].to_numpy(),
            ITEM_COL: seen[ITEM_COL].to_numpy(),
            EVENT_TYPE_COL: PURCHASE,
            EVENT_AT_COL: seen[EVENT_AT_COL].to_numpy(),
        }
    )
    as_of = interactions[EVENT_AT_COL].max() + pd.Timedelta(seconds=1)
    return [r.fit(interactions, items, as_of) for r in retrievers]


def add_features(frame: pd.DataFrame, seen: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """``ITEM_FEATURES`` and ``USER_FEATURES`` from the ratings the retrievers saw (shares of users
    or items, so they keep their scale from the folds to the whole train; mean rating; days from an
    item's first rating to the newest; release year) and ``<retriever>_z``: a retriever's score
    standardised over the user's candidates."""
    by_item = seen.groupby(ITEM_COL).agg(
        n=(RATING_COL, "size"), mean=(RATING_COL, "mean"), first=(EVENT_AT_COL, "min")
    )
    by_user = seen.groupby(USER_COL)[RATING_COL].agg(["size", "mean"])
    item = by_item.reindex(frame[ITEM_COL].to_numpy())
    user = by_user.reindex(frame[USER_COL].to_numpy())
    year = items.set_index(ITEM_COL)["item_year"].reindex(frame[ITEM_COL].to_numpy())
    age = seen[EVENT_AT_COL].max() - item["first"]
    values = {
        "item_share": item["n"].to_numpy() / len(by_user),
        "item_mean_rating": item["mean"].to_numpy(),
        "item_days_since_first": age.dt.total_seconds().to_numpy() / 86400,
        "item_year": year.to_numpy(),
        "user_share": user["size"].to_numpy() / len(by_item),
        "user_mean_rating": user["mean"].to_numpy(),
    }
    by_frame_user = frame.groupby(USER_COL, sort=False)
    for col in [c for c in frame.columns if c.endswith("_score")]:
        mean = by_frame_user[col].transform("mean")
        std = by_frame_user[col].transform("std").replace(0.0, np.nan)
        values[col.removesuffix("_score") + "_z"] = ((frame[col] - mean) / std).fillna(0.0)
    return frame.assign(**values)


def candidate_frame(
    config: RetrieverConfig,
    seen: pd.DataFrame,
    items: pd.DataFrame,
    users: np.ndarray,
    depth: int,
    seed: int,
) -> tuple[pd.DataFrame, list[str]]:
    """Retrievers of ``config`` fitted on ``seen``; the union of their top ``depth`` unseen items
    for ``users`` with the features; and the retriever names."""
    retrievers = fit_retrievers(config.build(seed), seen, items)
    frame = build_candidates(retrievers, users, depth, exclude=seen[[USER_COL, ITEM_COL]])
    return add_features(frame, seen, items), [r.name for r in retrievers]


def labelled(frame: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with label 1 for the (user, item) pairs of ``truth``, else 0; users without a
    positive candidate are dropped (their queries carry no LambdaRank gradient)."""
    pairs = pd.MultiIndex.from_frame(truth[[USER_COL, ITEM_COL]])
    label = pd.MultiIndex.from_frame(frame[[USER_COL, ITEM_COL]]).isin(pairs).astype(np.int64)
    frame = frame.assign(**{LABEL_COL: label})
    return frame[frame.groupby(USER_COL)[LABEL_COL].transform("max").to_numpy() > 0]


def ranker_training_frame(
    settings: Settings,
    train: pd.DataFrame,
    items: pd.DataFrame,
    *,
    by: Stratify,
    seed: int,
    config: RetrieverConfig,
) -> pd.DataFrame:
    """Cross-fitted learning-to-rank rows from ``train`` alone: ``train`` is dealt into
    ``movielens_ranker_folds`` stratified folds (seed + 1); for each fold, retrievers fitted on the
    other folds propose candidates to the fold's users, labelled by the fold's ratings. One query
    per fold and user; rows sorted by query then item."""
    n_folds = settings.movielens_ranker_folds
    folds = stratified_folds(train, n_folds, by=by, seed=seed + 1)
    frames = []
    for fold in range(n_folds):
        seen, held = train[folds != fold], train[folds == fold]
        users = np.sort(held[USER_COL].unique())
        frame, _ = candidate_frame(
            config, seen, items, users, settings.movielens_candidates, settings.seed
        )
        frames.append(labelled(frame, held).assign(fold=fold))
    frame = pd.concat(frames, ignore_index=True)
    frame[QUERY_COL] = frame.groupby(["fold", USER_COL], sort=True).ngroup().astype(np.int64)
    frame = frame.drop(columns="fold")
    return frame.sort_values([QUERY_COL, ITEM_COL], kind="mergesort", ignore_index=True)


def ranked(booster: lgb.Booster, feature_cols: Sequence[str], frame: pd.DataFrame) -> pd.DataFrame:
    """user_id, item_id, score of the ranker over a candidate frame."""
    return frame[[USER_COL, ITEM_COL]].assign(**{SCORE_COL: score(booster, frame, feature_cols)})


def retriever_recs(frame: pd.DataFrame, names: Sequence[str], depth: int) -> dict[str, pd.DataFrame]:
    """Each retriever alone, in its own order (score = -rank), from the candidate frame."""
    out = {}
    for name in names:
        rank = frame[f"{name}_rank"]
        rows = frame.loc[rank <= depth, [USER_COL, ITEM_COL]]
        out[name] = rows.assign(**{SCORE_COL: -rank[rows.index].to_numpy(dtype=float)})
    return out


def protocol_metrics(truth: pd.DataFrame, recs: pd.DataFrame) -> dict[str, float]:
    """nDCG@10, Precision@10, Recall@10, MAP (over |relevant|) and MAP@10, mean over truth users."""
    table = per_user_metrics(truth, recs, k=K)
    return {
        f"ndcg@{K}": float(table["ndcg"].mean()),
        f"precision@{K}": float(table["precision"].mean()),
        f"recall@{K}": float(table["recall"].mean()),
        "map": float(table["map_relevant"].mean()),
        f"map@{K}": float(table["map"].mean()),
    }


# --- the benchmark -------------------------------------------------------------------------------
def fit_and_evaluate(
    settings: Settings,
    train: pd.DataFrame,
    test: pd.DataFrame,
    items: pd.DataFrame,
    *,
    by: Stratify,
    seed: int,
    config: RetrieverConfig | None = None,
    params: RankerParams | None = None,
) -> dict:
    """The ranker trained inside ``train`` (:func:`ranker_training_frame`), then the retrievers
    refitted on all of ``train``: metrics of the ranker and each retriever on ``test``, with
    counts. The benchmark calls it on (train, test); tuning on a split of train."""
    config = config or retriever_config(settings)
    training = ranker_training_frame(settings, train, items, by=by, seed=seed, config=config)
    feature_cols = feature_columns(training)
    booster = train_ranker(training, feature_cols, params or ranker_params(settings), settings.seed)
    depth = settings.movielens_candidates
    users = np.sort(test[USER_COL].unique())
    frame, names = candidate_frame(config, train, items, users, depth, settings.seed)
    recs = {RANKER: ranked(booster, feature_cols, frame), **retriever_recs(frame, names, depth)}
    truth = test[[USER_COL, ITEM_COL]]
    found = pd.MultiIndex.from_frame(frame[[USER_COL, ITEM_COL]])
    return {
        "metrics": {name: protocol_metrics(truth, r) for name, r in recs.items()},
        "retrievers": names,
        "counts": {
            "ranker_training_rows": len(training),
            "ranker_training_queries": int(training[QUERY_COL].nunique()),
            "best_iteration": int(booster.best_iteration or booster.current_iteration()),
            "test_candidate_rows": len(frame),
            "test_ratings_among_candidates": round(
                float(pd.MultiIndex.from_frame(truth).isin(found).mean()), 4
            ),
        },
    }


def movielens_benchmark(
    settings: Settings, path: Path, *, seed: int = 42, stratify: Stratify = "item"
) -> dict:
    """Run the protocol (module docstring) on the MovieLens 100k folder ``path``: metrics of the
    ranker and of each retriever alone on the test part, the published table, counts, timings."""
    started = time.perf_counter()
    ratings, items = read_ratings(path), read_items(path)
    train, test = stratified_split(ratings, TRAIN_RATIO, by=stratify, seed=seed)
    result = fit_and_evaluate(settings, train, test, items, by=stratify, seed=seed)
    return {
        "protocol": {"k": K, "train_ratio": TRAIN_RATIO, "stratify": stratify, "seed": seed},
        "counts": {
            "ratings": len(ratings),
            "train": len(train),
            "test": len(test),
            "test_users": int(test[USER_COL].nunique()),
            "candidates_per_retriever": settings.movielens_candidates,
            "ranker_folds": settings.movielens_ranker_folds,
            **result["counts"],
        },
        "retrievers": result["retrievers"],
        "metrics": result["metrics"],
        "published": PUBLISHED,
        "seconds": round(time.perf_counter() - started, 1),
    }
