"""FastAPI dependencies: the service (models, store, tokens, cache) and the caller's token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry

from recops.core.applog import AppendLog
from recops.serving.auth import Caller, authenticate
from recops.serving.cache import TTLCache
from recops.serving.metrics import ServingMetrics
from recops.serving.model_state import ServingState
from recops.serving.ratelimit import TokenBuckets

UNAUTHORISED = {"WWW-Authenticate": "Bearer"}


@dataclass
class Service:
    """Everything a worker's requests share."""

    state: ServingState
    tokens: dict[str, frozenset[str]]
    cache: TTLCache
    metrics: ServingMetrics
    served: AppendLog
    feedback: AppendLog
    feedback_limit: TokenBuckets | None = None  # events per token (RECOPS_API_FEEDBACK_EVENTS_PER_MINUTE)
    web_token: str | None = None
    http_metrics: CollectorRegistry | None = None  # this app's request metrics (see metrics.http_registry)
    shoppers: dict[str, list[str]] = field(default_factory=dict)  # champion version -> known user ids
    seen_generation: int = -1

    def sync(self) -> None:
        """After a model swap: drop the cached lists and show the served versions in /metrics."""
        if self.seen_generation == self.state.generation:
            return
        self.seen_generation = self.state.generation
        self.cache.clear()
        self.metrics.model.clear()
        for alias, model in self.state.models.copy().items():
            self.metrics.model.labels(alias=alias, version=model.version).set(1)


async def get_service(request: Request) -> Service:
    """The worker's service, refreshed if due. A coroutine, like :func:`require`'s check: FastAPI
    runs a plain-function dependency in its thread pool, two thread hops per request for
    microseconds of work (the refresh runs in its own thread; without one, in tests, it blocks)."""
    service: Service = request.app.state.service
    service.state.maybe_refresh()
    service.sync()
    return service


def require(scope: str | None) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, who must hold ``scope`` (any valid token when ``None``).
    401 without a valid token, 403 without the scope; neither body says more than that."""

    async def check(request: Request) -> Caller:
        service: Service = request.app.state.service
        caller = authenticate(service.tokens, request.headers.get("authorization"))
        if caller is None:
            raise HTTPException(status_code=401, detail="a valid bearer token is required", headers=UNAUTHORISED)
        if scope is not None and not caller.may(scope):
            raise HTTPException(status_code=403, detail=f"this token lacks the scope {scope!r}")
        return caller

    return check
