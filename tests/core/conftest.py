"""Fixtures of the core tests: a warehouse on each profile."""

from __future__ import annotations

import pytest

from recops.core.settings import Settings


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def wh_settings(request, tmp_path) -> Settings:
    """Settings on a fresh DuckDB file, or on a throw-away PostgreSQL database (dropped after)."""
    if request.param == "duckdb":
        return Settings(home=tmp_path, user_salt="unit-salt-123")
    pg = request.getfixturevalue("postgres_settings")
    return pg.model_copy(update={"user_salt": "unit-salt-123"})
