"""Closed-window tuning of the retriever and ranker settings: ``recops tune CUTOFF``.

For an evaluation cutoff T, the folds sit wholly before it (:func:`closed_folds`): fold k cuts at
T - window - k * step days and is judged on the purchases of its own ``window`` days, so its test
window ends at T - k * step <= T. Nothing at or after T is read: the interactions are cut at T
first. Two stages, both deterministic (fixed grids, fixed order, fixed seeds):

1. each retriever alone, for its current settings and every point of its grid
   (:data:`RETRIEVER_GRID`), fitted on the fold's history and scored (NDCG@k of its own top k,
   protocol v1, the fold's window) on every fold; the best mean wins (ties keep the earlier point,
   the current settings first);
2. with those retrievers, each fold's point-in-time training set and holdout are built once, then
   a coordinate search over :data:`RANKER_GRID` (one setting at a time, its current value and the
   grid's, each keeping the best value so far; ties keep the current value) trains the ranker per
   trial. The chosen settings' score is therefore the best of all ranker trials.

Every trial is an MLflow run (experiment ``<experiment_name>-tuning``) under one parent run, with
its settings as params and its per-fold and mean NDCG as metrics. The chosen settings are written
to ``Settings.tuned_settings_path`` (:mod:`recops.training.tuned`), which the pipeline applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recops.core.constants import EVENT_AT_COL
from recops.core.settings import Settings
from recops.training.dataset import FeatureFetcher, TrainingDataError, feature_columns
from recops.training.evaluation import Split, evaluate, protocol_split
from recops.training.events import TimeLike, check_interactions, to_timestamp
from recops.training.ranker import train_ranker
from recops.training.train import (
    Holdout,
    TrainConfig,
    build_holdout,
    build_training_set,
    rank_candidates,
)
from recops.training.tuned import write_tuned

log = logging.getLogger(__name__)

RETRIEVER_GRID: dict[str, dict[str, tuple]] = {  # retriever -> setting -> values (current first)
    "popularity": {"popularity_half_life_days": (14.0, 7.0, 30.0), "popularity_trend_weight": (0.5, 0.0)},
    "repeat": {"repeat_half_life_days": (180.0, 90.0, 365.0), "repeat_popularity_weight": (2.0, 1.0, 4.0)},
    "itemcf": {"itemcf_half_life_days": (30.0, 15.0, 90.0), "itemcf_shrink": (5.0, 20.0)},
    "als": {
        "als_factors": (128, 64),
        "als_regularization": (0.05, 0.5),
        "als_half_life_days": (15.0, 60.0),
    },
    "content": {"content_half_life_days": (120.0, 30.0)},
}
RANKER_GRID: dict[str, tuple] = {  # searched one after the other
    "ranker_learning_rate": (0.02, 0.05),
    "ranker_num_leaves": (15, 31, 63),
    "ranker_min_data_in_leaf": (20, 100),
    "ranker_lambda_l2": (1.0, 10.0),
    "ranker_feature_fraction": (0.7, 0.9),
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Fold:
    """One tuning fold: history before ``cutoff``, test purchases in ``[cutoff, end)``."""

    cutoff: pd.Timestamp
    end: pd.Timestamp

    @property
    def window_days(self) -> int:
        return (self.end - self.cutoff).days

    def split(self, interactions: pd.DataFrame) -> Split:
        """The fold's protocol-v1 split (closed window); an error if nobody is evaluated."""
        split = protocol_split(interactions, self.cutoff, self.window_days)
        if not len(split.users):
            raise TuningError(f"fold {self.as_dict()}: no evaluated users")
        return split

    def as_dict(self) -> dict[str, str]:
        return {"cutoff": self.cutoff.date().isoformat(), "end": self.end.date().isoformat()}


class TuningError(ValueError):
    """The tuning cannot run (e.g. a fold without evaluated users)."""


def closed_folds(cutoff: TimeLike, *, n_folds: int, window_days: int, step_days: int) -> list[Fold]:
    """Fold k (0-based) cuts at ``cutoff - window_days - k * step_days`` days and ends
    ``window_days`` later: every fold's test window closes at or before ``cutoff``."""
    end_of_all = to_timestamp(cutoff)
    folds = []
    for k in range(n_folds):
        start = end_of_all - pd.Timedelta(days=window_days + k * step_days)
        folds.append(Fold(start, start + pd.Timedelta(days=window_days)))
    assert all(f.end <= end_of_all for f in folds)
    return folds


def grid(values: dict[str, tuple]) -> list[dict]:
    """Every combination of ``values`` (the first setting varies slowest)."""
    combos: list[dict] = [{}]
    for name, options in values.items():
        combos = [combo | {name: option} for combo in combos for option in options]
    return combos


class TrialLog:
    """Every trial as an MLflow run under one parent run (client API only, see core.registry)."""

    def __init__(self, settings: Settings, *, cutoff: pd.Timestamp, folds: Sequence[Fold]) -> None:
        from recops.core.registry import client
        from recops.training.registry import ensure_experiment

        self.client = client(settings)
        experiment = settings.model_copy(update={"experiment_name": f"{settings.experiment_name}-tuning"})
        self.experiment_id = ensure_experiment(experiment)
        self.parent = self.client.create_run(
            self.experiment_id, run_name=f"tune {cutoff.date().isoformat()}"
        ).info.run_id
        params = {"cutoff": cutoff.date().isoformat(), "seed": settings.seed}
        params |= {f"fold{i}": f"{f.cutoff.date()}..{f.end.date()}" for i, f in enumerate(folds)}
        for key, value in params.items():
            self.client.log_param(self.parent, key, str(value))
        self.n = 0

    def trial(self, stage: str, values: dict[str, Any], scores: Sequence[float], metric: str) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.n += 1
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{stage} {self.n}",
            tags={"mlflow.parentRunId": self.parent, "recops.tuning.stage": stage},
        ).info.run_id
        now = int(time.time() * 1000)
        name = metric.replace("@", "_at_")
        metrics = [Metric(f"{name}.fold{i}", float(s), now, 0) for i, s in enumerate(scores)]
        metrics.append(Metric(f"{name}.mean", float(np.mean(scores)), now, 0))
        self.client.log_batch(
            run,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in values.items()],
            tags=[RunTag("recops.tuning.trial", str(self.n))],
        )
        self.client.set_terminated(run)

    def finish(self, chosen: dict[str, Any], score: float, metric: str) -> str:
        self.client.log_dict(self.parent, {"chosen": chosen}, "tuned_settings.json")
        self.client.log_metric(self.parent, f"{metric.replace('@', '_at_')}.mean", float(score))
        self.client.set_terminated(self.parent)
        return self.parent


def retriever_alone(
    settings: Settings, name: str, splits: Sequence[Split], items: pd.DataFrame | None
) -> list[float]:
    """NDCG@k of retriever ``name`` alone (its own top k) on each fold's split."""
    cfg = TrainConfig.from_settings(settings.model_copy(update={"retrievers": (name,)}))
    metric = f"ndcg@{cfg.k}"
    scores = []
    for split in splits:
        retriever = cfg.make_retrievers()[0].fit(split.history, items, split.cutoff)
        scores.append(evaluate(retriever.recommend(split.users, cfg.k), split, cfg.k)[metric])
    return scores


def tune_retrievers(
    settings: Settings,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    folds: Sequence[Fold],
    trials: TrialLog | None,
    progress: Progress,
    grids: dict[str, dict[str, tuple]] = RETRIEVER_GRID,
) -> dict[str, Any]:
    """Stage 1 (module docstring): the best grid point of each enabled retriever."""
    chosen: dict[str, Any] = {}
    metric = f"ndcg@{settings.k}"
    splits = [fold.split(interactions) for fold in folds]  # once: every trial reads the same ones
    for name, values in grids.items():
        if name not in settings.retrievers:
            continue
        best: tuple[float, dict] | None = None
        current = {n: getattr(settings, n) for n in values}
        for combo in [current, *(c for c in grid(values) if c != current)]:
            scores = retriever_alone(settings.model_copy(update=combo), name, splits, items)
            mean = float(np.mean(scores))
            if trials is not None:
                trials.trial(name, combo, scores, metric)
            progress(f"{name} {combo}: {metric} {mean:.4f}")
            if best is None or mean > best[0]:
                best = (mean, combo)
        chosen |= best[1]
    return chosen


@dataclass
class FoldData:
    """A fold's training set and holdout, built once for every ranker trial."""

    fold: Fold
    frame: pd.DataFrame
    holdout: Holdout
    best_retriever: tuple[str, float]


def fold_data(
    settings: Settings,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    folds: Sequence[Fold],
    fetch_features: FeatureFetcher | None,
    progress: Progress,
) -> list[FoldData]:
    """Each fold's point-in-time training set (label windows before the fold's cutoff) and its
    closed holdout, with the chosen retrievers."""
    out = []
    for fold in folds:
        cfg = TrainConfig.from_settings(settings).model_copy(
            update={"evaluation_window_days": fold.window_days}
        )
        try:
            frame = build_training_set(cfg, interactions, items, fold.cutoff, fetch_features)
        except TrainingDataError as exc:
            raise TuningError(
                f"fold {fold.as_dict()}: {exc} (each fold needs {cfg.label_windows} label window(s) of "
                f"{cfg.label_window_days} days of history before its cutoff; fewer RECOPS_TUNING_FOLDS or "
                "RECOPS_LABEL_WINDOWS, or a later --cutoff)"
            ) from exc
        holdout = build_holdout(cfg, interactions, items, fold.cutoff, fetch_features)
        metric = f"ndcg@{cfg.k}"
        alone = {n: evaluate(r, holdout.split, cfg.k)[metric] for n, r in holdout.retriever_recs().items()}
        best = max(alone.items(), key=lambda kv: kv[1])
        progress(f"fold {fold.as_dict()}: {len(frame):,} training rows, best retriever {best[0]} {best[1]:.4f}")
        out.append(FoldData(fold, frame, holdout, best))
    return out


def ranker_scores(settings: Settings, data: Sequence[FoldData]) -> list[float]:
    """NDCG@k of the ranker trained with ``settings`` on each fold's training set."""
    cfg = TrainConfig.from_settings(settings)
    scores = []
    for fold in data:
        cols = feature_columns(fold.frame)
        booster = train_ranker(fold.frame, cols, cfg.ranker, cfg.seed)
        recs = rank_candidates(booster, cols, fold.holdout.frame)
        scores.append(evaluate(recs, fold.holdout.split, cfg.k)[f"ndcg@{cfg.k}"])
    return scores


def tune_ranker(
    settings: Settings,
    data: Sequence[FoldData],
    trials: TrialLog | None,
    progress: Progress,
    values: dict[str, tuple] = RANKER_GRID,
) -> tuple[dict[str, Any], float]:
    """Stage 2 (module docstring): coordinate search over :data:`RANKER_GRID`."""
    metric = f"ndcg@{settings.k}"
    chosen: dict[str, Any] = {}
    seen: dict[tuple, float] = {}
    best_score: float | None = None
    for name, options in values.items():
        current = getattr(settings.model_copy(update=chosen), name)
        best_value, best_score = current, None
        for option in (current, *(o for o in options if o != current)):  # the current value first
            trial = chosen | {name: option}
            key = tuple(sorted(trial.items()))
            if key not in seen:
                scores = ranker_scores(settings.model_copy(update=trial), data)
                seen[key] = float(np.mean(scores))
                if trials is not None:
                    trials.trial("ranker", trial, scores, metric)
                progress(f"ranker {trial}: {metric} {seen[key]:.4f}")
            if best_score is None or seen[key] > best_score:
                best_value, best_score = option, seen[key]
        chosen[name] = best_value
    return chosen, float(best_score)


def tune(
    settings: Settings,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    *,
    fetch_features: FeatureFetcher | None = None,
    log_trials: bool = True,
    write: bool = True,
    progress: Progress | None = None,
    retriever_grid: dict[str, dict[str, tuple]] = RETRIEVER_GRID,
    ranker_grid: dict[str, tuple] = RANKER_GRID,
) -> dict[str, Any]:
    """Both stages on closed folds before ``cutoff``; writes and returns the result (``settings``:
    the chosen values, ``folds``, ``retriever_baselines`` per fold, ``score``, ``trials``). The
    grids default to :data:`RETRIEVER_GRID` and :data:`RANKER_GRID`."""
    started = time.perf_counter()
    say = progress or (lambda text: log.info("tune: %s", text))
    cutoff = to_timestamp(cutoff)
    interactions = check_interactions(interactions)
    interactions = interactions[interactions[EVENT_AT_COL] < cutoff]  # nothing at or after T
    folds = closed_folds(
        cutoff, n_folds=settings.tuning_folds, window_days=settings.tuning_window_days, step_days=settings.tuning_step_days
    )
    trials = TrialLog(settings, cutoff=cutoff, folds=folds) if log_trials else None
    chosen = tune_retrievers(settings, interactions, items, folds, trials, say, retriever_grid)
    tuned = settings.model_copy(update=chosen)
    data = fold_data(tuned, interactions, items, folds, fetch_features, say)
    ranker_chosen, score = tune_ranker(tuned, data, trials, say, ranker_grid)
    chosen |= ranker_chosen
    result = {
        "cutoff": cutoff.date().isoformat(),
        "folds": [f.as_dict() for f in folds],
        "metric": f"ndcg@{settings.k}",
        "score": round(score, 4),
        "retriever_baselines": [
            {**d.fold.as_dict(), "retriever": d.best_retriever[0], "ndcg": round(d.best_retriever[1], 4)} for d in data
        ],
        "settings": chosen,
        "seed": settings.seed,
        "trials": trials.n if trials is not None else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if trials is not None:
        result["mlflow_run_id"] = trials.finish(chosen, score, result["metric"])
    if write:
        result["path"] = str(write_tuned(settings.tuned_settings_path, result))
    return result
