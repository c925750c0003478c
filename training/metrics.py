"""Top-K ranking metrics with one shared signature (as in recommenders' ``python_evaluation``).

``truth`` holds the relevant (user, item) pairs (duplicates are collapsed: binary gain); ``pred``
holds scored (user, item) pairs. Per user the predictions are ordered by score descending, then by
item id ascending (deterministic ties), and cut at ``k``. Every metric is the mean over the users in
``truth``; a user in ``truth`` without predictions scores 0. Users only in ``pred`` are ignored.

* NDCG@k  = DCG / IDCG, DCG = sum over hits of 1/log2(rank+1), IDCG over min(|relevant|, k) hits
* Recall@k = hits / |relevant|
* HitRate@k = 1 if at least one hit
* MAP@k   = sum over hits of precision@rank, divided by min(|relevant|, k)

:func:`per_user_metrics` also has ``precision`` = hits / k (also when fewer than k items are
predicted) and ``map_relevant`` = the MAP@k sum divided by |relevant| (Recommenders' ``map``, and
its ``map_at_k`` before release 1.2, which produced the published MovieLens table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.core.constants import ITEM_COL, RANK_COL, SCORE_COL, USER_COL

METRICS = ("ndcg", "recall", "hitrate", "map")


class MetricInputError(ValueError):
    """Bad input to a metric: missing columns, k < 1, empty truth."""


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MetricInputError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def _check_columns(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MetricInputError(f"{name} lacks columns {missing}")


def rank_predictions(
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int | None = None,
) -> pd.DataFrame:
    """(user, item, rank) per user by score desc then item id asc, optionally cut at ``k``.

    A (user, item) pair predicted twice keeps its best score."""
    _check_columns(pred, "pred", [col_user, col_item, col_score])
    ranked = pred[[col_user, col_item, col_score]].sort_values(
        [col_user, col_score, col_item], ascending=[True, False, True], kind="mergesort"
    )
    ranked = ranked.drop_duplicates([col_user, col_item], keep="first")
    ranked[RANK_COL] = ranked.groupby(col_user, sort=False).cumcount().to_numpy() + 1
    if k is not None:
        ranked = ranked[ranked[RANK_COL] <= k]
    return ranked[[col_user, col_item, RANK_COL]].reset_index(drop=True)


def _relevant(truth: pd.DataFrame, col_user: str, col_item: str) -> pd.DataFrame:
    _check_columns(truth, "truth", [col_user, col_item])
    relevant = truth[[col_user, col_item]].drop_duplicates()
    if relevant.empty:
        raise MetricInputError("truth is empty: no user to average over")
    return relevant


@dataclass(frozen=True)
class _Hits:
    """The relevant items found in ranked predictions, as arrays over user positions."""

    users: pd.Index  # users in truth, sorted
    n_relevant: np.ndarray  # per user
    user: np.ndarray  # per hit: position of its user
    rank: np.ndarray  # per hit: its rank
    ordinal: np.ndarray  # per hit: 1 for the user's best-ranked hit, 2 for the next, ...

    @classmethod
    def find(
        cls, relevant: pd.DataFrame, ranked: pd.DataFrame, col_user: str, col_item: str
    ) -> _Hits:
        users = pd.Index(np.sort(relevant[col_user].unique()))
        n_relevant = np.bincount(users.get_indexer(relevant[col_user]), minlength=len(users))
        hits = ranked.merge(relevant, on=[col_user, col_item], how="inner")
        hits = hits.sort_values([col_user, RANK_COL], kind="mergesort")
        user = users.get_indexer(hits[col_user])
        ordinal = hits.groupby(col_user, sort=False).cumcount().to_numpy() + 1
        return cls(users, n_relevant, user, hits[RANK_COL].to_numpy(dtype=np.float64), ordinal)

    def table(self, k: int) -> pd.DataFrame:
        """Per-user n_relevant, n_hits, ndcg, recall, precision, hitrate, map, map_relevant at
        ``k``."""
        top = self.rank <= k
        user, rank, size = self.user[top], self.rank[top], len(self.users)
        n_hits = np.bincount(user, minlength=size).astype(np.float64)
        dcg = np.bincount(user, weights=1.0 / np.log2(rank + 1.0), minlength=size)
        # precision at the rank of the j-th hit is j / rank
        sum_precision = np.bincount(user, weights=self.ordinal[top] / rank, minlength=size)
        ideal_hits = np.minimum(self.n_relevant, k)
        ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
        return pd.DataFrame(
            {
                "n_relevant": self.n_relevant,
                "n_hits": n_hits,
                "ndcg": dcg / ideal[ideal_hits],
                "recall": n_hits / self.n_relevant,
                "precision": n_hits / k,
                "hitrate": (n_hits > 0).astype(np.float64),
                "map": sum_precision / ideal_hits,
                "map_relevant": sum_precision / self.n_relevant,
            },
            index=self.users.rename(None),
        )


def per_user_metrics(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> pd.DataFrame:
    """One row per user in ``truth`` with n_relevant, n_hits and every metric at ``k``."""
    k = _check_k(k)
    relevant = _relevant(truth, col_user, col_item)
    ranked = rank_predictions(pred, col_user=col_user, col_item=col_item, col_score=col_score, k=k)
    return _Hits.find(relevant, ranked, col_user, col_item).table(k)


def _mean_metric(name: str, truth, pred, col_user, col_item, col_score, k) -> float:
    table = per_user_metrics(
        truth, pred, col_user=col_user, col_item=col_item, col_score=col_score, k=k
    )
    return float(table[name].mean())


def ndcg_at_k(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> float:
    """Mean NDCG@k, binary gain, ideal DCG over min(|relevant|, k) hits."""
    return _mean_metric("ndcg", truth, pred, col_user, col_item, col_score, k)


def recall_at_k(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> float:
    """Mean Recall@k = hits in the top k / |relevant|."""
    return _mean_metric("recall", truth, pred, col_user, col_item, col_score, k)


def hit_rate_at_k(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> float:
    """Share of users with at least one relevant item in the top k."""
    return _mean_metric("hitrate", truth, pred, col_user, col_item, col_score, k)


def map_at_k(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> float:
    """Mean average precision@k; AP divides by min(|relevant|, k)."""
    return _mean_metric("map", truth, pred, col_user, col_item, col_score, k)


def catalog_coverage(
    pred: pd.DataFrame,
    n_items: int,
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
    k: int = 10,
) -> float:
    """Distinct items in anyone's top k / ``n_items`` (the catalogue size)."""
    k = _check_k(k)
    if n_items < 1:
        raise MetricInputError(f"n_items must be >= 1, got {n_items!r}")
    ranked = rank_predictions(pred, col_user=col_user, col_item=col_item, col_score=col_score, k=k)
    return ranked[col_item].nunique() / n_items


def metrics_at_ks(
    truth: pd.DataFrame,
    pred: pd.DataFrame,
    ks: Sequence[int],
    *,
    col_user: str = USER_COL,
    col_item: str = ITEM_COL,
    col_score: str = SCORE_COL,
) -> pd.DataFrame:
    """Mean ndcg/recall/hitrate/map for each K in ``ks`` (long format: k, metric, value).

    Ranks the predictions once; used for the metric-by-K plot."""
    ks = [_check_k(k) for k in ks]
    relevant = _relevant(truth, col_user, col_item)
    ranked = rank_predictions(
        pred, col_user=col_user, col_item=col_item, col_score=col_score, k=max(ks)
    )
    hits = _Hits.find(relevant, ranked, col_user, col_item)
    rows = []
    for k in ks:
        table = hits.table(k)
        rows.extend({"k": k, "metric": m, "value": float(table[m].mean())} for m in METRICS)
    return pd.DataFrame(rows)
