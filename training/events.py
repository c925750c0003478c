"""Shared helpers over the ``fct_interactions`` frame: purchase signal, time decay, id indices.

Every retriever, the training-set builder and the evaluation read purchases the same way:

* a *purchase* is a row with ``event_type == 'purchase'``; several rows of one user for one item at
  the very same ``event_at`` (e.g. two lines of one invoice) count once;
* ``return`` rows are ignored (UCI cancellations are noisy and often do not match a purchase line);
* ``view`` / ``add_to_cart`` are weaker signals that only some retrievers use (``event_weights``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.core.constants import EVENT_AT_COL, EVENT_TYPE_COL, ITEM_COL, USER_COL
from recops.core.timeutil import TimeLike, naive_utc_series, to_timestamp

PURCHASE = "purchase"
DAY = pd.Timedelta(days=1)

class InteractionsInputError(ValueError):
    """The interactions (or items) frame misses a column or has a bad type."""


def check_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Validate the columns every stage needs and normalise ``event_at`` to naive UTC."""
    missing = {USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL} - set(interactions.columns)
    if missing:
        raise InteractionsInputError(f"interactions lack columns {sorted(missing)}")
    if (
        not pd.api.types.is_datetime64_any_dtype(interactions[EVENT_AT_COL])
        or getattr(interactions[EVENT_AT_COL].dt, "tz", None) is not None
    ):
        interactions = interactions.assign(**{EVENT_AT_COL: naive_utc_series(interactions[EVENT_AT_COL])})
    return interactions


def before(interactions: pd.DataFrame, as_of: TimeLike) -> pd.DataFrame:
    """Rows strictly before ``as_of``."""
    return interactions[interactions[EVENT_AT_COL] < to_timestamp(as_of)]


def between(interactions: pd.DataFrame, start: TimeLike, end: TimeLike | None) -> pd.DataFrame:
    """Rows with ``start <= event_at < end`` (``end=None``: no upper bound)."""
    at = interactions[EVENT_AT_COL]
    mask = at >= to_timestamp(start)
    if end is not None:
        mask &= at < to_timestamp(end)
    return interactions[mask]


def purchases(interactions: pd.DataFrame) -> pd.DataFrame:
    """Purchase events (user, item, event_at), one per user, item and timestamp."""
    rows = interactions.loc[
        interactions[EVENT_TYPE_COL] == PURCHASE, [USER_COL, ITEM_COL, EVENT_AT_COL]
    ]
    return rows.drop_duplicates(ignore_index=True)


def decay(event_at: pd.Series, as_of: TimeLike, half_life_days: float | None) -> np.ndarray:
    """Weight ``0.5 ** (age_days / half_life_days)`` of each event (1.0 without a half-life)."""
    if half_life_days is None:
        return np.ones(len(event_at))
    age = (to_timestamp(as_of) - event_at).to_numpy() / np.timedelta64(1, "D")
    return np.exp2(-np.clip(age, 0.0, None) / half_life_days)


def weighted_events(
    interactions: pd.DataFrame,
    as_of: TimeLike,
    *,
    half_life_days: float | None,
    event_weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """(user, item, weight): deduplicated purchases (weight 1) plus optional weaker event types,
    each multiplied by its time decay. Unlisted event types (e.g. ``return``) are ignored."""
    weights = dict(event_weights or {PURCHASE: 1.0})
    frames = []
    for event_type, weight in weights.items():
        if weight == 0:
            continue
        if event_type == PURCHASE:
            rows = purchases(interactions)
        else:
            rows = interactions.loc[
                interactions[EVENT_TYPE_COL] == event_type, [USER_COL, ITEM_COL, EVENT_AT_COL]
            ]
        frames.append(
            pd.DataFrame(
                {
                    USER_COL: rows[USER_COL].to_numpy(),
                    ITEM_COL: rows[ITEM_COL].to_numpy(),
                    "weight": weight * decay(rows[EVENT_AT_COL], as_of, half_life_days),
                }
            )
        )
    if not frames:
        return pd.DataFrame({USER_COL: [], ITEM_COL: [], "weight": []})
    return pd.concat(frames, ignore_index=True)


def make_index(values: Iterable) -> pd.Index:
    """A sorted, unique id index; the position of an id is its row/column in the sparse matrices.

    Sorting makes positions follow the id order, which is the documented tie-break."""
    return pd.Index(pd.unique(pd.Series(values))).sort_values()


def to_matrix(
    rows: pd.DataFrame, user_index: pd.Index, item_index: pd.Index, value_col: str = "weight"
) -> sp.csr_matrix:
    """Sum ``value_col`` into a (users x items) CSR matrix; ids outside the indices are dropped."""
    u = user_index.get_indexer(rows[USER_COL])
    i = item_index.get_indexer(rows[ITEM_COL])
    keep = (u >= 0) & (i >= 0)
    matrix = sp.coo_matrix(
        (rows[value_col].to_numpy(dtype=np.float64)[keep], (u[keep], i[keep])),
        shape=(len(user_index), len(item_index)),
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


FIRST_SEEN_COL = "first_seen_at"  # dim_items: the first event, else the first catalogue load


def catalogue_first_seen(items: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.Series | None:
    """``first_seen_at`` (naive UTC) per catalogue item first seen before ``as_of`` (a product
    loaded later did not exist yet); None when ``items`` has no such column."""
    if items is None or FIRST_SEEN_COL not in items.columns:
        return None
    seen = pd.Series(naive_utc_series(items[FIRST_SEEN_COL]).to_numpy(), index=items[ITEM_COL].to_numpy())
    seen = seen[seen.index.notna()]
    return seen[seen < as_of].groupby(level=0).min()


def catalogue_items(items: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.Index:
    """The catalogue's item ids known before ``as_of`` (:func:`catalogue_first_seen`); all of
    them when the catalogue does not say when it first had each."""
    if items is None or items.empty or ITEM_COL not in items.columns:
        return pd.Index([])
    seen = catalogue_first_seen(items, as_of)
    return pd.Index(items[ITEM_COL].dropna().unique()) if seen is None else seen.index
