"""Candidate retrievers with one small interface.

``fit(interactions, items, as_of) -> self`` learns from the events strictly before ``as_of``;
``recommend(users, n) -> DataFrame[user_id, item_id, score, rank]`` (rank 1 best; ties broken by
item id) returns nothing for users unknown at fit time, except :class:`Popularity` (serves anyone).
The catalogue of every retriever is the set of items with any event before ``as_of`` (protocol v1:
"candidates: every item seen in history"; nothing already bought is excluded). ``recommend(...,
exclude=pairs)`` leaves the given (user_id, item_id) pairs out (protocols that recommend unseen
items only, e.g. the MovieLens benchmark).

Signals (see :mod:`recops.training.events`): purchases drive every retriever; ``itemcf`` and
``content`` also build the user profile from views (0.1) and add-to-carts (0.3) so a user with no
purchase yet can still get them; returns are ignored everywhere.

Their settings (``recops.core.settings``, through ``retriever_config.RetrieverConfig``) were tuned on Online Retail II 2009-2010 with protocol v1 at
cutoffs before the final holdout (2010-11-01 was left out). At cutoff 2010-10-14 with a 28-day test
window, NDCG@10 of each retriever alone: itemcf (own items included, 200 neighbours, shrink 5,
half-life 30 d) 0.272 (0.198 without own items); content (1-2-grams, half-life 120 d) 0.250; ALS
with BM25 weighting 0.21 against log-confidence 0.30. Re-checked at 2010-09-06 and 2010-10-04
(open test window, mean of the two): repeat is flat for half-lives of 120-365 d (0.3457-0.3464;
180 d kept); ALS with 128 factors, alpha 5 and a 15-day half-life 0.353 (alpha 3 / 30 d: 0.349,
64 or 256 factors lower). Popularity at 2010-08-09, 09-06 and 10-04 (mean): half-life 14 d with
trend weight 0.5 gives 0.1556, without the trend term 0.1550, weight 0.25 0.1542, weight 1 0.150;
half-lives of 7 or 28 d are no better. The trend term is kept at 0.5: on average it is worth
little here (+0.0006; per cutoff -0.002 to +0.004), as a wholesaler's best sellers change slowly.

Scores are computed for blocks of users as dense (users x items) arrays from sparse matrices and cut
with ``argpartition``: no Python loop over users or events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from recops.core.constants import EVENT_AT_COL, ITEM_COL, RANK_COL, SCORE_COL, USER_COL
from recops.training.events import (
    PURCHASE,
    TimeLike,
    before,
    catalogue_items,
    check_interactions,
    decay,
    make_index,
    purchases,
    to_matrix,
    to_timestamp,
    weighted_events,
)
from recops.training.topn import (
    drop_masked,
    drop_pairs,
    empty_recs,
    pair_mask,
    ranks,
    top_n_dense,
    top_n_sparse,
)

PROFILE_WEIGHTS = {PURCHASE: 1.0, "add_to_cart": 0.3, "click": 0.2, "view": 0.1}
_BLOCK_CELLS = 4_000_000  # users x items cells scored at once (~16 MB of float32)


class RetrieverError(RuntimeError):
    """A retriever was used before ``fit`` or with a bad argument."""


class Retriever(ABC):
    """Common interface: fit on history before ``as_of``, recommend top-n per user."""

    name: ClassVar[str]
    reason: ClassVar[str]
    positive_only: ClassVar[bool] = True

    def __init__(self) -> None:
        self.as_of: pd.Timestamp | None = None
        self.item_index: pd.Index = pd.Index([])
        self.user_index: pd.Index = pd.Index([])

    # --- fitting -------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame | None, as_of: TimeLike) -> Self:
        """Learn from the events of ``interactions`` strictly before ``as_of``."""
        self.as_of = to_timestamp(as_of)
        history = before(check_interactions(interactions), self.as_of)
        self.item_index = make_index(history[ITEM_COL])
        self._fit(history, items)
        return self

    @abstractmethod
    def _fit(self, history: pd.DataFrame, items: pd.DataFrame | None) -> None:
        """Set ``user_index`` and the model state from ``history`` (already cut at ``as_of``)."""

    @property
    def is_fitted(self) -> bool:
        return self.as_of is not None

    def knows(self, user_id: object) -> bool:
        """Whether ``recommend`` returns anything for this user."""
        return self.user_index.get_indexer([user_id])[0] >= 0

    # --- scoring -------------------------------------------------------------------------
    def _scores(self, rows: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """(len(rows) x n_items) scores for the users at positions ``rows`` of ``user_index``."""
        raise NotImplementedError

    def _check_recommend(self, n: int) -> None:
        if not self.is_fitted:
            raise RetrieverError(f"{self.name}: call fit() before recommend()")
        if n < 1:
            raise RetrieverError(f"n must be >= 1, got {n}")

    def recommend(
        self,
        users: Sequence | np.ndarray | pd.Series,
        n: int,
        *,
        exclude: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top-``n`` items per known user: user_id, item_id, score, rank (1 best); the (user_id,
        item_id) pairs of ``exclude`` are never returned."""
        self._check_recommend(n)
        users = pd.unique(pd.Series(users, dtype=object))
        positions = self.user_index.get_indexer(users)
        known_users, positions = users[positions >= 0], positions[positions >= 0]
        if len(positions) == 0 or len(self.item_index) == 0:
            return empty_recs()
        mask = None if exclude is None else pair_mask(exclude, known_users, self.item_index)
        block = max(1, _BLOCK_CELLS // len(self.item_index))
        parts = []
        for start in range(0, len(positions), block):
            scores = self._scores(positions[start : start + block])
            if mask is not None:
                scores = drop_masked(scores, mask[start : start + block])
            if sp.issparse(scores):
                rows, cols, vals = top_n_sparse(sp.csr_matrix(scores), n)
            else:
                rows, cols, vals = top_n_dense(scores, n, positive_only=self.positive_only)
            parts.append((rows + start, cols, vals))
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] for p in parts])
        vals = np.concatenate([p[2] for p in parts])
        return pd.DataFrame(
            {
                USER_COL: known_users[rows],
                ITEM_COL: self.item_index.to_numpy()[cols],
                SCORE_COL: vals.astype(np.float64),
                RANK_COL: ranks(rows),
            }
        )

    def __repr__(self) -> str:
        state = f"as_of={self.as_of}, users={len(self.user_index)}, items={len(self.item_index)}"
        return f"{type(self).__name__}({state})"


class Popularity(Retriever):
    """Time-decayed purchase count, each purchase weighing 0.5 ** (age / half_life), times a trend
    factor ((n_7d + 1) / (n_28d / 4 + 1)) ** trend_weight that lifts items selling faster this
    week than over the last four. Same list for everyone, including users unknown at fit time."""

    name = "popularity"
    reason = "popular now"

    def __init__(self, half_life_days: float | None = 14.0, trend_weight: float = 0.5) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self.trend_weight = trend_weight
        self.item_scores = np.array([])

    def _fit(self, history, items) -> None:
        bought = purchases(history)
        positions = self.item_index.get_indexer(bought[ITEM_COL])
        size = len(self.item_index)
        weights = decay(bought[EVENT_AT_COL], self.as_of, self.half_life_days)
        self.item_scores = np.bincount(positions, weights=weights, minlength=size)
        if self.trend_weight:
            age = (self.as_of - bought[EVENT_AT_COL]).to_numpy() / np.timedelta64(1, "D")
            week = np.bincount(positions[age < 7], minlength=size)
            month = np.bincount(positions[age < 28], minlength=size)
            self.item_scores *= ((week + 1.0) / (month / 4.0 + 1.0)) ** self.trend_weight

    def knows(self, user_id: object) -> bool:
        return self.is_fitted

    def top_items(self, n: int) -> pd.DataFrame:
        """The popularity list: item_id, score, rank."""
        _, cols, vals = top_n_dense(self.item_scores[None, :], n, positive_only=True)
        return pd.DataFrame(
            {
                ITEM_COL: self.item_index.to_numpy()[cols],
                SCORE_COL: vals.astype(np.float64),
                RANK_COL: np.arange(1, len(cols) + 1),
            }
        )

    def recommend(self, users, n: int, *, exclude: pd.DataFrame | None = None) -> pd.DataFrame:
        self._check_recommend(n)
        users = pd.unique(pd.Series(users, dtype=object))
        if exclude is not None:
            exclude = exclude[exclude[USER_COL].isin(users)]
        # deep enough that n items are left for the user with the most excluded items
        most = exclude.groupby(USER_COL).size().max() if exclude is not None and len(exclude) else 0
        top = self.top_items(n + int(most))
        recs = pd.DataFrame(
            {
                USER_COL: np.repeat(users, len(top)),
                ITEM_COL: np.tile(top[ITEM_COL].to_numpy(), len(users)),
                SCORE_COL: np.tile(top[SCORE_COL].to_numpy(), len(users)),
                RANK_COL: np.tile(top[RANK_COL].to_numpy(), len(users)),
            }
        )
        return recs if exclude is None else drop_pairs(recs, exclude, n)


class Repeat(Retriever):
    """The user's own purchases (one per order: distinct purchase times), each weighing
    0.5 ** (age / half_life), plus ``popularity_weight`` times the item's share of the most
    popular item's purchases in the last ``popularity_days``: between items a user bought as often,
    the one selling now comes first. With no half-life and a weight below 1 that is exactly "distinct
    orders with the item, ties by 30-day popularity", the baseline ``repeat`` must match."""

    name = "repeat"
    reason = "bought before"

    def __init__(
        self, half_life_days: float | None = 180.0, popularity_weight: float = 0.0, popularity_days: float = 30.0
    ) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self.popularity_weight = popularity_weight
        self.popularity_days = popularity_days
        self.matrix = sp.csr_matrix((0, 0))

    def _fit(self, history, items) -> None:
        rows = weighted_events(history, self.as_of, half_life_days=self.half_life_days)
        self.user_index = make_index(rows[USER_COL])
        self.matrix = to_matrix(rows, self.user_index, self.item_index)
        if self.popularity_weight and self.matrix.nnz:
            bought = purchases(history)
            recent = bought[bought[EVENT_AT_COL] >= self.as_of - pd.Timedelta(days=self.popularity_days)]
            counts = np.bincount(
                self.item_index.get_indexer(recent[ITEM_COL]), minlength=len(self.item_index)
            ).astype(np.float64)
            share = counts / counts.max() if counts.max() > 0 else counts
            self.matrix.data += self.popularity_weight * share[self.matrix.indices]

    def _scores(self, rows):
        return self.matrix[rows]


class ItemCF(Retriever):
    """Item-to-item co-purchase cosine, |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink), pruned to the
    ``neighbours`` most similar items; a user's score for j is sum_i w_ui * sim(i, j), w_ui the
    recency-decayed profile weight of item i. With ``include_self`` an item is its own neighbour
    (similarity |U_i| / (|U_i| + shrink)), so the user's own purchases count too: on Online Retail
    that lifts NDCG@10 of itemcf alone from 0.20 to 0.27."""

    name = "itemcf"
    reason = "customers who bought {item} also bought this"

    def __init__(
        self,
        half_life_days: float | None = 30.0,
        neighbours: int = 200,
        shrink: float = 5.0,
        include_self: bool = True,
        profile_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self.neighbours = neighbours
        self.shrink = shrink
        self.include_self = include_self
        self.profile_weights = dict(profile_weights or PROFILE_WEIGHTS)
        self.profiles = sp.csr_matrix((0, 0))
        self.similarity = sp.csr_matrix((0, 0))

    def _fit(self, history, items) -> None:
        bought = weighted_events(history, self.as_of, half_life_days=None)
        binary = to_matrix(bought, make_index(bought[USER_COL]), self.item_index)
        binary.data[:] = 1.0
        self.similarity = self._neighbours(binary)

        profile = weighted_events(
            history,
            self.as_of,
            half_life_days=self.half_life_days,
            event_weights=self.profile_weights,
        )
        self.user_index = make_index(profile[USER_COL])
        self.profiles = to_matrix(profile, self.user_index, self.item_index).astype(np.float32)

    def _neighbours(self, binary: sp.csr_matrix) -> sp.csr_matrix:
        """Pruned (items x items) cosine, computed for blocks of items (never all pairs at once)."""
        n_items = binary.shape[1]
        counts = np.asarray(binary.sum(axis=0)).ravel()
        norms = np.sqrt(counts)
        by_item = binary.T.tocsr()
        block = max(1, _BLOCK_CELLS // max(n_items, 1))
        parts = []
        for start in range(0, n_items, block):
            stop = min(start + block, n_items)
            co = (by_item[start:stop] @ binary).toarray()
            sim = co / (norms[start:stop, None] * norms[None, :] + self.shrink)
            if not self.include_self:
                sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
            rows, cols, vals = top_n_dense(sim, self.neighbours, positive_only=True)
            parts.append((rows + start, cols, vals))
        rows, cols, vals = (np.concatenate([p[i] for p in parts]) for i in range(3))
        return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)

    def _scores(self, rows):
        return (self.profiles[rows] @ self.similarity).toarray()

    def anchors(self, user_id: object, item_ids: Sequence) -> dict:
        """item -> the other profile item contributing most to the user's score for it (reasons)."""
        row = self.user_index.get_indexer([user_id])[0]
        if row < 0:
            return {}
        item_ids = list(item_ids)
        cols = self.item_index.get_indexer(item_ids)
        profile = self.profiles[row]
        sources, weights = profile.indices, profile.data
        if len(sources) == 0:
            return {}
        # contribution of each profile item (rows) to each requested item (columns)
        contrib = self.similarity[sources][:, np.maximum(cols, 0)].toarray() * weights[:, None]
        contrib[sources[:, None] == cols[None, :]] = 0.0
        best = contrib.argmax(axis=0)
        found = (cols >= 0) & (contrib.max(axis=0) > 0)
        return {
            item_id: self.item_index[sources[best[j]]]
            for j, item_id in enumerate(item_ids)
            if found[j]
        }


def item_text(items: pd.DataFrame | None) -> pd.Series:
    """``item_text`` per item id (falls back to title/description/category/brand); '' if none."""
    if items is None or items.empty or ITEM_COL not in items.columns:
        return pd.Series(dtype=object)
    if "item_text" in items.columns:
        text = items["item_text"]
    else:
        parts = [c for c in ("title", "description", "category", "brand") if c in items.columns]
        text = items[parts].fillna("").astype(str).agg(" ".join, axis=1) if parts else ""
    text = pd.Series(text, index=items.index).fillna("").astype(str)
    return pd.Series(text.to_numpy(), index=items[ITEM_COL].to_numpy()).groupby(level=0).first()


class Content(Retriever):
    """TF-IDF over ``items.item_text``; user profile = recency-weighted mean of the vectors of the
    items they bought (views/carts weigh less); score = profile . item vector. Its catalogue is
    every item with history *and* every catalogue item known before ``as_of``
    (:func:`catalogue_items`), so a product that never sold can be recommended for its text.
    Items without text have a zero vector: never recommended, no contribution."""

    name = "content"
    reason = "similar to items you bought"

    def __init__(
        self,
        half_life_days: float | None = 120.0,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        profile_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.profile_weights = dict(profile_weights or PROFILE_WEIGHTS)
        self.item_vectors = sp.csr_matrix((0, 0))
        self.profiles = sp.csr_matrix((0, 0))

    def _fit(self, history, items) -> None:
        self.item_index = make_index([*self.item_index, *catalogue_items(items, self.as_of)])
        texts = item_text(items).reindex(self.item_index).fillna("")
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            stop_words="english",
            dtype=np.float32,
        )
        try:
            self.item_vectors = vectorizer.fit_transform(texts.to_list()).tocsr()
        except ValueError:  # empty vocabulary: no item has usable text
            self.item_vectors = sp.csr_matrix((len(self.item_index), 1), dtype=np.float32)
        profile = weighted_events(
            history,
            self.as_of,
            half_life_days=self.half_life_days,
            event_weights=self.profile_weights,
        )
        self.user_index = make_index(profile[USER_COL])
        # (users x items) weights; the (users x terms) profile is formed per block (smaller pickle)
        self.profiles = normalize(to_matrix(profile, self.user_index, self.item_index), norm="l1")
        self.profiles = self.profiles.astype(np.float32)

    def _scores(self, rows):
        return ((self.profiles[rows] @ self.item_vectors) @ self.item_vectors.T).toarray()

    def similar_items(self, item_id: object, n: int) -> pd.DataFrame:
        """Items whose text is closest to ``item_id``'s (itself excluded): item_id, score, rank."""
        pos = self.item_index.get_indexer([item_id])[0]
        if pos < 0:
            return empty_recs().drop(columns=[USER_COL])
        sims = (self.item_vectors @ self.item_vectors[pos].T).toarray().ravel()
        sims[pos] = 0.0
        _, cols, vals = top_n_dense(sims[None, :], n, positive_only=True)
        return pd.DataFrame(
            {
                ITEM_COL: self.item_index.to_numpy()[cols],
                SCORE_COL: vals.astype(np.float64),
                RANK_COL: np.arange(1, len(cols) + 1),
            }
        )


class ALS(Retriever):
    """implicit's CPU ALS on a user x item matrix of recency-decayed purchase counts, weighted by
    log1p (``confidence``, default; implicit multiplies by ``alpha``) or BM25; score = user factor
    . item factor. Seeded; BLAS pinned to one thread while fitting (implicit's advice)."""

    name = "als"
    reason = "matches your taste (ALS)"
    positive_only = False

    def __init__(
        self,
        factors: int = 128,
        regularization: float = 0.05,
        alpha: float = 5.0,
        iterations: int = 15,
        weighting: Literal["bm25", "confidence"] = "confidence",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        half_life_days: float | None = 15.0,
        num_threads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.half_life_days = half_life_days
        self.num_threads = num_threads
        self.seed = seed
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)

    def _fit(self, history, items) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits

        rows = weighted_events(history, self.as_of, half_life_days=self.half_life_days)
        self.user_index = make_index(rows[USER_COL])
        matrix = to_matrix(rows, self.user_index, self.item_index)
        if self.weighting == "bm25":
            matrix = bm25_weight(matrix.T, K1=self.bm25_k1, B=self.bm25_b).T.tocsr()
        else:
            matrix.data = np.log1p(matrix.data)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.seed,
                dtype=np.float32,
            )
            model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _scores(self, rows):
        return self.user_factors[rows] @ self.item_factors.T


