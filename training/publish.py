"""Publish a model version for serving: every known user's candidates with all the booster's
features (retriever scores and ranks, the derived history features, the Feast online features),
and the version-wide serving data, written to the candidate store (:mod:`recops.core.servable`).

Runs after the promotion decision, right after the Feast online store is materialised, for the
versions that serve (``champion``, and ``challenger`` if any): the API then reads one record per
request and scores it, with no retriever, no pandas and no Feast call on the request path. The
features are exactly what the offline path computes for the same user at the bundle's ``as_of``
(``candidate_frame`` + ``attach_store_features`` over the online store), in the booster's order.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from recops.core.candidate_store import CandidateStore, candidate_store
from recops.core.constants import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    ITEM_COL,
    PREVIOUS_ALIAS,
    USER_COL,
)
from recops.core.feature_store import get_store, online_features_bulk, pair_keys, publish_online
from recops.core.marts import items_catalogue
from recops.core.registry import BUNDLE_SHA_TAG, alias_version, booster_file, verified_artifact
from recops.core.servable import NO_ITEM, ServingMeta, UserCandidates
from recops.core.settings import Settings
from recops.core.timeutil import now_utc
from recops.training.dataset import attach_store_features, candidate_frame
from recops.training.retrievers import Content, ItemCF, Popularity, Repeat
from recops.training.train import CONTEXT_REASON, RecommenderBundle

log = logging.getLogger(__name__)

BUNDLE_ARTIFACT = "bundle/bundle.joblib"
USERS_PER_BLOCK = 256
NEIGHBOURS = 100  # the API's largest k
TEXT_REASON = "similar description"
CF_REASON = "customers who bought this also bought"


def load_bundle(settings: Settings, version: str, dst: Path) -> RecommenderBundle:
    """The version's serving bundle, SHA-256 checked before ``joblib.load`` reads it."""
    path = verified_artifact(settings, version, BUNDLE_ARTIFACT, BUNDLE_SHA_TAG, dst)
    return joblib.load(path)


def known_users(bundle: RecommenderBundle) -> np.ndarray:
    """Every user a personal retriever knows (the others get the popularity fallback)."""
    indices = [r.user_index for r in bundle.retrievers if not isinstance(r, Popularity)]
    if not indices:
        return np.array([], dtype=object)
    return np.sort(pd.Index(np.concatenate([i.to_numpy(dtype=object) for i in indices])).unique().to_numpy())


def _get(bundle: RecommenderBundle, cls: type):
    return next((r for r in bundle.retrievers if isinstance(r, cls)), None)


def user_records(
    bundle: RecommenderBundle,
    feature_names: Sequence[str],
    users: np.ndarray,
    positions: dict[str, int],
    fetch,
) -> Iterator[tuple[str, UserCandidates]]:
    """Each user's candidates, in blocks: the offline path's frame, columns in booster order."""
    itemcf = _get(bundle, ItemCF)
    names = [r.name for r in bundle.retrievers]
    for start in range(0, len(users), USERS_PER_BLOCK):
        block = users[start : start + USERS_PER_BLOCK]
        frame = candidate_frame(bundle.retrievers, bundle.stats, block, bundle.n_candidates)
        frame = attach_store_features(frame, fetch)
        frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *feature_names])))
        found = np.zeros(len(frame), dtype=np.uint8)
        for bit, name in enumerate(names):
            found |= (frame[f"{name}_rank"].to_numpy() <= bundle.n_candidates).astype(np.uint8) << bit
        features = frame[list(feature_names)].to_numpy(dtype=np.float64)
        items = np.array([positions[str(i)] for i in frame[ITEM_COL]], dtype=np.int32)
        for user, rows in frame.groupby(USER_COL, sort=False).indices.items():
            anchors = np.full(len(rows), NO_ITEM, dtype=np.int32)
            if itemcf is not None:
                found_by = itemcf.anchors(user, frame[ITEM_COL].iloc[rows].tolist())
                for j, item in enumerate(frame[ITEM_COL].iloc[rows]):
                    if item in found_by:
                        anchors[j] = positions[str(found_by[item])]
            yield str(user), UserCandidates(
                items=items[rows], features=np.ascontiguousarray(features[rows]), found=found[rows], anchors=anchors
            )


def _neighbours(scores: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the ``m`` best positive columns (score desc, column asc); ``NO_ITEM`` pads."""
    from recops.training.topn import top_n_dense

    out = np.full((scores.shape[0], m), NO_ITEM, dtype=np.int32)
    values = np.zeros((scores.shape[0], m), dtype=np.float32)
    rows, cols, vals = top_n_dense(scores, m, positive_only=True)
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    out[rows, rank] = cols
    values[rows, rank] = vals
    return out, values


def item_neighbours(bundle: RecommenderBundle, items: np.ndarray) -> dict[str, np.ndarray]:
    """Co-purchase (item-CF similarity) and text (TF-IDF cosine) neighbours of every item, in
    vocabulary positions; an item is never its own neighbour."""
    n, m = len(items), min(NEIGHBOURS, max(len(items) - 1, 1))
    out = {
        "neighbours_cf": np.full((n, m), NO_ITEM, np.int32), "neighbours_cf_scores": np.zeros((n, m), np.float32),
        "neighbours_text": np.full((n, m), NO_ITEM, np.int32), "neighbours_text_scores": np.zeros((n, m), np.float32),
    }
    index = pd.Index(items)
    for cls, key in ((ItemCF, "neighbours_cf"), (Content, "neighbours_text")):
        model = _get(bundle, cls)
        if model is None or len(model.item_index) == 0:
            continue
        if cls is ItemCF:
            sims = model.similarity.toarray()
        else:
            sims = (model.item_vectors @ model.item_vectors.T).toarray()
        np.fill_diagonal(sims, 0.0)
        cols, vals = _neighbours(sims, m)
        to_vocab = index.get_indexer(model.item_index)
        rows = to_vocab[np.arange(len(model.item_index))]
        out[key][rows] = np.where(cols >= 0, to_vocab[np.maximum(cols, 0)], NO_ITEM)
        out[f"{key}_scores"][rows] = vals
    return out


def serving_meta(
    bundle: RecommenderBundle, version: str, feature_names: list[str], catalogue: pd.DataFrame, users: int
) -> ServingMeta:
    """Version-wide data: vocabulary (every item a retriever knows, plus the catalogue's),
    titles, prices, availability, the popularity list, neighbours, reasons."""
    known = [r.item_index.to_numpy(dtype=object) for r in bundle.retrievers]
    items = pd.Index(np.concatenate([*known, catalogue[ITEM_COL].to_numpy(dtype=object)])).astype(str).unique().sort_values()
    cat = catalogue.assign(**{ITEM_COL: catalogue[ITEM_COL].astype(str)}).drop_duplicates(ITEM_COL).set_index(ITEM_COL)
    cat = cat.reindex(items)
    titles = [bundle.titles.get(i, None) for i in items]
    titles = [t if t is not None else (None if pd.isna(c) else str(c)) for t, c in zip(titles, cat["title"], strict=True)]
    popularity = _get(bundle, Popularity)
    top = popularity.top_items(NEIGHBOURS) if popularity is not None else pd.DataFrame({ITEM_COL: [], "score": []})
    reasons = {r.name: r.reason for r in bundle.retrievers}
    reasons |= {"_repeat": Repeat.reason, "_context": CONTEXT_REASON, "_text": TEXT_REASON, "_cf": CF_REASON}
    return ServingMeta(
        version=version,
        feature_names=feature_names,
        retrievers=[r.name for r in bundle.retrievers],
        reasons=reasons,
        items=np.asarray(items, dtype=str),
        titles=titles,
        prices=cat["price_amount"].to_numpy(dtype=np.float64),
        available=cat["is_available"].fillna(True).to_numpy(dtype=bool),
        popular=items.get_indexer(top[ITEM_COL].astype(str)).astype(np.int32),
        popular_scores=top["score"].to_numpy(dtype=np.float64),
        as_of=bundle.as_of.isoformat(),
        published_at=now_utc().isoformat(),
        users=users,
        **item_neighbours(bundle, np.asarray(items)),
    )


def publish_version(settings: Settings, version: str, *, store: CandidateStore | None = None) -> dict[str, Any]:
    """Write a version's candidates and serving data to the candidate store (meta last, so a
    half-written version is never read). Returns counts and timings."""
    import lightgbm as lgb

    started = now_utc()
    store = store or candidate_store(settings)
    features = get_store(settings)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(settings, version, Path(tmp))
        feature_names = lgb.Booster(model_file=str(booster_file(settings, version, Path(tmp)))).feature_name()
    catalogue = items_catalogue(settings)
    users = known_users(bundle)
    meta = serving_meta(bundle, version, feature_names, catalogue, len(users))
    positions = meta.item_positions()

    pairs = pair_keys(settings)  # most candidates were never touched by their user: not read

    def fetch(entity_df: pd.DataFrame) -> pd.DataFrame:
        return online_features_bulk(features, entity_df, pairs=pairs)

    written = store.write_users(version, user_records(bundle, feature_names, users, positions, fetch))
    store.write_meta(meta)
    seconds = (now_utc() - started).total_seconds()
    log.info("published v%s: %d users, %d items in %.1f s", version, written, len(meta.items), seconds)
    return {"version": version, "users": written, "items": len(meta.items), "seconds": round(seconds, 1)}


def serving_versions(settings: Settings) -> dict[str, str]:
    """alias -> version of the aliases that serve (champion, challenger) or may serve again at
    once (previous: a rollback's default target)."""
    found = {alias: alias_version(settings, alias) for alias in (CHAMPION_ALIAS, CHALLENGER_ALIAS, PREVIOUS_ALIAS)}
    return {alias: version for alias, version in found.items() if version is not None}


def publish_serving(
    settings: Settings, *, interval_end: datetime, interval_start: datetime | None = None
) -> dict[str, Any]:
    """The pipeline's publish step, after the promotion decision: materialise the run's interval
    into the Feast online store, publish the champion and the challenger from it, and drop
    published versions that no alias holds any more."""
    materialized = publish_online(settings, interval_end, start=interval_start)
    aliases = serving_versions(settings)
    store = candidate_store(settings)
    published = {}
    for alias in (CHAMPION_ALIAS, CHALLENGER_ALIAS):
        version = aliases.get(alias)
        if version is not None and version not in {p["version"] for p in published.values()}:
            published[alias] = publish_version(settings, version, store=store)
    dropped = [v for v in store.versions() if v not in set(aliases.values())]
    for version in dropped:
        store.delete_version(version)
    from recops.training.online import tag_online_metrics

    online = tag_online_metrics(settings)
    return {"materialized": materialized, "published": published, "dropped": dropped, "online_tagged": sorted(online)}


def ensure_published(settings: Settings, version: str) -> dict[str, Any] | None:
    """Publish ``version`` unless it already is (a rollback to an older version)."""
    store = candidate_store(settings)
    if store.published_at(version) is not None:
        return None
    return publish_version(settings, version, store=store)
