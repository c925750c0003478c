from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from recops.serving.api.deps import get_state
from recops.serving.model_state import ModelState
from recops.serving.recommender import recommend_for_user
from recops.serving.schemas import USER_ID_PATTERN, RecommendationResponse

router = APIRouter(tags=["recommendations"])


@router.get(
    "/recommendations/{user_id}",
    response_model=RecommendationResponse,
    responses={503: {"description": "No champion model is registered yet."}},
)
def recommendations(
    state: Annotated[ModelState, Depends(get_state)],
    user_id: Annotated[str, Path(pattern=USER_ID_PATTERN, description="The shop's user id.")],
    k: Annotated[int, Query(ge=1, le=100, description="How many items (1..100).")] = 10,
    item_id: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Item being viewed (context for cold users)."),
    ] = None,
) -> RecommendationResponse:
    """Top-k items for a user, ranked by the champion model, with the reasons behind each."""
    version, booster, bundle = state.snapshot()
    if booster is None:
        raise HTTPException(status_code=503, detail="no champion model registered yet: run the pipeline")
    return recommend_for_user(state, version, booster, bundle, user_id=user_id, k=k, context_item_id=item_id)
