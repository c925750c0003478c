"""Request and response models of the recommendation API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
ITEM_ID_PATTERN = r"^[^\s/?#]{1,64}$"
REQUEST_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_FEEDBACK_BATCH = 1000
FEEDBACK_TYPES = ("impression", "click", "add_to_cart", "purchase", "return")
WEB_FEEDBACK = frozenset({"impression", "click", "add_to_cart"})
ORDER_FEEDBACK = frozenset({"purchase", "return"})


class RecommendedItem(BaseModel):
    item_id: str
    rank: int = Field(ge=1)
    score: float
    title: str | None = None
    price_amount: float | None = None
    reasons: list[str] | None = Field(
        default=None, description="Why (personal data: only to authenticated callers; off with RECOPS_API_REASONS)."
    )


class RecommendationResponse(BaseModel):
    request_id: str = Field(description="Quote it in POST /feedback to attribute clicks and purchases.")
    user_id: str
    model_name: str
    model_version: str
    variant: Literal["champion", "challenger"]
    fallback: bool = Field(description="True when the user is unknown (or the store unreachable): popular items.")
    degraded: bool = Field(description="True when the candidate store could not be read.")
    k: int
    items: list[RecommendedItem]


class SimilarItemsResponse(BaseModel):
    request_id: str
    item_id: str
    model_name: str
    model_version: str
    k: int
    items: list[RecommendedItem]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    model_name: str
    model_version: str | None
    challenger_version: str | None = None
    loaded_at: datetime | None
    refreshed_at: datetime | None
    registry: bool = Field(description="The registry answered at the last refresh.")
    online_store: bool = Field(description="The candidate store answered at the last refresh.")
    scorer: str | None = Field(default=None, description="lleaves (compiled) or lightgbm.")
    detail: str | None = None


class FeedbackEvent(BaseModel):
    user_id: str = Field(pattern=USER_ID_PATTERN)
    item_id: str = Field(pattern=ITEM_ID_PATTERN)
    event_type: Literal["impression", "click", "add_to_cart", "purchase", "return"]
    event_at: datetime | None = None
    session_id: str | None = Field(default=None, max_length=128)
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN, description="From the response shown.")
    rank: int | None = Field(default=None, ge=1, le=100, description="Position of the item in that response.")
    quantity: float | None = Field(default=None, gt=0, le=100_000)
    price_amount: float | None = Field(default=None, ge=0, le=1_000_000)
    order_id: str | None = Field(default=None, max_length=64)


class FeedbackBatch(BaseModel):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=MAX_FEEDBACK_BATCH)


class FeedbackAccepted(BaseModel):
    accepted: int
    unattributed: int = Field(
        description="Events posted without a request_id (kept; the next run attributes the others to what "
        "was served, and flags a request_id nobody served)."
    )


class ErrorBody(BaseModel):
    detail: str


class ShopUsers(BaseModel):
    users: list[str] = Field(description="Shop user ids the served champion knows (the storefront's picker).")
    model_version: str | None = None
