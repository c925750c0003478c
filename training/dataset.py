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
    merged: pd.DataFrame | None = None
    for retriever in retrievers:
        recs = retriever.recommend(users, n)[[USER_COL, ITEM_COL, SCORE_COL, RANK_COL]].rename(
            columns={SCORE_COL: f"{retriever.name}_score", RANK_COL: f"{retriever.name}_rank"}
        )
        merged = recs if merged is None else merged.merge(recs, on=[USER_COL, ITEM_COL], how="outer")
    if merged is None:
        raise TrainingDataError("build_candidates needs at least one retriever")
    found = np.zeros(len(merged), dtype=np.int64)
    for retriever in retrievers:
        rank = f"{retriever.name}_rank"
        found += merged[rank].notna().to_numpy()
        merged[rank] = merged[rank].fillna(n + 1).astype(np.int64)
        merged[f"{retriever.name}_score"] = merged[f"{retriever.name}_score"].fillna(0.0)
    merged["n_retrievers"] = found
    return merged.sort_values([USER_COL, ITEM_COL], kind="mergesort", ignore_index=True)


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
    def fit(cls, interactions: pd.DataFrame, items: pd.DataFrame | None, as_of: TimeLike) -> "HistoryStats":
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
            (newest.to_numpy() + 1.0,
             (newest.index.get_level_values(0), newest.index.get_level_values(1))),
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
        return pd.DataFrame(
            {
                "user_item_purchases": counts,
                "days_since_user_bought_item": days_since,
                "item_price_to_user_mean": ratio,
            },
            index=pairs.index,
        )


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
    """Make store features numeric: datetimes -> ``days_since_<name>`` (relative to the row's
    event_timestamp), booleans -> 0/1, other non-numeric columns dropped (logged)."""
    out = {}
    for col in fetched.columns:
        values = fetched[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            name = f"days_since_{col.removesuffix('_at')}"
            out[name] = (timestamps - naive_utc(values)).to_numpy() / np.timedelta64(1, "D")
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[col] = values.astype(np.float64).to_numpy()
        else:
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.notna().sum() < values.notna().sum():
                log.warning("dropping non-numeric store feature %s", col)
                continue
            out[col] = numeric.astype(np.float64).to_numpy()
    return pd.DataFrame(out, index=fetched.index)


def attach_store_features(frame: pd.DataFrame, fetch_features: FeatureFetcher | None) -> pd.DataFrame:
    """Call ``fetch_features(frame[[user_id, item_id, event_timestamp]])`` and left-join its extra
    columns on the three keys (rows may come back in any order, timestamps tz-aware or not)."""
    if fetch_features is None or frame.empty:
        return frame
    entity_df = frame[KEY_COLS].reset_index(drop=True)
    fetched = fetch_features(entity_df.copy())
    missing = set(KEY_COLS) - set(fetched.columns)
    if missing:
        raise TrainingDataError(f"fetch_features returned no {sorted(missing)} columns")
    fetched = fetched.assign(**{TIMESTAMP_COL: naive_utc(fetched[TIMESTAMP_COL])})
    fetched = fetched.drop_duplicates(KEY_COLS)
    extra = [c for c in fetched.columns if c not in KEY_COLS and c not in frame.columns]
    values = _numeric_features(fetched[extra], fetched[TIMESTAMP_COL])
    fetched = pd.concat([fetched[KEY_COLS], values], axis=1)
    keys = frame[KEY_COLS].assign(**{TIMESTAMP_COL: naive_utc(frame[TIMESTAMP_COL])})
    joined = keys.merge(fetched, on=KEY_COLS, how="left", validate="many_to_one")
    return pd.concat([frame, joined.drop(columns=KEY_COLS).set_index(frame.index)], axis=1)


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
        frame = _window_frame(interactions, items, end - length, end, n_candidates, retriever_factory)
        if not frame.empty:
            frames.append(frame.assign(**{WINDOW_COL: window}))
    if not frames:
        raise TrainingDataError(f"no label window before {cutoff:%Y-%m-%d} has a query")
    frame = pd.concat(frames, ignore_index=True)
    positive = frame.groupby([WINDOW_COL, USER_COL])[LABEL_COL].transform("max") > 0
    frame = frame[positive.to_numpy()]
    if frame.empty:
        raise TrainingDataError("no query group has a positive: the retrievers found no bought item")
    frame = attach_store_features(frame.reset_index(drop=True), fetch_features)
    frame[QUERY_COL] = frame.groupby([TIMESTAMP_COL, USER_COL], sort=True).ngroup().astype(np.int64)
    return frame.sort_values([QUERY_COL, ITEM_COL], kind="mergesort", ignore_index=True)
