"""Co-visitation: items one user picked at (nearly) the same time, behind the
:class:`~recops.training.retrievers.Retriever` interface.

W_ij counts the users with a purchase of i and one of j at most ``window_seconds`` apart (i != j;
0 = the very same timestamp, e.g. one invoice or one submitted page of ratings), divided by
(n_i n_j) ** 0.5 with n_i the users of item i. A user's score for j is sum_i x_ui W_ij over the
items they bought (x binary). Unlike :class:`~recops.training.retrievers.ItemCF`, which counts
users who bought both items at any time, it only counts pairs chosen together.

On MovieLens 100k half of the ratings share their second with another rating of the same user
(a page of ratings submitted at once); alone it is weaker than EASE there, but it carries what
EASE does not see (the benchmark's ranker gains from it; ``training/movielens_benchmark.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.core.constants import EVENT_AT_COL, ITEM_COL, USER_COL
from recops.training.events import make_index, purchases, to_matrix
from recops.training.retrievers import Retriever, RetrieverError


def co_visits(
    events: pd.DataFrame, item_index: pd.Index, window_seconds: float
) -> sp.csr_matrix:
    """(items x items) number of users with events of both items at most ``window_seconds``
    apart (symmetric, zero diagonal). ``events``: user_id, item_id, event_at."""
    ordered = events.sort_values([USER_COL, EVENT_AT_COL], kind="mergesort")
    users = pd.factorize(ordered[USER_COL])[0]
    items = item_index.get_indexer(ordered[ITEM_COL])
    seconds = ordered[EVENT_AT_COL].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    pairs = []
    for offset in range(1, len(ordered)):  # events `offset` apart in a user's time order
        close = (users[offset:] == users[:-offset]) & (
            seconds[offset:] - seconds[:-offset] <= window_seconds
        )
        if not close.any():
            break
        pairs.append(np.column_stack([users[offset:], items[:-offset], items[offset:]])[close])
    n_items = len(item_index)
    if not pairs:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    found = np.unique(np.concatenate(pairs), axis=0)  # one count per user and item pair
    found = found[found[:, 1] != found[:, 2]]
    rows = np.concatenate([found[:, 1], found[:, 2]])
    cols = np.concatenate([found[:, 2], found[:, 1]])
    counts = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, n_items))
    return counts.tocsr()


class CoVisitation(Retriever):
    """Score of j for user u = sum over u's items i of W_ij (module docstring)."""

    name = "covisit"
    reason = "often chosen together with what you picked"

    def __init__(self, window_seconds: float = 0.0) -> None:
        super().__init__()
        if window_seconds < 0:
            raise RetrieverError(f"window_seconds must be >= 0, got {window_seconds}")
        self.window_seconds = window_seconds
        self.profiles = sp.csr_matrix((0, 0), dtype=np.float32)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, history, items) -> None:
        bought = purchases(history)
        self.user_index = make_index(bought[USER_COL])
        binary = to_matrix(bought.assign(weight=1.0), self.user_index, self.item_index)
        binary.data[:] = 1.0
        counts = co_visits(bought, self.item_index, self.window_seconds)
        norms = 1.0 / np.sqrt(np.maximum(np.asarray(binary.sum(axis=0)).ravel(), 1.0))
        self.similarity = sp.csr_matrix(sp.diags(norms) @ counts @ sp.diags(norms), dtype=np.float32)
        self.profiles = binary.astype(np.float32)

    def _scores(self, rows):
        return (self.profiles[rows] @ self.similarity).toarray()
