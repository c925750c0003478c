"""Test-wide isolation: every test session gets its own RECOPS_HOME, never the repo's .recops/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("recops-home")
    os.environ["RECOPS_HOME"] = str(home)
    os.environ.setdefault("RECOPS_USER_SALT", "test-salt-123")
    from recops.settings import get_settings

    get_settings.cache_clear()
    return home


def require_service(name: str, ok: bool, why: str) -> None:
    """Fail when CI is set and a service the test needs is down; skip with a reason elsewhere."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but unavailable: {why}")
    pytest.skip(f"{name} unavailable: {why}")


@pytest.fixture(scope="session")
def needs_service():
    """``needs_service(name, ok, why)``: fail in CI, skip elsewhere, when a service is down."""
    return require_service


@pytest.fixture(scope="session")
def postgres_admin(needs_service):
    """Settings on the server's ``postgres`` database; fails (CI) or skips if it is unreachable."""
    import psycopg2

    from recops.settings import Settings

    admin = Settings(profile="production", postgres_db="postgres")
    try:
        psycopg2.connect(admin.postgres_dsn, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        needs_service("PostgreSQL", False, f"{admin.postgres_host}:{admin.postgres_port}: {exc}")
    return admin


@pytest.fixture
def postgres_settings(postgres_admin, tmp_path: Path, request: pytest.FixtureRequest):
    """Production settings on a fresh database ``recops_test_<random>``, dropped afterwards."""
    import secrets

    from recops.settings import Settings
    from recops.warehouse import create_postgres_database, drop_postgres_database

    name = f"recops_test_{secrets.token_hex(4)}"
    settings = Settings(home=tmp_path / "pg", profile="production", postgres_db=name)
    request.addfinalizer(lambda: drop_postgres_database(postgres_admin, name))
    create_postgres_database(settings)
    return settings
