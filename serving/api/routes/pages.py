"""The demo pages: ``GET /shop`` (a storefront) and ``GET /ops`` (operations), and their data.

Both pages are plain HTML with a small script and style sheet from ``/static`` (no build step,
nothing from elsewhere: the Content-Security-Policy allows this origin only). They load without a
token; their data calls carry one:

- the storefront's, the web token (``recommend+feedback:web``) the server writes into the page,
  a demo convenience: a real shop calls the API from its back end and keeps tokens there;
- the operations page's, an admin token the operator pastes (kept in the tab's sessionStorage).
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from recops.core.constants import CHAMPION_ALIAS
from recops.core.marts import frequent_buyers
from recops.core.privacy import pseudonymise, user_salt
from recops.serving.api.deps import Service, get_service, require
from recops.serving.metrics import exposition
from recops.serving.operations import ops_snapshot
from recops.serving.schemas import ErrorBody, ShopUsers

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"])
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
KNOWN_SHOPPERS = 6
SHOPPER_POOL = 60
DENIED = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


def page(name: str, status_code: int = 200, **values: str) -> HTMLResponse:
    """``static/<name>`` with each ``{{key}}`` replaced by its HTML-escaped value."""
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return HTMLResponse(text, status_code=status_code, headers=PAGE_HEADERS)


@router.get("/shop", response_class=HTMLResponse, summary="Demo storefront (no token needed to load)")
def shop(service: Annotated[Service, Depends(get_service)]) -> HTMLResponse:
    """The storefront; 503 when no web token is configured (production without RECOPS_WEB_TOKEN)."""
    if service.web_token is None:
        return page("shop-off.html", status_code=503)
    return page("shop.html", web_token=service.web_token)


@router.get("/ops", response_class=HTMLResponse, summary="Operations page (its data needs an admin token)")
def ops() -> HTMLResponse:
    return page("ops.html")


@router.get("/shop/users", response_model=ShopUsers, responses=DENIED,
            dependencies=[Depends(require("recommend"))])
def shop_users(service: Annotated[Service, Depends(get_service)]) -> ShopUsers:
    """A few shop user ids the champion has personal candidates for (its heaviest buyers in the
    raw layer), for the storefront's picker; empty while the warehouse cannot be read."""
    model = service.state.model(CHAMPION_ALIAS)
    if model is None or service.state.store is None:
        return ShopUsers(users=[])
    cached = service.shoppers.get(model.version)
    if cached is None:
        salt = user_salt(service.state.settings)
        try:
            pool = frequent_buyers(service.state.settings, SHOPPER_POOL)
        except Exception as exc:  # the warehouse is locked by a writer or not built yet: try later
            log.warning("no known shoppers for the storefront: %s", exc)
            return ShopUsers(users=[])
        known = [u for u in pool if service.state.store.read_user(model.version, pseudonymise(u, salt))]
        cached = service.shoppers[model.version] = known[:KNOWN_SHOPPERS]
    return ShopUsers(users=cached, model_version=model.version)


@router.get("/ops/data", responses=DENIED, dependencies=[Depends(require("admin"))])
def ops_data(service: Annotated[Service, Depends(get_service)]) -> dict:
    """Everything the operations page shows (scope ``admin``): served versions, online metrics
    per day, responses by kind and latency percentiles since start, recent versions with their
    gate results, links."""
    body, _ = exposition(service.http_metrics)
    return ops_snapshot(service.state, body.decode())
