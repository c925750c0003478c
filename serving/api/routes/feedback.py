"""``POST /feedback``: what shoppers did with what they were shown."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from recops.serving.api.deps import Service, get_service, require
from recops.serving.auth import Caller
from recops.serving.feedback import record_feedback
from recops.serving.schemas import (
    ORDER_FEEDBACK,
    WEB_FEEDBACK,
    ErrorBody,
    FeedbackAccepted,
    FeedbackBatch,
)

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    response_model=FeedbackAccepted,
    status_code=202,
    responses={
        401: {"model": ErrorBody, "description": "No valid bearer token."},
        403: {"model": ErrorBody, "description": "An event type the token may not post."},
        429: {"model": ErrorBody, "description": "The token posted more events than its rate limit allows."},
    },
)
def feedback(
    batch: FeedbackBatch,
    service: Annotated[Service, Depends(get_service)],
    caller: Annotated[Caller, Depends(require(None))],
) -> FeedbackAccepted:
    """Record impressions (seen on screen), clicks and add-to-carts (scope ``feedback:web``) and
    purchases and returns (scope ``feedback:orders``: a shop's order system); the next pipeline
    run ingests them. Quote the ``request_id`` and ``rank`` of the response shown."""
    types = {e.event_type for e in batch.events}
    if types & WEB_FEEDBACK and not caller.may("feedback:web"):
        raise HTTPException(status_code=403, detail="this token may not post impression, click or add_to_cart")
    if types & ORDER_FEEDBACK and not caller.may("feedback:orders"):
        raise HTTPException(status_code=403, detail="this token may not post purchase or return")
    limit = service.feedback_limit
    wait_s = limit.take(caller.limit_key, len(batch.events)) if limit is not None else 0.0
    if wait_s:
        retry_s = math.ceil(min(wait_s, 3600.0))  # a batch beyond the burst never fits: say an hour
        raise HTTPException(
            status_code=429,
            detail=f"rate limit: this token may post {limit.per_minute} feedback events per minute; "
            f"retry in {retry_s} s",
            headers={"Retry-After": str(retry_s)},
        )
    record_feedback(service.feedback, batch.events)
    return FeedbackAccepted(
        accepted=len(batch.events), unattributed=sum(1 for e in batch.events if e.request_id is None)
    )
