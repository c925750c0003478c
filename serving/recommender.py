"""One request, cut to the bone: read the user's published candidates (one record), mask what may
not be shown (unavailable, already in the cart), score the matrix once, take the top k, explain.

Unknown users, and every user while the candidate store is unreachable, get the fallback:
popularity fused (reciprocal rank) with the text neighbours of the item being viewed. Item-to-item
fuses the item's co-purchase and text neighbours the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recops.core.candidate_store import CandidateStore, StoreUnavailable
from recops.core.servable import NO_ITEM, ServingMeta, UserCandidates
from recops.serving.model_state import LoadedModel

PERSONAL, COLD, DEGRADED, ITEM_TO_ITEM = "personal", "cold_start", "store_unavailable", "item_to_item"


@dataclass(frozen=True)
class Ranked:
    """A ranked list: vocabulary positions, scores, reasons, and how it was made."""

    items: np.ndarray
    scores: np.ndarray
    reasons: list[list[str]]
    kind: str  # PERSONAL, COLD, DEGRADED or ITEM_TO_ITEM
    candidates: int
    found: np.ndarray | None = None  # retriever bits of each item (personal lists)


def _mask(model: LoadedModel, items: np.ndarray, exclude: Sequence[int]) -> np.ndarray:
    keep = model.meta.available[items]
    if exclude:
        keep &= ~np.isin(items, np.asarray(exclude, dtype=np.int32))
    return keep


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores, best first; ties by position (= item id order)."""
    if len(scores) > k:
        cut = np.argpartition(-scores, k - 1)[:k]
        boundary = scores[cut].min()
        cut = np.flatnonzero(scores >= boundary)  # every tie at the boundary, then sort
    else:
        cut = np.arange(len(scores))
    order = np.lexsort((cut, -scores[cut]))
    return cut[order][:k]


def _reasons(meta: ServingMeta, found: np.ndarray, anchors: np.ndarray) -> list[list[str]]:
    out: list[list[str]] = []
    for bits, anchor in zip(found.tolist(), anchors.tolist(), strict=True):
        texts: list[str] = []
        for bit, name in enumerate(meta.retrievers):
            if not bits >> bit & 1:
                continue
            text = meta.reasons[name]
            if name == "itemcf":
                text = (
                    meta.reasons["_repeat"]
                    if anchor == NO_ITEM
                    else text.format(item=meta.titles[anchor] or str(meta.items[anchor]))
                )
            if text not in texts:
                texts.append(text)
        out.append(texts)
    return out


def personal(model: LoadedModel, record: UserCandidates, k: int, exclude: Sequence[int]) -> Ranked:
    keep = np.flatnonzero(_mask(model, record.items, exclude))
    scores = model.scorer.predict(record.features[keep]) if len(keep) else np.zeros(0)
    best = top_k(scores, k)
    rows = keep[best]
    reasons = _reasons(model.meta, record.found[rows], record.anchors[rows])
    return Ranked(record.items[rows], scores[best], reasons, PERSONAL, len(record.items), record.found[rows])


def fuse(
    model: LoadedModel, lists: list[tuple[np.ndarray, str]], k: int, exclude: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Reciprocal-rank fusion of ranked lists of positions (``NO_ITEM`` ends a list), each with
    its reason; unavailable and excluded items are dropped first, ties by item id."""
    score: dict[int, float] = {}
    reasons: dict[int, list[str]] = {}
    for items, reason in lists:
        items = items[: k][items[: k] != NO_ITEM]
        for rank, item in enumerate(items.tolist(), start=1):
            score[item] = score.get(item, 0.0) + 1.0 / rank
            reasons.setdefault(item, []).append(reason)
    if not score:
        return np.zeros(0, np.int32), np.zeros(0), []
    items = np.fromiter(score, dtype=np.int32, count=len(score))
    values = np.fromiter(score.values(), dtype=np.float64, count=len(score))
    keep = _mask(model, items, exclude)
    order = np.argsort(items[keep], kind="stable")  # ties go to the smaller item id
    items, values = items[keep][order], values[keep][order]
    best = top_k(values, k)
    chosen = items[best]
    return chosen, values[best], [reasons[i] for i in chosen.tolist()]


def fallback(model: LoadedModel, k: int, context: int | None, exclude: Sequence[int], kind: str) -> Ranked:
    """Popularity, fused with the text neighbours of the context item when there is one. Lists
    are taken ``k`` deep before dropping what may not be shown (as the offline fallback)."""
    meta = model.meta
    lists = [(meta.popular, meta.reasons["popularity"])] if "popularity" in meta.reasons else []
    if context is not None:
        lists.append((meta.neighbours_text[context], meta.reasons["_context"]))
    items, scores, reasons = fuse(model, lists, k, exclude)
    return Ranked(items, scores, reasons, kind, len(items))


def recommend(
    model: LoadedModel,
    store: CandidateStore,
    user_key: str,
    k: int,
    *,
    context: int | None = None,
    exclude: Sequence[int] = (),
) -> Ranked:
    """Top-``k`` for a pseudonymised user: personal if the version published their candidates,
    else the fallback; the fallback flagged ``store_unavailable`` if the store cannot be read."""
    try:
        record = store.read_user(model.version, user_key)
    except StoreUnavailable:
        return fallback(model, k, context, exclude, DEGRADED)
    if record is None or len(record.items) == 0:
        return fallback(model, k, context, exclude, COLD)
    return personal(model, record, k, exclude)


def similar_items(model: LoadedModel, item: int, k: int, exclude: Sequence[int] = ()) -> Ranked:
    """Items bought together with ``item`` and items of similar text, fused; never ``item``."""
    meta = model.meta
    lists = [(meta.neighbours_cf[item], meta.reasons["_cf"]), (meta.neighbours_text[item], meta.reasons["_text"])]
    items, scores, reasons = fuse(model, lists, k, [*exclude, item])
    return Ranked(items, scores, reasons, ITEM_TO_ITEM, len(items))
