"""Request and response models of the recommendation API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"


class RecommendedItem(BaseModel):
    item_id: str
    rank: int = Field(ge=1)
    score: float
    title: str | None = None
    reasons: list[str]


class RecommendationResponse(BaseModel):
    user_id: str
    model_name: str
    model_version: str | None
    fallback: bool = Field(description="True when the user is unknown and popular items are served.")
    k: int
    items: list[RecommendedItem]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    model_name: str
    model_version: str | None
    feature_store: bool
    loaded_at: datetime | None


class FeedbackEvent(BaseModel):
    user_id: str = Field(pattern=USER_ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=64)
    event_type: Literal["impression", "click", "add_to_cart", "purchase"]
    event_at: datetime | None = None
    session_id: str | None = Field(default=None, max_length=128)


class FeedbackBatch(BaseModel):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=1000)


class FeedbackAccepted(BaseModel):
    accepted: int
    path: str
