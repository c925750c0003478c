"""The FastAPI app: ``create_app(settings)``; model and feature store load in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recops.serving.api.routes import feedback, health, recommendations
from recops.serving.model_state import ModelState
from recops.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: the process settings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ModelState(settings or get_settings())
        state.load()
        state.start_refresh()  # follows the champion alias (promotions, rollbacks)
        app.state.model = state
        yield
        state.stop_refresh()

    app = FastAPI(title="RecOps recommendations", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(recommendations.router)
    app.include_router(feedback.router)
    return app
