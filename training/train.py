"""Train the LambdaRank ranker over the retrievers' candidates and evaluate it on protocol v1.

``train_and_evaluate`` is hermetic: it takes DataFrames and a feature-fetching callable
(``entity_df[user_id, item_id, event_timestamp] -> same rows + feature columns``; the pipeline
plugs Feast's ``get_historical_features`` in, tests a plain function). ``fit_serving_bundle``
refits the retrievers on all interactions for the API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recops.core.constants import ITEM_COL, LABEL_COL, RANK_COL, SCORE_COL, USER_COL
from recops.core.settings import Settings
from recops.training.artifacts import report, score_holdout, write_run_artifacts
from recops.training.dataset import (
    QUERY_COL,
    FeatureFetcher,
    HistoryStats,
    attach_store_features,
    candidate_frame,
    feature_columns,
)
from recops.training.evaluation import Comparison, Split, compare_models, protocol_split
from recops.training.events import DAY, TimeLike, check_interactions, to_timestamp
from recops.training.ranker import RankerParams, feature_importance, score, train_ranker
from recops.training.retriever_config import RetrieverConfig
from recops.training.retrievers import (
    Popularity,
    Retriever,
)
from recops.training.windows import iter_training_partitions

log = logging.getLogger(__name__)

__all__ = [
    "Holdout",
    "RecommenderBundle",
    "TrainConfig",
    "TrainResult",
    "build_holdout",
    "build_training_set",
    "iter_training_set",
    "evaluate_booster",
    "fit_serving_bundle",
    "rank_candidates",
    "score_holdout",
    "train_and_evaluate",
    "train_from_training_set",
    "train_on_frame",
]

RANKER = "ranker"
CONTENT_POP = "content_pop"


class TrainConfig(BaseModel):
    """Everything ``train_and_evaluate`` needs besides data; build it with :meth:`from_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(ge=1)
    candidates_per_retriever: int = Field(ge=1)
    label_window_days: int = Field(ge=1)
    label_windows: int = Field(ge=1)
    curve_max_k: int = Field(ge=1)
    seed: int
    ranker: RankerParams
    retrievers: RetrieverConfig
    evaluation_window_days: int | None = Field(default=None, ge=1)  # None: open test window
    partition_users: int = Field(default=5_000, ge=1)  # users per training-set partition

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> TrainConfig:
        """Everything from ``Settings`` (the one place defaults live); ``overrides`` replace
        fields (e.g. a ``RankerParams`` of a tuning trial)."""
        values = {
            "k": settings.k,
            "candidates_per_retriever": settings.candidates_per_retriever,
            "label_window_days": settings.label_window_days,
            "label_windows": settings.label_windows,
            "curve_max_k": settings.curve_max_k,
            "seed": settings.seed,
            "ranker": RankerParams.from_settings(settings),
            "retrievers": RetrieverConfig.from_settings(settings),
            "evaluation_window_days": settings.evaluation_window_days,
            "partition_users": settings.training_partition_users,
        }
        return cls(**(values | overrides))

    def make_retrievers(self) -> list[Retriever]:
        """Fresh, unfitted retrievers (seeded with ``seed``)."""
        return self.retrievers.build(self.seed)

    @property
    def candidate_depth(self) -> int:
        """Per-retriever depth in training, evaluation and serving alike: at least
        ``candidates_per_retriever``, and deep enough for the metric-by-K curve."""
        return max(self.candidates_per_retriever, self.curve_max_k, self.k)


@dataclass
class Holdout:
    """Protocol-v1 holdout at a cutoff: the split, retrievers fitted on history, the evaluated
    users' candidate frame with features (event_timestamp = cutoff), and cold-user lists."""

    split: Split
    retrievers: list[Retriever]
    frame: pd.DataFrame
    cold_recs: dict[str, pd.DataFrame]
    depth: int

    def retriever_recs(self) -> dict[str, pd.DataFrame]:
        """Each retriever alone on the evaluated users (its own order: score = -rank)."""
        out = {}
        for r in self.retrievers:
            rank = self.frame[f"{r.name}_rank"]
            rows = self.frame.loc[rank <= self.depth, [USER_COL, ITEM_COL]]
            out[r.name] = rows.assign(**{SCORE_COL: -rank[rows.index].to_numpy(dtype=float)})
        return out


@dataclass
class TrainResult:
    """The trained booster and everything worth logging about it."""

    booster: lgb.Booster
    feature_cols: list[str]
    cutoff: pd.Timestamp
    metrics: dict[str, dict[str, float]]
    cold_metrics: dict[str, dict[str, float]]
    metrics_by_k: pd.DataFrame
    feature_importance: pd.DataFrame
    row_counts: dict[str, int]
    timings: dict[str, float]
    config: TrainConfig
    holdout: Holdout = field(repr=False)


def rank_candidates(
    booster: lgb.Booster, feature_cols: Sequence[str], frame: pd.DataFrame
) -> pd.DataFrame:
    """user_id, item_id, score of the ranker over a candidate frame, best first per user."""
    scored = frame[[USER_COL, ITEM_COL]].assign(**{SCORE_COL: score(booster, frame, feature_cols)})
    return scored.sort_values(
        [USER_COL, SCORE_COL, ITEM_COL], ascending=[True, False, True], ignore_index=True
    )


def _cold_recs(
    retrievers: Sequence[Retriever], users: np.ndarray, n: int
) -> dict[str, pd.DataFrame]:
    """Cold-user lists: popularity (also the ranker's fallback) and content (from views/carts, if
    any) topped up with popularity by reciprocal-rank fusion."""
    by_name = {r.name: r for r in retrievers}
    popular = by_name["popularity"].recommend(users, n) if "popularity" in by_name else None
    out = {}
    if popular is not None:
        out[RANKER] = out["popularity"] = popular
        if "content" in by_name:
            content = by_name["content"].recommend(users, n)
            fused = pd.concat([popular, content])
            fused = fused.assign(**{SCORE_COL: 1.0 / fused[RANK_COL]})
            out[CONTENT_POP] = fused.groupby([USER_COL, ITEM_COL], as_index=False)[SCORE_COL].sum()
    return out


def build_holdout(
    cfg: TrainConfig,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None,
) -> Holdout:
    """Retrievers and stats fitted on history < cutoff; candidates and features for the
    evaluated users at ``event_timestamp = cutoff`` (test window: ``cfg.evaluation_window_days``)."""
    split = protocol_split(interactions, cutoff, cfg.evaluation_window_days)
    retrievers = [r.fit(split.history, items, split.cutoff) for r in cfg.make_retrievers()]
    stats = HistoryStats.fit(split.history, items, split.cutoff)
    depth = cfg.candidate_depth
    frame = candidate_frame(retrievers, stats, split.users, depth, split.cutoff)
    frame = attach_store_features(frame, fetch_features)
    cold = _cold_recs(retrievers, split.cold_users, depth)
    return Holdout(split=split, retrievers=retrievers, frame=frame, cold_recs=cold, depth=depth)


def evaluate_booster(
    booster: lgb.Booster, feature_cols: Sequence[str], holdout: Holdout, cfg: TrainConfig
) -> Comparison:
    """Protocol-v1 comparison of the ranker and each retriever alone on the holdout's users."""
    recs = {
        RANKER: rank_candidates(booster, feature_cols, holdout.frame),
        **holdout.retriever_recs(),
    }
    return compare_models(
        recs, holdout.split, k=cfg.k, ks=range(1, cfg.curve_max_k + 1), cold_recs=holdout.cold_recs
    )


def iter_training_set(
    cfg: TrainConfig,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None = None,
    impressions: pd.DataFrame | None = None,
) -> Iterator[pd.DataFrame]:
    """The point-in-time training frame of ``cfg.label_windows`` windows before ``cutoff``, in
    partitions of at most ``cfg.partition_users`` queries, in query order (``impressions``: the
    served-list log, for explicit negatives)."""
    return iter_training_partitions(
        interactions,
        items,
        cutoff,
        label_window_days=cfg.label_window_days,
        label_windows=cfg.label_windows,
        n_candidates=cfg.candidate_depth,
        retriever_factory=cfg.make_retrievers,
        fetch_features=fetch_features,
        impressions=impressions,
        partition_users=cfg.partition_users,
    )


def build_training_set(
    cfg: TrainConfig,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None = None,
    impressions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The whole training frame of :func:`iter_training_set` (the same whatever the partition size)."""
    parts = iter_training_set(cfg, interactions, items, cutoff, fetch_features, impressions)
    return pd.concat(list(parts), ignore_index=True)


def _fit_ranker(cfg: TrainConfig, training_set: pd.DataFrame | Path) -> tuple[lgb.Booster, list[str], dict[str, int]]:
    """The ranker, its feature columns and the training set's counts. A training set given as a
    Parquet path is read here and released on return, before the holdout is built."""
    frame = pd.read_parquet(training_set) if isinstance(training_set, Path) else training_set
    feature_cols = feature_columns(frame)
    counts = {
        "training_rows": len(frame),
        "training_queries": int(frame[QUERY_COL].nunique()),
        "training_positives": int((frame[LABEL_COL] > 0).sum()),
        "training_users": int(frame[USER_COL].nunique()),
    }
    return train_ranker(frame, feature_cols, cfg.ranker, cfg.seed), feature_cols, counts


def train_on_frame(
    cfg: TrainConfig,
    frame: pd.DataFrame | Path,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None = None,
) -> TrainResult:
    """Train the ranker on a training frame (or its Parquet file), then evaluate it and each
    retriever on protocol v1 at ``cutoff``: retrievers refitted on history < cutoff, features at
    event_timestamp = cutoff."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    interactions = check_interactions(interactions)
    cutoff = to_timestamp(cutoff)
    booster, feature_cols, training_counts = _fit_ranker(cfg, frame)
    lap("train_ranker_s")
    holdout = build_holdout(cfg, interactions, items, cutoff, fetch_features)
    lap("build_holdout_s")
    comparison = evaluate_booster(booster, feature_cols, holdout, cfg)
    lap("evaluate_s")
    row_counts = {
        **training_counts,
        "history_events": len(holdout.split.history),
        "eval_users": len(holdout.split.users),
        "cold_users": len(holdout.split.cold_users),
        "eval_candidate_rows": len(holdout.frame),
        "catalog_items": holdout.split.n_items,
        "best_iteration": int(booster.best_iteration or booster.current_iteration()),
    }
    log.info("ranker trained: %s", row_counts)
    return TrainResult(
        booster=booster,
        feature_cols=feature_cols,
        cutoff=cutoff,
        metrics=comparison.metrics,
        cold_metrics=comparison.cold_metrics,
        metrics_by_k=comparison.by_k,
        feature_importance=feature_importance(booster),
        row_counts=row_counts,
        timings=timings,
        config=cfg,
        holdout=holdout,
    )


def train_and_evaluate(
    cfg: TrainConfig,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None = None,
) -> TrainResult:
    """Build the training frame from label windows before ``cutoff``, train the ranker, and
    evaluate it and each retriever on protocol v1 at ``cutoff``."""
    started = time.perf_counter()
    interactions = check_interactions(interactions)
    frame = build_training_set(cfg, interactions, items, cutoff, fetch_features)
    built = time.perf_counter()
    result = train_on_frame(cfg, frame, interactions, items, cutoff, fetch_features)
    result.timings = {
        "build_training_set_s": round(built - started, 3),
        **result.timings,
        "total_s": round(time.perf_counter() - started, 3),
    }
    return result


def train_from_training_set(
    cfg: TrainConfig,
    frame: pd.DataFrame | Path,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    fetch_features: FeatureFetcher | None = None,
    *,
    out_dir: Path,
) -> dict:
    """The pipeline's train step: :func:`train_on_frame`, the serving bundle on all interactions,
    and the run folder's files (:mod:`recops.training.artifacts`). Returns the JSON-able report."""
    result = train_on_frame(cfg, frame, interactions, items, cutoff, fetch_features)
    started = time.perf_counter()
    bundle = fit_serving_bundle(cfg, interactions, items)
    result.timings["fit_serving_bundle_s"] = round(time.perf_counter() - started, 3)
    write_run_artifacts(result, bundle, Path(out_dir))
    return report(result)


# --- the serving bundle --------------------------------------------------------------------------
CONTEXT_REASON = "similar to the item you are viewing"


@dataclass
class RecommenderBundle:
    """Retrievers fitted on all interactions plus the derived-feature stats and item titles: what
    :mod:`recops.training.publish` turns into the published candidates. Picklable (joblib)."""

    retrievers: list[Retriever]
    stats: HistoryStats
    as_of: pd.Timestamp
    n_candidates: int
    titles: dict = field(repr=False)

    def is_known(self, user_id: object) -> bool:
        """Whether any personal retriever knows the user (else the popularity fallback serves)."""
        return any(r.knows(user_id) for r in self.retrievers if not isinstance(r, Popularity))


def _titles(items: pd.DataFrame | None, catalogue: pd.Index) -> dict:
    if items is None or items.empty:
        return {}
    column = next((c for c in ("title", "description", "item_text") if c in items.columns), None)
    if column is None:
        return {}
    titles = items.dropna(subset=[column]).drop_duplicates(ITEM_COL).set_index(ITEM_COL)[column]
    return titles[titles.index.isin(catalogue)].astype(str).str.strip().to_dict()


def fit_serving_bundle(
    cfg: TrainConfig, interactions: pd.DataFrame, items: pd.DataFrame | None
) -> RecommenderBundle:
    """Retrievers and stats fitted on *all* interactions, as of the day after the newest event."""
    interactions = check_interactions(interactions)
    as_of = interactions["event_at"].max().normalize() + DAY
    retrievers = [r.fit(interactions, items, as_of) for r in cfg.make_retrievers()]
    catalogue = retrievers[0].item_index if retrievers else pd.Index([])
    return RecommenderBundle(
        retrievers=retrievers,
        stats=HistoryStats.fit(interactions, items, as_of),
        as_of=as_of,
        n_candidates=cfg.candidate_depth,
        titles=_titles(items, catalogue),
    )
