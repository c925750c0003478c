"""Point-in-time learning-to-rank data: candidates from the retrievers, labels, features.

For label window w (w = 0 .. label_windows-1) the window is ``[start, end)`` with
``end = cutoff - w * label_window_days`` and ``start = end - label_window_days``. Fresh retrievers
are fitted on the events before ``start``; the queries are the users with a purchase before
``start`` *and* one inside the window (a user without a purchase in the window has no positive,
and such query groups are dropped anyway: they carry no LambdaRank gradient). Labels are graded
by the number of purchase events of the item inside the window: 0 none, 1 one, 2 two or three,
3 four or more. ``event_timestamp`` is the window start, the point in time of every feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    LABEL_COL,
    PRICE_COL,
    RANK_COL,
    SCORE_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.training.events import (
    DAY,
    PURCHASE,
    TimeLike,
    before,
    between,
    check_interactions,
    make_index,
    naive_utc,
    purchases,
    to_timestamp,
)
from recops.training.retrievers import Retriever

log = logging.getLogger(__name__)

QUERY_COL = "query_id"
WINDOW_COL = "window"
KEY_COLS = [USER_COL, ITEM_COL, TIMESTAMP_COL]
META_COLS = (USER_COL, ITEM_COL, TIMESTAMP_COL, QUERY_COL, LABEL_COL, WINDOW_COL)
RELEVANCE_BINS = (1, 2, 4)  # purchase count -> relevance: 1 -> 1, 2-3 -> 2, 4+ -> 3
DERIVED_FEATURES = (
    "user_item_purchases",
    "days_since_user_bought_item",
    "item_price_to_user_mean",
)

FeatureFetcher = Callable[[pd.DataFrame], pd.DataFrame]
RetrieverFactory = Callable[[], Sequence[Retriever]]


class TrainingDataError(ValueError):
    """The training frame cannot be built (no window with a positive, bad feature frame)."""


def relevance(counts: np.ndarray | pd.Series) -> np.ndarray:
    """Graded relevance 0/1/2/3 from purchase counts 0 / 1 / 2-3 / 4+."""
    return np.digitize(np.asarray(counts), RELEVANCE_BINS).astype(np.int64)


def build_candidates(retrievers: Sequence[Retriever], users, n: int) -> pd.DataFrame:
    """One row per (user, item) in the union of every retriever's top ``n``.

    Columns ``<name>_score`` / ``<name>_rank`` (missing: score 0, rank n+1) and ``n_retrievers``;
    rows sorted by user then item."""
    if not retrievers:
        raise TrainingDataError("build_candidates needs at least one retriever")
    recs = [r.recommend(users, n) for r in retrievers]
    both = pd.concat([r[[USER_COL, ITEM_COL]] for r in recs], ignore_index=True)
    user_codes, user_ids = pd.factorize(both[USER_COL], sort=True)
    item_codes, item_ids = pd.factorize(both[ITEM_COL], sort=True)
    keys = user_codes.astype(np.int64) * max(len(item_ids), 1) + item_codes
    union = np.unique(keys)  # sorted: by user, then item
    frame = pd.DataFrame(
        {
            USER_COL: np.asarray(user_ids, dtype=object)[union // max(len(item_ids), 1)],
            ITEM_COL: np.asarray(item_ids, dtype=object)[union % max(len(item_ids), 1)],
        }
    )
    found = np.zeros(len(union), dtype=np.int64)
    start = 0
    for retriever, rec in zip(retrievers, recs, strict=True):
        rows = np.searchsorted(union, keys[start : start + len(rec)])
        start += len(rec)
        scores = np.zeros(len(union))
        ranks = np.full(len(union), n + 1, dtype=np.int64)
        scores[rows] = rec[SCORE_COL].to_numpy(dtype=np.float64)
        ranks[rows] = rec[RANK_COL].to_numpy(dtype=np.int64)
        found[rows] += 1
        frame[f"{retriever.name}_score"] = scores
        frame[f"{retriever.name}_rank"] = ranks
    frame["n_retrievers"] = found
    return frame


@dataclass
class HistoryStats:
    """Per (user, item) purchase counts and last purchase day, per-user mean price and per-item
    price (median paid before ``as_of``, else ``items.price_amount``), from the history before
    ``as_of``: the store-free derived features. Picklable."""

    as_of: pd.Timestamp
    user_index: pd.Index
    item_index: pd.Index
    counts: sp.csr_matrix
    last_day: sp.csr_matrix  # days from the last purchase to as_of, plus one (0 = never)
    user_mean_price: pd.Series
    item_price: pd.Series

    @classmethod
    def fit(
        cls, interactions: pd.DataFrame, items: pd.DataFrame | None, as_of: TimeLike
    ) -> HistoryStats:
        as_of = to_timestamp(as_of)
        history = before(check_interactions(interactions), as_of)
        bought = purchases(history)
        user_index, item_index = make_index(bought[USER_COL]), make_index(history[ITEM_COL])
        u = user_index.get_indexer(bought[USER_COL])
        i = item_index.get_indexer(bought[ITEM_COL])
        shape = (len(user_index), len(item_index))
        counts = sp.csr_matrix((np.ones(len(bought)), (u, i)), shape=shape)
        age = (as_of - bought[EVENT_AT_COL]).to_numpy() / np.timedelta64(1, "D")
        newest = pd.DataFrame({"u": u, "i": i, "age": age}).groupby(["u", "i"])["age"].min()
        last_day = sp.csr_matrix(
            (
                newest.to_numpy() + 1.0,
                (newest.index.get_level_values(0), newest.index.get_level_values(1)),
            ),
            shape=shape,
        )
        user_mean, prices = pd.Series(dtype=np.float64), pd.Series(dtype=np.float64)
        if PRICE_COL in history.columns:
            paid = history[history[EVENT_TYPE_COL] == PURCHASE]
            user_mean = paid.groupby(USER_COL)[PRICE_COL].mean().astype(float)
            prices = paid.groupby(ITEM_COL)[PRICE_COL].median().astype(float)
        if items is not None and PRICE_COL in items.columns:
            listed = items.set_index(ITEM_COL)[PRICE_COL].astype(float).groupby(level=0).first()
            prices = prices.combine_first(listed) if len(prices) else listed
        return cls(as_of, user_index, item_index, counts, last_day, user_mean, prices.dropna())

    def features(self, pairs: pd.DataFrame, at: TimeLike | None = None) -> pd.DataFrame:
        """The derived features for the (user_id, item_id) rows of ``pairs`` (same index)."""
        at = self.as_of if at is None else to_timestamp(at)
        u = self.user_index.get_indexer(pairs[USER_COL])
        i = self.item_index.get_indexer(pairs[ITEM_COL])
        known = (u >= 0) & (i >= 0)
        counts = np.zeros(len(pairs))
        last = np.zeros(len(pairs))
        if known.any():
            counts[known] = np.asarray(self.counts[u[known], i[known]]).ravel()
            last[known] = np.asarray(self.last_day[u[known], i[known]]).ravel()
        shift = (at - self.as_of) / DAY
        days_since = np.where(last > 0, last - 1.0 + shift, np.nan)
        user_price = self.user_mean_price.reindex(pairs[USER_COL]).to_numpy()
        item_price = self.item_price.reindex(pairs[ITEM_COL]).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(user_price > 0, item_price / user_price, np.nan)
        columns = dict(zip(DERIVED_FEATURES, (counts, days_since, ratio), strict=True))
        return pd.DataFrame(columns, index=pairs.index)


def candidate_frame(
    retrievers: Sequence[Retriever], stats: HistoryStats, users, n: int, at: TimeLike | None = None
) -> pd.DataFrame:
    """Candidates of fitted retrievers with the derived features and ``event_timestamp = at``."""
    at = stats.as_of if at is None else to_timestamp(at)
    frame = build_candidates(retrievers, users, n)
    frame = pd.concat([frame, stats.features(frame, at)], axis=1)
    frame.insert(2, TIMESTAMP_COL, pd.Series(at, index=frame.index, dtype="datetime64[ns]"))
    return frame


def _numeric_features(fetched: pd.DataFrame, timestamps: pd.Series) -> pd.DataFrame:
    """Make store features numeric, the same way offline and online.

    A column named ``*_at`` (the house suffix of timestamps) becomes ``<name>_age_days``: days
    from its value to the row's ``event_timestamp`` (datetimes, or numbers read as Unix seconds).
    Booleans become 0/1; any other non-numeric column is dropped (logged)."""
    out = {}
    for col in fetched.columns:
        values = fetched[col]
        if col.endswith("_at"):
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                stamps = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
            else:
                stamps = pd.to_datetime(values, utc=True, errors="coerce")
            age = (timestamps.to_numpy() - naive_utc(stamps).to_numpy()) / np.timedelta64(1, "D")
            out[f"{col}_age_days"] = age
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[col] = values.astype(np.float64).to_numpy()
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.notna().sum() < values.notna().sum():
                log.warning("dropping non-numeric store feature %s", col)
                continue
            out[col] = numeric.astype(np.float64).to_numpy()
    return pd.DataFrame(out, index=fetched.index)


def attach_store_features(
    frame: pd.DataFrame, fetch_features: FeatureFetcher | None
) -> pd.DataFrame:
    """Call ``fetch_features(frame[[user_id, item_id, event_timestamp]])`` and left-join the columns
    it adds, on the three keys, or on (user_id, item_id) when it returns no event_timestamp (an
    online store). Rows may come back in any order, timestamps tz-aware or not."""
    if fetch_features is None or frame.empty:
        return frame
    fetched = fetch_features(frame[KEY_COLS].reset_index(drop=True).copy())
    keys = [c for c in KEY_COLS if c in fetched.columns]
    if keys[:2] != [USER_COL, ITEM_COL]:
        raise TrainingDataError("fetch_features must return user_id and item_id columns")
    if TIMESTAMP_COL in keys:
        fetched = fetched.assign(**{TIMESTAMP_COL: naive_utc(fetched[TIMESTAMP_COL])})
    extra = [c for c in fetched.columns if c not in KEY_COLS and c not in frame.columns]
    fetched = fetched[keys + extra].drop_duplicates(keys)
    left = frame[keys].assign(**{TIMESTAMP_COL: naive_utc(frame[TIMESTAMP_COL])})[keys]
    joined = left.merge(fetched, on=keys, how="left", validate="many_to_one")
    values = _numeric_features(
        joined[extra], naive_utc(frame[TIMESTAMP_COL]).reset_index(drop=True)
    )
    return pd.concat([frame, values.set_index(frame.index)], axis=1)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column that is not a key, label or bookkeeping column, in frame order."""
    return [c for c in frame.columns if c not in META_COLS]


def _window_frame(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    n_candidates: int,
    retriever_factory: RetrieverFactory,
) -> pd.DataFrame:
    """Candidates, derived features and labels of one label window ``[start, end)``."""
    history_buyers = purchases(before(interactions, start))[USER_COL].unique()
    bought = purchases(between(interactions, start, end))
    users = np.sort(np.intersect1d(bought[USER_COL].unique(), history_buyers))
    if len(users) == 0:
        return pd.DataFrame()
    retrievers = [r.fit(interactions, items, start) for r in retriever_factory()]
    stats = HistoryStats.fit(interactions, items, start)
    frame = candidate_frame(retrievers, stats, users, n_candidates, start)
    counts = bought.groupby([USER_COL, ITEM_COL]).size().rename("label_count").reset_index()
    frame = frame.merge(counts, on=[USER_COL, ITEM_COL], how="left")
    frame[LABEL_COL] = relevance(frame.pop("label_count").fillna(0))
    return frame


def build_training_frame(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    *,
    label_window_days: int,
    label_windows: int,
    n_candidates: int,
    retriever_factory: RetrieverFactory,
    fetch_features: FeatureFetcher | None = None,
) -> pd.DataFrame:
    """The learning-to-rank frame of ``label_windows`` windows before ``cutoff`` (module doc).

    Columns: user_id, item_id, event_timestamp, <retriever>_score/_rank, n_retrievers, the derived
    features, the store features, label, window, query_id (one per user and window). Query groups
    without a positive are dropped. Rows sorted by query_id then item_id."""
    if label_windows < 1 or label_window_days < 1:
        raise TrainingDataError("label_windows and label_window_days must be >= 1")
    interactions = check_interactions(interactions)
    cutoff = to_timestamp(cutoff)
    length = pd.Timedelta(days=label_window_days)
    frames = []
    for window in range(label_windows):
        end = cutoff - window * length
        frame = _window_frame(
            interactions, items, end - length, end, n_candidates, retriever_factory
        )
        if not frame.empty:
            frames.append(frame.assign(**{WINDOW_COL: window}))
    if not frames:
        raise TrainingDataError(f"no label window before {cutoff:%Y-%m-%d} has a query")
    frame = pd.concat(frames, ignore_index=True)
    positive = frame.groupby([WINDOW_COL, USER_COL])[LABEL_COL].transform("max") > 0
    frame = frame[positive.to_numpy()]
    if frame.empty:
        raise TrainingDataError(
            "no query group has a positive: the retrievers found no bought item"
        )
    frame = attach_store_features(frame.reset_index(drop=True), fetch_features)
    frame[QUERY_COL] = frame.groupby([TIMESTAMP_COL, USER_COL], sort=True).ngroup().astype(np.int64)
    return frame.sort_values([QUERY_COL, ITEM_COL], kind="mergesort", ignore_index=True)
