"""Bearer tokens and their scopes (``RECOPS_API_TOKENS``).

An entry is ``TOKEN`` (every scope) or ``TOKEN:scope+scope``. Scopes: ``recommend``
(recommendations, item-to-item), ``feedback:web`` (impression, click, add_to_cart),
``feedback:orders`` (purchase, return) and ``admin`` (metrics, operations, anything that changes
state). On the embedded profile without the setting, one token with every scope is generated into
``$RECOPS_HOME/api_tokens`` (mode 600) on first use; the production profile refuses to start
without tokens.

The demo storefront's token (``RECOPS_WEB_TOKEN``) is one more entry, always scoped exactly
``recommend+feedback:web`` (the page hands it to every browser, so it may never be an admin or
order token). The embedded profile generates it into ``$RECOPS_HOME/web_token`` (mode 600); the
production profile has none unless the setting is given, and then ``/shop`` is off.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recops.core.privacy import secret_file
from recops.core.settings import Settings

Scope = Literal["recommend", "feedback:web", "feedback:orders", "admin"]
SCOPES: tuple[Scope, ...] = ("recommend", "feedback:web", "feedback:orders", "admin")


class TokenConfigError(ValueError):
    """``RECOPS_API_TOKENS`` is malformed or missing where it is required."""


@dataclass(frozen=True)
class Caller:
    """Who called: a short id of the token (never the token) and its scopes."""

    token_id: str
    scopes: frozenset[str]
    limit_key: str = ""  # SHA-256 of the token: the key of its rate limits

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def parse_tokens(spec: str) -> dict[str, frozenset[str]]:
    """``TOKEN[:scope+scope],...`` -> token -> scopes (raises on an unknown scope or a short token)."""
    tokens: dict[str, frozenset[str]] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        token, _, scopes = entry.partition(":")
        if len(token) < 16:
            raise TokenConfigError("every API token needs at least 16 characters")
        chosen = frozenset(s for s in scopes.split("+") if s) if scopes else frozenset(SCOPES)
        unknown = chosen - set(SCOPES)
        if unknown:
            raise TokenConfigError(f"unknown API token scope(s) {sorted(unknown)}; known: {list(SCOPES)}")
        tokens[token] = chosen
    if not tokens:
        raise TokenConfigError("RECOPS_API_TOKENS holds no token")
    return tokens


WEB_SCOPES: frozenset[str] = frozenset({"recommend", "feedback:web"})
"""The storefront token's scopes: recommendations and what a shopper's browser reports."""


def _generated(path: Path) -> str:
    """The token kept in ``path``, created (random, mode 600) on first use."""
    return secret_file(path, secrets.token_urlsafe(24)).split(",")[0]


def embedded_token(settings: Settings) -> str:
    """The home's generated token (every scope), created with mode 600 on first use."""
    return _generated(settings.api_tokens_file)


def web_token(settings: Settings) -> str | None:
    """The storefront's token: ``RECOPS_WEB_TOKEN``, else (embedded profile) the home's generated
    one; ``None`` on the production profile without the setting."""
    if settings.web_token:
        return settings.web_token
    if settings.profile == "production":
        return None
    return _generated(settings.web_token_file)


def token_table(settings: Settings) -> dict[str, frozenset[str]]:
    """The tokens the API accepts: ``RECOPS_API_TOKENS`` (or the embedded token) and the
    storefront's token with exactly :data:`WEB_SCOPES`."""
    if settings.api_tokens:
        tokens = parse_tokens(settings.api_tokens)
    elif settings.profile == "production":
        raise TokenConfigError("the production profile needs RECOPS_API_TOKENS (no default token)")
    else:
        tokens = parse_tokens(embedded_token(settings))
    web = web_token(settings)
    if web is not None:
        if web in tokens:
            raise TokenConfigError("RECOPS_WEB_TOKEN must differ from every token of RECOPS_API_TOKENS")
        tokens[web] = WEB_SCOPES
    return tokens


def authenticate(tokens: dict[str, frozenset[str]], header: str | None) -> Caller | None:
    """The caller of an ``Authorization: Bearer TOKEN`` header, or ``None``."""
    if not header or not header.startswith("Bearer "):
        return None
    offered = header[7:].strip()
    for token, scopes in tokens.items():
        if hmac.compare_digest(token.encode(), offered.encode()):
            return Caller(
                token_id=token[:4] + "…", scopes=scopes, limit_key=hashlib.sha256(token.encode()).hexdigest()
            )
    return None
