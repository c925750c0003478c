"""EASE, the closed-form linear item-item model (H. Steck, "Embarrassingly Shallow Autoencoders for
Sparse Data", WWW 2019), behind the :class:`~recops.training.retrievers.Retriever` interface.

With X the binary (users x items) purchase matrix and G = X^T X + lambda I, the item-item weights
are B = I - P / diag(P) with P = G^-1 (column j divided by P_jj), i.e. B_ij = -P_ij / P_jj for
i != j and B_jj = 0: the ridge regression of every item column on all the other columns, with the
zero diagonal as constraint. A user's scores are X_u B. Memory and time are O(items^2) and
O(items^3): fine for a catalogue of a few thousand items (MovieLens 100k: 1,682 items, 0.3 s),
not for hundreds of thousands.

Not in the default Online Retail pipeline (``retrievers`` setting); the MovieLens benchmark
(:mod:`recops.training.movielens_benchmark`) uses it and chose ``ease_lambda`` on its inner split.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recops.core.constants import USER_COL
from recops.training.events import make_index, to_matrix, weighted_events
from recops.training.retrievers import Retriever, RetrieverError


def ease_weights(gram: np.ndarray, lambda_: float) -> np.ndarray:
    """B = I - P / diag(P), P = (gram + lambda I)^-1: the (items x items) EASE weights."""
    if lambda_ <= 0:
        raise RetrieverError(f"EASE needs lambda > 0, got {lambda_}")
    regularised = np.array(gram, dtype=np.float64)
    regularised[np.diag_indices_from(regularised)] += lambda_
    precision = np.linalg.inv(regularised)
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


class EASE(Retriever):
    """Closed-form linear item-item model; score of item j for user u = sum_i x_ui B_ij, x binary
    (any purchase before ``as_of``). Scores may be negative (``positive_only = False``)."""

    name = "ease"
    reason = "people with your taste also liked this"
    positive_only = False

    def __init__(self, lambda_: float = 500.0) -> None:
        super().__init__()
        self.lambda_ = lambda_
        self.profiles = sp.csr_matrix((0, 0), dtype=np.float32)
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def _fit(self, history, items) -> None:
        bought = weighted_events(history, self.as_of, half_life_days=None)
        self.user_index = make_index(bought[USER_COL])
        binary = to_matrix(bought, self.user_index, self.item_index)
        binary.data[:] = 1.0
        gram = (binary.T @ binary).toarray()
        self.weights = ease_weights(gram, self.lambda_).astype(np.float32)
        self.profiles = binary.astype(np.float32).tocsr()

    def _scores(self, rows):
        return np.asarray(self.profiles[rows] @ self.weights)
