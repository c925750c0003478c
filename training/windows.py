"""The label windows of the learning-to-rank training set, assembled one partition of users at a time.

Each label window ``[start, end)`` (:mod:`recops.training.dataset` explains the windows, queries
and labels) fits its retrievers and history statistics once, on the events before ``start``. The
windows' queries are then built in partitions of at most ``partition_users`` users (a window's
sorted users cut into pieces; small windows share one partition): candidates, derived features,
labels and one call for the store's point-in-time features per partition.
:func:`iter_training_partitions` yields the partitions in query order (earliest window first,
users ascending) with their final ``query_id``, so :func:`write_partitions` can stream them into
one Parquet file while one partition is in memory; :func:`build_training_frame` concatenates them.
The frame is the same whatever the partition size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recops.core.constants import EVENT_TYPE_COL, ITEM_COL, LABEL_COL, TIMESTAMP_COL, USER_COL
from recops.training.dataset import (
    QUERY_COL,
    WINDOW_COL,
    FeatureFetcher,
    HistoryStats,
    RetrieverFactory,
    TrainingDataError,
    attach_store_features,
    candidate_frame,
    relevance,
)
from recops.training.events import (
    PURCHASE,
    TimeLike,
    before,
    between,
    check_interactions,
    purchases,
    to_timestamp,
)
from recops.training.retrievers import Retriever

DEFAULT_PARTITION_USERS = 5_000


def shown_not_taken(
    impressions: pd.DataFrame | None, interactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame | None:
    """(user_id, item_id) pairs served to the user within ``[start, end)`` that the user neither
    clicked nor bought there: the explicit negatives of the label window."""
    if impressions is None or impressions.empty:
        return None
    shown = impressions[(impressions["served_at"] >= start) & (impressions["served_at"] < end)]
    taken = between(interactions, start, end)
    taken = taken[taken[EVENT_TYPE_COL].isin(("click", "add_to_cart", PURCHASE))]
    merged = shown[[USER_COL, ITEM_COL]].drop_duplicates().merge(
        taken[[USER_COL, ITEM_COL]].drop_duplicates(), how="left", indicator=True
    )
    return merged.loc[merged["_merge"] == "left_only", [USER_COL, ITEM_COL]]


@dataclass(frozen=True)
class LabelWindow:
    """One label window, fitted: its queries' users and what their candidates are drawn from."""

    index: int
    start: pd.Timestamp
    users: np.ndarray
    retrievers: Sequence[Retriever]
    stats: HistoryStats
    counts: pd.DataFrame  # (user_id, item_id, label_count) of the window's purchases
    negatives: pd.DataFrame | None

    @classmethod
    def fit(
        cls,
        index: int,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None,
        start: pd.Timestamp,
        end: pd.Timestamp,
        retriever_factory: RetrieverFactory,
        impressions: pd.DataFrame | None = None,
    ) -> LabelWindow | None:
        """The window ``[start, end)``, or None when no user bought in it after buying before it."""
        history_buyers = purchases(before(interactions, start))[USER_COL].unique()
        bought = purchases(between(interactions, start, end))
        users = np.sort(np.intersect1d(bought[USER_COL].unique(), history_buyers))
        if len(users) == 0:
            return None
        return cls(
            index=index,
            start=start,
            users=users,
            retrievers=[r.fit(interactions, items, start) for r in retriever_factory()],
            stats=HistoryStats.fit(interactions, items, start),
            counts=bought.groupby([USER_COL, ITEM_COL]).size().rename("label_count").reset_index(),
            negatives=shown_not_taken(impressions, interactions, start, end),
        )

    def frame(self, users: np.ndarray, n_candidates: int) -> pd.DataFrame:
        """Candidates (plus shown-but-not-taken items), derived features and labels of ``users``;
        only the query groups with a positive."""
        frame = candidate_frame(self.retrievers, self.stats, users, n_candidates, self.start, extra_pairs=self.negatives)
        frame = frame.merge(self.counts[self.counts[USER_COL].isin(set(users))], on=[USER_COL, ITEM_COL], how="left")
        frame[LABEL_COL] = relevance(frame.pop("label_count").fillna(0))
        frame[WINDOW_COL] = self.index
        positive = frame.groupby(USER_COL)[LABEL_COL].transform("max") > 0
        return frame[positive.to_numpy()].reset_index(drop=True)


def _user_chunks(windows: list[LabelWindow], size: int) -> Iterator[list[tuple[LabelWindow, np.ndarray]]]:
    """The windows' users in query order, grouped into partitions of at most ``size`` users
    (a small window shares a partition with the next; a large one is cut into several)."""
    batch: list[tuple[LabelWindow, np.ndarray]] = []
    held = 0
    for window in windows:
        for first in range(0, len(window.users), size):
            users = window.users[first : first + size]
            if batch and held + len(users) > size:
                yield batch
                batch, held = [], 0
            batch.append((window, users))
            held += len(users)
    if batch:
        yield batch


def iter_training_partitions(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    *,
    label_window_days: int,
    label_windows: int,
    n_candidates: int,
    retriever_factory: RetrieverFactory,
    fetch_features: FeatureFetcher | None = None,
    impressions: pd.DataFrame | None = None,
    partition_users: int = DEFAULT_PARTITION_USERS,
) -> Iterator[pd.DataFrame]:
    """The training frame of :func:`build_training_frame` in partitions of at most
    ``partition_users`` queries, in query order, each with one ``fetch_features`` call; raises
    ``TrainingDataError`` when there is not a single query."""
    if label_windows < 1 or label_window_days < 1 or partition_users < 1:
        raise TrainingDataError("label_windows, label_window_days and partition_users must be >= 1")
    interactions = check_interactions(interactions)
    cutoff = to_timestamp(cutoff)
    length = pd.Timedelta(days=label_window_days)
    windows = []
    for index in reversed(range(label_windows)):  # earliest window first: query ids follow time
        end = cutoff - index * length
        window = LabelWindow.fit(index, interactions, items, end - length, end, retriever_factory, impressions)
        if window is not None:
            windows.append(window)
    if not windows:
        raise TrainingDataError(f"no label window before {cutoff:%Y-%m-%d} has a query")
    next_query = 0
    for batch in _user_chunks(windows, partition_users):
        frame = pd.concat([window.frame(users, n_candidates) for window, users in batch], ignore_index=True)
        if frame.empty:
            continue
        frame = attach_store_features(frame, fetch_features)
        frame[QUERY_COL] = frame.groupby([TIMESTAMP_COL, USER_COL], sort=True).ngroup().astype(np.int64) + next_query
        next_query = int(frame[QUERY_COL].max()) + 1
        yield frame.sort_values([QUERY_COL, ITEM_COL], kind="mergesort", ignore_index=True)
    if next_query == 0:
        raise TrainingDataError("no query group has a positive: the retrievers found no bought item")


def build_training_frame(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    cutoff: TimeLike,
    **options,
) -> pd.DataFrame:
    """The learning-to-rank frame of ``label_windows`` windows before ``cutoff`` (options: those of
    :func:`iter_training_partitions`). ``impressions`` (user_id, item_id, served_at: the served-list
    log) add the items a user was shown in a window but neither clicked nor bought there, as
    explicit negatives.

    Columns: user_id, item_id, event_timestamp, <retriever>_score/_rank, n_retrievers, the derived
    features, the store features, label, window, query_id (one per user and window). Query groups
    without a positive are dropped. Rows sorted by query_id then item_id."""
    return pd.concat(list(iter_training_partitions(interactions, items, cutoff, **options)), ignore_index=True)


def write_partitions(parts: Iterable[pd.DataFrame], path: Path) -> dict[str, int]:
    """Stream training-set partitions into one Parquet file (one row group each, the first
    partition's schema; a later partition whose columns differ is an error) and count its rows,
    queries and positives."""
    counts = {"rows": 0, "queries": 0, "positives": 0, "partitions": 0}
    tmp = path.with_name(f".{path.name}.partial")
    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            elif table.schema.names != writer.schema.names:
                raise TrainingDataError(f"training-set partition {counts['partitions']} has other columns than the first")
            writer.write_table(table.cast(writer.schema))
            counts["rows"] += len(part)
            counts["queries"] += int(part[QUERY_COL].nunique())
            counts["positives"] += int((part[LABEL_COL] > 0).sum())
            counts["partitions"] += 1
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)  # a failed build leaves no half-written file
        raise
    if writer is None:
        raise TrainingDataError("the training set has no partition")
    writer.close()
    tmp.replace(path)
    return counts
