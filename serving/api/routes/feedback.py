from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from recops.serving.api.deps import get_state
from recops.serving.feedback import record_feedback
from recops.serving.model_state import ModelState
from recops.serving.schemas import FeedbackAccepted, FeedbackBatch

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackAccepted, status_code=202)
def feedback(batch: FeedbackBatch, state: Annotated[ModelState, Depends(get_state)]) -> FeedbackAccepted:
    """Record impressions, clicks and purchases; the next pipeline run ingests them."""
    path = record_feedback(state.settings, batch.events)
    return FeedbackAccepted(accepted=len(batch.events), path=str(path))
