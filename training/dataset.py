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

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    LABEL_COL,
    PRICE_COL,
    QUANTITY_COL,
    RANK_COL,
    SCORE_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.core.timeutil import naive_utc_series
from recops.training.events import (
    DAY,
    PURCHASE,
    TimeLike,
    before,
    catalogue_first_seen,
    check_interactions,
    make_index,
    purchases,
    to_timestamp,
)
from recops.training.retrievers import Retriever

log = logging.getLogger(__name__)

QUERY_COL = "query_id"
WINDOW_COL = "window"
KEY_COLS = [USER_COL, ITEM_COL, TIMESTAMP_COL]
META_COLS = (USER_COL, ITEM_COL, TIMESTAMP_COL, QUERY_COL, LABEL_COL, WINDOW_COL)
NOVELTY_DAYS = 90.0  # window of user_novelty_90d
RELEVANCE_BINS = (1, 2, 4)  # purchase count -> relevance: 1 -> 1, 2-3 -> 2, 4+ -> 3
DERIVED_FEATURES = (
    "user_item_purchases",
    "days_since_user_bought_item",
    "item_price_to_user_mean",
    "user_item_purchase_share",
    "user_item_quantity",
    "user_item_interval_days",
    "user_item_due_ratio",
    "item_repurchase_rate",
    "item_days_since_first_sale",
    "item_days_since_last_sale",
    "user_novelty_90d",
)

FeatureFetcher = Callable[[pd.DataFrame], pd.DataFrame]
RetrieverFactory = Callable[[], Sequence[Retriever]]


class TrainingDataError(ValueError):
    """The training frame cannot be built (no window with a positive, bad feature frame)."""


def relevance(counts: np.ndarray | pd.Series) -> np.ndarray:
    """Graded relevance 0/1/2/3 from purchase counts 0 / 1 / 2-3 / 4+."""
    return np.digitize(np.asarray(counts), RELEVANCE_BINS).astype(np.int64)


def build_candidates(
    retrievers: Sequence[Retriever], users, n: int, *, exclude: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (user, item) in the union of every retriever's top ``n`` (without the
    (user_id, item_id) pairs of ``exclude``).

    Columns ``<name>_score``, ``<name>_rank`` and ``<name>_norm`` (the score over the user's best
    score from that retriever, which makes scores comparable across users; missing: score 0,
    rank n+1, norm 0) and ``n_retrievers``; rows sorted by user then item."""
    if not retrievers:
        raise TrainingDataError("build_candidates needs at least one retriever")
    recs = [
        r.recommend(users, n) if exclude is None else r.recommend(users, n, exclude=exclude)
        for r in retrievers
    ]
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
        norms = np.zeros(len(union))
        values = rec[SCORE_COL].to_numpy(dtype=np.float64)
        best = rec[SCORE_COL].groupby(rec[USER_COL].to_numpy()).transform("max").to_numpy()
        scores[rows] = values
        ranks[rows] = rec[RANK_COL].to_numpy(dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            norms[rows] = np.where(best > 0, values / best, 0.0)
        found[rows] += 1
        frame[f"{retriever.name}_score"] = scores
        frame[f"{retriever.name}_rank"] = ranks
        frame[f"{retriever.name}_norm"] = norms
    frame["n_retrievers"] = found
    return frame


def _pair_matrix(u: np.ndarray, i: np.ndarray, values: np.ndarray, shape) -> sp.csr_matrix:
    return sp.csr_matrix((values, (u, i)), shape=shape)


def _lookup(matrix: sp.csr_matrix | None, u: np.ndarray, i: np.ndarray, known: np.ndarray):
    out = np.zeros(len(u))
    if matrix is not None and known.any():
        out[known] = np.asarray(matrix[u[known], i[known]]).ravel()
    return out


def _item_prices(history: pd.DataFrame, paid: pd.DataFrame, items: pd.DataFrame | None) -> pd.Series:
    """Point in time: the median paid before ``as_of``, else the median of the item's priced lines
    before it (a return's), else ``items.price_amount`` for an item with no priced line."""
    prices = pd.Series(dtype=np.float64)
    if PRICE_COL in history.columns:
        prices = paid.groupby(ITEM_COL)[PRICE_COL].median().astype(float)
        priced = history[pd.to_numeric(history[PRICE_COL], errors="coerce") > 0]
        seen = priced.groupby(ITEM_COL)[PRICE_COL].median().astype(float)
        prices = prices.combine_first(seen) if len(prices) else seen
    if items is not None and PRICE_COL in items.columns:
        listed = items.set_index(ITEM_COL)[PRICE_COL].astype(float).groupby(level=0).first()
        prices = prices.combine_first(listed) if len(prices) else listed
    return prices


@dataclass
class HistoryStats:
    """The store-free derived features, from the purchases before ``as_of``. Picklable.

    Per (user, item): purchase events, quantity, days of the first and last purchase and the
    number of distinct purchase days (sparse, stored as value + 1 so that 0 means never). Per
    user: orders (distinct purchase times), mean price paid and the share of the items bought in
    the last 90 days that were new to the user then. Per item: price (median paid before
    ``as_of``, else the median of its priced lines before it, else ``items.price_amount`` for an
    item with no priced line), the share of its buyers who bought it on two days or more, and the
    days of its first and last sale. :meth:`features` turns them into ``DERIVED_FEATURES``."""

    as_of: pd.Timestamp
    user_index: pd.Index
    item_index: pd.Index
    counts: sp.csr_matrix
    last_day: sp.csr_matrix  # days from the last purchase to as_of, plus one (0 = never)
    user_mean_price: pd.Series
    item_price: pd.Series
    first_day: sp.csr_matrix | None = None  # days from the first purchase, plus one
    pair_days: sp.csr_matrix | None = None  # distinct purchase days
    quantity: sp.csr_matrix | None = None  # summed quantity (0 without a quantity column)
    user_orders: np.ndarray | None = None
    user_novelty: np.ndarray | None = None
    item_repurchase: np.ndarray | None = None
    item_first_age: np.ndarray | None = None
    item_last_age: np.ndarray | None = None
    item_catalogue_age: pd.Series | None = None  # days since first seen, per catalogue item

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
        counts = _pair_matrix(u, i, np.ones(len(bought)), shape)
        age = (as_of - bought[EVENT_AT_COL]).to_numpy() / np.timedelta64(1, "D")
        day = np.floor(age)
        events = pd.DataFrame({"u": u, "i": i, "age": age, "day": day})
        pairs = events.groupby(["u", "i"]).agg(
            last=("age", "min"), first=("age", "max"), days=("day", "nunique")
        )
        pu, pi = pairs.index.get_level_values(0), pairs.index.get_level_values(1)
        last_day = _pair_matrix(pu, pi, pairs["last"].to_numpy() + 1.0, shape)
        first_day = _pair_matrix(pu, pi, pairs["first"].to_numpy() + 1.0, shape)
        pair_days = _pair_matrix(pu, pi, pairs["days"].to_numpy(dtype=np.float64), shape)

        paid = history[history[EVENT_TYPE_COL] == PURCHASE]
        quantity = None
        if QUANTITY_COL in paid.columns:
            qty = pd.to_numeric(paid[QUANTITY_COL], errors="coerce").fillna(0).clip(lower=0)
            qu, qi = user_index.get_indexer(paid[USER_COL]), item_index.get_indexer(paid[ITEM_COL])
            ok = (qu >= 0) & (qi >= 0)  # e.g. anonymous purchase lines
            quantity = _pair_matrix(qu[ok], qi[ok], qty.to_numpy(dtype=np.float64)[ok], shape)

        user_orders = np.bincount(
            user_index.get_indexer(bought[[USER_COL, EVENT_AT_COL]].drop_duplicates()[USER_COL]),
            minlength=len(user_index),
        ).astype(np.float64)
        recent = pairs["last"].to_numpy() < NOVELTY_DAYS
        new = recent & (pairs["first"].to_numpy() < NOVELTY_DAYS)
        n_recent = np.bincount(pu[recent], minlength=len(user_index)).astype(np.float64)
        n_new = np.bincount(pu[new], minlength=len(user_index)).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            user_novelty = np.where(n_recent > 0, n_new / n_recent, np.nan)

        buyers = np.bincount(pi, minlength=len(item_index)).astype(np.float64)
        again = np.bincount(pi[pairs["days"].to_numpy() > 1], minlength=len(item_index))
        with np.errstate(divide="ignore", invalid="ignore"):
            item_repurchase = np.where(buyers > 0, again / buyers, np.nan)
        by_item = events.groupby("i")["age"].agg(["min", "max"])
        item_first_age = np.full(len(item_index), np.nan)
        item_last_age = np.full(len(item_index), np.nan)
        item_first_age[by_item.index] = by_item["max"].to_numpy()
        item_last_age[by_item.index] = by_item["min"].to_numpy()

        user_mean = pd.Series(dtype=np.float64)
        if PRICE_COL in history.columns:
            user_mean = paid.groupby(USER_COL)[PRICE_COL].mean().astype(float)
        prices = _item_prices(history, paid, items)
        first_seen = catalogue_first_seen(items, as_of)
        return cls(
            as_of,
            user_index,
            item_index,
            counts,
            last_day,
            user_mean,
            prices.dropna(),
            first_day=first_day,
            pair_days=pair_days,
            quantity=quantity,
            user_orders=user_orders,
            user_novelty=user_novelty,
            item_repurchase=item_repurchase,
            item_first_age=item_first_age,
            item_last_age=item_last_age,
            item_catalogue_age=None if first_seen is None else (as_of - first_seen) / DAY,
        )

    @staticmethod
    def _take(values: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        out = np.full(len(positions), np.nan)
        if values is not None:
            ok = positions >= 0
            out[ok] = values[positions[ok]]
        return out

    def _first_age(self, pairs: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """Days from the item's first sale to ``as_of``; for an item that never sold, from its first
        appearance in the catalogue (so a new product has an age and can compete)."""
        age = self._take(self.item_first_age, positions)
        if self.item_catalogue_age is not None:
            listed = self.item_catalogue_age.reindex(pairs[ITEM_COL]).to_numpy()
            age = np.where(np.isnan(age), listed, age)
        return age

    def features(self, pairs: pd.DataFrame, at: TimeLike | None = None) -> pd.DataFrame:
        """The ``DERIVED_FEATURES`` of the (user_id, item_id) rows of ``pairs`` (same index).

        ``at`` (default ``as_of``) shifts the day counts: serving at a later time than the fit
        ages every "days since" accordingly."""
        at = self.as_of if at is None else to_timestamp(at)
        u = self.user_index.get_indexer(pairs[USER_COL])
        i = self.item_index.get_indexer(pairs[ITEM_COL])
        known = (u >= 0) & (i >= 0)
        counts = _lookup(self.counts, u, i, known)
        last = _lookup(self.last_day, u, i, known)
        first = _lookup(self.first_day, u, i, known)
        days = _lookup(self.pair_days, u, i, known)
        shift = (at - self.as_of) / DAY
        days_since = np.where(last > 0, last - 1.0 + shift, np.nan)
        user_price = self.user_mean_price.reindex(pairs[USER_COL]).to_numpy()
        item_price = self.item_price.reindex(pairs[ITEM_COL]).to_numpy()
        orders = self._take(self.user_orders, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(user_price > 0, item_price / user_price, np.nan)
            share = np.where(orders > 0, counts / orders, np.nan)
            interval = np.where(days > 1, (first - last) / (days - 1), np.nan)
            due = np.where(interval > 0, days_since / interval, np.nan)
        quantity = (
            _lookup(self.quantity, u, i, known)
            if self.quantity is not None
            else np.full(len(pairs), np.nan)
        )
        columns = {
            "user_item_purchases": counts,
            "days_since_user_bought_item": days_since,
            "item_price_to_user_mean": ratio,
            "user_item_purchase_share": share,
            "user_item_quantity": quantity,
            "user_item_interval_days": interval,
            "user_item_due_ratio": due,
            "item_repurchase_rate": self._take(self.item_repurchase, i),
            "item_days_since_first_sale": self._first_age(pairs, i) + shift,
            "item_days_since_last_sale": self._take(self.item_last_age, i) + shift,
            "user_novelty_90d": self._take(self.user_novelty, u),
        }
        return pd.DataFrame({name: columns[name] for name in DERIVED_FEATURES}, index=pairs.index)


def with_extra_pairs(frame: pd.DataFrame, pairs: pd.DataFrame, retrievers: Sequence[Retriever], n: int) -> pd.DataFrame:
    """``frame`` plus the (user_id, item_id) ``pairs`` it lacks, as candidates no retriever found
    (score 0, rank n + 1, norm 0); rows sorted by user then item."""
    pairs = pairs[[USER_COL, ITEM_COL]].drop_duplicates()
    missing = pairs.merge(frame[[USER_COL, ITEM_COL]], how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    if missing.empty:
        return frame
    for r in retrievers:
        missing[f"{r.name}_score"], missing[f"{r.name}_rank"], missing[f"{r.name}_norm"] = 0.0, n + 1, 0.0
    missing["n_retrievers"] = 0
    out = pd.concat([frame, missing[frame.columns]], ignore_index=True)
    return out.sort_values([USER_COL, ITEM_COL], kind="mergesort", ignore_index=True)


def candidate_frame(
    retrievers: Sequence[Retriever],
    stats: HistoryStats,
    users,
    n: int,
    at: TimeLike | None = None,
    extra_pairs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Candidates of fitted retrievers (plus ``extra_pairs``, e.g. items a user was shown) with
    the derived features and ``event_timestamp = at``."""
    at = stats.as_of if at is None else to_timestamp(at)
    frame = build_candidates(retrievers, users, n)
    if extra_pairs is not None and not extra_pairs.empty:
        frame = with_extra_pairs(frame, extra_pairs[extra_pairs[USER_COL].isin(set(users))], retrievers, n)
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
            age = (timestamps.to_numpy() - naive_utc_series(stamps).to_numpy()) / np.timedelta64(1, "D")
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
        fetched = fetched.assign(**{TIMESTAMP_COL: naive_utc_series(fetched[TIMESTAMP_COL])})
    extra = [c for c in fetched.columns if c not in KEY_COLS and c not in frame.columns]
    fetched = fetched[keys + extra].drop_duplicates(keys)
    left = frame[keys].assign(**{TIMESTAMP_COL: naive_utc_series(frame[TIMESTAMP_COL])})[keys]
    joined = left.merge(fetched, on=keys, how="left", validate="many_to_one")
    values = _numeric_features(
        joined[extra], naive_utc_series(frame[TIMESTAMP_COL]).reset_index(drop=True)
    )
    return pd.concat([frame, values.set_index(frame.index)], axis=1)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column that is not a key, label or bookkeeping column, in frame order."""
    return [c for c in frame.columns if c not in META_COLS]
