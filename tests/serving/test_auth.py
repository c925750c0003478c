"""API tokens and the storefront's web token: where each comes from and what it may do."""

from __future__ import annotations

import stat

import pytest
from pydantic import ValidationError

from recops.core.settings import Settings
from recops.serving.auth import SCOPES, WEB_SCOPES, TokenConfigError, token_table, web_token

ADMIN = "admin-token-0123456789"
WEB = "storefront-token-0123456789"


def test_the_embedded_profile_generates_a_web_token_beside_the_admin_token(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    tokens = token_table(settings)
    admin = settings.api_tokens_file.read_text().strip()
    web = settings.web_token_file.read_text().strip()
    assert tokens == {admin: frozenset(SCOPES), web: frozenset({"recommend", "feedback:web"})}
    assert web != admin and len(web) >= 16
    for path in (settings.api_tokens_file, settings.web_token_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert web_token(settings) == web and token_table(settings) == tokens  # kept, not regenerated


def test_a_configured_web_token_is_scoped_recommend_and_web_feedback_only(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", api_tokens=ADMIN, web_token=WEB)
    tokens = token_table(settings)
    assert tokens[WEB] == WEB_SCOPES == frozenset({"recommend", "feedback:web"})
    assert "admin" not in tokens[WEB] and "feedback:orders" not in tokens[WEB]
    assert not settings.web_token_file.exists()


def test_production_hands_out_no_web_token_unless_configured(tmp_path) -> None:
    production = Settings(home=tmp_path / "home", profile="production", api_tokens=ADMIN)
    assert web_token(production) is None
    assert token_table(production) == {ADMIN: frozenset(SCOPES)}
    assert not production.web_token_file.exists()
    configured = production.model_copy(update={"web_token": WEB})
    assert web_token(configured) == WEB and token_table(configured)[WEB] == WEB_SCOPES


def test_the_web_token_can_never_be_an_api_token(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", api_tokens=f"{ADMIN},{WEB}:recommend", web_token=WEB)
    with pytest.raises(TokenConfigError, match="RECOPS_WEB_TOKEN must differ"):
        token_table(settings)


def test_the_web_token_setting_is_validated(tmp_path) -> None:
    assert Settings(home=tmp_path, web_token="").web_token is None  # compose's ${VAR:-}
    for bad in ("short-token", "token with spaces 0123456789", "token:admin-0123456789"):
        with pytest.raises(ValidationError, match="web_token"):
            Settings(home=tmp_path, web_token=bad)
