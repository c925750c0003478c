from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from recops.serving.api.deps import get_state
from recops.serving.model_state import ModelState
from recops.serving.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
def health(state: Annotated[ModelState, Depends(get_state)]) -> HealthResponse:
    """Liveness and what is being served (backs the compose healthcheck)."""
    version, booster, _ = state.snapshot()
    return HealthResponse(
        status="ok" if booster is not None else "degraded",
        model_name=state.settings.model_name,
        model_version=version,
        feature_store=state.store is not None,
        loaded_at=state.loaded_at,
    )
