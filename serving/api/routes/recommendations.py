"""``GET /recommendations/{user_id}`` and ``GET /items/{item_id}/similar``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from recops.core.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS
from recops.core.privacy import pseudonymise, user_salt
from recops.core.timeutil import now_utc
from recops.serving.api.deps import Service, get_service, require
from recops.serving.auth import Caller
from recops.serving.model_state import LoadedModel
from recops.serving.recommender import COLD, DEGRADED, Ranked, recommend, similar_items
from recops.serving.schemas import (
    ITEM_ID_PATTERN,
    USER_ID_PATTERN,
    ErrorBody,
    RecommendationResponse,
    SimilarItemsResponse,
)

router = APIRouter(tags=["recommendations"])
ERRORS = {
    401: {"model": ErrorBody, "description": "No valid bearer token."},
    403: {"model": ErrorBody, "description": "The token lacks the scope 'recommend'."},
    503: {"model": ErrorBody, "description": "No champion model is published yet."},
}
MAX_EXCLUDED = 100


def variant_of(service: Service, user_key: str) -> LoadedModel:
    """The champion, or the challenger for the share of users (stable hash of the pseudonymised
    id) that ``RECOPS_CHALLENGER_TRAFFIC`` sends to it."""
    share = service.state.settings.challenger_traffic
    if share > 0 and int(user_key[:8], 16) / 0x1_0000_0000 < share:
        challenger = service.state.model(CHALLENGER_ALIAS)
        if challenger is not None:
            return challenger
    champion = service.state.model(CHAMPION_ALIAS)
    if champion is None:
        raise HTTPException(status_code=503, detail=service.state.last_error or "no champion model published yet")
    return champion


def _items(model: LoadedModel, ranked: Ranked, with_reasons: bool) -> list[dict]:
    meta = model.meta
    out = []
    for rank, (pos, score, reasons) in enumerate(
        zip(ranked.items.tolist(), ranked.scores.tolist(), ranked.reasons, strict=True), start=1
    ):
        price = meta.prices[pos]
        out.append(
            {
                "item_id": str(meta.items[pos]),
                "rank": rank,
                "score": score,
                "title": meta.titles[pos],
                "price_amount": None if np.isnan(price) else float(price),
                "reasons": reasons if with_reasons else None,
            }
        )
    return out


def _positions(model: LoadedModel, item_ids: list[str]) -> list[int]:
    return [p for p in (model.positions.get(i) for i in item_ids) if p is not None]


def served_at(caller: Caller, at: datetime | None) -> datetime:
    """When the list was served: now, or ``at`` for a replay or a simulation (scope ``admin``)."""
    if at is None:
        return now_utc()
    if not caller.may("admin"):
        raise HTTPException(status_code=403, detail="only an admin token may set 'at' (replays, simulations)")
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def log_served(
    service: Service, model: LoadedModel, ranked: Ranked, body: dict, *, user_key: str | None,
    context: str | None, at: datetime,
) -> None:
    """One served-list record (the impressions of the next run): who (pseudonymised), which
    version and variant, the context item, each item with its rank, score and retrievers."""
    names = model.meta.retrievers
    found = ranked.found if ranked.found is not None else np.zeros(len(ranked.items), np.uint8)
    service.served.write({
        "request_id": body["request_id"],
        "served_at": at.isoformat(),
        "user_key": user_key,
        "model_name": body["model_name"],
        "model_version": model.version,
        "variant": model.alias,
        "kind": ranked.kind,
        "context_item_id": context,
        "k": body["k"],
        "items": [
            {"item_id": item["item_id"], "rank": item["rank"], "score": item["score"],
             "retrievers": [n for b, n in enumerate(names) if bits >> b & 1]}
            for item, bits in zip(body["items"], found.tolist(), strict=True)
        ],
    })


@router.get(
    "/recommendations/{user_id}",
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Top-k items for a user, ranked by the served model, with reasons",
)
async def recommendations(
    service: Annotated[Service, Depends(get_service)],
    caller: Annotated[Caller, Depends(require("recommend"))],
    user_id: Annotated[str, Path(pattern=USER_ID_PATTERN, description="The shop's user id.")],
    k: Annotated[int, Query(ge=1, le=100, description="How many items (1..100).")] = 10,
    item_id: Annotated[
        str | None, Query(pattern=ITEM_ID_PATTERN, description="Item being viewed (context for unknown users).")
    ] = None,
    exclude: Annotated[
        list[str] | None, Query(max_length=MAX_EXCLUDED, description="Item ids never to return (e.g. the cart).")
    ] = None,
    at: Annotated[datetime | None, Query(description="Serve as of this time (admin: replays, simulations).")] = None,
) -> Response:
    settings = service.state.settings
    when = served_at(caller, at)
    user_key = pseudonymise(user_id, user_salt(settings))
    model = variant_of(service, user_key)
    excluded = tuple(sorted(_positions(model, list(exclude or []))))
    context = model.positions.get(item_id) if item_id else None
    cache_key = (service.state.generation, model.version, user_key, k, context, excluded)
    ranked = service.cache.get(cache_key)
    service.metrics.cache.labels(result="hit" if ranked is not None else "miss").inc()
    if ranked is None:
        assert service.state.store is not None
        ranked = recommend(model, service.state.store, user_key, k, context=context, exclude=excluded)
        if ranked.kind != DEGRADED:
            service.cache.put(cache_key, ranked)
    variant = model.alias
    service.metrics.responses.labels(kind=ranked.kind, variant=variant).inc()
    if ranked.kind not in (COLD, DEGRADED):
        service.metrics.candidates.observe(ranked.candidates)
    body = {
        "request_id": uuid.uuid4().hex,
        "user_id": user_id,
        "model_name": settings.model_name,
        "model_version": model.version,
        "variant": variant,
        "fallback": ranked.kind in (COLD, DEGRADED),
        "degraded": ranked.kind == DEGRADED,
        "k": k,
        "items": _items(model, ranked, settings.api_reasons),
    }
    log_served(service, model, ranked, body, user_key=user_key, context=item_id, at=when)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/items/{item_id}/similar",
    response_model=SimilarItemsResponse,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "Unknown item."}},
    summary="Items bought with this one and items of similar text (product pages)",
)
async def similar(
    service: Annotated[Service, Depends(get_service)],
    caller: Annotated[Caller, Depends(require("recommend"))],
    item_id: Annotated[str, Path(pattern=ITEM_ID_PATTERN)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    exclude: Annotated[list[str] | None, Query(max_length=MAX_EXCLUDED)] = None,
    at: Annotated[datetime | None, Query(description="Serve as of this time (admin: replays, simulations).")] = None,
) -> Response:
    when = served_at(caller, at)
    model = service.state.model(CHAMPION_ALIAS)
    if model is None:
        raise HTTPException(status_code=503, detail=service.state.last_error or "no champion model published yet")
    position = model.positions.get(item_id)
    if position is None:
        raise HTTPException(status_code=404, detail=f"unknown item {item_id!r}")
    ranked = similar_items(model, position, k, _positions(model, list(exclude or [])))
    body = {
        "request_id": uuid.uuid4().hex,
        "item_id": item_id,
        "model_name": service.state.settings.model_name,
        "model_version": model.version,
        "k": k,
        "items": _items(model, ranked, service.state.settings.api_reasons),
    }
    log_served(service, model, ranked, {**body, "model_name": body["model_name"]}, user_key=None,
               context=item_id, at=when)
    return Response(orjson.dumps(body), media_type="application/json")
