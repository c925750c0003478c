"""FastAPI dependencies: the loaded model state."""

from __future__ import annotations

from fastapi import Request

from recops.serving.model_state import ModelState


def get_state(request: Request) -> ModelState:
    state: ModelState = request.app.state.model
    state.maybe_refresh()
    return state
