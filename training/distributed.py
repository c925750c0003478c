"""The ranker on a Dask cluster: ``lightgbm.DaskLGBMRanker`` (``RECOPS_TRAIN_BACKEND=dask``).

Same rows, features, labels, parameters, validation users and stopping rule as the local path
(:func:`recops.training.ranker.train_ranker`); only where the trees are grown differs. The
training rows (already sorted by query and item) are cut into one partition per worker at query
boundaries, so no query is split between workers. LightGBM's Dask interface does not stop early,
so the booster grows all ``num_boost_round`` trees; the validation NDCG@k after each is then
computed here on every validation query (:func:`ndcg_curve`, LightGBM's definition), and the
booster is cut at the iteration the local early-stopping rule would have kept.

``RECOPS_DASK_SCHEDULER`` names a running scheduler; without it a ``LocalCluster`` of
``RECOPS_DASK_WORKERS`` processes is started for the training and closed after it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from recops.core.constants import LABEL_COL
from recops.training.dataset import QUERY_COL
from recops.training.ranker import RankerParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partition:
    """Whole queries: features, labels and the size of each query, in row order."""

    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray


def query_partitions(frame: pd.DataFrame, feature_cols: Sequence[str], parts: int) -> list[Partition]:
    """``frame`` (sorted by query) in at most ``parts`` pieces of about equal rows, each cut at a
    query boundary; together they hold every row once, in order."""
    queries = frame[QUERY_COL].to_numpy()
    starts = np.flatnonzero(np.r_[True, queries[1:] != queries[:-1]])  # first row of each query
    sizes = np.diff(np.r_[starts, len(frame)])
    # the query boundary nearest each equal-rows target
    targets = np.arange(1, parts) * len(frame) / parts
    cuts = np.unique(starts[np.searchsorted(starts, targets).clip(1, len(starts) - 1)]) if parts > 1 else []
    bounds = [0, *[int(c) for c in cuts], len(frame)]
    features = frame[list(feature_cols)].to_numpy(dtype=np.float64)
    labels = frame[LABEL_COL].to_numpy()
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        first, last = np.searchsorted(starts, [lo, hi])
        out.append(Partition(features[lo:hi], labels[lo:hi], sizes[first:last]))
    return out


def best_iteration(curve: Sequence[float], rounds: int) -> int:
    """The iteration (1-based) LightGBM's early stopping keeps for a validation ``curve`` (higher is
    better): the first best, once ``rounds`` iterations in a row bring no improvement."""
    best, best_at = -np.inf, 0
    for i, value in enumerate(curve):
        if value > best:
            best, best_at = value, i
        elif i - best_at >= rounds:
            break
    return best_at + 1


@contextmanager
def dask_client(params: RankerParams) -> Iterator[object]:
    """A client of the scheduler the settings name, or of a local cluster started for this."""
    from distributed import Client, LocalCluster

    if params.dask_scheduler:
        with Client(params.dask_scheduler) as client:
            yield client
        return
    environ = dict(os.environ)
    try:
        with (
            LocalCluster(
                n_workers=params.dask_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.WARNING,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    finally:  # the nanny leaves its workers' variables (OMP_NUM_THREADS, ...) in this process
        os.environ.clear()
        os.environ.update(environ)


def _collections(parts: list[Partition]):
    from dask import array as da

    features = da.concatenate([da.from_array(p.features, chunks=p.features.shape) for p in parts])
    labels = da.concatenate([da.from_array(p.labels, chunks=len(p.labels)) for p in parts])
    groups = da.concatenate([da.from_array(p.groups, chunks=len(p.groups)) for p in parts])
    return features, labels, groups


def ndcg_curve(booster: lgb.Booster, part: Partition, k: int, label_gain: Sequence[float]) -> np.ndarray:
    """Mean NDCG@k over the queries of ``part`` after each boosting iteration, as LightGBM's
    ``ndcg`` metric computes it (gains by ``label_gain``, ties in their row order, a query without
    a relevant row counts 1). Each tree is scored once and added to the running scores."""
    labels = part.labels.astype(np.int64)
    query = np.repeat(np.arange(len(part.groups)), part.groups)
    starts = np.r_[0, np.cumsum(part.groups)[:-1]]
    gain = np.asarray(label_gain, dtype=np.float64)[labels]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    rows = np.arange(len(labels))

    def dcg(order: np.ndarray) -> np.ndarray:
        rank = rows - starts[query[order]]  # position of each row within its query
        top = rank < k
        return np.bincount(query[order][top], weights=gain[order][top] * discount[rank[top]],
                           minlength=len(part.groups))

    ideal = dcg(np.lexsort((rows, -gain, query)))
    scores = np.zeros(len(labels))
    curve = []
    for i in range(booster.current_iteration()):
        scores += booster.predict(part.features, start_iteration=i, num_iteration=1, raw_score=True)
        ndcg = np.divide(dcg(np.lexsort((rows, -scores, query))), ideal, out=np.ones_like(ideal), where=ideal > 0)
        curve.append(float(ndcg.mean()))
    return np.asarray(curve)


def train_ranker_dask(
    train: pd.DataFrame, valid: pd.DataFrame, feature_cols: Sequence[str], params: RankerParams, seed: int
) -> lgb.Booster:
    """Train on the cluster; ``train``/``valid`` are the local path's rows after its user split.
    The validation curve is computed here, on every validation query, after the training."""
    with dask_client(params) as client:
        workers = max(1, len(client.scheduler_info()["workers"]))  # type: ignore[attr-defined]
        lgb_params = params.lgb_params(seed)
        for key in ("metric", "eval_at", "num_threads"):  # no metric on the workers; lightgbm.dask
            lgb_params.pop(key)  # gives each worker its own thread count
        model = lgb.DaskLGBMRanker(client=client, n_estimators=params.num_boost_round, **lgb_params)
        x, y, group = _collections(query_partitions(train, feature_cols, workers))
        model.fit(x, y, group=group, feature_name=list(feature_cols))
        booster = model.booster_
    if not len(valid):
        return booster
    curve = ndcg_curve(booster, query_partitions(valid, feature_cols, 1)[0], params.eval_at, params.label_gain)
    keep = best_iteration(curve, params.early_stopping_rounds)
    log.info("dask ranker: %d workers, best iteration %d of %d", workers, keep, len(curve))
    cut = lgb.Booster(model_str=booster.model_to_string(num_iteration=keep))
    cut.best_iteration = keep
    return cut
