"""Evaluation protocol v1 (docs: shared DESIGN.md, "Evaluation protocol v1").

Split at a cutoff T: history = events before T; test = purchases at or after T. Evaluated users have
at least one purchase in history and one in test; cold users (a purchase in test, none in history)
are reported separately. Relevant items are the distinct items a user bought in test, whether or
not they bought them before. Every model is scored on the same users with the same metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.core.constants import ITEM_COL, USER_COL
from recops.training.events import (
    TimeLike,
    before,
    between,
    check_interactions,
    purchases,
    to_timestamp,
)
from recops.training.metrics import (
    METRICS,
    catalog_coverage,
    metrics_at_ks,
    per_user_metrics,
)

PROTOCOL_VERSION = "v1"


@dataclass(frozen=True)
class Split:
    """A protocol-v1 split. ``truth`` / ``cold_truth`` hold distinct (user_id, item_id) pairs."""

    cutoff: pd.Timestamp
    history: pd.DataFrame
    truth: pd.DataFrame
    cold_truth: pd.DataFrame
    n_items: int

    @property
    def users(self) -> np.ndarray:
        """Evaluated users (sorted)."""
        return np.sort(self.truth[USER_COL].unique())

    @property
    def cold_users(self) -> np.ndarray:
        """Cold users (sorted): bought in test, never bought in history."""
        return np.sort(self.cold_truth[USER_COL].unique())


def split_protocol_v1(
    interactions: pd.DataFrame, cutoff: TimeLike, *, end: TimeLike | None = None
) -> Split:
    """Split ``interactions`` at ``cutoff`` (test window ``[cutoff, end)``, open-ended by default).

    ``n_items`` is the catalogue the models may recommend from: items with any event in history."""
    interactions = check_interactions(interactions)
    cutoff = to_timestamp(cutoff)
    history = before(interactions, cutoff)
    test = purchases(between(interactions, cutoff, end))[[USER_COL, ITEM_COL]].drop_duplicates()
    buyers = set(purchases(history)[USER_COL].unique())
    known = test[USER_COL].isin(buyers).to_numpy()
    return Split(
        cutoff=cutoff,
        history=history,
        truth=test[known].reset_index(drop=True),
        cold_truth=test[~known].reset_index(drop=True),
        n_items=int(history[ITEM_COL].nunique()),
    )


def protocol_split(interactions: pd.DataFrame, cutoff: TimeLike, window_days: int | None) -> Split:
    """The split every judgement uses (the training run's evaluation, hence the promotion gate's
    saved holdout, and each tuning fold): test window ``[cutoff, cutoff + window_days)``, or open
    (every purchase from the cutoff on) when ``window_days`` is None (``RECOPS_EVALUATION_WINDOW_DAYS``)."""
    cutoff = to_timestamp(cutoff)
    end = None if window_days is None else cutoff + pd.Timedelta(days=window_days)
    return split_protocol_v1(interactions, cutoff, end=end)


def evaluate(
    recs: pd.DataFrame, split: Split, k: int = 10, n_items: int | None = None, *, cold: bool = False
) -> dict[str, float]:
    """ndcg@k, recall@k, hitrate@k, map@k, coverage@k and n_users of ``recs`` on the split's
    evaluated users (``cold=True``: on its cold users). ``recs`` has user_id, item_id, score."""
    truth = split.cold_truth if cold else split.truth
    n_items = split.n_items if n_items is None else n_items
    result: dict[str, float] = {f"{m}@{k}": float("nan") for m in METRICS}
    result["coverage"] = float("nan")
    result["n_users"] = float(truth[USER_COL].nunique())
    if truth.empty:
        return result
    recs = recs[recs[USER_COL].isin(truth[USER_COL].unique())]
    table = per_user_metrics(truth, recs, k=k)
    for m in METRICS:
        result[f"{m}@{k}"] = float(table[m].mean())
    result["coverage"] = catalog_coverage(recs, max(n_items, 1), k=k) if len(recs) else 0.0
    return result


@dataclass(frozen=True)
class Comparison:
    """Same-user metrics of several models: ``metrics`` / ``cold_metrics`` map a model name to
    :func:`evaluate`'s dict; ``by_k`` is long format (model, k, metric, value) for the plot."""

    metrics: dict[str, dict[str, float]]
    cold_metrics: dict[str, dict[str, float]]
    by_k: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """Models as rows, metrics as columns."""
        return pd.DataFrame(self.metrics).T


def compare_models(
    recs: Mapping[str, pd.DataFrame],
    split: Split,
    *,
    k: int = 10,
    ks: Sequence[int] = tuple(range(1, 21)),
    cold_recs: Mapping[str, pd.DataFrame] | None = None,
) -> Comparison:
    """Score every model's recommendations on the split's evaluated users (and cold users)."""
    metrics = {name: evaluate(frame, split, k) for name, frame in recs.items()}
    cold_metrics = {
        name: evaluate(frame, split, k, cold=True) for name, frame in (cold_recs or {}).items()
    }
    curves = []
    if not split.truth.empty:
        for name, frame in recs.items():
            curve = metrics_at_ks(split.truth, frame[frame[USER_COL].isin(split.users)], ks)
            curves.append(curve.assign(model=name))
    by_k = (
        pd.concat(curves, ignore_index=True)[["model", "k", "metric", "value"]]
        if curves
        else pd.DataFrame(columns=["model", "k", "metric", "value"])
    )
    return Comparison(metrics=metrics, cold_metrics=cold_metrics, by_k=by_k)
