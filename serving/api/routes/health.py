"""``GET /health``: what is served, and whether the registry and the store answered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from recops.core.constants import CHALLENGER_ALIAS
from recops.serving.api.deps import Service, get_service
from recops.serving.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
def health(service: Annotated[Service, Depends(get_service)]) -> HealthResponse:
    """Liveness and what is being served (backs the compose healthcheck; no token needed)."""
    state = service.state
    champion = state.model()
    challenger = state.model(CHALLENGER_ALIAS)
    ok = champion is not None and state.registry_ok and state.store_ok
    return HealthResponse(
        status="ok" if ok else "degraded",
        model_name=state.settings.model_name,
        model_version=champion.version if champion else None,
        challenger_version=challenger.version if challenger else None,
        loaded_at=champion.loaded_at if champion else None,
        refreshed_at=state.refreshed_at,
        registry=state.registry_ok,
        online_store=state.store_ok,
        scorer=champion.scorer.kind if champion else None,
        detail=state.last_error,
    )
