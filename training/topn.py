"""Top-n selection over score matrices (dense blocks or sparse), ties broken by item position;
the recommendation frame every retriever returns; masks that leave given (user, item) pairs out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.core.constants import ITEM_COL, RANK_COL, SCORE_COL, USER_COL

REC_COLUMNS = [USER_COL, ITEM_COL, SCORE_COL, RANK_COL]


def empty_recs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            USER_COL: pd.Series([], dtype=object),
            ITEM_COL: pd.Series([], dtype=object),
            SCORE_COL: pd.Series([], dtype=np.float64),
            RANK_COL: pd.Series([], dtype=np.int64),
        }
    )


def top_n_dense(
    scores: np.ndarray, n: int, *, positive_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``scores`` the ``n`` best columns, score desc then column asc.

    Returns flat (row, column, score) arrays, rows in order, best first within a row. With
    ``positive_only`` columns scoring <= 0 are left out (no evidence)."""
    m, width = scores.shape
    n = min(n, width)
    if m == 0 or n == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=scores.dtype)
    if n < width:
        cols = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(width), (m, width)).copy()
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -vals), axis=1)
    cols = np.take_along_axis(cols, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    if n < width:
        # argpartition picks arbitrarily among values tied with the n-th: redo those rows stably.
        boundary = vals[:, -1]
        tied = (scores >= boundary[:, None]).sum(axis=1) > n
        if positive_only:
            tied &= boundary > 0  # ties at zero are dropped anyway
        tied = np.flatnonzero(tied)
        for row in tied:
            exact = np.argsort(-scores[row], kind="stable")[:n]
            cols[row] = exact
            vals[row] = scores[row, exact]
    rows = np.repeat(np.arange(m), n)
    cols, vals = cols.ravel(), vals.ravel()
    keep = vals > 0 if positive_only else np.isfinite(vals)
    return rows[keep], cols[keep], vals[keep]


def top_n_sparse(matrix: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`top_n_dense` over the positive stored entries of a CSR matrix."""
    coo = matrix.tocoo()
    keep = coo.data > 0
    rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(len(rows)) - starts) < n
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64), vals[keep]


def pair_mask(pairs: pd.DataFrame, users: np.ndarray, item_index: pd.Index) -> sp.csr_matrix:
    """(len(users) x len(item_index)) 0/1 matrix of the (user_id, item_id) rows of ``pairs``;
    pairs of other users or items are ignored."""
    rows = pd.Index(users).get_indexer(pairs[USER_COL])
    cols = item_index.get_indexer(pairs[ITEM_COL])
    keep = (rows >= 0) & (cols >= 0)
    mask = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(len(users), len(item_index))
    )
    mask.data[:] = 1.0  # duplicate pairs were summed
    return mask


def drop_masked(scores: np.ndarray | sp.spmatrix, mask: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
    """``scores`` without the masked cells: -inf in a dense block (never selected), removed from a
    sparse one (only positive entries are selected)."""
    if sp.issparse(scores):
        scores = sp.csr_matrix(scores)
        kept = scores - scores.multiply(mask)
        kept.eliminate_zeros()
        return sp.csr_matrix(kept)
    return np.where(mask.toarray() > 0, -np.inf, scores)


def drop_pairs(recs: pd.DataFrame, pairs: pd.DataFrame, n: int) -> pd.DataFrame:
    """``recs`` (best first per user) without the (user_id, item_id) rows of ``pairs``, cut to the
    best ``n`` per user and ranked again."""
    found = pd.MultiIndex.from_frame(recs[[USER_COL, ITEM_COL]])
    recs = recs[~found.isin(pd.MultiIndex.from_frame(pairs[[USER_COL, ITEM_COL]]))]
    order = recs.groupby(USER_COL, sort=False).cumcount().to_numpy()
    recs = recs[order < n].reset_index(drop=True)
    return recs.assign(**{RANK_COL: order[order < n] + 1})


def ranks(rows: np.ndarray) -> np.ndarray:
    """1-based position of each entry within its (sorted, contiguous) row."""
    return np.arange(len(rows)) - np.searchsorted(rows, rows, side="left") + 1
