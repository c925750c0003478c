"""One request: pseudonymise the id, gather candidates, read online features, rank, explain."""

from __future__ import annotations

from typing import Any

import pandas as pd

from recops.constants import ITEM_COL, USER_COL
from recops.feature_store import online_features
from recops.privacy import pseudonymise
from recops.serving.model_state import ModelState
from recops.serving.schemas import RecommendationResponse, RecommendedItem


def online_fetcher(store: Any):
    """A feature fetcher over the Feast online store (the same columns as the offline one)."""

    def fetch(entity_df: pd.DataFrame) -> pd.DataFrame:
        if entity_df.empty:
            return entity_df
        out = []
        for user_id, rows in entity_df.groupby(USER_COL, sort=False):
            items = rows[ITEM_COL].astype(str).tolist()
            feats = online_features(store, str(user_id), items).drop(columns=[USER_COL], errors="ignore")
            feats = feats.drop_duplicates(ITEM_COL)
            out.append(rows.merge(feats, on=ITEM_COL, how="left"))
        return pd.concat(out, ignore_index=True)

    return fetch


def recommend_for_user(
    state: ModelState,
    version: str | None,
    booster: Any,
    bundle: Any,
    *,
    user_id: str,
    k: int,
    context_item_id: str | None,
) -> RecommendationResponse:
    """Top-``k`` for a shop user id, ranked by the champion; unknown users get the fallback."""
    key = pseudonymise(user_id, state.settings.user_salt)
    recs = bundle.recommend(
        booster,
        booster.feature_name(),
        key,
        k,
        online_fetcher(state.store),
        context_item_id=context_item_id,
    )
    fallback = bool(recs) and all(r.get("fallback", False) for r in recs)
    items = [
        RecommendedItem(
            item_id=str(r["item_id"]),
            rank=i,
            score=float(r["score"]),
            title=bundle.titles.get(r["item_id"]),
            reasons=list(r["reasons"]),
        )
        for i, r in enumerate(recs, start=1)
    ]
    return RecommendationResponse(
        user_id=user_id,
        model_name=state.settings.model_name,
        model_version=version,
        fallback=fallback or not bundle.is_known(key),
        k=k,
        items=items,
    )
