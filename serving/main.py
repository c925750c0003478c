"""The FastAPI app: ``create_app(settings)``; models and the candidate store load in the lifespan.

``recops serve --workers N`` runs it as ``uvicorn --factory recops.serving.main:create_app`` in N
processes; each loads the champion once and follows the alias.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from recops.core.settings import Settings
from recops.serving.api.deps import Service, require
from recops.serving.api.routes import feedback, health, pages, recommendations
from recops.serving.auth import token_table, web_token
from recops.serving.cache import TTLCache
from recops.serving.feedback import feedback_log, served_log
from recops.serving.metrics import exposition, http_registry, serving_metrics
from recops.serving.model_state import ServingState
from recops.serving.operations import LATENCY_BUCKETS
from recops.serving.ratelimit import TokenBuckets
from recops.serving.schemas import MAX_FEEDBACK_BATCH, ErrorBody


def _validation_error(_request, exc: RequestValidationError) -> JSONResponse:
    """A 422 body that says what was wrong in one line (and the details)."""
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems), "errors": exc.errors()})


async def _tick_logs(service: Service) -> None:
    """Every second: flush and rotate the served and feedback logs even when no request comes."""
    def tick() -> None:
        service.served.tick()
        service.feedback.tick()

    while True:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(tick)  # the disk (fsync) off the event loop: requests go on meanwhile


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: the process settings)."""
    from prometheus_fastapi_instrumentator import Instrumentator

    settings = settings or Settings()
    tokens = token_table(settings)  # fails fast: the production profile needs RECOPS_API_TOKENS
    storefront_token = web_token(settings)
    http = http_registry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServingState(settings)
        state.load()
        state.start_refresh()  # follows the champion alias (promotions, rollbacks)
        app.state.service = service = Service(
            state=state,
            tokens=tokens,
            cache=TTLCache(settings.serve_cache_seconds, settings.serve_cache_size),
            metrics=serving_metrics(),
            served=served_log(settings),
            feedback=feedback_log(settings),
            web_token=storefront_token,
            http_metrics=http,
            feedback_limit=TokenBuckets(
                per_minute=settings.api_feedback_events_per_minute,
                burst=max(settings.api_feedback_events_per_minute, MAX_FEEDBACK_BATCH),
            ),
        )
        ticking = asyncio.create_task(_tick_logs(service))
        # what is loaded now (the libraries, the model, the item vocabulary) lives as long as the
        # worker: out of the collector's way, so a full collection does not walk it in a request
        gc.collect()
        gc.freeze()
        yield
        ticking.cancel()
        state.stop_refresh()
        service.served.close()  # closed files are what the next run ingests
        service.feedback.close()

    app = FastAPI(title="RecOps recommendations", version="0.2.0", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(health.router)
    app.include_router(recommendations.router)
    app.include_router(feedback.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    Instrumentator(excluded_handlers=["/metrics", "/static"], registry=http).instrument(
        app, latency_lowr_buckets=LATENCY_BUCKETS
    )

    @app.get("/metrics", tags=["operations"], dependencies=[Depends(require("admin"))],
             responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
    def metrics() -> Response:
        """Prometheus text format, covering every worker (scope ``admin``)."""
        body, content_type = exposition(http)
        return Response(body, media_type=content_type)

    return app


__all__ = ["Service", "create_app"]
